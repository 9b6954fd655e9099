"""The validation gate's run of a date, recorded as a Great Expectations project under the lake (<lake>/gx/).

The gate computes its verdicts with its own engine, so nothing here validates data: each suite's outcomes become
GX's own result objects, stored in the project's validation results store under the run of the date, and the
stored checkpoint `igdb_gate`'s actions (UpdateDataDocsAction) render them into Data Docs. That way an operator
browses the history with GX's usual site, and a GX user can open <lake>/gx as an ordinary file project.

An s3:// lake keeps every store and the Data Docs site in the bucket (S3StoreBackend below: the installed GX has
no S3 store backend of its own); great_expectations.yml is read from and written back to <lake>/gx/ around a
local working copy, since a file context needs a local root.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")  # no phoning home from a batch job

import boto3
import great_expectations as gx
from great_expectations.checkpoint.actions import ActionContext, UpdateDataDocsAction
from great_expectations.checkpoint.checkpoint import CheckpointResult
from great_expectations.core import ExpectationSuiteValidationResult, ExpectationValidationResult
from great_expectations.core.run_identifier import RunIdentifier
from great_expectations.data_context.store.tuple_store_backend import TupleStoreBackend
from great_expectations.data_context.types.base import ProgressBarsConfig
from great_expectations.data_context.types.resource_identifiers import (
    ExpectationSuiteIdentifier,
    ValidationResultIdentifier,
)
from great_expectations.exceptions import DataContextError, InvalidKeyError
from ruamel.yaml import YAML

if TYPE_CHECKING:
    from great_expectations.data_context import FileDataContext

    from jobs.validate.run import Outcome

log = logging.getLogger(__name__)
for _name in ("great_expectations", "great_expectations.render", "great_expectations.data_context"):
    logging.getLogger(_name).setLevel(logging.WARNING)

CHECKPOINT = "igdb_gate"
DATASOURCE = "igdb_lake"
BATCH_DEFINITION = "whole_dataframe"
SITE = "local_site"
GX_DIR = "gx"
CONFIG_FILE = "great_expectations.yml"
DOCS_DIR = "uncommitted/data_docs/local_site"


def docs_index_rel() -> str:
    """The Data Docs index relative to the lake root (the gate's own report links to it)."""
    return f"{GX_DIR}/{DOCS_DIR}/index.html"


def gx_name(suite_name: str) -> str:
    """GX stores refuse "/" in keys; "." is what Data Docs split into folders ("marts/dim_games" -> marts.dim_games)."""
    return suite_name.replace("/", ".")


def _split_s3(uri: str) -> tuple[str, str]:
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    return bucket, prefix.strip("/")


def _s3_client() -> Any:
    return boto3.client("s3")  # boto3 itself honours AWS_ENDPOINT_URL


class S3StoreBackend(TupleStoreBackend):
    """A GX tuple store (stores and Data Docs site) on S3: objects under s3://<bucket>/<prefix>/<key path>.

    Configured by module_name/class_name in great_expectations.yml like any GX custom store backend.
    """

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        filepath_template: str | None = None,
        filepath_prefix: str | None = None,
        filepath_suffix: str | None = None,
        forbidden_substrings: list[str] | None = None,
        platform_specific_separator: bool = False,
        fixed_length_key: bool = False,
        suppress_store_backend_id: bool = False,
        manually_initialize_store_backend_id: str = "",
        base_public_path: str | None = None,
        store_name: str | None = None,
    ) -> None:
        super().__init__(
            filepath_template=filepath_template,
            filepath_prefix=filepath_prefix,
            filepath_suffix=filepath_suffix,
            forbidden_substrings=forbidden_substrings,
            platform_specific_separator=False,  # object keys always use "/"
            fixed_length_key=fixed_length_key,
            suppress_store_backend_id=suppress_store_backend_id,
            manually_initialize_store_backend_id=manually_initialize_store_backend_id,
            base_public_path=base_public_path,
            store_name=store_name,
        )
        self.bucket, self.prefix = bucket, prefix.strip("/")
        self._client = _s3_client()
        if not self._suppress_store_backend_id:
            _ = self.store_backend_id
        self._config = {
            k: v
            for k, v in {
                "bucket": bucket,
                "prefix": prefix,
                "filepath_template": filepath_template,
                "filepath_prefix": filepath_prefix,
                "filepath_suffix": filepath_suffix,
                "forbidden_substrings": forbidden_substrings,
                "fixed_length_key": fixed_length_key,
                "suppress_store_backend_id": suppress_store_backend_id,
                "base_public_path": base_public_path,
                "store_name": store_name,
                "module_name": self.__class__.__module__,
                "class_name": self.__class__.__name__,
            }.items()
            if v
        }

    def _object_key(self, key: tuple) -> str:
        path = self._convert_key_to_filepath(key)
        return f"{self.prefix}/{path}" if self.prefix else path

    def _get(self, key: tuple) -> Any:
        try:
            body = self._client.get_object(Bucket=self.bucket, Key=self._object_key(key))["Body"].read()
        except self._client.exceptions.NoSuchKey as e:
            raise InvalidKeyError(f"no object s3://{self.bucket}/{self._object_key(key)}") from e
        return body.decode("utf-8").rstrip("\n")

    def _get_all(self) -> list[Any]:
        return [self._get(key) for key in self.list_keys() if key != self.STORE_BACKEND_ID_KEY]

    def _set(self, key: Any, value: Any, **kwargs: Any) -> Any:
        content_type = kwargs.get("content_type")
        if not isinstance(key, tuple):
            key = key.to_tuple()
        object_key = self._object_key(key)
        body = value.encode("utf-8") if isinstance(value, str) else value
        extra = {"ContentType": content_type} if content_type else {}  # a browsable site needs text/html
        self._client.put_object(Bucket=self.bucket, Key=object_key, Body=body, **extra)
        return object_key

    def _move(self, source_key: tuple, dest_key: tuple, **kwargs: Any) -> Any:
        source, dest = self._object_key(source_key), self._object_key(dest_key)
        self._client.copy_object(Bucket=self.bucket, Key=dest, CopySource={"Bucket": self.bucket, "Key": source})
        self._client.delete_object(Bucket=self.bucket, Key=source)
        return dest_key

    def _paths(self, under: str) -> Iterator[str]:
        start = f"{self.prefix}/" if self.prefix else ""
        pages = self._client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=start + under)
        for page in pages:
            for item in page.get("Contents", []):
                yield item["Key"][len(start):]

    def list_keys(self, prefix: tuple = ()) -> list[tuple]:
        keys = []
        for path in self._paths("/".join(prefix)):
            if self._is_missing_prefix_or_suffix(self.filepath_prefix, self.filepath_suffix, path):
                continue
            key = self._convert_filepath_to_key(path)
            if key and not self.is_ignored_key(key):
                keys.append(key)
        return keys

    def remove_key(self, key: Any) -> Any:
        if not isinstance(key, tuple):
            key = key.to_tuple()
        self._client.delete_object(Bucket=self.bucket, Key=self._object_key(key))
        return True

    def _has_key(self, key: tuple) -> bool:
        try:
            self._client.head_object(Bucket=self.bucket, Key=self._object_key(key))
        except self._client.exceptions.ClientError:
            return False
        return True

    def get_url_for_key(self, key: tuple, protocol: str | None = None) -> str:
        return f"s3://{self.bucket}/{self._object_key(key)}"

    def get_public_url_for_key(self, key: tuple, protocol: str | None = None) -> str:
        return f"{self.base_public_path}{self._convert_key_to_filepath(key)}"


def _s3_stores(bucket: str, gx_prefix: str) -> tuple[dict, dict]:
    """The project's stores and Data Docs site in the bucket, at the paths the local layout uses."""

    def backend(path: str, **extra: Any) -> dict:
        return {"module_name": __name__, "class_name": S3StoreBackend.__name__, "bucket": bucket,
                "prefix": f"{gx_prefix}/{path}", **extra}

    stores = {
        "expectations_store": {"class_name": "ExpectationsStore", "store_backend": backend("expectations")},
        "validation_results_store": {"class_name": "ValidationResultsStore",
                                     "store_backend": backend("uncommitted/validations")},
        "checkpoint_store": {"class_name": "CheckpointStore",
                             "store_backend": backend("checkpoints", suppress_store_backend_id=True)},
        "validation_definition_store": {"class_name": "ValidationDefinitionStore",
                                        "store_backend": backend("validation_definitions")},
    }
    sites = {SITE: {"class_name": "SiteBuilder", "show_how_to_buttons": False, "store_backend": backend(DOCS_DIR),
                    "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"}}}
    return stores, sites


@contextmanager
def _project(lake_root: str) -> Iterator[FileDataContext]:
    """The lake's GX file project; for an s3:// lake a local copy of its config, written back when done."""
    if not lake_root.startswith("s3://"):
        yield _quiet(gx.get_context(mode="file", project_root_dir=os.path.abspath(lake_root)))
        return
    bucket, prefix = _split_s3(lake_root)
    gx_prefix = f"{prefix}/{GX_DIR}" if prefix else GX_DIR
    config_key = f"{gx_prefix}/{CONFIG_FILE}"
    work = Path(tempfile.mkdtemp(prefix="igdb-gx-"))
    try:
        client = _s3_client()
        local_config = work / GX_DIR / CONFIG_FILE
        local_config.parent.mkdir(parents=True)
        try:
            local_config.write_bytes(client.get_object(Bucket=bucket, Key=config_key)["Body"].read())
        except client.exceptions.NoSuchKey:
            # First record into this lake: GX scaffolds the default project, then its stores move to the bucket.
            gx.get_context(mode="file", project_root_dir=str(work))
            yaml = YAML()
            config = yaml.load(local_config.read_text())
            config["stores"], config["data_docs_sites"] = _s3_stores(bucket, gx_prefix)
            with local_config.open("w") as out:
                yaml.dump(config, out)
        context = _quiet(gx.get_context(mode="file", project_root_dir=str(work)))
        yield context
        client.put_object(Bucket=bucket, Key=config_key, Body=local_config.read_bytes())
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _quiet(context: FileDataContext) -> FileDataContext:
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return context


def _stored_suite(context: FileDataContext, suite: gx.ExpectationSuite) -> gx.ExpectationSuite:
    """The suite under its GX name in the expectations store: the latest kwargs (they change with the date)."""
    stored = gx.ExpectationSuite(
        name=gx_name(suite.name),
        expectations=[copy.copy(e) for e in suite.expectations],  # a copy drops the id of the gate's own suite
        meta=dict(suite.meta or {}),
    )
    try:
        existing = context.suites.get(name=stored.name)
    except DataContextError:
        return context.suites.add(stored)
    # What suites.add_or_update does, with the unchanged expectations found by a dict instead of a
    # list.index per expectation (quadratic in the suite's size)
    ids = {_identity(e): e.id for e in existing.expectations}
    for expectation in stored.expectations:
        expectation.id = ids.get(_identity(expectation))
    stored.id = existing.id
    context.expectations_store.update(key=context.expectations_store.get_key(name=stored.name, id=stored.id),
                                      value=stored)
    return context.suites.get(name=stored.name)


def _identity(expectation: Any) -> str:
    """What makes two expectations the same one across dates: type, arguments, meta, severity, description."""
    config = expectation.configuration
    return json.dumps([config.type, config.kwargs, config.meta or {}, str(config.severity), config.description],
                      sort_keys=True, default=str)


def _checkpoint(context: FileDataContext, suites: Sequence[gx.ExpectationSuite]) -> gx.Checkpoint:
    """`igdb_gate`: one validation definition per suite over a Spark dataframe asset; its action builds Data Docs.

    Reused across dates: objects already in the project are kept, so a rerun or a new date only adds what is new.
    """
    datasource: Any  # a SparkDatasource
    try:
        datasource = context.data_sources.get(DATASOURCE)
    except (KeyError, ValueError):
        datasource = context.data_sources.add_spark(DATASOURCE)
    existing = {a.name for a in datasource.assets}
    definitions: dict[str, gx.ValidationDefinition] = {}
    try:
        old = context.checkpoints.get(CHECKPOINT)
        definitions = {vd.name: vd for vd in old.validation_definitions}
    except Exception:  # noqa: BLE001 - absent or unreadable (e.g. a suite removed by hand): rebuilt below
        old = None
    for suite in suites:
        if suite.name not in existing:
            datasource.add_dataframe_asset(suite.name)
        asset = datasource.get_asset(suite.name)
        try:
            batch = asset.get_batch_definition(BATCH_DEFINITION)
        except KeyError:
            batch = asset.add_batch_definition_whole_dataframe(BATCH_DEFINITION)
        if suite.name not in definitions:
            # add, not add_or_update: the latter re-saves the suite and compares every expectation again
            definitions[suite.name] = context.validation_definitions.add(
                gx.ValidationDefinition(name=suite.name, data=batch, suite=suite)
            )
    if old is not None and len(old.validation_definitions) == len(definitions):
        return old
    checkpoint = gx.Checkpoint(
        name=CHECKPOINT,
        validation_definitions=list(definitions.values()),
        actions=[gx.checkpoint.UpdateDataDocsAction(name="update_data_docs", site_names=[SITE])],
    )
    # a first checkpoint is added as it is; add_or_update would re-save each definition and its suite
    return context.checkpoints.add(checkpoint) if old is None else context.checkpoints.add_or_update(checkpoint)


def _expectation_result(expectation: Any, outcome: Outcome) -> ExpectationValidationResult:
    config = expectation.configuration
    config.severity = outcome.severity  # the rendered page shows the gate's severity, not GX's default
    result: dict[str, Any] = {}
    if outcome.observed is not None:
        result["observed_value"] = outcome.observed
    if outcome.unexpected_count is not None:
        result["unexpected_count"] = outcome.unexpected_count
    if outcome.unexpected_percent is not None:
        result["unexpected_percent"] = outcome.unexpected_percent
    if outcome.unexpected_count and outcome.unexpected_percent:
        # Data Docs' "n unexpected values found, p% of N total rows" needs N, which the gate does not keep.
        result["element_count"] = round(outcome.unexpected_count * 100 / outcome.unexpected_percent)
    if outcome.samples:
        result["partial_unexpected_list"] = list(outcome.samples)
    return ExpectationValidationResult(
        success=outcome.success,
        expectation_config=config,
        result=result,
        meta={"severity": outcome.severity, "description": outcome.description},
        exception_info={
            "raised_exception": outcome.error is not None,
            "exception_message": outcome.error,
            "exception_traceback": None,
        },
    )


def _suite_result(name: str, asset: str, day: dt.date, run: RunIdentifier,
                  expectations: Sequence[Any], outcomes: Sequence[Outcome]) -> ExpectationSuiteValidationResult:
    results = [_expectation_result(e, o) for e, o in zip(expectations, outcomes, strict=True)]
    passed = sum(o.success for o in outcomes)
    run_time = run.run_time.isoformat()
    return ExpectationSuiteValidationResult(
        # The gate's verdict: only a failed critical expectation fails the suite (GX's own would count warnings).
        success=not any(o.blocking for o in outcomes),
        results=results,
        suite_name=name,
        statistics={
            "evaluated_expectations": len(outcomes),
            "successful_expectations": passed,
            "unsuccessful_expectations": len(outcomes) - passed,
            "success_percent": 100.0 * passed / len(outcomes) if outcomes else None,
        },
        meta={
            "great_expectations_version": gx.__version__,
            "run_id": run.to_json_dict(),
            "validation_time": run_time,
            "checkpoint_name": CHECKPOINT,
            "batch_spec": {"batch_data": "SparkDataFrame", "data_asset_name": asset},
            "batch_markers": {"ge_load_time": run.run_time.strftime("%Y%m%dT%H%M%S.%fZ")},
            "batch_parameters": {"dt": day.isoformat()},
            "active_batch_definition": {
                "datasource_name": DATASOURCE,
                "data_connector_name": "fluent",
                "data_asset_name": asset,
                "batch_identifiers": {"dt": day.isoformat()},
            },
        },
        batch_id=f"{DATASOURCE}-{asset}",
    )


def _run_actions(context: FileDataContext, checkpoint: gx.Checkpoint, checkpoint_result: CheckpointResult) -> None:
    """The checkpoint's actions on the gate's results, Data Docs first as Checkpoint._run_actions orders them.

    UpdateDataDocsAction.run builds the site once per validation result, each time re-rendering the index, which
    reads back every stored result of every date (once per suite, growing with the history). The same
    update is done here in one build of the site: the pages of this run's results and suites, and the index once.
    Other actions (a user may add e.g. a Slack one) run as GX runs them, seeing the pages' URLs as they would.
    """
    action_context = ActionContext()
    docs = [a for a in checkpoint.actions if isinstance(a, UpdateDataDocsAction)]
    for action in docs:
        resources: list[Any] = []
        for key in checkpoint_result.run_results:
            resources += [key, key.expectation_suite_identifier]
        context.build_data_docs(site_names=action.site_names or None, resource_identifiers=resources)
        pages = {
            key: {site["site_name"]: site["site_url"]
                  for site in context.get_docs_sites_urls(resource_identifier=key, site_names=action.site_names)}
            for key in checkpoint_result.run_results
        }
        action_context.update(action=action, action_result=pages)
    for other in checkpoint.actions:
        if other not in docs:
            other._data_context = context  # what Checkpoint._run_actions sets: our project, not the "current" one
            result = other.run(checkpoint_result=checkpoint_result, action_context=action_context)
            action_context.update(action=other, action_result=result)


def record_gate(lake_root: str, day: dt.date, run_id: str, validated_at: dt.datetime,
                validated: Sequence[tuple[gx.ExpectationSuite, Sequence[Outcome]]]) -> str:
    """Store the gate's results of `day` in <lake>/gx and update its Data Docs; returns the Data Docs index URI."""
    if validated_at.tzinfo is None:
        validated_at = validated_at.replace(tzinfo=dt.UTC)
    run = RunIdentifier(run_name=run_id, run_time=validated_at.astimezone(dt.UTC))
    with _project(lake_root) as context:
        stored = [_stored_suite(context, suite) for suite, _ in validated]
        checkpoint = _checkpoint(context, stored)
        run_results: dict[ValidationResultIdentifier, ExpectationSuiteValidationResult] = {}
        for suite, (original, outcomes) in zip(stored, validated, strict=True):
            key = ValidationResultIdentifier(
                expectation_suite_identifier=ExpectationSuiteIdentifier(name=suite.name),
                run_id=run,
                batch_identifier=f"dt={day.isoformat()}",
            )
            result = _suite_result(suite.name, suite.name, day, run, original.expectations, outcomes)
            result.meta["checkpoint_id"] = checkpoint.id
            context.validation_results_store.set(key, result)
            run_results[key] = result
        _run_actions(context, checkpoint, CheckpointResult(
            run_id=run, run_results=run_results, checkpoint_config=checkpoint))
    if lake_root.startswith("s3://"):
        return f"{lake_root.rstrip('/')}/{docs_index_rel()}"
    return os.path.join(os.path.abspath(lake_root), docs_index_rel())

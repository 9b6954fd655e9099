"""The users' own expectations: GX suite files under `conf/expectations/<layer>/<dataset>.json`.

A data engineer who knows Great Expectations writes a rule the way GX itself stores a suite (the
JSON a FileDataContext writes for an ExpectationSuite: `{"expectations": [{"type": ..., "kwargs":
..., "meta": ..., "severity": ...}]}`), and the gate adds it to the suite it generates for that
output (jobs/validate/suites.py). Every file is checked before any Spark work: a file that is not such a
suite, an expectation type GX does not know, arguments GX rejects, or a column the output does
not have is a ConfigError (exit 2) naming the file and the entry, so a typo never waits for the
transform to finish. Pure apart from reading the folder.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from great_expectations.compatibility.pydantic import ValidationError
from great_expectations.exceptions import ExpectationNotFoundError, GreatExpectationsError
from great_expectations.expectations.expectation import Expectation
from great_expectations.expectations.expectation_configuration import ExpectationConfiguration
from great_expectations.expectations.metadata_types import FailureSeverity

from core.errors import ConfigError
from core.lake import Lake, open_lake
from jobs.datasets import MARTS, PARTITION, STAGING, Dataset
from jobs.validate.suites import orphan_column, references

ENTRY_FIELDS = frozenset({"type", "kwargs", "meta", "severity", "description", "notes", "id", "rendered_content"})
SUITE_FIELDS = frozenset({"name", "id", "expectations", "meta", "notes", "suite_parameters", "data_asset_type"})
COLUMN_ARGUMENTS = ("column", "column_A", "column_B")  # the domain of column and column-pair rules


@dataclass(frozen=True)
class UserSuite:
    """One file's expectations for one output ("layer/name"), in the file's order."""

    output: str
    source: str
    expectations: tuple[Expectation, ...]


def gate_columns(ds: Dataset) -> set[str]:
    """What a rule of this output may name: its file columns, the partition column, and the
    gate's orphan_* columns (one per declared reference)."""
    return {*ds.file_column_names, PARTITION, *(orphan_column(r) for r in references(ds))}


def _severity(entry: Mapping[str, Any], where: str) -> FailureSeverity:
    """GX 1.x writes `severity` beside `type`; older files keep it in `meta`. Both agree or it is an error."""
    given = {str(v).lower() for v in (entry.get("severity"), (entry.get("meta") or {}).get("severity")) if v}
    if len(given) > 1:
        raise ConfigError(f"{where}: severity {sorted(given)} in both `severity` and `meta.severity` disagree")
    value = given.pop() if given else FailureSeverity.CRITICAL.value
    try:
        return FailureSeverity(value)
    except ValueError:
        raise ConfigError(f"{where}: severity {value!r} is not one of "
                          f"{', '.join(s.value for s in FailureSeverity)}") from None


def _named_columns(expectation: Expectation) -> list[str]:
    """The columns a rule reads as its domain. A table rule's column_list (expect_table_columns_*)
    names columns it expects, present or not: that is its check, not a typo to refuse."""
    kwargs = expectation.configuration.kwargs
    names = [kwargs[k] for k in COLUMN_ARGUMENTS if isinstance(kwargs.get(k), str)]
    if not expectation.expectation_type.startswith("expect_table_"):
        names += [c for c in kwargs.get("column_list") or [] if isinstance(c, str)]
    return names


def parse_entry(entry: Any, where: str, columns: set[str]) -> Expectation:
    """One entry of a suite file as GX's own Expectation object; ConfigError saying what is wrong."""
    if not isinstance(entry, dict) or not isinstance(entry.get("type"), str):
        raise ConfigError(f"{where}: an expectation is an object with a string \"type\", e.g. "
                          "{\"type\": \"expect_column_values_to_not_be_null\", \"kwargs\": {\"column\": \"name\"}}")
    if extra := sorted(set(entry) - ENTRY_FIELDS):
        raise ConfigError(f"{where}: unknown field(s) {', '.join(extra)} (GX's suite format has "
                          f"{', '.join(sorted(ENTRY_FIELDS))})")
    kwargs = entry.get("kwargs", {})
    if not isinstance(kwargs, dict):
        raise ConfigError(f"{where}: \"kwargs\" must be an object")
    meta = {k: v for k, v in (entry.get("meta") or {}).items() if k != "severity"}
    try:
        expectation: Expectation = ExpectationConfiguration(
            type=entry["type"], kwargs=kwargs, meta=meta or None, description=entry.get("description"),
            notes=entry.get("notes"), severity=_severity(entry, where)).to_domain_obj()
    except ConfigError:
        raise
    except ExpectationNotFoundError:
        raise ConfigError(f"{where}: {entry['type']} is not an expectation type GX knows") from None
    except (GreatExpectationsError, ValidationError, ValueError, TypeError) as exc:  # each names the field
        reason = str(exc).replace("\n", "; ")
        raise ConfigError(f"{where}: {entry['type']} is not a valid GX expectation: {reason}") from None
    if unknown := sorted(set(_named_columns(expectation)) - columns):
        raise ConfigError(f"{where}: {entry['type']} names column(s) {', '.join(unknown)} that the output does not "
                          f"have; it has {', '.join(sorted(columns))}")
    return expectation


def parse_suite(text: str, source: str, output: str, columns: set[str]) -> UserSuite:
    """A suite file's text as the expectations it adds to `output`."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{source}: not valid JSON ({exc})") from None
    if not isinstance(document, dict) or not isinstance(document.get("expectations"), list):
        raise ConfigError(f"{source}: a GX expectation suite is an object with an \"expectations\" list")
    if extra := sorted(set(document) - SUITE_FIELDS):
        raise ConfigError(f"{source}: unknown field(s) {', '.join(extra)} in an expectation suite")
    name = document.get("name")
    if name is not None and name not in (output, output.replace("/", ".")):
        raise ConfigError(f"{source}: the suite is named {name!r} but its file is {output}'s: "
                          f"name it {output!r} or leave the name out")
    return UserSuite(output, source, tuple(
        parse_entry(entry, f"{source}, expectation {i + 1}", columns)
        for i, entry in enumerate(document["expectations"])))


def read_user_suites(folder: str | None) -> dict[str, UserSuite]:
    """Every suite file under `folder` by output ("layer/name"), checked. A file for an output
    the gate does not validate is an error: it would otherwise never run."""
    if folder is None:
        return {}
    outputs = {ds.rel_path: ds for ds in (*STAGING, *MARTS)}
    lake: Lake = open_lake(folder)
    found: dict[str, UserSuite] = {}
    for layer in lake.list_dirs(""):
        for name in lake.list_files(layer):
            if name.startswith("."):
                continue
            source = lake.uri_of(f"{layer}/{name}")
            output = f"{layer}/{name.removesuffix('.json')}"
            if not name.endswith(".json") or output not in outputs:
                raise ConfigError(f"{source}: not the suite of an output the gate validates: name it "
                                  f"<layer>/<dataset>.json, one of {', '.join(sorted(outputs))}")
            text = lake.read_text(f"{layer}/{name}") or ""
            found[output] = parse_suite(text, source, output, gate_columns(outputs[output]))
    return found

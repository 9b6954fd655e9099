"""The gate's runs recorded as a GX file project under the lake, with Data Docs a browser can read."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from typing import Any

import great_expectations as gx
import great_expectations.expectations as gxe
import pytest

from jobs.validate.gx_artifacts import docs_index_rel, record_gate
from jobs.validate.run import Outcome
from tests.browser import data_docs_index_rows, rendered_dom, visible_text
from tests.conftest import BUCKET

DAY1, DAY2 = dt.date(2026, 11, 19), dt.date(2026, 11, 20)


def _gate(day: dt.date, *, broken: bool) -> list[tuple[gx.ExpectationSuite, list[Outcome]]]:
    """Two suites as the gate hands them over; on a broken day a user-added regex check fails with samples."""
    games = gx.ExpectationSuite("marts/dim_games", expectations=[
        gxe.ExpectTableRowCountToBeBetween(min_value=1),
        gxe.ExpectColumnValuesToNotBeNull(column="game_id"),
        gxe.ExpectColumnValuesToMatchRegex(column="slug", regex="^[a-z0-9-]+$"),
        gxe.ExpectColumnValuesToBeBetween(column="rating", min_value=0, max_value=100),
    ])
    games_outcomes = [
        Outcome("marts/dim_games", "expect_table_row_count_to_be_between", "rows", None, "critical", True,
                observed=4242),
        Outcome("marts/dim_games", "expect_column_values_to_not_be_null", "ids", "game_id", "critical", True,
                unexpected_count=0, unexpected_percent=0.0),
        Outcome("marts/dim_games", "expect_column_values_to_match_regex", "slugs", "slug", "critical", not broken,
                unexpected_count=3 if broken else 0, unexpected_percent=0.3 if broken else 0.0,
                samples=["Bad_Slug!", "Zelda OoT"] if broken else []),
        Outcome("marts/dim_games", "expect_column_values_to_be_between", "ratings", "rating", "warning", False,
                unexpected_count=1, unexpected_percent=0.1, samples=[{"game_id": 3, "rating": 140.0}]),
    ]
    recon = gx.ExpectationSuite("checks/reconciliation", expectations=[
        gxe.ExpectColumnValuesToBeNull(column=f"missing_{day:%Y%m%d}"),
    ])
    recon_outcomes = [Outcome("checks/reconciliation", "expect_column_values_to_be_null", "none lost", "missing",
                              "critical", True, unexpected_count=0, unexpected_percent=0.0)]
    return [(games, games_outcomes), (recon, recon_outcomes)]


def _at(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(3), tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory, spark) -> Path:
    """Two dates recorded (the first passing, the second failing); `spark` so GX's datasource reuses the session."""
    root = tmp_path_factory.mktemp("lake")
    for day, broken in ((DAY1, False), (DAY2, True)):
        uri = record_gate(str(root), day, f"run-{day}", _at(day), _gate(day, broken=broken))
        assert uri == str(root / docs_index_rel())
    return root


def _results(root: Path) -> dict[tuple[str, str], Any]:
    context = gx.get_context(mode="file", project_root_dir=str(root))
    store = context.validation_results_store
    keys: list[Any] = store.list_keys()
    return {(key.expectation_suite_identifier.name, key.batch_identifier): store.get(key)
            for key in keys}


def test_project_holds_checkpoint_suites_and_one_result_per_suite_and_date(lake: Path) -> None:
    assert (lake / "gx" / "great_expectations.yml").is_file()
    assert (lake / "gx" / "checkpoints" / "igdb_gate.json").is_file()
    context = gx.get_context(mode="file", project_root_dir=str(lake))
    checkpoint = context.checkpoints.get("igdb_gate")
    assert sorted(vd.name for vd in checkpoint.validation_definitions) == ["checks.reconciliation", "marts.dim_games"]
    assert type(checkpoint.actions[0]).__name__ == "UpdateDataDocsAction"
    recon: Any = context.suites.get("checks.reconciliation").expectations[0]
    assert recon.column == f"missing_{DAY2:%Y%m%d}"

    results = _results(lake)
    assert set(results) == {(suite, f"dt={day}") for suite in ("marts.dim_games", "checks.reconciliation")
                            for day in (DAY1, DAY2)}
    # A failed warning does not fail the suite; the failed critical regex does.
    assert results["marts.dim_games", f"dt={DAY1}"].success is True
    assert results["marts.dim_games", f"dt={DAY2}"].success is False
    assert results["checks.reconciliation", f"dt={DAY2}"].success is True
    failed = results["marts.dim_games", f"dt={DAY2}"]
    assert [r.success for r in failed.results] == [True, True, False, False]
    regex: Any = failed.results[2]
    assert regex.expectation_config.type == "expect_column_values_to_match_regex"
    assert regex.result["unexpected_count"] == 3
    assert regex.result["partial_unexpected_list"] == ["Bad_Slug!", "Zelda OoT"]
    assert failed.results[0].result["observed_value"] == 4242
    assert failed.statistics["unsuccessful_expectations"] == 2
    # Each date keeps its own expectation kwargs.
    assert results["checks.reconciliation", f"dt={DAY1}"].results[0].expectation_config.kwargs["column"] == (
        f"missing_{DAY1:%Y%m%d}")


def test_rerunning_a_date_replaces_nothing_and_adds_its_run(lake: Path, tmp_path: Path) -> None:
    copy = tmp_path / "lake"
    shutil.copytree(lake, copy)
    record_gate(str(copy), DAY2, f"run-{DAY2}", _at(DAY2), _gate(DAY2, broken=True))
    record_gate(str(copy), DAY2, f"run-{DAY2}-again", _at(DAY2) + dt.timedelta(hours=1), _gate(DAY2, broken=False))
    context = gx.get_context(mode="file", project_root_dir=str(copy))
    keys: list[Any] = context.validation_results_store.list_keys()
    assert len(keys) == 6
    assert {k.run_id.run_name for k in keys} == {f"run-{DAY1}", f"run-{DAY2}", f"run-{DAY2}-again"}
    assert len(context.checkpoints.get("igdb_gate").validation_definitions) == 2


def _dom(page: Path, tmp_path: Path) -> str:
    return rendered_dom(page, tmp_path / "profile")


def test_data_docs_show_both_dates_and_the_failure_with_its_samples(lake: Path, tmp_path: Path) -> None:
    site = lake / "gx" / "uncommitted" / "data_docs" / "local_site"
    index = _dom(site / "index.html", tmp_path)
    rows = data_docs_index_rows(index)
    assert [(run, suite, verdict) for run, suite, _, verdict in rows] == [
        (f"run-{DAY2}", "checks.reconciliation", "Success"),
        (f"run-{DAY2}", "marts.dim_games", "Failed"),  # newest first
        (f"run-{DAY1}", "checks.reconciliation", "Success"),
        (f"run-{DAY1}", "marts.dim_games", "Success"),
    ]
    link = rows[1][2]
    assert link.endswith(f"dt%3D{DAY2}.html")
    page = visible_text(_dom(site / link.replace("%3D", "="), tmp_path))
    assert "Status: Failed" in page
    slug = page[page.index("match this regular expression"):]
    assert "3 unexpected values found" in slug and "Bad_Slug!" in slug and "Zelda OoT" in slug
    assert "Must have greater than or equal to 1 rows. 4242" in page  # a passing one with its observed value
    assert "{'game_id': 3, 'rating': 140.0}" in page


def test_an_s3_lake_keeps_the_project_and_the_site_in_the_bucket(aws_endpoint: str, spark) -> None:
    import boto3

    uri = record_gate(f"s3://{BUCKET}/lake", DAY2, "run-s3", _at(DAY2), _gate(DAY2, broken=True))
    assert uri == f"s3://{BUCKET}/lake/{docs_index_rel()}"
    s3 = boto3.client("s3")
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="lake/gx/")["Contents"]}
    run_time = _at(DAY2).strftime("%Y%m%dT%H%M%S.%fZ")
    assert f"lake/gx/uncommitted/validations/marts/dim_games/run-s3/{run_time}/dt={DAY2}.json" in keys
    assert "lake/gx/checkpoints/igdb_gate.json" in keys and "lake/gx/great_expectations.yml" in keys
    index = s3.get_object(Bucket=BUCKET, Key=f"lake/{docs_index_rel()}")
    assert index["ContentType"].startswith("text/html") and b"run-s3" in index["Body"].read()
    # A rerun starts from the project in the bucket.
    record_gate(f"s3://{BUCKET}/lake", DAY2, "run-s3b", _at(DAY2), _gate(DAY2, broken=False))
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="lake/gx/uncommitted/validations/")["Contents"]}
    assert sum("/run-s3b/" in k for k in keys) == 2

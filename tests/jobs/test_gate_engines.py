"""Both engines of the gate agree, on real IGDB data and on outputs broken on purpose.

The fast engine (the default) decides with the one-pass evaluator and its footer proofs and asks
GX only about failures and what it cannot measure; the reference engine (`--engine gx`) asks
GX's own Spark engine about every expectation. For every expectation of every suite, both must
give the same verdict and the same unexpected count, and the fast engine must never have
overruled itself (no `disagreements`). The users' own suites (conf/expectations) ride along, with
rules of both kinds.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from core.lake import LocalLake
from ingestion.ingest import ingest
from ingestion.sandbox.server import start_sandbox
from jobs.transform.run import run_transform
from jobs.validate.run import ValidationFailed, run_validation, verdicts
from jobs.validate.user_expectations import read_user_suites
from tests.browser import data_docs_index_rows, rendered_dom, visible_text
from tests.conftest import FAST_LIMITS, settings_for
from tests.jobs.lake_edits import rewrite_partition
from tests.jobs.real_store import real_store
from tests.unit.test_user_expectations import EXAMPLES

pytestmark = pytest.mark.slow  # an end-to-end scenario: xdist starts it first (tests/conftest.py)

DAY = dt.date(2026, 11, 20)
NOW = dt.datetime(2026, 11, 21, 6, 0)

# what a data engineer would add to the catalogue, in GX's own suite format
USER_SUITE = {
    "name": "marts/dim_games",
    "expectations": [
        {"type": "expect_column_values_to_match_regex", "kwargs": {"column": "name", "regex": r"^\S"},
         "meta": {"why": "a name never starts with white space"}},
        {"type": "expect_column_values_to_be_between",
         "kwargs": {"column": "total_rating", "min_value": 80, "max_value": 100, "mostly": 0.5}},
        {"type": "expect_column_value_lengths_to_be_between", "kwargs": {"column": "name", "min_value": 1,
                                                                          "max_value": 200}},
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "aggregated_rating"},
         "severity": "warning"},
        {"type": "expect_column_values_to_be_between", "kwargs": {"column": "rating_count", "min_value": 0}},
    ],
}


@pytest.fixture(scope="module")
def samples(spark, tmp_path_factory) -> dict[str, Any]:
    """D of the real samples, transformed; the users' suite folder beside it."""
    root = tmp_path_factory.mktemp("engines")
    lake_dir = root / "lake"
    sandbox = start_sandbox(real_store(), limits=FAST_LIMITS)
    try:
        ingest(settings_for(sandbox, lake_dir), DAY, "v1")
    finally:
        sandbox.stop()
    run_transform(spark, LocalLake(lake_dir), DAY, top_n=20)
    folder = root / "expectations"
    (folder / "marts").mkdir(parents=True)
    (folder / "marts" / "dim_games.json").write_text(json.dumps(USER_SUITE), encoding="utf-8")
    # the README's freshness example: a suite parameter GX evaluates at run time
    shutil.copytree(EXAMPLES / "staging", folder / "staging")
    return {"lake": lake_dir, "user": read_user_suites(str(folder))}


def _rewrite(spark, lake_dir: Path, rel: str, change: Callable[[DataFrame], DataFrame]) -> None:
    """Replace an output's dt=D files with `change` applied to them."""
    rewrite_partition(spark, lake_dir / rel / f"dt={DAY}", change)


def _break_everything(spark, lake_dir: Path) -> None:
    """One broken output per kind of fault, each on its own output so every one shows."""
    first = F.col("game_id") == F.lit(spark.read.parquet(str(lake_dir / f"marts/dim_games/dt={DAY}"))
                                      .agg(F.min("game_id")).first()[0])
    # nulls where none may be, and a name the users' regex refuses
    _rewrite(spark, lake_dir, "marts/dim_games", lambda df: df.withColumn(
        "name", F.when(first, F.lit(None)).when(F.col("game_id") % 7 == 0, F.concat(F.lit(" "), "name"))
        .otherwise(F.col("name"))))
    # out-of-range values
    _rewrite(spark, lake_dir, "staging/games", lambda df: df.withColumn(
        "rating", F.when(first, F.lit(140.0)).otherwise(F.col("rating"))).withColumn(
        "rating_count", F.when(first, F.lit(-1)).otherwise(F.col("rating_count"))))
    # a duplicated key
    _rewrite(spark, lake_dir, "marts/game_genres", lambda df: df.unionByName(df.limit(2)))
    # orphans: a game the catalogue lacks
    _rewrite(spark, lake_dir, "marts/game_platforms", lambda df: df.unionByName(
        df.limit(3).withColumn("game_id", F.col("game_id") + F.lit(10**12))))
    # a wrong type
    _rewrite(spark, lake_dir, "marts/dim_genres", lambda df: df.withColumn("genre_id", F.col("genre_id").cast("int")))
    # an empty output
    _rewrite(spark, lake_dir, "marts/dim_game_modes", lambda df: df.limit(0))


BROKEN = ["marts/dim_games", "staging/games", "marts/game_genres", "marts/game_platforms", "marts/dim_genres",
          "marts/dim_game_modes"]


def _gate(spark, lake_dir: Path, user: dict[str, Any], engine: str, only: list[str] | None,
          run_id: str | None = None) -> dict[str, Any]:
    try:
        return run_validation(spark, LocalLake(lake_dir), DAY, run_id or engine, now=NOW, user=user, engine=engine,
                              only=only)
    except ValidationFailed as failed:
        return failed.summary


def _assert_engines_agree(spark, lake_dir: Path, user: dict[str, Any], caplog, only: list[str] | None = None,
                          run: str = "") -> dict[str, Any]:
    """Both engines' gates of the lake's D agree; the fast one's summary. Recorded in the lake's GX
    project as runs `<run>fast` and `<run>gx`."""
    with caplog.at_level(logging.ERROR):
        fast = _gate(spark, lake_dir, user, "fast", only, f"{run}fast")
        reference = _gate(spark, lake_dir, user, "gx", only, f"{run}gx")
    # both runs were recorded in the lake's GX project: Data Docs rendered every page of them
    assert not [r.getMessage()[:300] for r in caplog.records if r.levelno >= logging.ERROR]
    assert fast["data_docs"] and reference["data_docs"]
    assert fast["engine"] == "fast" and reference["engine"] == "gx"
    assert fast["disagreements"] == [] and reference["disagreements"] == []
    assert fast["user_suites"] == ["marts/dim_games", "staging/popularity_primitives"]
    ours, theirs = verdicts(fast), verdicts(reference)
    assert ours.keys() == theirs.keys()
    for suite in ours:
        assert ours[suite] == theirs[suite], suite
    assert fast["passed"] == reference["passed"] and fast["rows"] == reference["rows"]
    return fast


def test_both_engines_agree_on_every_expectation_of_real_data(spark, samples, caplog) -> None:
    """Every output of the date, every generated rule and the users' own."""
    summary = _assert_engines_agree(spark, samples["lake"], samples["user"], caplog)

    # real data: the catalogue's own rules pass, the users' warning on sparse critic ratings fires
    users = {o["description"]: o for o in summary["suites"]["marts/dim_games"]
             if o["expectation"] in {e["type"] for e in USER_SUITE["expectations"]}}
    assert len(summary["suites"]["marts/dim_games"]) > len(USER_SUITE["expectations"])
    release = next(o for o in summary["warned"] if o["column"] == "aggregated_rating")
    assert release["severity"] == "warning" and release["unexpected_count"] > 0
    assert users and not summary["failures"]
    # the samples' popularity was calculated long before 2026: the freshness warning fires
    stale = next(o for o in summary["warned"] if o["expectation"] == "expect_column_max_to_be_between")
    assert stale["suite"] == "staging/popularity_primitives" and stale["column"] == "calculated_at"


def test_both_engines_agree_on_outputs_broken_every_way_and_data_docs_show_a_users_rule_failing(
        spark, samples, tmp_path: Path, caplog) -> None:
    lake_dir = tmp_path / "lake"
    shutil.copytree(samples["lake"], lake_dir)
    _break_everything(spark, lake_dir)

    summary = _assert_engines_agree(spark, lake_dir, samples["user"], caplog, only=BROKEN, run="broken-")

    failed = {(f["suite"], f["expectation"], f.get("column")) for f in summary["failures"] + summary["warned"]}
    assert {("marts/dim_games", "expect_column_values_to_not_be_null", "name"),
            ("marts/dim_games", "expect_column_values_to_match_regex", "name"),
            ("staging/games", "expect_column_values_to_be_between", "rating"),
            ("staging/games", "expect_column_values_to_be_between", "rating_count"),
            ("marts/game_genres", "expect_compound_columns_to_be_unique", None),
            ("marts/game_platforms", "expect_column_values_to_be_null", "orphan_game_id"),
            ("marts/dim_genres", "expect_column_values_to_be_of_type", "genre_id"),
            ("marts/dim_game_modes", "expect_table_row_count_to_be_between", None)} <= failed
    assert not summary["passed"]

    # the Done-when of users' rules: added in JSON, it blocks the date (critical), and GX's Data Docs,
    # rendered in Chromium, show it failed with the offending value
    regex = next(f for f in summary["failures"] if f["expectation"] == "expect_column_values_to_match_regex")
    sample = regex["samples"][0]["name"]
    assert sample.startswith(" ") and regex["unexpected_count"] > 0
    site = Path(summary["data_docs"]).parent
    index = rendered_dom(site / "index.html", tmp_path / "profile")
    rows = {(run, suite): (link, verdict) for run, suite, link, verdict in data_docs_index_rows(index)}
    link, verdict = rows["broken-fast", "marts.dim_games"]
    assert verdict == "Failed"
    page = visible_text(rendered_dom(site / link.replace("%3D", "="), tmp_path / "profile"))
    shown = page[page.index("values must match this regular expression"):]
    assert "unexpected value" in shown and sample.strip() in shown

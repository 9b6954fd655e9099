"""The validation gate on a real lake: clean outputs pass; each rule fails on data built to break it.

One clean lake (sandbox -> ingest -> transform) per module; every test breaks a copy of it in one
way and validates only the outputs concerned (plus the count reconciliation, which always runs).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import shutil
from collections import Counter
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from core.lake import LocalLake
from ingestion.ingest import ingest
from ingestion.sandbox.generator import GeneratorSpec
from ingestion.sandbox.server import start_sandbox
from ingestion.sandbox.store import Store
from jobs.datasets import MARTS, STAGING, Layer, dataset
from jobs.transform.run import run_transform
from jobs.validate.run import ValidationFailed, known_ids, run_validation, with_orphans
from tests.browser import rendered_dom
from tests.conftest import DAY, FAST_LIMITS, settings_for
from tests.jobs.lake_edits import rewrite_partition


@pytest.fixture(scope="module")
def clean(spark, tmp_path_factory) -> dict[str, Any]:
    lake_dir = tmp_path_factory.mktemp("validation") / "lake"
    sandbox = start_sandbox(Store.generated(GeneratorSpec(games=300, seed=5)), limits=FAST_LIMITS)
    try:
        ingest(settings_for(sandbox, lake_dir), DAY, "v1")
    finally:
        sandbox.stop()
    run_transform(spark, LocalLake(lake_dir), DAY, top_n=20)
    summary = run_validation(spark, LocalLake(lake_dir), DAY, "clean", data_docs=False)
    return {"lake": lake_dir, "summary": summary}


def _copy(clean: dict[str, Any], tmp_path: Path) -> Path:
    lake_dir = tmp_path / "lake"
    shutil.copytree(clean["lake"], lake_dir)
    return lake_dir


def _rewrite(spark, lake_dir: Path, layer: Layer, name: str, change: Callable[[DataFrame], DataFrame]) -> None:
    """Replace an output's dt=D files with `change` applied to them."""
    rewrite_partition(spark, lake_dir / layer.value / name / f"dt={DAY}", change)


def _first_game(spark, lake_dir: Path) -> int:
    return int(spark.read.parquet(str(lake_dir / "marts" / "dim_games" / f"dt={DAY}")).agg(F.min("game_id")).first()[0])


def _fails(spark, lake_dir: Path, only: list[str], **kwargs: Any) -> dict[str, Any]:
    """The summary of a gate that must fail. Data Docs only when asked: they cost seconds a gate
    and have tests of their own (tests/jobs/test_gx_artifacts.py, test_gate_engines.py)."""
    with pytest.raises(ValidationFailed) as failed:
        run_validation(spark, LocalLake(lake_dir), DAY, "broken", only=only, **{"data_docs": False, **kwargs})
    return failed.value.summary


def _failed(summary: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(f["suite"], f["description"]): f for f in summary["failures"]}


def test_clean_outputs_pass_every_expectation(clean) -> None:
    summary = clean["summary"]
    assert summary["passed"] and summary["complete"]
    assert summary["critical_failures"] == 0 and summary["warnings"] == 0
    assert set(summary["rows"]) == {ds.rel_path for ds in (*STAGING, *MARTS)}
    assert all(summary["rows"][ds.rel_path] > 0 for ds in MARTS)
    assert summary["rows"]["staging/games"] == 300
    suites = summary["suites"]
    assert set(suites) == {ds.rel_path for ds in (*STAGING, *MARTS)} | {"checks/reconciliation", "checks/history"}
    assert all(outcome["success"] for outcomes in suites.values() for outcome in outcomes)
    assert summary["expectations"] == sum(len(o) for o in suites.values()) > 400
    report = clean["lake"] / "reports" / "validation" / f"dt={DAY}"
    assert json.loads((report / "summary.json").read_text())["passed"] is True
    assert "PASSED" in (report / "index.html").read_text()


class ListingCountingLake(LocalLake):
    """The real local lake, counting how often each folder is listed: on S3 each is a LIST request."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.listed: Counter[str] = Counter()

    def list_files(self, rel: str) -> list[str]:
        self.listed[rel] += 1
        return super().list_files(rel)


def test_the_gate_lists_each_partition_once(spark, clean, tmp_path: Path) -> None:
    """The gate needs each output's file names three times (is it there, its footer, the digest
    that groups copies): one listing serves all three, so a gate on S3 makes one LIST an output."""
    lake = ListingCountingLake(_copy(clean, tmp_path))
    summary = run_validation(spark, lake, DAY, "listing", data_docs=False)
    assert summary["passed"]
    outputs = {ds.partition_rel_path(DAY.isoformat()) for ds in (*STAGING, *MARTS)}
    assert outputs <= set(lake.listed)
    assert {rel: n for rel, n in lake.listed.items() if n > 1} == {}


def test_duplicate_ids_fail_the_primary_key(spark, clean, tmp_path: Path) -> None:
    lake_dir = _copy(clean, tmp_path)
    game = _first_game(spark, lake_dir)
    _rewrite(spark, lake_dir, Layer.STAGING, "games", lambda df: df.unionByName(df.where(F.col("game_id") == game)))

    summary = _fails(spark, lake_dir, ["staging/games"])

    failed = _failed(summary)
    unique = failed[("staging/games", "primary key game_id is unique")]
    assert unique["unexpected_count"] == 2 and {s["game_id"] for s in unique["samples"]} == {game}
    # one extra staged row also breaks the count reconciliation of games, and nothing else fails
    assert set(failed) == {("staging/games", "primary key game_id is unique"),
                           ("checks/reconciliation", "raw lines = staged + collapsed + quarantined "
                                                     "(no line lost or doubled)")}


def test_orphan_bridge_rows_fail_their_references(spark, clean, tmp_path: Path) -> None:
    lake_dir = _copy(clean, tmp_path)

    def add_orphans(df: DataFrame) -> DataFrame:
        first = df.orderBy("game_id", "platform_id").first()
        extra = df.sparkSession.createDataFrame(
            [(999_999_999, first["platform_id"]), (first["game_id"], 424_242)], df.schema)
        return df.unionByName(extra)

    _rewrite(spark, lake_dir, Layer.MARTS, "game_platforms", add_orphans)

    failed = _failed(_fails(spark, lake_dir, ["marts/game_platforms"]))

    game = failed[("marts/game_platforms", "every game_id exists in marts/dim_games.game_id")]
    platform = failed[("marts/game_platforms", "every platform_id exists in staging/ref_platforms.platform_id")]
    assert game["unexpected_count"] == 1 and game["samples"][0]["orphan_game_id"] == 999_999_999
    assert platform["unexpected_count"] == 1 and platform["samples"][0]["orphan_platform_id"] == 424_242
    assert len(failed) == 2


def test_orphan_columns_keep_the_rows_when_a_target_repeats_an_id(spark) -> None:
    """The orphan check must not multiply rows: a dimension that (wrongly) holds an id twice
    fails its own key rule, and the bridge pointing at it keeps its row count and orphans."""
    bridge_ds = dataset(Layer.MARTS, "game_platforms")
    bridge = spark.createDataFrame([(1, 10), (1, 20), (2, 10), (3, 30), (None, 10)],
                                   "game_id long, platform_id long")
    frames = {"marts/dim_games": spark.createDataFrame([(1,), (1,), (2,), (None,)], "game_id long"),
              "staging/ref_platforms": spark.createDataFrame([(10,), (10,), (20,)], "platform_id long")}
    with known_ids(spark, frames) as views:
        rows = with_orphans(bridge, bridge_ds, views).orderBy("game_id", "platform_id").collect()
        listed = {t.name for t in spark.catalog.listTables()}
    assert [tuple(r) for r in rows] == [(None, 10, None, None), (1, 10, None, None), (1, 20, None, None),
                                        (2, 10, None, None), (3, 30, 3, 30)]
    assert set(views.values()) <= listed and not set(views.values()) & {t.name for t in spark.catalog.listTables()}


def test_a_bridge_published_as_a_copy_is_still_checked_against_its_own_target(spark, clean, tmp_path: Path) -> None:
    """marts/game_platforms holds the same files as staging/game_platforms, so the rules they share
    are measured once; their references are not shared: one names staging/games, the other the
    catalogue. A game the catalogue lost must fail the mart's reference."""
    lake_dir = _copy(clean, tmp_path)
    bridge = lake_dir / "marts" / "game_platforms" / f"dt={DAY}"
    game = int(spark.read.parquet(str(bridge)).agg(F.min("game_id")).first()[0])
    _rewrite(spark, lake_dir, Layer.MARTS, "dim_games", lambda df: df.where(F.col("game_id") != game))

    failed = _failed(_fails(spark, lake_dir, ["staging/game_platforms", "marts/game_platforms", "marts/dim_games"]))

    orphans = failed[("marts/game_platforms", "every game_id exists in marts/dim_games.game_id")]
    assert orphans["unexpected_count"] >= 1 and {s["orphan_game_id"] for s in orphans["samples"]} == {game}
    assert set(failed) == {("marts/game_platforms", "every game_id exists in marts/dim_games.game_id")}


def _rate_140(spark, lake_dir: Path) -> int:
    game = _first_game(spark, lake_dir)
    _rewrite(spark, lake_dir, Layer.MARTS, "dim_games",
             lambda df: df.withColumn("rating", F.when(F.col("game_id") == game, 140.0).otherwise(F.col("rating"))))
    return game


def test_a_rating_of_140_fails_the_range(spark, clean, tmp_path: Path) -> None:
    lake_dir = _copy(clean, tmp_path)
    game = _rate_140(spark, lake_dir)

    failed = _failed(_fails(spark, lake_dir, ["marts/dim_games"]))

    assert set(failed) == {("marts/dim_games", "rating between 0 and 100")}
    assert failed[("marts/dim_games", "rating between 0 and 100")]["samples"] == [{"game_id": game, "rating": 140.0}]


def test_future_timestamps_fail(spark, clean, tmp_path: Path) -> None:
    lake_dir = _copy(clean, tmp_path)
    tomorrow = dt.datetime.now(dt.UTC).replace(tzinfo=None) + dt.timedelta(days=1)
    game = _first_game(spark, lake_dir)
    _rewrite(spark, lake_dir, Layer.STAGING, "games",
             lambda df: df.withColumn("updated_at", F.when(F.col("game_id") == game, F.lit(tomorrow))
                                      .otherwise(F.col("updated_at"))))

    failed = _failed(_fails(spark, lake_dir, ["staging/games"]))

    [(key, outcome)] = failed.items()
    assert key[1].startswith("updated_at not in the future")
    assert outcome["samples"][0]["game_id"] == game


def test_an_empty_ranked_mart_warns_and_an_empty_dimension_blocks_the_load(spark, clean, tmp_path: Path) -> None:
    lake_dir = _copy(clean, tmp_path)
    _rewrite(spark, lake_dir, Layer.MARTS, "mart_top_rated", lambda df: df.limit(0))
    _rewrite(spark, lake_dir, Layer.MARTS, "dim_genres", lambda df: df.limit(0))

    summary = _fails(spark, lake_dir, ["marts/mart_top_rated", "marts/dim_genres"])

    assert set(_failed(summary)) == {("marts/dim_genres", "at least 1 row(s): an empty marts table is never loaded")}
    warned = {(w["suite"], w["description"]) for w in summary["warned"]}
    assert ("marts/mart_top_rated", "at least 1 row(s): a ranked mart no game qualifies for is loaded as empty "
                                    "(load.on_empty)") in warned


def test_schema_drift_fails_the_column_and_type_checks(spark, clean, tmp_path: Path) -> None:
    lake_dir = _copy(clean, tmp_path)
    _rewrite(spark, lake_dir, Layer.MARTS, "mart_hidden_gems",
             lambda df: df.withColumn("total_rating_count", F.col("total_rating_count").cast("string"))
             .withColumn("surprise", F.lit(1)))

    failed = _failed(_fails(spark, lake_dir, ["marts/mart_hidden_gems"]))

    assert set(failed) == {
        ("marts/mart_hidden_gems", "exactly the declared columns, in order, plus the partition column dt "
                                   "(and the gate's orphan_* columns)"),
        ("marts/mart_hidden_gems", "total_rating_count is bigint in the files"),
    }
    assert failed[("marts/mart_hidden_gems", "total_rating_count is bigint in the files")]["observed"] == "StringType"


def test_a_snapshot_of_another_date_fails(spark, clean, tmp_path: Path) -> None:
    lake_dir = _copy(clean, tmp_path)
    game = _first_game(spark, lake_dir)
    _rewrite(spark, lake_dir, Layer.MARTS, "fct_game_popularity",
             lambda df: df.withColumn("snapshot_date", F.when(F.col("game_id") == game,
                                                              F.lit(DAY - dt.timedelta(days=1)))
                                      .otherwise(F.col("snapshot_date"))))

    failed = _failed(_fails(spark, lake_dir, ["marts/fct_game_popularity"]))

    assert set(failed) == {("marts/fct_game_popularity", f"snapshot_date is {DAY}")}


def test_a_lost_staged_row_breaks_the_reconciliation(spark, clean, tmp_path: Path) -> None:
    lake_dir = _copy(clean, tmp_path)
    _rewrite(spark, lake_dir, Layer.STAGING, "ref_genres", lambda df: df.where("genre_id <> 5"))

    failed = _failed(_fails(spark, lake_dir, ["staging/ref_genres"]))

    recon = failed[("checks/reconciliation", "raw lines = staged + collapsed + quarantined (no line lost or doubled)")]
    assert recon["samples"] == [{"entity": "genres", "unaccounted_lines": 1}]
    assert len(failed) == 1


def test_a_missing_output_fails(spark, clean, tmp_path: Path) -> None:
    lake_dir = _copy(clean, tmp_path)
    shutil.rmtree(lake_dir / "marts" / "dim_games" / f"dt={DAY}")

    failed = _failed(_fails(spark, lake_dir, ["marts/dim_games", "marts/game_themes"]))

    assert set(failed) == {("marts/dim_games", f"marts/dim_games/dt={DAY} exists"),
                           ("marts/game_themes", f"marts/game_themes/dt={DAY} exists")}
    assert "references cannot be checked" in failed[("marts/game_themes", f"marts/game_themes/dt={DAY} exists")][
        "error"]


def test_too_many_quarantined_lines_fail_and_the_threshold_is_a_setting(spark, clean, tmp_path: Path) -> None:
    lake_dir = _copy(clean, tmp_path)
    folder = lake_dir / "raw" / "genres" / f"dt={DAY}"
    manifest = json.loads((folder / "_manifest.json").read_text())
    part = folder / manifest["files"][0]["name"]
    data = part.read_bytes() + b'{"id": 9001, "name": "unterminated\n[1, 2]\n{"name": "no id"}\n'
    part.write_bytes(data)
    manifest["files"][0].update(records=manifest["files"][0]["records"] + 3, bytes=len(data),
                                sha256=hashlib.sha256(data).hexdigest())
    manifest["records"] += 3
    (folder / "_manifest.json").write_text(json.dumps(manifest))
    report = run_transform(spark, LocalLake(lake_dir), DAY, top_n=20)
    assert report["entities"]["genres"]["quarantined"] == 3

    failed = _failed(_fails(spark, lake_dir, ["staging/ref_genres"]))

    share = failed[("checks/reconciliation", "at most 1.00% of raw lines quarantined "
                                             "(setting validation.max_quarantine_share)")]
    assert [s["entity"] for s in share["samples"]] == ["genres"]
    assert len(failed) == 1, "the lines are accounted for: only the share fails"
    passed = run_validation(spark, LocalLake(lake_dir), DAY, "lenient", max_quarantine_share=0.2,
                            only=["staging/ref_genres"], data_docs=False)
    assert passed["passed"] and not passed["complete"]


def test_warnings_are_reported_and_do_not_block(spark, clean, tmp_path: Path) -> None:
    lake_dir = _copy(clean, tmp_path)
    game = _first_game(spark, lake_dir)
    _rewrite(spark, lake_dir, Layer.MARTS, "dim_games",
             lambda df: df.withColumn("name", F.when(F.col("game_id") == game, F.lit(None)).otherwise(F.col("name"))))

    summary = run_validation(spark, LocalLake(lake_dir), DAY, "warned", only=["marts/dim_games"], data_docs=False)

    assert summary["passed"] and summary["critical_failures"] == 0
    assert [(w["description"], w["samples"]) for w in summary["warned"]] == [
        ("name is present", [{"game_id": game, "name": None}])]
    html = (lake_dir / "reports" / "validation" / f"dt={DAY}" / "index.html").read_text()
    assert "name is present" in html


def test_schema_drift_found_by_ingestion_is_a_warning_in_the_report(spark, clean, tmp_path: Path) -> None:
    lake_dir = _copy(clean, tmp_path)
    drift = lake_dir / "reports" / "drift" / f"dt={DAY}" / "summary.json"
    drift.parent.mkdir(parents=True, exist_ok=True)
    drift.write_text(json.dumps({"dt": str(DAY), "entities": {
        "games": {"new": ["pulse_score"], "gone": ["storyline"], "compared_with": "2026-11-13", "sampled": 500},
        "genres": {"new": [], "gone": [], "compared_with": "2026-11-19", "sampled": 23}}}))

    summary = run_validation(spark, LocalLake(lake_dir), DAY, "drift", only=["staging/ref_genres"],
                             data_docs=False)

    assert summary["passed"]
    assert [(w["suite"], w["description"]) for w in summary["warned"]] == [
        ("checks/drift", "games: new field(s) not ingested: pulse_score; declared field(s) no longer returned since "
                         "dt=2026-11-13: storyline")]
    assert "pulse_score" in (lake_dir / "reports" / "validation" / f"dt={DAY}" / "index.html").read_text()


def test_unknown_outputs_are_a_usage_error(spark, clean) -> None:
    from core.errors import ConfigError

    with pytest.raises(ConfigError, match="marts/nope"):
        run_validation(spark, LocalLake(clean["lake"]), DAY, "x", only=["marts/nope"])


def test_a_date_without_a_transform_report_says_what_to_run(spark, clean, tmp_path: Path) -> None:
    from jobs.validate.run import MissingInput

    with pytest.raises(MissingInput, match="igdb-pipeline transform --date 2026-11-19"):
        run_validation(spark, LocalLake(clean["lake"]), DAY - dt.timedelta(days=1), "x")


def test_the_failure_message_names_expectations_samples_and_report(spark, clean, tmp_path: Path) -> None:
    lake_dir = _copy(clean, tmp_path)
    _rate_140(spark, lake_dir)
    with pytest.raises(ValidationFailed) as failed:
        run_validation(spark, LocalLake(lake_dir), DAY, "msg", only=["marts/dim_games"], data_docs=False)
    message = str(failed.value)
    assert "1 critical expectation(s); nothing was loaded" in message
    assert "marts/dim_games: rating between 0 and 100 (1 unexpected" in message and "140.0" in message
    assert str(lake_dir / "reports" / "validation" / f"dt={DAY}" / "index.html") in message
    assert failed.value.exit_code == 3




class _Table(HTMLParser):
    """The text of each row of the table with a given id, as a browser's DOM holds it."""

    def __init__(self, table_id: str) -> None:
        super().__init__()
        self.table_id, self.depth, self.rows = table_id, 0, []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table" and ("id", self.table_id) in attrs:
            self.depth = 1
        elif tag == "table" and self.depth:
            self.depth += 1
        elif tag == "tr" and self.depth:
            self.rows.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "table" and self.depth:
            self.depth -= 1

    def handle_data(self, data: str) -> None:
        if self.depth and self.rows:
            self.rows[-1] += data + " "


def test_the_html_report_shows_the_failed_expectations_in_chromium(spark, clean, tmp_path: Path) -> None:
    lake_dir = _copy(clean, tmp_path)
    game = _rate_140(spark, lake_dir)
    _fails(spark, lake_dir, ["marts/dim_games"], data_docs=True)  # the report links to them
    page = lake_dir / "reports" / "validation" / f"dt={DAY}" / "index.html"

    dom = rendered_dom(page, tmp_path / "profile")

    failures = _Table("critical-failures")
    failures.feed(dom)
    header, *rows = failures.rows
    assert "expectation" in header and "sample values" in header
    assert len(rows) == 1
    assert "marts/dim_games" in rows[0] and "rating between 0 and 100" in rows[0]
    assert f'"game_id": {game}' in rows[0] and "140.0" in rows[0]
    assert "FAILED: 1 critical expectation(s) failed, the load is blocked" in dom
    docs = re.search(r'id="data-docs">.*?<a href="([^"]+)"', dom, flags=re.S)
    linked = (page.parent / docs.group(1)).resolve() if docs else None
    assert linked == lake_dir.resolve() / "gx/uncommitted/data_docs/local_site/index.html" and linked.is_file()


def test_the_cli_exits_3_on_a_failed_gate_and_0_on_a_clean_one(spark, clean, tmp_path: Path, pg_url, pg_schema,
                                                                 monkeypatch, capsys) -> None:
    from pipeline.ledger import read_ledger
    from tests.conftest import cli_in_process

    lake_dir = _copy(clean, tmp_path)
    _rate_140(spark, lake_dir)
    args = ["validate", "--date", DAY.isoformat(), "--lake", str(lake_dir), "--set", "spark.shuffle_partitions=2",
            "--only"]

    # both gates through the command's entry point in this process, on the session's Spark (a
    # second JVM and GX import would triple the test's time): its return value is the process's
    # exit code (real processes exiting 3 and 2: tests/integration/test_cli.py)
    with cli_in_process(monkeypatch, tmp_path, {"DATABASE_URL": pg_url, "DATABASE_SCHEMA": pg_schema}) as cli:
        failed = cli([*args, "marts/dim_games,marts/mart_top_rated"])
        said = capsys.readouterr().err
        assert failed == 3, said[-2000:]
        assert "marts/dim_games: rating between 0 and 100 (1 unexpected" in said
        assert "nothing was loaded" in said and "index.html" in said
        # the run ledger says which expectation failed, with its sample values
        [entry] = read_ledger(pg_url, pg_schema, DAY)
        assert (entry["step"], entry["status"]) == ("validate", "failed")
        assert "rating between 0 and 100" in entry["error"]
        [failure] = entry["details"]["failures"]
        assert failure["description"] == "rating between 0 and 100" and failure["samples"][0]["rating"] == 140.0

        code = cli([*args, "marts/mart_top_rated"])
    out = capsys.readouterr().out
    assert code == 0
    assert f"validated dt={DAY} (only marts/mart_top_rated): passed" in out
    [entry] = read_ledger(pg_url, pg_schema, DAY)
    assert entry["status"] == "done" and entry["error"] is None and entry["details"]["complete"] is False

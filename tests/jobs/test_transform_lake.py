"""The transform step on a real lake: sandbox -> ingest -> transform, two dates and a rerun."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from chispa import assert_df_equality
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from core.lake import LocalLake
from ingestion.ingest import ingest
from ingestion.sandbox.generator import GeneratorSpec
from ingestion.sandbox.server import start_sandbox
from ingestion.sandbox.store import Store
from jobs.datasets import (
    BRIDGES,
    DATASETS,
    DELETED_AT,
    POPULARITY_COLUMNS,
    REFERENCE_COLUMNS,
    Layer,
    dataset,
    staging_table,
)
from jobs.fingerprint import with_fingerprint
from jobs.io import conform, read_partition
from jobs.transform.deletions import Evidence
from jobs.transform.marts import GAME_COLUMN_NAMES, merge_catalogue, resolve_names
from jobs.transform.run import NAMES_FILE, kept_catalogue, run_transform, write_catalogue
from jobs.validate.run import run_validation
from reliability.checks import parquet_rows, raw_lines
from reliability.truth import stageable_game
from tests.conftest import FAST_LIMITS, settings_for

D1 = dt.date(2026, 11, 19)
D2 = dt.date(2026, 11, 20)
CATALOGUE = dataset(Layer.MARTS, "dim_games")
INCREMENTAL = Evidence(False, "incremental")


def _files_of(lake: Path, day: dt.date) -> dict[str, str]:
    """sha256 of every file of every dataset's dt=day partition."""
    out = {}
    for ds in DATASETS.values():
        folder = lake / ds.rel_path / f"dt={day}"
        for path in sorted(folder.glob("*")) if folder.is_dir() else []:
            out[str(path.relative_to(lake))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def _rows(spark, lake: Path, layer: Layer, name: str, day: dt.date) -> list[Any]:
    return spark.read.parquet(str(lake / layer.value / name / f"dt={day}")).collect()


@pytest.fixture(scope="module")
def two_days(spark, tmp_path_factory) -> dict[str, Any]:
    """D1 full, then 40 games changed, D2 incremental, then D2 transformed again."""
    root = tmp_path_factory.mktemp("two-days")
    lake_dir = root / "lake"
    sandbox = start_sandbox(Store.generated(GeneratorSpec(games=500, seed=3)), limits=FAST_LIMITS)
    try:
        settings = settings_for(sandbox, lake_dir)
        lake = LocalLake(lake_dir)
        ingest(settings, D1, "d1")
        first = run_transform(spark, lake, D1)
        # D2 builds on D1's catalogue: it must have passed validation
        run_validation(spark, lake, D1, "v-d1", data_docs=False)
        changed = sandbox.state.store.touch("games", 0, sandbox.state.dice,
                                            ids=sandbox.state.store.ids("games")[::12])
        ingest(settings, D2, "d2")
        second = run_transform(spark, lake, D2)
        d1_files = _files_of(lake_dir, D1)
        d2_before = {name: sorted(map(tuple, _rows(spark, lake_dir, Layer.MARTS, name, D2)))
                     for name in ("dim_games", "game_genres", "mart_top_rated")}
        rerun = run_transform(spark, lake, D2)
        return {"lake": lake_dir, "first": first, "second": second, "rerun": rerun, "changed": changed,
                "d1_files": d1_files, "d2_before": d2_before, "games": sandbox.state.store.records("games")}
    finally:
        sandbox.stop()


KEYS = {"popularity_primitives": ("game_id", "popularity_type")}
REQUIRED_FIELDS = {"games": ("id", "updated_at"), "popularity_primitives": ("id", "game_id", "popularity_type")}


def counted_from_raw(lake: Path, entity: str, day: dt.date) -> dict[str, int]:
    """An entity's counts for a date computed from its raw files in plain Python, then the rows the
    lake holds read with DuckDB: none of the transform's code. A line is quarantined when it is not
    a JSON object, lacks a required whole number (or a positive id), or holds a value of the wrong
    type; staged rows are its distinct keys, and the other valid lines are collapsed into them."""
    lines = raw_lines(lake, entity, day) or []
    keys, quarantined = [], 0
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if (not isinstance(record, dict) or any(not isinstance(record.get(f), int) for f in
                                                REQUIRED_FIELDS.get(entity, ("id",))) or record["id"] <= 0
                or (entity == "games" and not stageable_game(record))):
            quarantined += 1
            continue
        keys.append(tuple(record[k] for k in KEYS.get(entity, ("id",))))
    counts = {"raw_lines": len(lines), "quarantined": quarantined, "valid": len(keys), "staged": len(set(keys)),
              "collapsed": len(keys) - len(set(keys))}
    staged = parquet_rows(lake / DATASETS[staging_table(entity)].partition_rel_path(str(day)))
    quarantine = parquet_rows(lake / "quarantine" / entity / f"dt={day}")
    assert (len(staged or []), len(quarantine or [])) == (counts["staged"], quarantined), f"{entity}: the lake"
    return counts


def test_counts_reconcile_with_counts_taken_from_the_raw_files(two_days) -> None:
    for day, report in ((D1, two_days["first"]), (D2, two_days["second"])):
        assert report["entities"] == {entity: counted_from_raw(two_days["lake"], entity, day)
                                      for entity in report["entities"]}
    assert two_days["first"]["full_refresh"] and not two_days["second"]["full_refresh"]
    assert two_days["first"]["entities"]["games"]["staged"] == 500
    # D2 is incremental: only the changed games (and those within the safety margin) are staged
    assert len(two_days["changed"]) <= two_days["second"]["entities"]["games"]["staged"] < 500


def test_catalogue_as_of_d2_holds_every_game_in_its_latest_version(spark, two_days) -> None:
    lake = two_days["lake"]
    from pyspark.sql import functions as F

    frame = spark.read.parquet(str(lake / "marts" / "dim_games" / f"dt={D2}"))
    dim = {r["game_id"]: r for r in frame.withColumn("epoch", F.unix_timestamp("updated_at")).collect()}
    current = {g["id"]: g for g in two_days["games"]}
    assert set(dim) == set(current)
    for game_id in two_days["changed"]:
        assert dim[game_id]["epoch"] == current[game_id]["updated_at"]
    sample = next(g for g in current.values() if g.get("platforms"))
    assert dim[sample["id"]]["platform_ids"] == sorted(set(sample["platforms"]))
    assert len(dim[sample["id"]]["platform_names"]) == len(set(sample["platforms"]))


def test_bridges_of_d2_cover_exactly_the_games_staged_on_d2(spark, two_days) -> None:
    lake = two_days["lake"]
    staged_ids = {r["game_id"] for r in _rows(spark, lake, Layer.STAGING, "games", D2)}
    pairs = [(r["game_id"], r["genre_id"]) for r in _rows(spark, lake, Layer.MARTS, "game_genres", D2)]
    assert len(pairs) == len(set(pairs)) and all(None not in p for p in pairs)
    assert {g for g, _ in pairs} <= staged_ids
    current = {g["id"]: g for g in two_days["games"]}
    expected = {(g, x) for g in staged_ids for x in current[g].get("genres", [])}
    assert set(pairs) == expected


def test_rerun_of_d2_leaves_d1_byte_for_byte_and_reproduces_d2(spark, two_days) -> None:
    assert _files_of(two_days["lake"], D1) == two_days["d1_files"]
    assert len(two_days["d1_files"]) > 40
    for name, rows in two_days["d2_before"].items():
        assert sorted(map(tuple, _rows(spark, two_days["lake"], Layer.MARTS, name, D2))) == rows, name
    assert two_days["rerun"]["rows"] == two_days["second"]["rows"]


def test_file_counts_stay_sensible(two_days) -> None:
    for ds in DATASETS.values():
        folder = two_days["lake"] / ds.rel_path / f"dt={D2}"
        if folder.is_dir():
            assert len(list(folder.glob("*.parquet"))) <= ds.files, ds.rel_path


def test_marketing_marts_have_rows_and_unique_ranks(spark, two_days) -> None:
    for name in ("mart_top_rated", "mart_top_hyped", "mart_trending_now", "mart_hidden_gems"):
        rows = _rows(spark, two_days["lake"], Layer.MARTS, name, D2)
        assert rows, name
        assert sorted(r["rank"] for r in rows) == list(range(1, len(rows) + 1)), name
        assert len({r["game_id"] for r in rows}) == len(rows), name
        assert {r["snapshot_date"] for r in rows} == {D2}


def _names(spark, lake: LocalLake, day: dt.date) -> dict[str, dict[int, str]]:
    """The reference names the catalogue of `day` resolves, as the transform collects them."""
    out = {}
    for _, entity, _, _ in BRIDGES:
        id_column = REFERENCE_COLUMNS[entity][0][0]
        rows = read_partition(spark, dataset(Layer.STAGING, f"ref_{entity}"), lake, day).collect()
        out[entity] = {r[id_column]: r["name"] for r in rows if r["name"] is not None}
    return out


def _catalogue(spark, lake_dir: Path, day: dt.date) -> DataFrame:
    """dim_games of `day` as its files hold it, fingerprints included."""
    return spark.read.schema(CATALOGUE.file_schema).parquet(str(lake_dir / CATALOGUE.partition_rel_path(str(day))))


def _catalogue_from_scratch(spark, lake: LocalLake, names: dict[str, dict[int, str]]) -> DataFrame:
    """dim_games of D2 with every row given its names and fingerprint again: what reuse must equal."""
    previous = read_partition(spark, CATALOGUE, lake, D1)
    changes = read_partition(spark, dataset(Layer.STAGING, "games"), lake, D2).withColumn(
        DELETED_AT, F.lit(None).cast("date"))
    merged = merge_catalogue(previous, changes, False, [*GAME_COLUMN_NAMES, DELETED_AT])
    return with_fingerprint(conform(resolve_names(merged, names), CATALOGUE))


def _stamp_genre_names(spark, lake_dir: Path, game: int, tmp_path: Path) -> None:
    """Rewrite D1's catalogue with a sentinel genre name for one game, names file kept: only a
    catalogue that keeps its stored names carries the sentinel on."""
    folder = lake_dir / CATALOGUE.partition_rel_path(str(D1))
    names_file = (folder / NAMES_FILE).read_text()
    stamped = _catalogue(spark, lake_dir, D1).withColumn(
        "genre_names", F.when(F.col("game_id") == game, F.array(F.lit("sentinel"))).otherwise(F.col("genre_names")))
    stamped.write.parquet(str(tmp_path / "stamped"))
    shutil.rmtree(folder)
    shutil.copytree(tmp_path / "stamped", folder)
    (folder / NAMES_FILE).write_text(names_file)


def test_unchanged_catalogue_rows_keep_their_names_and_fingerprints_while_the_names_stay(
        spark, two_days, tmp_path: Path) -> None:
    lake_dir = tmp_path / "lake"
    shutil.copytree(two_days["lake"], lake_dir)
    lake = LocalLake(lake_dir)
    names = _names(spark, lake, D2)
    assert names == _names(spark, lake, D1)  # a quiet day: the sandbox renamed nothing
    assert kept_catalogue(spark, lake, D1, names) is not None
    # what the transform wrote for D2 (keeping D1's rows' names) equals naming every row again
    assert_df_equality(_catalogue(spark, lake_dir, D2), _catalogue_from_scratch(spark, lake, names),
                       ignore_row_order=True, ignore_nullable=True)
    changed = {r["game_id"] for r in read_partition(spark, dataset(Layer.STAGING, "games"), lake, D2).collect()}
    game = next(r["game_id"] for r in _catalogue(spark, lake_dir, D1).orderBy("game_id").collect()
                if r["game_id"] not in changed and r["genre_ids"])
    _stamp_genre_names(spark, lake_dir, game, tmp_path)
    write_catalogue(spark, lake, D2, D1, False, names, INCREMENTAL)
    [row] = _catalogue(spark, lake_dir, D2).where(F.col("game_id") == game).collect()
    assert row["genre_names"] == ["sentinel"]  # kept as stored, not looked up again


def test_a_renamed_reference_gives_every_catalogue_row_its_names_again(spark, two_days, tmp_path: Path) -> None:
    lake_dir = tmp_path / "lake"
    shutil.copytree(two_days["lake"], lake_dir)
    lake = LocalLake(lake_dir)
    names = _names(spark, lake, D2)
    genre = min(names["genres"])
    renamed = {**names, "genres": {**names["genres"], genre: "Renamed Überspiel"}}
    changed = {r["game_id"] for r in read_partition(spark, dataset(Layer.STAGING, "games"), lake, D2).collect()}
    game = next(r["game_id"] for r in _catalogue(spark, lake_dir, D1).orderBy("game_id").collect()
                if r["game_id"] not in changed and genre in r["genre_ids"])
    _stamp_genre_names(spark, lake_dir, game, tmp_path)
    assert kept_catalogue(spark, lake, D1, renamed) is None
    expected = _catalogue_from_scratch(spark, lake, renamed).collect()  # before D2's files are replaced
    write_catalogue(spark, lake, D2, D1, False, renamed, INCREMENTAL)
    written = _catalogue(spark, lake_dir, D2)
    assert_df_equality(written, spark.createDataFrame(expected, CATALOGUE.file_schema), ignore_row_order=True,
                       ignore_nullable=True)
    [row] = written.where(F.col("game_id") == game).collect()
    assert "Renamed Überspiel" in row["genre_names"] and "sentinel" not in row["genre_names"]
    # the names file moves with the files: D2's now records the renamed genre
    assert kept_catalogue(spark, lake, D2, renamed) is not None and kept_catalogue(spark, lake, D2, names) is None


def test_duplicates_across_files_and_bad_lines_are_handled(spark, two_days, tmp_path: Path) -> None:
    """Hand-made raw games for D3: the same id in two files, and one bad line of each kind."""
    import shutil

    lake_dir = tmp_path / "lake"
    shutil.copytree(two_days["lake"], lake_dir)
    d3 = D2 + dt.timedelta(days=1)
    for entity_dir in (lake_dir / "raw").iterdir():  # every other entity: D2's raw, as D3's
        shutil.copytree(entity_dir / f"dt={D2}", entity_dir / f"dt={d3}")
    base = {"name": "x", "updated_at": 1_800_000_000}
    part0 = [json.dumps({"id": 1, **base, "name": "old"}), json.dumps({"id": 2, **base}), "{broken",
             json.dumps({"name": "no id", "updated_at": 1})]
    part1 = [json.dumps({"id": 1, **base, "name": "new", "updated_at": 1_800_000_001}),
             json.dumps({"id": 3, **base, "rating": "great"}), "", json.dumps({"id": 4, "name": "no stamp"})]
    folder = lake_dir / "raw" / "games" / f"dt={d3}"
    shutil.rmtree(folder)
    folder.mkdir()
    files = []
    for name, lines in (("part-00000.jsonl", part0), ("part-00001.jsonl", part1)):
        data = ("\n".join(lines) + "\n").encode()
        (folder / name).write_bytes(data)
        files.append({"name": name, "records": len(lines), "bytes": len(data),
                      "sha256": hashlib.sha256(data).hexdigest()})
    (folder / "_manifest.json").write_text(json.dumps({"entity": "games", "dt": str(d3), "mode": "incremental",
                                                       "records": 8, "files": files}))

    # D3 builds on D2, which this module transforms again without validating it (its subject is staging)
    report = run_transform(spark, LocalLake(lake_dir), d3, require_validated_base=False)

    games = report["entities"]["games"]
    assert games == {"raw_lines": 8, "quarantined": 5, "valid": 3, "staged": 2, "collapsed": 1}
    assert games == counted_from_raw(lake_dir, "games", d3)
    staged = {r["game_id"]: r["name"] for r in _rows(spark, lake_dir, Layer.STAGING, "games", d3)}
    assert staged == {1: "new", 2: "x"}
    quarantine = {(r["source_file"].rsplit("/", 1)[-1], r["line_number"]): r["reason"]
                  for r in _rows(spark, lake_dir, Layer.QUARANTINE, "games", d3)}
    assert quarantine == {
        ("part-00000.jsonl", 3): "malformed JSON",
        ("part-00000.jsonl", 4): "missing id",
        ("part-00001.jsonl", 2): "wrong type: rating",
        ("part-00001.jsonl", 3): "empty line",
        ("part-00001.jsonl", 4): "missing updated_at",
    }
    # across dates: D3's catalogue is D2's with game 1 and 2 replaced by their newer versions
    dim = {r["game_id"]: r["name"] for r in _rows(spark, lake_dir, Layer.MARTS, "dim_games", d3)}
    before = {r["game_id"] for r in _rows(spark, lake_dir, Layer.MARTS, "dim_games", D2)}
    assert set(dim) == before | {1, 2} and dim[1] == "new" and dim[2] == "x"
    # a large partition is written in one pass first, then again ranked when a key repeats: the same result
    from jobs.transform.run import stage_entity

    manifest = json.loads((folder / "_manifest.json").read_text())
    counts = stage_entity(spark, LocalLake(lake_dir), "games", d3, manifest, rank_at_once_below=0)
    assert (counts.raw_lines, counts.quarantined, counts.valid, counts.staged) == (8, 5, 3, 2)
    assert {r["game_id"]: r["name"] for r in _rows(spark, lake_dir, Layer.STAGING, "games", d3)} == staged
    # a later clean rerun of D3 must not keep D3's old quarantine rows
    (folder / "part-00000.jsonl").write_bytes((json.dumps({"id": 1, **base}) + "\n").encode())
    (folder / "part-00001.jsonl").unlink()
    (folder / "_manifest.json").write_text(json.dumps({"entity": "games", "dt": str(d3), "mode": "incremental",
                                                       "records": 1, "files": [{"name": "part-00000.jsonl",
                                                                                "records": 1, "bytes": 10}]}))
    run_transform(spark, LocalLake(lake_dir), d3, require_validated_base=False)
    assert not (lake_dir / "quarantine" / "games" / f"dt={d3}").exists(), "no rejected line: no folder"
    from jobs.io import read_partition

    assert read_partition(spark, dataset(Layer.QUARANTINE, "games"), LocalLake(lake_dir), d3).count() == 0
    assert dataset(Layer.QUARANTINE, "games").column_names == [
        "entity", "source_file", "line_number", "raw_line", "reason"]
    # a raw partition holding fewer lines than its manifest says is damaged: the step stops, and
    # no staging table written from it is left behind
    manifest = json.loads((folder / "_manifest.json").read_text())
    (folder / "_manifest.json").write_text(json.dumps({**manifest, "records": 2}))
    from jobs.io import TransformError

    with pytest.raises(TransformError, match=rf"raw/games/dt={d3} holds 1 lines but its manifest says 2: "
                                             rf"the partition is damaged, ingest {d3} again"):
        run_transform(spark, LocalLake(lake_dir), d3, require_validated_base=False)
    assert not (lake_dir / "staging" / "games" / f"dt={d3}").exists()


def test_a_popularity_key_repeated_across_files_keeps_its_latest_value_in_staging_and_fact(
        spark, two_days, tmp_path: Path) -> None:
    """The large-partition path (no ranking as written, keys counted by the fact's aggregation):
    D3 is D2 plus a third popularity file that repeats three (game, type) keys, calculated later."""
    import shutil

    lake_dir = tmp_path / "lake"
    shutil.copytree(two_days["lake"], lake_dir)
    d3 = D2 + dt.timedelta(days=1)
    for entity_dir in (lake_dir / "raw").iterdir():
        shutil.copytree(entity_dir / f"dt={D2}", entity_dir / f"dt={d3}")
    folder = lake_dir / "raw" / "popularity_primitives" / f"dt={d3}"
    manifest = json.loads((folder / "_manifest.json").read_text())
    first = [json.loads(line) for line in (folder / manifest["files"][0]["name"]).read_text().splitlines()[:3]]
    later = [{**r, "id": 10_000_000 + i, "value": 1000.0 + i, "calculated_at": r["calculated_at"] + 60}
             for i, r in enumerate(first)]
    data = "".join(json.dumps(r) + "\n" for r in later).encode()
    (folder / "part-99999.jsonl").write_bytes(data)
    manifest["files"].append({"name": "part-99999.jsonl", "records": 3, "bytes": len(data),
                              "sha256": hashlib.sha256(data).hexdigest()})
    manifest["records"] += 3
    (folder / "_manifest.json").write_text(json.dumps(manifest))

    report = run_transform(spark, LocalLake(lake_dir), d3, rank_at_once_below=0, require_validated_base=False)

    assert report["entities"]["popularity_primitives"] == {
        "raw_lines": manifest["records"], "quarantined": 0, "valid": manifest["records"],
        "staged": manifest["records"] - 3, "collapsed": 3}
    staged = {(r["game_id"], r["popularity_type"]): r["value"]
              for r in _rows(spark, lake_dir, Layer.STAGING, "popularity_primitives", d3)}
    before = {(r["game_id"], r["popularity_type"]): r["value"]
              for r in _rows(spark, lake_dir, Layer.STAGING, "popularity_primitives", D2)}
    assert staged == before | {(r["game_id"], r["popularity_type"]): r["value"] for r in later}
    facts = {r["game_id"]: r for r in _rows(spark, lake_dir, Layer.MARTS, "fct_game_popularity", d3)}
    for r in later:
        assert facts[r["game_id"]][POPULARITY_COLUMNS[r["popularity_type"]]] == r["value"]
    assert report["rows"]["fct_game_popularity"] == len({game for game, _ in staged})


def test_a_missing_or_damaged_raw_partition_stops_with_a_clear_error(spark, two_days, tmp_path: Path) -> None:
    from jobs.io import TransformError

    with pytest.raises(TransformError, match=r"raw/platforms/dt=2030-01-01 has no _manifest.json: run "
                                             r"`igdb-pipeline ingest --date 2030-01-01` first"):
        run_transform(spark, LocalLake(two_days["lake"]), dt.date(2030, 1, 1))


@pytest.mark.slow
def test_a_transform_killed_at_a_random_point_leaves_no_partial_partition(spark, two_days, pg_url, pg_schema,
                                                                           tmp_path: Path) -> None:
    """The pytest subset of `make reliability`'s SIGKILL trials (which run 20, over every step):
    the transform replacing D2 is SIGKILLed at a seeded random point. Right after the kill every
    partition of D2 is absent or whole; the rerun gives exactly the partitions it had."""
    import random
    import time

    from core.entities import ENTITIES
    from reliability import checks
    from reliability.world import start_process
    from tests.conftest import CLI, cli_environ

    lake = two_days["lake"]
    entities = list(ENTITIES)
    whole = checks.partition_states(lake, D2, entities)
    started = time.monotonic()
    run_transform(spark, LocalLake(lake), D2)
    warm_seconds = time.monotonic() - started
    assert checks.partition_states(lake, D2, entities) == whole, "a rerun of D2 must give the same partitions"

    fraction = random.Random(7).random()
    env = cli_environ(DATABASE_URL=pg_url, DATABASE_SCHEMA=pg_schema, LOG_FORMAT="json", SPARK_SHUFFLE_PARTITIONS="2")
    with start_process([*CLI, "transform", "--date", str(D2), "--lake", str(lake)], env, tmp_path) as running:
        assert running.wait_for("transform started", timeout=240), running.finish().describe()
        time.sleep(fraction * warm_seconds)  # the subprocess's JVM is cold: this point is inside the step
        assert running.handle.poll() is None, "the transform ended before the kill: the trial proved nothing"
        running.kill()

    after_kill = checks.partition_states(lake, D2, entities)
    partial = {p: s for p, s in after_kill.items() if s not in (checks.ABSENT, whole[p])}
    assert not partial, f"killed at {fraction:.0%} of the transform, partial partitions are visible: {partial}"
    run_transform(spark, LocalLake(lake), D2)
    assert checks.partition_states(lake, D2, entities) == whole

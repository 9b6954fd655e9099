"""The daily incremental run end to end: 2k changed games on top of a 350k-game catalogue.

    make bench-daily                 # N=350000 games, 2000 changed (raw partitions generated once, then cached)
    python -m bench.bench_daily --games 20000 --changed 500

Day D = 2026-11-20 is the catalogue: the cached raw lake of bench/raw_lake.py (all games as a
full refresh) run through transform, validate and load into an empty schema. Day D+1 is a
quiet day as ingestion lands it: `games` in mode `incremental` (window since the watermark of D
minus the one-hour safety margin) holding only the changed games, each with a newer
`updated_at`, a new rating and one genre fewer; the six reference snapshots; and D+1's
`popularity_primitives` for the whole catalogue (new values). The measured figure is the wall
clock of `igdb-pipeline run --date D+1` as a subprocess: Python start, Spark start-up, transform
(merge with D's `dim_games`), validate, load.

The ingest of D+1 is in the timed run: `run --date D+1` starts at ingest, against a sandbox
process (its own process, so it does not share the run's GIL) that serves IGDB as of D+1 from
files (`igdb-pipeline sandbox --data`: the whole catalogue with the changed games' new
versions, the references, D+1's popularity rows) with IGDB's limits (4 requests/s, 8 open) and
the sandbox's default latency model. The stored watermark of D makes games incremental; the
popularity snapshot is most of the API time (about 5,600 pages, 560 multiqueries). Building the
sandbox's files and starting it (loading millions of records) is not timed.

Day D+2 is a full refresh that no longer finds 1% of the games (deleted at IGDB), timed from
transform (its raw partitions are landed before) and compared with D+1's run from transform on
(goal: at most 1.5 times it); then `igdb-pipeline gc` runs
over a lake of 36 done dates (D+2's partitions hard-linked as 33 more dates), timed as a process.

Baseline, measured in the same run: D's run (`run --date D --from-step transform`, the same
command on the whole catalogue as a full refresh into empty tables). The ratio daily / full
says how much the incremental path saves. D's lake and database are therefore built on every
run, not cached: a cached D would make the baseline a figure from another run.

The run must be right to count: dim_games in PostgreSQL holds the whole catalogue, exactly the
changed games carry D+1's `updated_at` and new rating, their genre sets lost one genre, the load
changed exactly those dim_games rows, and D+1's popularity facts are all there.
PostgreSQL: DATABASE_URL (schema bench_daily, dropped first), else pgserver's, started in a
temporary folder and deleted after; its start-up is not timed (production uses RDS). Between D
and D+1 the tables D loaded are vacuumed and analysed, untimed (`settle_database`): a day
separates the two runs in production, long enough for autovacuum to finish with D's 5M rows;
here it would otherwise wake up during D+1's timed run, on the same 2 cores.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bench.common import CLI, OUT, bench_database, run_env, sandbox_process, write_result
from bench.raw_lake import cached_raw_lake, write_entity, write_reference
from core.entities import ENTITIES, LandingMode
from core.lake import LocalLake
from ingestion.sandbox.faults import DEFAULT_LATENCY_MS, DEFAULT_LATENCY_PER_RECORD_MS
from ingestion.sandbox.generator import GeneratorSpec, iter_popularity_primitives
from ingestion.watermarks import WatermarkStore, Window

DAY = dt.date(2026, 11, 20)
NEXT = DAY + dt.timedelta(days=1)
SEED = 42  # the seed of the cached raw lake
SCHEMA = "bench_daily"
GOAL_SECONDS = 240  # the daily run end to end, its ingest included
REFRESH_GOAL_RATIO = 1.5  # a full refresh with 1% deletions against an ordinary daily run
SAFETY_MARGIN = 3600  # ingest.safety_margin_seconds' default
STEPS = ("transform", "validate", "load")
DAILY_STEPS = ("ingest", *STEPS)


def epoch(day: dt.date) -> int:
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp())


def changed_game(game: dict[str, Any], updated_at: int) -> dict[str, Any]:
    """D+1's version of a game: newer updated_at, rating moved by 7 points, one vote more, one genre fewer."""
    new = dict(game, updated_at=updated_at)
    rating = game["rating"]
    new["rating"] = rating + 7.0 if rating <= 90.0 else rating - 7.0
    new["rating_count"] = game["rating_count"] + 1
    new["total_rating_count"] = game["total_rating_count"] + 1
    aggregated = game.get("aggregated_rating")
    new["total_rating"] = (new["rating"] + aggregated) / 2 if aggregated is not None else new["rating"]
    if len(game.get("genres", [])) > 1:
        new["genres"] = game["genres"][1:]
    return new


def raw_records(root: Path, entity: str, day: dt.date) -> Iterator[dict[str, Any]]:
    """A raw partition's records in the order of its manifest (ascending id)."""
    folder = root / "raw" / entity / f"dt={day}"
    manifest = json.loads((folder / "_manifest.json").read_text())
    for part in manifest["files"]:
        with open(folder / part["name"], "rb") as handle:
            for line in handle:
                yield json.loads(line)


def write_next_day(raw: Path, target: Path, games: int, changed: int) -> dict[str, Any]:
    """D+1's raw partitions under target/raw, landed as ingestion lands them; what the checks expect."""
    lake = LocalLake(target)
    write_reference(lake, GeneratorSpec(games=games, seed=SEED), NEXT)
    stride = max(1, games // changed)
    catalogue: list[dict[str, Any]] = []  # id and release date of every game: what popularity needs
    picked: list[dict[str, Any]] = []
    watermark = 0
    for index, game in enumerate(raw_records(raw, "games", DAY)):
        catalogue.append({"id": game["id"], "first_release_date": game.get("first_release_date", 0)})
        watermark = max(watermark, game["updated_at"])
        if index % stride == 0 and len(picked) < changed:
            picked.append(changed_game(game, epoch(NEXT) + 60 + len(picked) % 3600))
    reached = max(g["updated_at"] for g in picked)
    window = Window(LandingMode.INCREMENTAL, watermark - SAFETY_MARGIN)
    write_entity(lake, "games", NEXT, picked, int(games * 1.3) + 20, window=window, reached=reached)
    # a new seed gives the day new popularity values; the anchor makes calculated_at D+1
    spec = GeneratorSpec(games=games, seed=SEED + 1, anchor=epoch(NEXT))
    with_popularity: set[int] = set()

    def popularity() -> Iterator[dict[str, Any]]:
        for row in iter_popularity_primitives(spec, catalogue):
            with_popularity.add(row["game_id"])
            yield row

    popularity_rows = write_entity(lake, "popularity_primitives", NEXT, popularity(), games * 11 + 20)
    return {
        "changed": len(picked), "updated_at": {str(g["id"]): g["updated_at"] for g in picked},
        "rating": {str(g["id"]): g["rating"] for g in picked},
        "genre_pairs": sum(len(set(g.get("genres", []))) for g in picked),
        "popularity_rows": popularity_rows, "popularity_games": len(with_popularity),
    }


def cached_day(name: str, write: Callable[[Path], dict[str, Any]]) -> tuple[Path, dict[str, Any]]:
    """Raw partitions written once by `write(folder)` (which returns what the checks expect), then
    reused by later runs from bench/out/lakes/<name>."""
    root = OUT / "lakes" / name
    marker = root / "_expect.json"
    if marker.is_file():
        return root, json.loads(marker.read_text())
    work = root.with_name(root.name + ".tmp")
    shutil.rmtree(work, ignore_errors=True)
    expect = write(work)
    (work / "_expect.json").write_text(json.dumps(expect))
    shutil.rmtree(root, ignore_errors=True)
    work.rename(root)
    return root, expect


def cached_next_day(raw: Path, games: int, changed: int) -> tuple[Path, dict[str, Any]]:
    """D+1's raw partitions for this catalogue and number of changes, generated once."""
    return cached_day(f"daily-{games}-{changed}-{NEXT}", lambda folder: write_next_day(raw, folder, games, changed))


def write_sandbox_data(raw: Path, next_raw: Path, target: Path) -> dict[str, Any]:
    """IGDB as of D+1, as `igdb-pipeline sandbox --data` serves it: <entity>.jsonl for every entity
    (D's catalogue with D+1's changed games, and D+1's references and popularity); and the games
    D+1's incremental window will hold (the changed ones, and any within the safety margin)."""
    target.mkdir(parents=True, exist_ok=True)
    changed = {g["id"]: g for g in raw_records(next_raw, "games", NEXT)}
    watermark = 0
    with open(target / "games.jsonl", "w", encoding="utf-8") as out:
        for game in raw_records(raw, "games", DAY):
            watermark = max(watermark, game["updated_at"])
            out.write(json.dumps(changed.get(game["id"], game), ensure_ascii=False, separators=(",", ":")) + "\n")
    for entity in ENTITIES:
        if entity != "games":
            with open(target / f"{entity}.jsonl", "wb") as out:
                for part in sorted((next_raw / "raw" / entity / f"dt={NEXT}").glob("part-*.jsonl")):
                    out.write(part.read_bytes())
    since = watermark - SAFETY_MARGIN
    in_window = sum(1 for game in raw_records(raw, "games", DAY)
                    if changed.get(game["id"], game)["updated_at"] >= since)
    return {"watermark": watermark, "in_window": in_window}


def cached_sandbox_data(raw: Path, next_raw: Path, games: int, changed: int) -> tuple[Path, dict[str, Any]]:
    return cached_day(f"sandbox-{games}-{changed}-{NEXT}", lambda folder: write_sandbox_data(raw, next_raw, folder))


def store_watermark_of(lake: Path, watermark: int) -> None:
    """What D's ingest would have stored: games fully refreshed on D, up to D's newest updated_at."""
    WatermarkStore(LocalLake(lake)).advance("games", DAY, LandingMode.FULL, watermark)


REFRESH = NEXT + dt.timedelta(days=1)
DELETED_SHARE = 0.01  # games a full refresh no longer finds: a busy week's deletions at IGDB


def write_refresh_day(raw: Path, next_raw: Path, target: Path, games: int) -> dict[str, Any]:
    """D+2's raw partitions: a full refresh of the catalogue as of D+1 with every 100th game gone
    (deleted at IGDB), the reference snapshots, and D+2's popularity for the games left."""
    lake = LocalLake(target)
    write_reference(lake, GeneratorSpec(games=games, seed=SEED), REFRESH)
    changed = {g["id"]: g for g in raw_records(next_raw, "games", NEXT)}
    step = round(1 / DELETED_SHARE)
    kept: list[dict[str, Any]] = []
    deleted: list[int] = []

    def catalogue() -> Iterator[dict[str, Any]]:
        for index, game in enumerate(raw_records(raw, "games", DAY)):
            if index % step == step // 2:
                deleted.append(game["id"])
                continue
            game = changed.get(game["id"], game)
            kept.append({"id": game["id"], "first_release_date": game.get("first_release_date", 0)})
            yield game

    write_entity(lake, "games", REFRESH, catalogue(), int(games * 1.3) + 20)
    spec = GeneratorSpec(games=games, seed=SEED + 2, anchor=epoch(REFRESH))
    rows = write_entity(lake, "popularity_primitives", REFRESH, iter_popularity_primitives(spec, kept), games * 11 + 20)
    return {"deleted": len(deleted), "deleted_ids": deleted[:50], "live": len(kept), "popularity_rows": rows}


def cached_refresh_day(raw: Path, next_raw: Path, games: int) -> tuple[Path, dict[str, Any]]:
    """D+2's raw partitions for this catalogue, generated once."""
    return cached_day(f"refresh-{games}-{REFRESH}", lambda folder: write_refresh_day(raw, next_raw, folder, games))


def check_refresh(url: str, lake: Path, expect: dict[str, Any]) -> None:
    """D+2 deleted exactly the games its full refresh lacks, in the lake and in PostgreSQL."""
    from core.database import connection

    report = json.loads((lake / f"reports/transform/dt={REFRESH}/summary.json").read_text())
    deletions = report["deletions"]["dim_games"]
    with connection(url) as conn, conn.cursor() as cur:
        cur.execute(f"SELECT count(*) FILTER (WHERE deleted_at = %s), count(*) FILTER (WHERE deleted_at IS NULL) "
                    f"FROM {SCHEMA}.dim_games", (REFRESH,))
        deleted, live = cur.fetchone()
        cur.execute(f"SELECT count(*) FROM {SCHEMA}.fct_game_popularity WHERE game_id = ANY(%s)",
                    (expect["deleted_ids"],))
        facts_left = cur.fetchone()[0]
    problems = [text for bad, text in (
        (not report["full_refresh"], "D+2 was not transformed as a full refresh"),
        (deletions["deleted"] != expect["deleted"], f"the lake marked {deletions['deleted']} games deleted, "
                                                    f"expected {expect['deleted']}"),
        ((deleted, live) != (expect["deleted"], expect["live"]), f"PostgreSQL holds {deleted} deleted and {live} "
                                                                  f"live games, expected {expect['deleted']} and "
                                                                  f"{expect['live']}"),
        (facts_left != 0, f"{facts_left} popularity facts of deleted games are left"),
    ) if bad]
    if problems:
        raise SystemExit("the full-refresh day is wrong: " + "; ".join(problems))


GC_DATES = 33  # thirty kept by the default retention, three to remove


def timed_gc(lake: Path, url: str, env: dict[str, str]) -> dict[str, Any]:
    """`igdb-pipeline gc` over a lake of GC_DATES done dates: each date's partitions are hard links
    of D+2's (the layout and file count of a real date), with done markers and ledger rows."""
    from pipeline.ledger import STEPS as ALL_STEPS
    from pipeline.ledger import ledger_step

    first = REFRESH + dt.timedelta(days=1)
    days = [first + dt.timedelta(days=n) for n in range(GC_DATES)]
    for layer in ("raw", "staging", "quarantine", "marts", "reports"):
        for source in sorted((lake / layer).glob(f"*/dt={REFRESH}")):
            for day in days:
                link_tree(source, source.parent / f"dt={day}")
    for day in (DAY, NEXT, REFRESH, *days):  # every date done, ingest too (the timed runs began at transform)
        for step in ALL_STEPS:
            marker = lake / f"_done/{step}/dt={day}"
            if not marker.exists() or step == "ingest":
                marker.parent.mkdir(parents=True, exist_ok=True)
                marker.write_text("{}")
                with ledger_step(url, SCHEMA, day, step, "bench-gc"):
                    pass
    as_of = days[-1] + dt.timedelta(days=1)
    started = time.monotonic()
    proc = subprocess.run([*CLI, "gc", "--as-of", str(as_of), "--lake", str(lake)], env=env, capture_output=True,
                          text=True)
    seconds = time.monotonic() - started
    if proc.returncode != 0:
        raise SystemExit(f"gc failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    headline = proc.stdout.splitlines()[0]
    removed = re.search(r"removed: (\d+) of (\d+) date", headline)
    if removed is None:
        raise SystemExit(f"gc said something unexpected: {headline}")
    return {"gc_seconds": round(seconds, 2), "gc_dates": GC_DATES + 3, "gc_partitions_removed": int(removed[1]),
            "gc_dates_removed": int(removed[2]), "gc_summary": headline}


def link_tree(source: Path, target: Path) -> None:
    """Hard links where the file system allows (the raw files are only ever read), else copies."""
    try:
        shutil.copytree(source, target, copy_function=os.link, dirs_exist_ok=True)
    except OSError:
        shutil.copytree(source, target, dirs_exist_ok=True)


def run_command(day: dt.date, lake: Path, driver_memory: str, from_transform: bool = True) -> list[str]:
    return [*CLI, "run", "--date", str(day), *(["--from-step", "transform"] if from_transform else []),
            "--lake", str(lake), "--set", "spark.master=local[2]", "--set", f"spark.driver_memory={driver_memory}"]


def timed_run(day: dt.date, lake: Path, env: dict[str, str], driver_memory: str, from_transform: bool = True
              ) -> tuple[float, dict[str, float]]:
    """Wall clock of `igdb-pipeline run` for a date, and each step's own seconds (done markers)."""
    return timed_command(run_command(day, lake, driver_memory, from_transform), env, day, lake,
                         STEPS if from_transform else DAILY_STEPS)


def timed_command(command: list[str], env: dict[str, str], day: dt.date, lake: Path,
                  steps: tuple[str, ...] = STEPS) -> tuple[float, dict[str, float]]:
    """Wall clock of a command that runs `day` on `lake`, and each of `steps`' own seconds (done markers)."""
    started = time.monotonic()
    proc = subprocess.run(command, env=env, capture_output=True, text=True)
    wall = time.monotonic() - started
    if proc.returncode != 0:  # spark-submit puts the driver's log on stdout
        raise SystemExit(f"run --date {day} failed (exit {proc.returncode}):\n{(proc.stdout + proc.stderr)[-3000:]}")
    return wall, {s: json.loads((lake / f"_done/{s}/dt={day}").read_text())["seconds"] for s in steps}


def ingest_figures(lake: Path) -> dict[str, Any]:
    """What the ingest of D+1 asked of the API, from its done marker."""
    marker = json.loads((lake / f"_done/ingest/dt={NEXT}").read_text())
    entities = marker["details"]["entities"]
    return {"records": sum(e["records"] for e in entities.values()),
            "queries": sum(e["queries"] for e in entities.values()),
            "entities": {name: {k: e[k] for k in ("mode", "records", "queries", "seconds")}
                         for name, e in entities.items()}}


def check_lake(lake: Path, games: int, expect: dict[str, Any]) -> dict[str, Any]:
    """D+1 was incremental, kept the whole catalogue, and loaded exactly the changed games;
    the load's figures per mart."""
    report = json.loads((lake / f"reports/transform/dt={NEXT}/summary.json").read_text())
    load = json.loads((lake / f"_done/load/dt={NEXT}").read_text())["details"]["marts"]
    problems = []
    if report["full_refresh"]:
        problems.append("D+1 was transformed as a full refresh")
    if report["entities"]["games"]["staged"] != expect["in_window"]:
        problems.append(f"staged {report['entities']['games']['staged']} games, expected {expect['in_window']} "
                        "(the changed ones and those within the safety margin)")
    if report["rows"]["dim_games"] != games:
        problems.append(f"dim_games of D+1 has {report['rows']['dim_games']} rows, expected {games}")
    if load["dim_games"]["changed"] != expect["changed"]:
        problems.append(f"the load changed {load['dim_games']['changed']} dim_games rows, expected {expect['changed']}")
    if problems:
        raise SystemExit("the daily run is wrong: " + "; ".join(problems))
    return load


def check_database(url: str, games: int, expect: dict[str, Any]) -> None:
    """What PostgreSQL holds after D+1: the catalogue, the changes, the day's facts."""
    from core.database import connection

    ids = [int(i) for i in expect["updated_at"]]
    with connection(url) as conn, conn.cursor() as cur:
        cur.execute(f"SELECT count(*), count(*) FILTER (WHERE updated_at >= %s) FROM {SCHEMA}.dim_games",
                    (dt.datetime(NEXT.year, NEXT.month, NEXT.day, tzinfo=dt.UTC),))
        total, newer = cur.fetchone()
        cur.execute(f"SELECT game_id, rating, extract(epoch FROM updated_at)::bigint FROM {SCHEMA}.dim_games "
                    "WHERE game_id = ANY(%s)", (ids,))
        rows = {str(r[0]): (r[1], r[2]) for r in cur.fetchall()}
        cur.execute(f"SELECT count(*) FROM {SCHEMA}.game_genres WHERE game_id = ANY(%s)", (ids,))
        genre_pairs = cur.fetchone()[0]
        cur.execute(f"SELECT count(*) FROM {SCHEMA}.fct_game_popularity WHERE snapshot_date = %s", (NEXT,))
        facts = cur.fetchone()[0]
    wrong = [i for i in expect["updated_at"] if i not in rows or rows[i][1] != expect["updated_at"][i]
             or abs(rows[i][0] - expect["rating"][i]) > 1e-9]
    problems = [text for bad, text in (
        (total != games, f"dim_games holds {total} rows, expected {games}"),
        (newer != expect["changed"], f"{newer} dim_games rows are from D+1, expected {expect['changed']}"),
        (bool(wrong), f"{len(wrong)} changed games lack their D+1 rating or updated_at (e.g. {wrong[:3]})"),
        (genre_pairs != expect["genre_pairs"], f"changed games have {genre_pairs} genres, "
                                               f"expected {expect['genre_pairs']}"),
        (facts != expect["popularity_games"], f"{facts} popularity facts for D+1, "
                                              f"expected {expect['popularity_games']}"),
    ) if bad]
    if problems:
        raise SystemExit("PostgreSQL after the daily run is wrong: " + "; ".join(problems))


def settle_database(url: str, schema: str = SCHEMA) -> float:
    """VACUUM (ANALYZE) every table D loaded; its seconds. In production a day passes between D
    and D+1, and autovacuum has long finished with D's millions of inserted rows; here it would
    start during D+1's timed run and take its CPU (on 2 cores PostgreSQL shares the machine)."""
    from core.database import connection

    began = time.monotonic()
    with connection(url) as conn:
        conn.autocommit = True  # VACUUM cannot run inside a transaction
        with conn.cursor() as cur:
            cur.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s ORDER BY tablename", (schema,))
            for (table,) in cur.fetchall():
                cur.execute(f'VACUUM (ANALYZE) {schema}."{table}"')
    return time.monotonic() - began


def fresh_schema(url: str, schema: str = SCHEMA) -> None:
    from core.database import connection

    with connection(url) as conn, conn, conn.cursor() as cur:
        cur.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--games", type=int, default=350_000)
    parser.add_argument("--changed", type=int, default=2_000)
    parser.add_argument("--driver-memory", default="6g")
    args = parser.parse_args()

    started = time.monotonic()
    raw, counts = cached_raw_lake(args.games, DAY, OUT / "lakes")
    next_raw, expect = cached_next_day(raw, counts["games"], args.changed)
    served, window = cached_sandbox_data(raw, next_raw, counts["games"], args.changed)
    expect = {**expect, **window}
    refresh_raw, refresh = cached_refresh_day(raw, next_raw, counts["games"])
    print(f"bench-daily: {counts['games']} games on {DAY}, {expect['changed']} changed on {NEXT} with "
          f"{expect['popularity_rows']} popularity rows (data ready in {time.monotonic() - started:.0f}s)")
    latency = f"{DEFAULT_LATENCY_MS[0]}-{DEFAULT_LATENCY_MS[1]}"
    per_record = f"{DEFAULT_LATENCY_PER_RECORD_MS:g}"
    with tempfile.TemporaryDirectory() as tmp, sandbox_process(
            "--data", str(served), "--latency-ms", latency, "--latency-per-record-ms", per_record,
            timeout=1800) as sandbox:
        print(f"  sandbox serving IGDB as of {NEXT} (started in {sandbox['startup_s']}s, not timed; "
              f"latency {latency} ms + {DEFAULT_LATENCY_PER_RECORD_MS:g} ms per record)")
        lake = Path(tmp) / "lake"
        link_tree(raw / "raw", lake / "raw")
        with bench_database(Path(tmp)) as url:
            fresh_schema(url)
            env = run_env(url, Path(tmp) / "data", SCHEMA)
            full_wall, full_steps = timed_run(DAY, lake, env, args.driver_memory)
            print(f"  baseline, D full run: {full_wall:.1f}s ({steps_text(full_steps)})")
            store_watermark_of(lake, expect["watermark"])
            settled = settle_database(url)
            print(f"  VACUUM (ANALYZE) of D's tables before D+1, not timed: {settled:.1f}s")
            api_env = {**env, "IGDB_API_URL": sandbox["api_url"], "TWITCH_TOKEN_URL": sandbox["token_url"],
                       "IGDB_CLIENT_ID": "sandbox-client", "IGDB_CLIENT_SECRET": "sandbox-secret"}
            daily_wall, daily_steps = timed_run(NEXT, lake, api_env, args.driver_memory, from_transform=False)
            ingest = ingest_figures(lake)
            load_marts = check_lake(lake, counts["games"], expect)
            changed_rows = {name: m["changed"] for name, m in load_marts.items()}
            check_database(url, counts["games"], expect)
            settle_database(url)
            link_tree(refresh_raw / "raw", lake / "raw")
            refresh_wall, refresh_steps = timed_run(REFRESH, lake, env, args.driver_memory)
            check_refresh(url, lake, refresh)
            refresh_load = json.loads((lake / f"_done/load/dt={REFRESH}").read_text())["details"]["marts"]
            slowest = sorted(refresh_load.items(), key=lambda m: -m[1]["seconds"])[:4]
            print("  full-refresh day's slowest marts to load: " + "; ".join(
                f"{name} {m['seconds']:.1f}s ({m['mode']}, {m['staged']} sent, phases {m['phases']})"
                for name, m in slowest))
            daily_from_transform = daily_wall - daily_steps["ingest"]
            print(f"  full-refresh day D+2 ({refresh['deleted']} games deleted): {refresh_wall:.1f}s "
                  f"({steps_text(refresh_steps)}); ratio to the daily run from transform on "
                  f"{refresh_wall / daily_from_transform:.2f} (goal <= {REFRESH_GOAL_RATIO})")
            gc = timed_gc(lake, url, env)
            print(f"  gc over {gc['gc_dates']} dates: {gc['gc_seconds']:.1f}s ({gc['gc_summary']})")

    ratio = daily_wall / full_wall
    ingest_share = daily_steps["ingest"] / daily_wall
    result = {
        "games": counts["games"], "changed_games": expect["changed"], "popularity_rows": expect["popularity_rows"],
        "daily_seconds": round(daily_wall, 1), "daily_steps_seconds": daily_steps,
        "daily_outside_steps_seconds": round(daily_wall - sum(daily_steps.values()), 1),
        "daily_ingest_share": round(ingest_share, 3), "daily_ingest": ingest,
        "daily_ingest_records_per_s": round(ingest["records"] / daily_steps["ingest"], 1),
        "daily_from_transform_seconds": round(daily_from_transform, 1),
        "baseline_full_run_seconds": round(full_wall, 1), "baseline_steps_seconds": full_steps,
        "ratio_daily_over_full_run": round(ratio, 3), "goal_seconds": GOAL_SECONDS,
        "daily_changed_rows": changed_rows,
        "daily_load_plans": {name: {k: m.get(k) for k in ("mode", "staged", "seconds")}
                             for name, m in load_marts.items()},
        "sandbox_latency": {"ms": list(DEFAULT_LATENCY_MS), "per_record_ms": DEFAULT_LATENCY_PER_RECORD_MS},
        "vacuum_before_daily_seconds": round(settled, 1),
        "full_refresh_seconds": round(refresh_wall, 1), "full_refresh_steps_seconds": refresh_steps,
        "full_refresh_deleted": refresh["deleted"],
        "ratio_full_refresh_over_daily": round(refresh_wall / daily_from_transform, 3),
        "full_refresh_goal_ratio": REFRESH_GOAL_RATIO, **gc,
        "driver_memory": args.driver_memory,
        "timed_command": " ".join(["igdb-pipeline", *run_command(NEXT, Path("LAKE"), args.driver_memory, False)[3:]]),
    }
    print(f"  daily run D+1: {daily_wall:.1f}s ({steps_text(daily_steps)}; {result['daily_outside_steps_seconds']}s "
          f"outside the steps; Spark starts inside transform)")
    print(f"  ingest of D+1: {ingest['records']} records, {ingest['queries']} queries, "
          f"{result['daily_ingest_records_per_s']:.0f} records/s, {100 * ingest_share:.0f}% of the daily run")
    print(f"  ratio daily/full = {ratio:.2f}; daily {daily_wall:.1f}s end to end (goal <= {GOAL_SECONDS}s)")
    print(f"  checked: dim_games = {counts['games']} rows, {expect['changed']} changed games loaded; "
          f"rows changed by the load {changed_rows}")
    print(f"  written to {write_result('daily', result)}")


def steps_text(steps: dict[str, float]) -> str:
    return ", ".join(f"{s} {v:.1f}s" for s, v in steps.items())


if __name__ == "__main__":
    main()

"""Load speed: upsert of dim_games and its five bridges against plain COPY on the same server.

    make bench-load                 # N=350000 games (the marts are built once, then cached)
    python -m bench.bench_load --games 50000

1. plain COPY of the same rows into empty tables (the baseline, through the same executor path);
2. the load's upsert (COPY into staging + INSERT ... ON CONFLICT, one transaction per mart)
   into an empty schema, one mart at a time like the baseline: rows/s divided by the baseline's.
   Goal >= 0.5;
3. a second date with 1% of the games changed (new rating, newer updated_at, one relation
   fewer): the load's wall time, as `igdb-pipeline load` does it (only the catalogue rows that
   differ from the first date are sent, see jobs/load/plan.py; then the five bridges side by
   side, see jobs/load/run.py load_waves). Goal <= 10 s.
PostgreSQL: DATABASE_URL, else pgserver's, started in a temporary folder.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from bench.common import CLI, OUT, bench_database, write_result
from bench.raw_lake import cached_raw_lake

DAY = dt.date(2026, 11, 20)
NEXT = DAY + dt.timedelta(days=1)
TABLES = ("dim_games", "game_platforms", "game_genres", "game_themes", "game_modes", "game_player_perspectives")


def cached_marts(games: int) -> Path:
    """A lake with the transform's outputs for DAY (built once with `igdb-pipeline transform`)."""
    target = OUT / "lakes" / f"marts-{games}-{DAY}"
    if (target / "marts" / "dim_games" / f"dt={DAY}").is_dir():
        return target
    raw, _ = cached_raw_lake(games, DAY, OUT / "lakes")
    work = target.with_name(target.name + ".tmp")
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(raw / "raw", work / "raw")
    subprocess.run([*CLI, "transform", "--date", str(DAY), "--lake", str(work), "--set", "spark.master=local[2]",
                    "--set", "spark.driver_memory=6g"], check=True, capture_output=True)
    work.rename(target)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--games", type=int, default=350_000)
    args = parser.parse_args()

    import psycopg2
    from psycopg2 import sql
    from pyspark.sql import functions as F

    from core.database import connection
    from core.lake import LocalLake
    from jobs.datasets import Layer, dataset
    from jobs.io import read_partition, write_partition
    from jobs.load.pgcopy import copy_lines, copy_text_partition
    from jobs.load.run import load_marts
    from jobs.load.warehouse import SOURCE_DT, ensure_schema
    from jobs.session import build_session

    lake_dir = cached_marts(args.games)
    with tempfile.TemporaryDirectory() as tmp, bench_database(Path(tmp)) as url:
        lake_copy = Path(tmp) / "lake"
        for table in TABLES:
            shutil.copytree(lake_dir / "marts" / table, lake_copy / "marts" / table)
        lake = LocalLake(lake_copy)
        spark = build_session("bench-load", "local[2]", 2, "6g")
        marts = [dataset(Layer.MARTS, t) for t in TABLES]
        try:
            with connection(url) as conn:
                with conn, conn.cursor() as cur:
                    cur.execute("DROP SCHEMA IF EXISTS bench_copy CASCADE; DROP SCHEMA IF EXISTS bench_load CASCADE")
                ensure_schema(conn, "bench_copy")  # same tables, filled by plain COPY
                rows = {ds.name: read_partition(spark, ds, lake, DAY).count() for ds in marts}
                # the bridges replace the sets of the games seen on a date, which staging/games lists:
                # on the first (full) date, every game of the catalogue
                staged_games = dataset(Layer.STAGING, "games")
                write_partition(read_partition(spark, marts[0], lake, DAY), staged_games, lake, DAY)
                total = sum(rows.values())

                t0 = time.monotonic()
                for ds in marts:
                    columns = sql.SQL(", ").join(sql.Identifier(c) for c in [*ds.column_names, SOURCE_DT])
                    statement = sql.SQL("COPY {}.{} ({}) FROM STDIN").format(
                        sql.Identifier("bench_copy"), sql.Identifier(ds.name), columns).as_string(conn)
                    frame = copy_lines(read_partition(spark, ds, lake, DAY).withColumn(SOURCE_DT, F.lit(DAY)))
                    send = functools.partial(copy_text_partition, url=url, statement=statement)
                    frame.rdd.mapPartitions(send).collect()
                copy_seconds = time.monotonic() - t0

                ensure_schema(conn, "bench_load")
                t0 = time.monotonic()
                # one mart at a time, as the baseline COPYs them
                load_marts(spark, lake, DAY, url, "bench_load", marts, rows, parallel_marts=1)
                upsert_seconds = time.monotonic() - t0

                # the next date: 1% of games changed (rating, updated_at), each losing one relation
                catalogue = read_partition(spark, marts[0], lake, DAY)
                changed = catalogue.where(F.abs(F.hash("game_id")) % 100 == 0)
                n_changed = changed.count()
                newer = catalogue.withColumn("_c", F.abs(F.hash("game_id")) % 100 == 0)
                newer = (newer.withColumn("rating", F.when(F.col("_c"), F.coalesce(F.col("rating"), F.lit(50.0)) / 2)
                                          .otherwise(F.col("rating")))
                         .withColumn("updated_at", F.when(F.col("_c"), F.col("updated_at") + F.expr("INTERVAL 1 DAY"))
                                     .otherwise(F.col("updated_at"))).drop("_c"))
                next_rows = {"dim_games": write_partition(newer, marts[0], lake, NEXT)}
                write_partition(newer.where(F.abs(F.hash("game_id")) % 100 == 0), staged_games, lake, NEXT)
                ids = changed.select("game_id")
                for ds in marts[1:]:
                    pairs = read_partition(spark, ds, lake, DAY).join(ids, "game_id")
                    ref = ds.column_names[1]
                    first = pairs.groupBy("game_id").agg(F.min(ref).alias("_drop"))
                    kept = pairs.join(first, "game_id").where(F.col(ref) != F.col("_drop")).drop("_drop")
                    next_rows[ds.name] = write_partition(kept, ds, lake, NEXT)

                # a day passes between two loads: PostgreSQL's autovacuum has processed the first one and
                # a checkpoint has written its pages (run here, so neither competes for the 2 cores during
                # the timed rerun; CHECKPOINT needs a superuser or pg_checkpoint, else it is skipped)
                conn.commit()
                conn.autocommit = True
                with conn.cursor() as cur:
                    for ds in marts:
                        cur.execute(sql.SQL("VACUUM (ANALYZE) {}.{}").format(sql.Identifier("bench_load"),
                                                                              sql.Identifier(ds.name)))
                    try:
                        cur.execute("CHECKPOINT")
                    except psycopg2.Error as exc:
                        print(f"  (no CHECKPOINT before the rerun: {exc.pgerror or exc})")
                conn.autocommit = False
                t0 = time.monotonic()
                changes = load_marts(spark, lake, NEXT, url, "bench_load", [ds for ds in marts if next_rows[ds.name]],
                                     next_rows)  # as `igdb-pipeline load` does: the catalogue, then the rest at once
                rerun_seconds = time.monotonic() - t0
        finally:
            spark.stop()

    ratio = (total / upsert_seconds) / (total / copy_seconds)
    result = {
        "games": rows["dim_games"], "rows": total, "copy_seconds": round(copy_seconds, 2),
        "upsert_seconds": round(upsert_seconds, 2), "copy_rows_per_second": round(total / copy_seconds),
        "upsert_rows_per_second": round(total / upsert_seconds), "ratio_upsert_over_copy": round(ratio, 3),
        "changed_games": n_changed, "rerun_seconds": round(rerun_seconds, 2),
        "rerun_changed_rows": {k: v["changed"] for k, v in changes.items()},
        "rerun_sent_rows": {k: v["staged"] for k, v in changes.items()},
        "rerun_plans": {k: v["mode"] for k, v in changes.items()},
        "rerun_mart_seconds": {k: v["seconds"] for k, v in changes.items()},
        "rerun_mart_phases": {k: v["phases"] for k, v in changes.items()}, "goal_ratio": 0.5,
        "goal_rerun_seconds": 10,
    }
    print(f"bench-load: {rows['dim_games']} dim_games rows + bridges = {total} rows")
    print(f"  plain COPY into empty tables: {copy_seconds:.1f}s ({result['copy_rows_per_second']} rows/s)")
    print(f"  upsert into an empty schema:  {upsert_seconds:.1f}s ({result['upsert_rows_per_second']} rows/s)")
    print(f"  ratio upsert/COPY = {ratio:.2f} (goal >= 0.5)")
    print(f"  1% changed ({n_changed} games) next date: {rerun_seconds:.1f}s (goal <= 10s), "
          f"changed rows {result['rerun_changed_rows']}")
    print(f"  sent rows {result['rerun_sent_rows']}, plans {result['rerun_plans']}")
    print(f"  seconds per mart {result['rerun_mart_seconds']}")
    print(f"  seconds per phase {result['rerun_mart_phases']}")
    print(f"  written to {write_result('load', result)}")


if __name__ == "__main__":
    main()

"""What a new day of `fct_game_popularity` costs PostgreSQL as its history grows, by key order.

    make bench-fact-history                      # 350k games a day, 15 stored days, 2 trials
    python -m bench.bench_fact_history --games 50000 --days 5 --trials 1

Two layouts of the fact's table, in alternating order per trial:
- date first, `(snapshot_date, game_id)`, as `ensure_schema` makes it: one index, and a new
  date's rows all go to its right edge;
- game first, `(game_id, snapshot_date)` plus an index on the date, as tables made before
  2026-12-03 are (the baseline): a new date's rows land all over an index that holds every day.
Each stores `--days` dates of `--games` rows, then stages the next date and moves it in with the
load's own statements (jobs/load/warehouse.py `upsert_statements`, one transaction): that
transaction's wall time is the figure; the ratio is date first / game first (lower is better).
Rows are made by the server (generate_series), so no client or Spark time is in it.
PostgreSQL: DATABASE_URL, else pgserver's, started in a temporary folder.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import bench_database, write_result
from jobs.datasets import Layer, dataset

FACT = dataset(Layer.MARTS, "fct_game_popularity")
FIRST_DAY = dt.date(2026, 11, 1)
SCHEMA = "bench_fact"
LAYOUTS = ("date first", "game first")


def fill_fact(cur: Any, table: Any, day: dt.date, games: int, measure: Any = None) -> None:
    """`games` rows of the fact for `day` into `table` (the fact or its staging table), made by the
    server: game ids 1..games, every measure column `measure` (SQL over the series `g`; random()
    when None)."""
    from psycopg2 import sql

    from jobs.load.warehouse import SOURCE_DT

    columns = [*FACT.column_names, SOURCE_DT]
    value = measure if measure is not None else sql.SQL("random()")
    values = [sql.SQL("%(d)s::date") if c in ("snapshot_date", SOURCE_DT) else sql.SQL("g") if c == "game_id"
              else value for c in columns]
    cur.execute(sql.SQL("INSERT INTO {} ({}) SELECT {} FROM generate_series(1, %(games)s) g").format(
        table, sql.SQL(", ").join(map(sql.Identifier, columns)), sql.SQL(", ").join(values)),
        {"d": day, "games": games})


def make_game_first(cur: Any, schema: str) -> None:
    """Give the schema's fact table the layout of tables made before 2026-12-03: key (game_id,
    snapshot_date) and an index on the date, as ensure_schema used to create it."""
    from psycopg2 import sql

    table = sql.Identifier(schema, FACT.name)
    cur.execute(sql.SQL("ALTER TABLE {t} DROP CONSTRAINT {pk}, ADD PRIMARY KEY (game_id, snapshot_date); "
                        "CREATE INDEX {idx} ON {t} (snapshot_date)").format(
        t=table, pk=sql.Identifier(f"{FACT.name}_pkey"), idx=sql.Identifier(f"{FACT.name}_snapshot_date_idx")))


def one_trial(url: str, layout: str, games: int, days: int) -> float:
    """Seconds of the transaction that moves a new date into a fact holding `days` dates."""
    from psycopg2 import sql

    from core.database import connection
    from jobs.load.warehouse import analyze_stage, ensure_schema, stage_ddl, stage_name, upsert_statements

    new_day = FIRST_DAY + dt.timedelta(days=days)
    table, stage = (sql.Identifier(SCHEMA, name) for name in (FACT.name, stage_name(FACT, new_day)))
    with connection(url) as conn:
        with conn, conn.cursor() as cur:
            cur.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(SCHEMA)))
        ensure_schema(conn, SCHEMA)
        with conn, conn.cursor() as cur:
            cur.execute("SELECT setseed(0.42)")
            if layout == "game first":
                make_game_first(cur, SCHEMA)
            for back in range(days):
                fill_fact(cur, table, FIRST_DAY + dt.timedelta(days=back), games)
            cur.execute(stage_ddl(FACT, SCHEMA, new_day))
            fill_fact(cur, stage, new_day, games)
        conn.autocommit = True  # VACUUM and CHECKPOINT cannot run in a transaction
        with conn.cursor() as cur:
            cur.execute(sql.SQL("VACUUM (ANALYZE) {}").format(table))  # as the day between two loads would
            cur.execute(analyze_stage(FACT, SCHEMA, new_day))
            cur.execute("CHECKPOINT")
        conn.autocommit = False
        began = time.monotonic()
        with conn, conn.cursor() as cur:  # the load's transaction for the new date
            for statement in upsert_statements(FACT, SCHEMA, new_day):
                cur.execute(statement, {"day": new_day})
        seconds = time.monotonic() - began
        with conn, conn.cursor() as cur:
            cur.execute(sql.SQL("SELECT count(*) FROM {} WHERE snapshot_date = %s").format(table), (new_day,))
            moved = cur.fetchone()[0]
            cur.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(SCHEMA)))
    if moved != games:
        raise RuntimeError(f"{layout}: {moved} rows of {new_day} stored, {games} expected")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--games", type=int, default=350_000)
    parser.add_argument("--days", type=int, default=15, help="dates stored before the one measured")
    parser.add_argument("--trials", type=int, default=2)
    args = parser.parse_args()

    print(f"bench-fact-history: {args.games} games a day, {args.days} dates stored, {args.trials} trial(s)")
    seconds: dict[str, list[float]] = {layout: [] for layout in LAYOUTS}
    with tempfile.TemporaryDirectory() as tmp, bench_database(Path(tmp)) as url:
        for trial in range(args.trials):
            for layout in LAYOUTS if trial % 2 == 0 else reversed(LAYOUTS):
                seconds[layout].append(round(one_trial(url, layout, args.games, args.days), 2))
                print(f"  trial {trial + 1}, {layout}: {seconds[layout][-1]:.2f}s", flush=True)
    median = {layout: statistics.median(s) for layout, s in seconds.items()}
    ratio = round(median["date first"] / median["game first"], 3)
    print(f"  median: date first {median['date first']:.2f}s, game first {median['game first']:.2f}s; "
          f"ratio date first / game first = {ratio}")
    path = write_result("fact_history", {"games": args.games, "stored_days": args.days, "seconds": seconds,
                                         "median_seconds": median, "ratio_date_first_over_game_first": ratio})
    print(f"  written to {path}")


if __name__ == "__main__":
    main()

"""The tables the load keeps: a date's snapshot and a bridge's sets are found by index, never by a scan."""

from __future__ import annotations

import datetime as dt

import psycopg2
import pytest
from psycopg2 import sql

from bench.bench_fact_history import fill_fact, make_game_first
from jobs.datasets import Layer, dataset
from jobs.load.warehouse import ensure_schema, stage_ddl, stage_name, upsert_statements

DAY = dt.date(2026, 11, 20)
FACT = dataset(Layer.MARTS, "fct_game_popularity")


def _indexes(cur, schema: str, table: str) -> dict[str, str]:
    cur.execute("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = %s AND tablename = %s", (schema, table))
    return dict(cur.fetchall())


@pytest.fixture()
def conn(pg_url):
    connection = psycopg2.connect(pg_url)
    yield connection
    connection.close()


def _plan_of(cur, statement: sql.Composable) -> str:
    cur.execute("SET LOCAL enable_seqscan = off")  # an empty table: ask what the planner could use
    cur.execute(sql.SQL("EXPLAIN ") + statement, {"day": DAY})
    return "\n".join(row[0] for row in cur.fetchall())


def test_replacing_a_date_of_the_fact_finds_it_by_the_primary_key_alone(conn, pg_schema) -> None:
    ensure_schema(conn, pg_schema)
    with conn, conn.cursor() as cur:
        # the date first: a new date's rows go to the key's right edge, and no second index is kept
        indexes = _indexes(cur, pg_schema, FACT.name)
        assert list(indexes) == ["fct_game_popularity_pkey"], indexes
        assert indexes["fct_game_popularity_pkey"].endswith("USING btree (snapshot_date, game_id)")
        cur.execute(stage_ddl(FACT, pg_schema, DAY))
        delete = upsert_statements(FACT, pg_schema, DAY)[0]
        assert delete.as_string(cur).startswith("DELETE")
        plan = _plan_of(cur, delete)
    assert "fct_game_popularity_pkey" in plan and "Index Cond: (snapshot_date" in plan, plan


def _scanned_rows(plan: dict, table: str) -> int:
    """Rows a plan read from a table: what its scans of it returned or filtered out (the insert aside)."""
    own = 0
    if plan.get("Relation Name") == table and plan["Node Type"] != "ModifyTable":
        own = sum(int(plan.get(k, 0)) for k in ("Actual Rows", "Rows Removed by Filter",
                                                 "Rows Removed by Index Recheck"))
    return own + sum(_scanned_rows(child, table) for child in plan.get("Plans", []))


def _fill(cur, table: sql.Composable, day: dt.date, games: int = 3000, scale: float = 7.0) -> None:
    """`games` rows of the fact for `day` into `table`, every measure g / scale for game g."""
    fill_fact(cur, table, day, games, sql.SQL("g / {}").format(sql.Literal(scale)))


def test_a_new_date_of_the_fact_is_inserted_without_reading_the_other_dates(conn, pg_schema) -> None:
    ensure_schema(conn, pg_schema)
    table, stage = (sql.Identifier(pg_schema, name) for name in (FACT.name, stage_name(FACT, DAY)))
    with conn, conn.cursor() as cur:
        for back in (1, 2, 3):  # the history: three earlier dates of 3,000 games
            _fill(cur, table, DAY - dt.timedelta(days=back))
        cur.execute(stage_ddl(FACT, pg_schema, DAY))
        _fill(cur, stage, DAY)
        cur.execute(sql.SQL("ANALYZE {}; ANALYZE {}").format(table, stage))
        insert = upsert_statements(FACT, pg_schema, DAY)[1]
        cur.execute(sql.SQL("EXPLAIN (ANALYZE, FORMAT JSON) ") + insert, {"day": DAY})
        [[explained]] = cur.fetchall()
        cur.execute(sql.SQL("SELECT count(*) FROM {} WHERE snapshot_date = %s").format(table), (DAY,))
        assert cur.fetchone()[0] == 3000
    # the stored history grows by a catalogue a day: a new date must not read it
    assert _scanned_rows(explained[0]["Plan"], FACT.name) == 0, explained


def test_a_fact_table_made_with_the_game_first_key_keeps_loading(conn, pg_schema) -> None:
    """Tables created before the key put the date first keep their layout (reordering a primary key
    rebuilds it under a lock): ON CONFLICT finds the key by its columns, the date index serves."""
    ensure_schema(conn, pg_schema)
    table, stage = (sql.Identifier(pg_schema, name) for name in (FACT.name, stage_name(FACT, DAY)))
    with conn, conn.cursor() as cur:
        make_game_first(cur, pg_schema)
    ensure_schema(conn, pg_schema)  # a migration leaves it as it is

    def load(scale: float) -> int:
        changed = 0
        with conn, conn.cursor() as cur:
            cur.execute(stage_ddl(FACT, pg_schema, DAY))
            _fill(cur, stage, DAY, games=500, scale=scale)
            for statement in upsert_statements(FACT, pg_schema, DAY):
                cur.execute(statement, {"day": DAY})
                changed += cur.rowcount
        return changed

    with conn, conn.cursor() as cur:
        _fill(cur, table, DAY - dt.timedelta(days=1), games=500)
        assert _indexes(cur, pg_schema, FACT.name)["fct_game_popularity_pkey"].endswith("(game_id, snapshot_date)")
    assert (load(7.0), load(7.0), load(9.0)) == (500, 0, 500)  # new, the same again, every value changed
    with conn, conn.cursor() as cur:
        cur.execute(sql.SQL("SELECT snapshot_date, count(*), max(visits) FROM {} GROUP BY 1 ORDER BY 1").format(table))
        assert cur.fetchall() == [(DAY - dt.timedelta(days=1), 500, 500 / 7.0), (DAY, 500, 500 / 9.0)]
        cur.execute(stage_ddl(FACT, pg_schema, DAY))
        plan = _plan_of(cur, upsert_statements(FACT, pg_schema, DAY)[0])
    assert "fct_game_popularity_snapshot_date_idx" in plan, plan


def test_an_existing_table_gets_a_missing_lookup_index(conn, pg_schema) -> None:
    ensure_schema(conn, pg_schema)
    with conn, conn.cursor() as cur:
        cur.execute(sql.SQL("DROP INDEX {}.game_genres_game_id_idx").format(sql.Identifier(pg_schema)))

    ensure_schema(conn, pg_schema)

    with conn, conn.cursor() as cur:
        assert "game_genres_game_id_idx" in _indexes(cur, pg_schema, "game_genres")
        # marts whose key starts with the date need no second index
        assert set(_indexes(cur, pg_schema, "mart_top_rated")) == {"mart_top_rated_pkey"}
        assert set(_indexes(cur, pg_schema, FACT.name)) == {"fct_game_popularity_pkey"}

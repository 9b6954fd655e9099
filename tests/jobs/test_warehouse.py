"""The tables the load keeps: a date's snapshot and a bridge's sets are found by index, never by a scan."""

from __future__ import annotations

import datetime as dt

import psycopg2
import pytest
from psycopg2 import sql

from jobs.datasets import Layer, dataset
from jobs.warehouse import ensure_schema, stage_ddl, upsert_statements

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


def test_replacing_a_date_of_the_fact_uses_an_index_on_the_date(conn, pg_schema) -> None:
    ensure_schema(conn, pg_schema)
    with conn, conn.cursor() as cur:
        assert "(snapshot_date)" in _indexes(cur, pg_schema, FACT.name)["fct_game_popularity_snapshot_date_idx"]
        cur.execute(stage_ddl(FACT, pg_schema, DAY))
        delete = upsert_statements(FACT, pg_schema, DAY)[0]
        assert delete.as_string(cur).startswith("DELETE")
        cur.execute("SET LOCAL enable_seqscan = off")  # an empty table: ask what the planner could use
        cur.execute(sql.SQL("EXPLAIN ") + delete, {"day": DAY})
        plan = "\n".join(row[0] for row in cur.fetchall())
    assert "fct_game_popularity_snapshot_date_idx" in plan, plan


def test_an_existing_table_gets_a_missing_lookup_index(conn, pg_schema) -> None:
    ensure_schema(conn, pg_schema)
    with conn, conn.cursor() as cur:
        cur.execute(sql.SQL("DROP INDEX {}.fct_game_popularity_snapshot_date_idx").format(sql.Identifier(pg_schema)))
        cur.execute(sql.SQL("DROP INDEX {}.game_genres_game_id_idx").format(sql.Identifier(pg_schema)))

    ensure_schema(conn, pg_schema)

    with conn, conn.cursor() as cur:
        assert "fct_game_popularity_snapshot_date_idx" in _indexes(cur, pg_schema, FACT.name)
        assert "game_genres_game_id_idx" in _indexes(cur, pg_schema, "game_genres")
        # marts whose key starts with the date need no second index
        assert set(_indexes(cur, pg_schema, "mart_top_rated")) == {"mart_top_rated_pkey"}

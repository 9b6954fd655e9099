"""The PostgreSQL side of the dataset declarations: tables, migrations and upsert statements.

Every loaded mart becomes a table with the mart's columns and types, its key as primary key,
and `source_dt` (the lake date a row came from), which lets an older date's reload lose against
what a newer date wrote. All SQL is composed with psycopg2.sql: identifiers are quoted, values
are parameters, never formatted into the text.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from typing import Any

from psycopg2 import sql
from pyspark.sql import types as T

from core.database import create_schema
from jobs.datasets import DATASETS, DELETED_AT, MARTS, Dataset, Layer, LoadKind

SOURCE_DT = "source_dt"
SNAPSHOT_DATE = "snapshot_date"  # what a REPLACE_DATE mart's rows are replaced by

LOADED = [ds for ds in MARTS if ds.load is not None]


def pg_type(kind: T.DataType) -> str:
    """The PostgreSQL type of a Spark type (timestamps are UTC instants)."""
    if isinstance(kind, T.ArrayType):
        return f"{pg_type(kind.elementType)}[]"
    mapping = {T.LongType: "bigint", T.IntegerType: "integer", T.DoubleType: "double precision",
               T.StringType: "text", T.DateType: "date", T.TimestampType: "timestamptz", T.BooleanType: "boolean"}
    for spark_type, name in mapping.items():
        if isinstance(kind, spark_type):
            return name
    raise TypeError(f"no PostgreSQL type for {kind.simpleString()}")


def _table(schema: str, name: str) -> sql.Composed:
    return sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(name))


def _names(columns: list[str], prefix: str | None = None) -> sql.Composed:
    if prefix is None:
        return sql.SQL(", ").join(sql.Identifier(c) for c in columns)
    return sql.SQL(", ").join(sql.SQL("{}.{}").format(sql.Identifier(prefix), sql.Identifier(c)) for c in columns)


def _column_defs(ds: Dataset) -> list[tuple[str, str, bool]]:
    return [*((n, pg_type(t), nullable) for n, t, nullable in ds.columns), (SOURCE_DT, "date", False)]


def lookup_indexes(ds: Dataset) -> dict[str, str]:
    """Index name -> column, for the lookups a load makes that the primary key cannot serve.

    Bridges are replaced per parent (the key starts with the parent, but say so); a date's
    snapshot is replaced by date: a time series whose key did not start with the date would need
    an index on it, or every daily load would scan the whole, ever-growing history. The declared
    ones all start with it (a table created with `fct_game_popularity`'s earlier key, game first,
    keeps the date index it was given).
    """
    columns = [ds.parent_key] if ds.parent_key else []
    if ds.load is LoadKind.REPLACE_DATE and ds.key[0] != SNAPSHOT_DATE:
        columns.append(SNAPSHOT_DATE)
    return {f"{ds.name}_{column}_idx": column for column in columns}


def index_ddl(ds: Dataset, schema: str, names: Collection[str]) -> sql.Composed:
    return sql.SQL(";\n").join(sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} ({})").format(
        sql.Identifier(name), _table(schema, ds.name), sql.Identifier(lookup_indexes(ds)[name])) for name in names)


def table_ddl(ds: Dataset, schema: str) -> sql.Composed:
    """CREATE TABLE, and its lookup indexes, for a table that does not exist yet."""
    definitions = [sql.SQL("{} {}{}").format(sql.Identifier(n), sql.SQL(kind), sql.SQL("" if nullable else " NOT NULL"))
                   for n, kind, nullable in _column_defs(ds)]
    table = sql.SQL("CREATE TABLE IF NOT EXISTS {} ({}, PRIMARY KEY ({}))").format(
        _table(schema, ds.name), sql.SQL(", ").join(definitions), _names(list(ds.key)))
    indexes = lookup_indexes(ds)
    return sql.SQL(";\n").join([table, index_ddl(ds, schema, indexes)] if indexes else [table])


def add_columns_ddl(ds: Dataset, schema: str, present: set[str]) -> sql.Composed | None:
    """ALTER TABLE ADD COLUMN for declared columns the table lacks (a migration: nothing is dropped).

    Only when something is missing: ALTER TABLE locks the table against readers, even as a no-op.
    """
    missing = [(n, kind) for n, kind, _ in _column_defs(ds) if n not in present]
    if not missing:
        return None
    return sql.SQL("ALTER TABLE {} {}").format(_table(schema, ds.name), sql.SQL(", ").join(
        sql.SQL("ADD COLUMN IF NOT EXISTS {} {}").format(sql.Identifier(n), sql.SQL(kind)) for n, kind in missing))


LOADED_PARTITIONS = "loaded_partitions"


def loaded_partitions_ddl(schema: str) -> sql.Composed:
    """Which lake partition each mart's table took in, per date: lets the next load send only what
    differs from it (jobs/load/plan.py). Written in the same transaction as the mart's rows."""
    return sql.SQL(
        "CREATE TABLE IF NOT EXISTS {} (mart text NOT NULL, dt date NOT NULL, partition_digest text NOT NULL, "
        "mode text NOT NULL, staged_rows bigint NOT NULL, loaded_at timestamptz NOT NULL DEFAULT now(), "
        "PRIMARY KEY (mart, dt))").format(_table(schema, LOADED_PARTITIONS))


def record_loaded_partition(schema: str) -> sql.Composed:
    """Upsert of one (mart, dt) row; parameters: mart, dt, digest, mode, staged."""
    return sql.SQL(
        "INSERT INTO {} (mart, dt, partition_digest, mode, staged_rows) VALUES (%(mart)s, %(dt)s, %(digest)s, "
        "%(mode)s, %(staged)s) ON CONFLICT (mart, dt) DO UPDATE SET partition_digest = excluded.partition_digest, "
        "mode = excluded.mode, staged_rows = excluded.staged_rows, loaded_at = now()"
    ).format(_table(schema, LOADED_PARTITIONS))


def loaded_partitions_query(schema: str) -> sql.Composed:
    """(dt, digest) of every date a mart took in; parameter: mart."""
    return sql.SQL("SELECT dt, partition_digest FROM {} WHERE mart = %(mart)s").format(
        _table(schema, LOADED_PARTITIONS))


def missing_partitions_query(schema: str) -> sql.Composed:
    """How many (mart, date) a mart of `marts` lacks among the dates the `versions` mart took in up to
    `base`: 0 when those marts took in every date it did."""
    table = _table(schema, LOADED_PARTITIONS)
    return sql.SQL("SELECT count(*) FROM {t} v CROSS JOIN unnest(%(marts)s::text[]) AS m(mart) "
                   "WHERE v.mart = %(versions)s AND v.dt <= %(base)s AND NOT EXISTS "
                   "(SELECT 1 FROM {t} b WHERE b.mart = m.mart AND b.dt = v.dt)").format(t=table)


def ensure_schema(conn: Any, schema: str) -> None:
    """Create or migrate everything the load needs, in one transaction; idempotent and lock-light:
    an existing table is only inspected, and altered only when a declared column is missing."""
    with conn, conn.cursor() as cur:
        create_schema(cur, schema)
        cur.execute(loaded_partitions_ddl(schema))
        for ds in LOADED:
            cur.execute("SELECT column_name FROM information_schema.columns WHERE table_schema = %s "
                        "AND table_name = %s", (schema, ds.name))
            present = {row[0] for row in cur.fetchall()}
            if not present:
                cur.execute(table_ddl(ds, schema))
                continue
            if (migration := add_columns_ddl(ds, schema, present)) is not None:
                cur.execute(migration)
            cur.execute("SELECT indexname FROM pg_indexes WHERE schemaname = %s AND tablename = %s", (schema, ds.name))
            if missing := sorted(set(lookup_indexes(ds)) - {row[0] for row in cur.fetchall()}):
                cur.execute(index_ddl(ds, schema, missing))  # a migration: locks writers while it builds


def stage_name(ds: Dataset, day: dt.date) -> str:
    """The per-date staging table the executors COPY into (one load of a date at a time: the lock)."""
    return f"_load_{ds.name}_{day:%Y%m%d}"


def stage_ddl(ds: Dataset, schema: str, day: dt.date) -> sql.Composed:
    """A fresh UNLOGGED copy of the target's columns: bulk COPY lands here, outside the transaction."""
    stage = _table(schema, stage_name(ds, day))
    return sql.SQL("DROP TABLE IF EXISTS {stage}; CREATE UNLOGGED TABLE {stage} "
                   "(LIKE {target} INCLUDING DEFAULTS)").format(stage=stage, target=_table(schema, ds.name))


def parents_stage_name(ds: Dataset, day: dt.date) -> str:
    """REPLACE_SET: the parents seen on D (their sets are replaced, even by an empty one). Named after
    where they come from, not after the bridge: the five bridges share one table of D's game ids."""
    assert ds.parents_from
    return f"_load_parents_{ds.parents_from.replace('/', '_')}_{day:%Y%m%d}"


def parents_stage_ddl(ds: Dataset, schema: str, day: dt.date) -> sql.Composed:
    stage = _table(schema, parents_stage_name(ds, day))
    return sql.SQL("DROP TABLE IF EXISTS {stage}; CREATE UNLOGGED TABLE {stage} AS SELECT {p} FROM {target} "
                   "WITH NO DATA").format(stage=stage, p=sql.Identifier(_parent(ds)), target=_table(schema, ds.name))


def parents_copy_statement(ds: Dataset, schema: str, day: dt.date) -> sql.Composed:
    return sql.SQL("COPY {} ({}) FROM STDIN").format(_table(schema, parents_stage_name(ds, day)),
                                                      sql.Identifier(_parent(ds)))


def _parent(ds: Dataset) -> str:
    return ds.parent_key or ds.key[0]


def analyze_stage(ds: Dataset, schema: str, day: dt.date) -> sql.Composed:
    """Statistics for a freshly filled staging table, so the planner hashes instead of looping."""
    return sql.SQL("ANALYZE {}").format(_table(schema, stage_name(ds, day)))


def analyze_parents_stage(ds: Dataset, schema: str, day: dt.date) -> sql.Composed:
    return sql.SQL("ANALYZE {}").format(_table(schema, parents_stage_name(ds, day)))


def drop_stage(ds: Dataset, schema: str, day: dt.date) -> sql.Composed:
    return sql.SQL("DROP TABLE IF EXISTS {}").format(_table(schema, stage_name(ds, day)))


def drop_parents_stage(ds: Dataset, schema: str, day: dt.date) -> sql.Composed:
    return sql.SQL("DROP TABLE IF EXISTS {}").format(_table(schema, parents_stage_name(ds, day)))


def copy_statement(ds: Dataset, schema: str, day: dt.date) -> sql.Composed:
    return sql.SQL("COPY {} ({}) FROM STDIN").format(_table(schema, stage_name(ds, day)),
                                                      _names([*ds.column_names, SOURCE_DT]))


def _changed(ds: Dataset, incoming: str = "excluded") -> sql.Composed:
    """The stored row t differs from the incoming one in some mart column (source_dt aside)."""
    return sql.SQL("({}) IS DISTINCT FROM ({})").format(_names(ds.column_names, "t"),
                                                        _names(ds.column_names, incoming))


def _newer(ds: Dataset, incoming: str = "excluded") -> sql.Composed:
    """The incoming row should replace the stored row t: a newer version, or the same version
    from a date not older, with a change."""
    return sql.SQL(
        "(t.{v} IS NULL AND {i}.{v} IS NOT NULL) OR {i}.{v} > t.{v} "
        "OR ({i}.{v} IS NOT DISTINCT FROM t.{v} AND {i}.{sdt} >= t.{sdt} AND {changed})"
    ).format(v=sql.Identifier(ds.version_column or "updated_at"), i=sql.Identifier(incoming),
             sdt=sql.Identifier(SOURCE_DT), changed=_changed(ds, incoming))


def _needed(ds: Dataset, schema: str, wanted: sql.Composable, of_day: bool = False) -> sql.Composed:
    """Keep a staged row s unless its stored counterpart exists and `wanted` is false for it.

    A set-based pre-filter: ON CONFLICT ... DO UPDATE locks (and so writes) every conflicting
    row even when its WHERE is false, so rows that would not change must not reach it.
    `of_day` (a date's snapshot, whose staged rows are all of D) looks only at the stored rows of
    D, by the date's index: the key alone made the planner hash the whole history of the fact, a
    scan that grows by a whole catalogue a day. A staged row of another date would still be inserted
    right: ON CONFLICT's own WHERE then decides.
    """
    same_day = sql.SQL(" AND t.{} = %(day)s").format(sql.Identifier(SNAPSHOT_DATE)) if of_day else sql.SQL("")
    return sql.SQL("NOT EXISTS (SELECT 1 FROM {} t WHERE {}{} AND NOT ({}))").format(
        _table(schema, ds.name), _key_match(ds, "t", "s"), same_day, wanted)


def _insert(ds: Dataset, schema: str, day: dt.date, where: sql.Composable, on_conflict: sql.Composable
            ) -> sql.Composed:
    columns = [*ds.column_names, SOURCE_DT]
    return sql.SQL("INSERT INTO {target} AS t ({cols}) SELECT {cols} FROM {stage} s WHERE {where} "
                   "ON CONFLICT ({key}) {action}").format(
        target=_table(schema, ds.name), cols=_names(columns), stage=_table(schema, stage_name(ds, day)),
        where=where, key=_names(list(ds.key)), action=on_conflict)


def _set_all(ds: Dataset) -> sql.Composed:
    return sql.SQL(", ").join(sql.SQL("{c} = excluded.{c}").format(c=sql.Identifier(c))
                              for c in [*ds.column_names, SOURCE_DT] if c not in ds.key)


def _key_match(ds: Dataset, left: str, right: str) -> sql.Composed:
    return sql.SQL(" AND ").join(sql.SQL("{}.{} = {}.{}").format(sql.Identifier(left), sql.Identifier(k),
                                                                 sql.Identifier(right), sql.Identifier(k))
                                 for k in ds.key)


def upsert_statements(ds: Dataset, schema: str, day: dt.date) -> list[sql.Composed]:
    """The statements that move a staged mart into its table, per load kind; run in one transaction.

    Each touches only rows that change, so a rerun of the same date writes nothing.
    """
    target, stage = _table(schema, ds.name), _table(schema, stage_name(ds, day))
    if ds.load is LoadKind.UPSERT_NEWER:
        return [_insert(ds, schema, day, _needed(ds, schema, _newer(ds, "s")),
                        sql.SQL("DO UPDATE SET {} WHERE {}").format(_set_all(ds), _newer(ds)))]
    if ds.load is LoadKind.REPLACE_SET:
        parent = sql.Identifier(ds.parent_key or ds.key[0])
        # a parent whose stored set comes from a later date keeps it: an older reload loses. The
        # table that versions the parents says so (dim_games: loaded first, its row changes
        # whenever the game's sets do, an emptied set included); a deleted parent's set is gone
        # for good (the declarations make the dimension a bridge follows that same table)
        deleted = " OR g.{deleted} IS NOT NULL" if ds.follows_deletions_of else ""
        fresh = sql.SQL("NOT EXISTS (SELECT 1 FROM {versions} g WHERE g.{p} = s.{p} AND (g.{sdt} > %(day)s"
                        + deleted + "))").format(versions=_table(schema, ds.parents_versioned_by or ds.name),
                                                 p=parent, sdt=sql.Identifier(SOURCE_DT),
                                                 deleted=sql.Identifier(DELETED_AT))
        # the parents seen on D: all of them (an emptied set too) when the declaration lists them
        seen = _table(schema, parents_stage_name(ds, day)) if ds.parents_from else stage
        gone = sql.SQL(
            "DELETE FROM {target} t WHERE t.{p} IN (SELECT DISTINCT s.{p} FROM {seen} s WHERE {fresh}) "
            "AND NOT EXISTS (SELECT 1 FROM {stage} s WHERE {match})"
        ).format(target=target, p=parent, stage=stage, seen=seen, match=_key_match(ds, "s", "t"), fresh=fresh)
        # only relations not stored yet: a relation D sees again keeps its row (and the date it was
        # first loaded), so a full refresh rewrites no row of an unchanged set
        add = _insert(ds, schema, day, sql.SQL("{} AND {}").format(fresh, _needed(ds, schema, sql.SQL("false"))),
                      sql.SQL("DO NOTHING"))
        return [gone, add]
    if ds.load is LoadKind.REPLACE_DATE:
        snapshot = sql.Identifier(SNAPSHOT_DATE)
        gone = sql.SQL("DELETE FROM {target} t WHERE t.{d} = %(day)s AND NOT EXISTS "
                       "(SELECT 1 FROM {stage} s WHERE {match})").format(
            target=target, d=snapshot, stage=stage, match=_key_match(ds, "s", "t"))
        needed = _needed(ds, schema, _changed(ds, "s"), of_day=True)
        if ds.follows_deletions_of:  # an older date never brings a deleted game back
            needed = sql.SQL("{} AND {}").format(needed, _not_deleted(ds, schema))
        add = _insert(ds, schema, day, needed,
                      sql.SQL("DO UPDATE SET {} WHERE {}").format(_set_all(ds), _changed(ds)))
        return [gone, add]
    raise ValueError(f"{ds.rel_path} has no load kind")


def _not_deleted(ds: Dataset, schema: str) -> sql.Composed:
    """The staged row s is of a key its dimension (`follows_deletions_of`) has not deleted."""
    dimension = DATASETS[f"{Layer.MARTS.value}/{ds.follows_deletions_of}"]
    key = sql.Identifier(dimension.key[0])
    return sql.SQL("NOT EXISTS (SELECT 1 FROM {} g WHERE g.{k} = s.{k} AND g.{d} IS NOT NULL)").format(
        _table(schema, dimension.name), k=key, d=sql.Identifier(DELETED_AT))


def followers(ds: Dataset) -> list[Dataset]:
    """The loaded marts that must never hold a key this dimension deleted, in name order (the order
    their locks are taken in)."""
    return sorted((m for m in LOADED if m.follows_deletions_of == ds.name), key=lambda m: m.name)


def deleted_by_load(ds: Dataset, schema: str) -> sql.Composed:
    """How many of this dimension's rows a load of D marked deleted (their `source_dt` is D);
    parameter: day."""
    return sql.SQL("SELECT count(*) FROM {} WHERE {} IS NOT NULL AND {} = %(day)s").format(
        _table(schema, ds.name), sql.Identifier(DELETED_AT), sql.Identifier(SOURCE_DT))


def purge_deleted(follower: Dataset, dimension: Dataset, schema: str) -> sql.Composed:
    """Remove from a follower the rows of the keys a load of D marked deleted in its dimension, in
    the dimension's transaction: a deleted game leaves the bridges, the fact and the marketing
    marts with its deletion, for every date. The keys (and, for a time series keyed by date, the
    dates the mart holds: `loaded_partitions`) are evaluated once as arrays, so the follower's
    primary key finds the rows instead of a scan of its whole history. Parameters: day, mart."""
    key = sql.Identifier(dimension.key[0])
    keys = sql.SQL("t.{k} = ANY (ARRAY(SELECT g.{k} FROM {d} g WHERE g.{deleted} IS NOT NULL AND g.{sdt} = %(day)s))"
                   ).format(k=key, d=_table(schema, dimension.name), deleted=sql.Identifier(DELETED_AT),
                            sdt=sql.Identifier(SOURCE_DT))
    if follower.key[0] == SNAPSHOT_DATE:
        keys = sql.SQL("t.{d} = ANY (ARRAY(SELECT p.dt FROM {p} p WHERE p.mart = %(mart)s)) AND {}").format(
            keys, d=sql.Identifier(SNAPSHOT_DATE), p=_table(schema, LOADED_PARTITIONS))
    return sql.SQL("DELETE FROM {} t WHERE {}").format(_table(schema, follower.name), keys)


def analyze(ds: Dataset, schema: str) -> sql.Composed:
    """Fresh statistics of a table: after a load marked rows deleted, the planner must not take
    `deleted_at IS NOT NULL` for a column it last saw all null (it would loop where it should hash)."""
    return sql.SQL("ANALYZE {}").format(_table(schema, ds.name))

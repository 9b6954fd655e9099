"""What a scenario looks at after its runs: the loaded tables, the lake's partitions, the raw ids,
and every byte a run left behind (for secrets). Read-only; each returns plain data to compare."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import psycopg2
from psycopg2 import sql

from jobs.datasets import DATASETS
from jobs.warehouse import LOADED

ABSENT = "absent"


def table_digests(url: str, schema: str) -> dict[str, str]:
    """sha256 of each loaded table's rows (as text, sorted): equal digests mean equal contents."""
    out = {}
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            for ds in LOADED:
                cur.execute(sql.SQL("SELECT t::text FROM {}.{} t").format(sql.Identifier(schema),
                                                                         sql.Identifier(ds.name)))
                rows = sorted(r[0] for r in cur.fetchall())
                out[ds.name] = hashlib.sha256("\n".join(rows).encode()).hexdigest()
    finally:
        conn.close()
    return out


def table_counts(url: str, schema: str) -> dict[str, int]:
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            out = {}
            for ds in LOADED:
                cur.execute(sql.SQL("SELECT count(*) FROM {}.{}").format(sql.Identifier(schema),
                                                                        sql.Identifier(ds.name)))
                out[ds.name] = int(cur.fetchone()[0])
            return out
    finally:
        conn.close()


def duplicate_keys(url: str, schema: str) -> dict[str, int]:
    """Rows beyond the first per declared key, per loaded table (only non-zero entries)."""
    out = {}
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            for ds in LOADED:
                keys = sql.SQL(", ").join(sql.Identifier(k) for k in ds.key)
                cur.execute(sql.SQL("SELECT count(*) - (SELECT count(*) FROM (SELECT DISTINCT {} FROM {}.{}) d) "
                                    "FROM {}.{}").format(keys, sql.Identifier(schema), sql.Identifier(ds.name),
                                                         sql.Identifier(schema), sql.Identifier(ds.name)))
                extra = int(cur.fetchone()[0])
                if extra:
                    out[ds.name] = extra
    finally:
        conn.close()
    return out


def leftover_tables(url: str, schema: str) -> list[str]:
    """Load staging tables still present (a finished load drops its own)."""
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s AND tablename LIKE '\\_load\\_%%'",
                        (schema,))
            return sorted(r[0] for r in cur.fetchall())
    finally:
        conn.close()


def mart_column(url: str, schema: str, table: str, column: str) -> list[object]:
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute(sql.SQL("SELECT {} FROM {}.{}").format(sql.Identifier(column), sql.Identifier(schema),
                                                               sql.Identifier(table)))
            return [r[0] for r in cur.fetchall()]
    finally:
        conn.close()


# -- the lake -------------------------------------------------------------------------------------

class PartialPartition(Exception):
    """A partition a reader would see, but not whole (a file its manifest lists is missing or differs)."""


def raw_lines(lake: Path, entity: str, day: dt.date) -> list[bytes] | None:
    """The raw lines of a partition as a reader sees them (through its manifest); None if absent."""
    folder = lake / "raw" / entity / f"dt={day}"
    manifest_path = folder / "_manifest.json"
    if not manifest_path.is_file():
        return None
    manifest = json.loads(manifest_path.read_text())
    lines: list[bytes] = []
    for entry in manifest["files"]:
        path = folder / entry["name"]
        if not path.is_file():
            raise PartialPartition(f"raw/{entity}/dt={day}: {entry['name']} is listed but missing")
        data = path.read_bytes()
        if "sha256" in entry and hashlib.sha256(data).hexdigest() != entry["sha256"]:
            raise PartialPartition(f"raw/{entity}/dt={day}: {entry['name']} differs from its manifest")
        part = data.splitlines()
        if len(part) != entry["records"]:
            raise PartialPartition(f"raw/{entity}/dt={day}: {entry['name']} has {len(part)} lines, "
                                   f"the manifest says {entry['records']}")
        lines.extend(part)
    return lines


def raw_ids(lake: Path, entity: str, day: dt.date) -> list[int]:
    """Ids of a raw partition in landing order (records without an id are skipped)."""
    ids = []
    for line in raw_lines(lake, entity, day) or []:
        try:
            value = json.loads(line).get("id")
        except json.JSONDecodeError:
            continue
        if isinstance(value, int):
            ids.append(value)
    return ids


def parquet_rows(folder: Path) -> list[str] | None:
    """A parquet partition's rows as sorted text, as Spark would read it (hidden files skipped)."""
    files = sorted(str(p) for p in folder.glob("*.parquet") if not p.name.startswith(("_", ".")))
    if not folder.is_dir() or not files:
        return None
    import duckdb  # a second, independent parquet reader

    with duckdb.connect() as con:
        rows = con.execute("SELECT * FROM read_parquet(?)", [files]).fetchall()
    return sorted(repr(r) for r in rows)


def partition_states(lake: Path, day: dt.date, raw_entities: Iterable[str]) -> dict[str, str]:
    """Every dt=D partition of the lake -> ABSENT, `partial: why`, or the digest of its contents."""
    out = {}
    for entity in raw_entities:
        try:
            lines = raw_lines(lake, entity, day)
            out[f"raw/{entity}"] = ABSENT if lines is None else _digest(sorted(lines))
        except PartialPartition as exc:
            out[f"raw/{entity}"] = f"partial: {exc}"
    for ds in DATASETS.values():
        rows = parquet_rows(lake / ds.partition_rel_path(day.isoformat()))
        out[ds.rel_path] = ABSENT if rows is None else _digest([r.encode() for r in rows])
    return out


def _digest(lines: list[bytes]) -> str:
    return hashlib.sha256(b"\n".join(lines)).hexdigest()


def doubled(ids: Iterable[int]) -> list[int]:
    return sorted(i for i, n in Counter(ids).items() if n > 1)


# -- secrets --------------------------------------------------------------------------------------

def files_containing(root: Path, needles: Iterable[str]) -> list[str]:
    """Files under `root` whose bytes contain any of the needles (as UTF-8): `path: needle`."""
    wanted = [n.encode() for n in needles if n]
    hits = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes()
        for needle in wanted:
            if needle in data:
                hits.append(f"{path.relative_to(root)}: {needle.decode()[:4]}...")
    return hits

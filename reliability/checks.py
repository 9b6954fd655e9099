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
from jobs.load.warehouse import LOADED

ABSENT = "absent"


def _fetch(url: str, statements: Iterable[tuple[str, sql.Composable, tuple[object, ...] | None]]
           ) -> dict[str, list[tuple[object, ...]]]:
    """Run (name, statement, parameters or None) on one connection; each name's rows."""
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            out = {}
            for name, statement, params in statements:
                cur.execute(statement, params)
                out[name] = cur.fetchall()
            return out
    finally:
        conn.close()


def _table(schema: str, name: str) -> sql.Composed:
    return sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(name))


def table_rows(url: str, schema: str) -> dict[str, list[str]]:
    """Each loaded table's rows as text, sorted: equal dicts mean equal contents."""
    found = _fetch(url, ((ds.name, sql.SQL("SELECT t::text FROM {} t").format(_table(schema, ds.name)), None)
                         for ds in LOADED))
    return {name: sorted(str(r[0]) for r in rows) for name, rows in found.items()}


def table_digests(url: str, schema: str) -> dict[str, str]:
    """sha256 of each loaded table's rows (as text, sorted): equal digests mean equal contents."""
    return {name: hashlib.sha256("\n".join(rows).encode()).hexdigest()
            for name, rows in table_rows(url, schema).items()}


def duplicate_keys(url: str, schema: str) -> dict[str, int]:
    """Rows beyond the first per declared key, per loaded table (only non-zero entries)."""
    found = _fetch(url, ((ds.name, sql.SQL("SELECT count(*) - (SELECT count(*) FROM (SELECT DISTINCT {} FROM {}) d) "
                                           "FROM {}").format(sql.SQL(", ").join(sql.Identifier(k) for k in ds.key),
                                                             _table(schema, ds.name), _table(schema, ds.name)), None)
                         for ds in LOADED))
    return {name: int(str(rows[0][0])) for name, rows in found.items() if rows[0][0]}


def leftover_tables(url: str, schema: str) -> list[str]:
    """Load staging tables still present (a finished load drops its own)."""
    statement = sql.SQL("SELECT tablename FROM pg_tables WHERE schemaname = %s AND tablename LIKE '\\_load\\_%%'")
    return sorted(str(r[0]) for r in _fetch(url, [("t", statement, (schema,))])["t"])


def mart_column(url: str, schema: str, table: str, column: str) -> list[object]:
    statement = sql.SQL("SELECT {} FROM {}").format(sql.Identifier(column), _table(schema, table))
    return [r[0] for r in _fetch(url, [("c", statement, None)])["c"]]


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

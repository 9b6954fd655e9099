"""The sandbox's data: records per entity, sorted by id, queried with Apicalypse.

Keyset pages (`where id > a & id <= b ...; sort id asc; limit 500`) are answered from an id index
(bisect, then scan until the page is full), so a benchmark-sized sandbox stays cheap per request.

Answers leave as JSON bytes (`query_json`). For the field list ingestion asks for (ENTITIES) each
record's JSON is kept once made (`warm` makes them all up front), so serving a page is joining
bytes, not projecting and encoding 500 dicts: the sandbox must serve well above the 20,000
records/s a multiquery client can ask for at IGDB's limits. Records are never changed in place
(edits swap in a copy), so a kept JSON is reused only while its record object is the one stored.
"""

from __future__ import annotations

import bisect
import json
import math
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from core.entities import ENTITIES
from ingestion.sandbox.apicalypse import And, Comparison, Expr, Query, apply_query, compile_expr, project
from ingestion.sandbox.faults import FaultDice
from ingestion.sandbox.generator import GeneratorSpec, generate_dataset

ENTITY_NAMES = tuple(ENTITIES)  # the sandbox serves what ingestion asks for


def _conjuncts(expr: Expr | None) -> Iterable[Expr]:
    if isinstance(expr, And):
        for operand in expr.operands:
            yield from _conjuncts(operand)
    elif expr is not None:
        yield expr


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))  # one, not one per json.dumps call


def dumps(payload: Any) -> bytes:
    """JSON as the server sends it: compact and UTF-8."""
    return _ENCODER.encode(payload).encode("utf-8")


def only_id_bounds(expr: Expr | None) -> bool:
    """Whether `id_bounds` says all a where clause says, so the id window needs no filtering."""
    for part in _conjuncts(expr):
        if not (isinstance(part, Comparison) and part.field == "id" and part.op in (">", ">=", "<", "<=", "=")):
            return False
        value = part.value
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        if part.op == "=" and value != math.floor(value):  # `id = 2.5` matches nothing, not id 2
            return False
    return True


def id_bounds(expr: Expr | None) -> tuple[int | None, int | None]:
    """Inclusive id bounds implied by the top-level `&` chain of a where clause."""
    low: int | None = None
    high: int | None = None
    for part in _conjuncts(expr):
        if not (isinstance(part, Comparison) and part.field == "id"):
            continue
        value = part.value
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        lo = {">": math.floor(value) + 1, ">=": math.ceil(value), "=": value}.get(part.op)
        hi = {"<": math.ceil(value) - 1, "<=": math.floor(value), "=": value}.get(part.op)
        if lo is not None:
            low = int(lo) if low is None else max(low, int(lo))
        if hi is not None:
            high = int(hi) if high is None else min(high, int(hi))
    return low, high


class Store:
    def __init__(self, datasets: dict[str, list[dict[str, Any]]]) -> None:
        self._lock = threading.Lock()
        self._records: dict[str, list[dict[str, Any]]] = {}
        self._ids: dict[str, list[int]] = {}
        # per entity, its ingestion field list's JSON per record id: (the record it was made from, bytes)
        self._json: dict[str, dict[int, tuple[dict[str, Any], bytes]]] = {entity: {} for entity in ENTITY_NAMES}
        for entity in ENTITY_NAMES:
            records = sorted(datasets.get(entity, []), key=lambda r: r["id"])
            self._records[entity] = records
            self._ids[entity] = [r["id"] for r in records]

    @classmethod
    def generated(cls, spec: GeneratorSpec) -> Store:
        return cls(generate_dataset(spec))

    @classmethod
    def from_dir(cls, folder: str | Path) -> Store:
        """Serve `<folder>/<entity>.jsonl` as is; every line must be an object with an integer id."""
        datasets: dict[str, list[dict[str, Any]]] = {}
        for entity in ENTITY_NAMES:
            path = Path(folder) / f"{entity}.jsonl"
            if not path.is_file():
                continue
            rows = []
            with open(path, encoding="utf-8") as handle:
                for number, line in enumerate(handle, 1):
                    if not line.strip():
                        continue
                    try:
                        record = json.loads(line)
                    except ValueError:
                        raise ValueError(f"{path}:{number}: not valid JSON") from None
                    if not isinstance(record, dict) or not isinstance(record.get("id"), int):
                        raise ValueError(f"{path}:{number}: a record needs an integer id to be served")
                    rows.append(record)
            datasets[entity] = rows
        return cls(datasets)

    def has(self, entity: str) -> bool:
        return entity in self._records

    def __contains__(self, entity: object) -> bool:
        """`entity in store`: the store is the set of endpoints a multiquery may name."""
        return entity in self._records

    def size(self, entity: str) -> int:
        return len(self._ids.get(entity, []))

    def ids(self, entity: str) -> list[int]:
        return list(self._ids.get(entity, []))

    def records(self, entity: str) -> list[dict[str, Any]]:
        return list(self._records.get(entity, []))

    def _range(self, entity: str, query: Query) -> tuple[list[dict[str, Any]], int, int]:
        """The stored records and the [start, end) positions the where clause's id bounds allow."""
        with self._lock:  # the pair as one: delete and put replace both
            records, ids = self._records[entity], self._ids[entity]
        low, high = id_bounds(query.where)
        start = 0 if low is None else bisect.bisect_left(ids, low)
        end = len(ids) if high is None else bisect.bisect_right(ids, high)
        return records, start, max(start, end)

    def _window(self, entity: str, query: Query) -> list[dict[str, Any]]:
        records, start, end = self._range(entity, query)
        return records[start:end]

    def _page(self, entity: str, query: Query) -> list[dict[str, Any]]:
        """The records answering a query sorted by id (or not at all), unprojected.

        Walks positions rather than slicing, so `id > a; limit 500` does not copy the catalogue's tail.
        """
        records, start, end = self._range(entity, query)
        positions = range(end - 1, start - 1, -1) if query.sort == ("id", False) else range(start, end)
        wanted = query.offset + query.limit
        if only_id_bounds(query.where):  # a keyset page: the window is the answer
            return [records[i] for i in positions[query.offset:wanted]]
        keep = compile_expr(query.where) if query.where is not None else None
        page: list[dict[str, Any]] = []
        for i in positions:
            record = records[i]
            if keep is None or keep(record):
                page.append(record)
                if len(page) >= wanted:
                    break
        return page[query.offset:]

    def query(self, entity: str, query: Query) -> list[dict[str, Any]]:
        if query.sort not in (None, ("id", True), ("id", False)):
            return apply_query(self._window(entity, query), query)
        return [project(r, query.fields) for r in self._page(entity, query)]

    def query_json(self, entity: str, query: Query) -> tuple[bytes, int]:
        """The answer to `query` as the JSON array sent over HTTP, and how many records it holds.

        Byte for byte `json.dumps(self.query(...))` as the server sends it, only cheaper.
        """
        if query.sort not in (None, ("id", True), ("id", False)) or query.fields != ENTITIES[entity].fields:
            page = self.query(entity, query)  # an unusual query: encoded whole, as it always was
            return dumps(page), len(page)
        parts = [self._record_json(entity, r) for r in self._page(entity, query)]
        return b"[" + b",".join(parts) + b"]", len(parts)

    def _record_json(self, entity: str, record: dict[str, Any]) -> bytes:
        """One record's JSON for the field list ingestion asks for, made once per record version."""
        kept = self._json[entity].get(record["id"])
        if kept is not None and kept[0] is record:  # the same object: it cannot have changed
            return kept[1]
        data = dumps(project(record, ENTITIES[entity].fields))
        self._json[entity][record["id"]] = (record, data)  # one dict store: safe beside readers
        return data

    def warm(self, entities: Iterable[str] = ENTITY_NAMES) -> None:
        """Make the records' JSON now, so a sandbox's first pass is served as fast as the next."""
        for entity in entities:
            for record in self.records(entity):
                self._record_json(entity, record)

    def count(self, entity: str, query: Query) -> int:
        records, start, end = self._range(entity, query)
        if query.where is None or only_id_bounds(query.where):
            return end - start
        keep = compile_expr(query.where)
        return sum(1 for i in range(start, end) if keep(records[i]))

    def touch(self, entity: str, count: int, dice: FaultDice, ids: list[int] | None = None) -> list[int]:
        """Update records in place (new updated_at), as IGDB editors do while a client pages."""
        with self._lock:
            records = self._records[entity]
            if not records:
                return []
            positions = (
                [bisect.bisect_left(self._ids[entity], i) for i in ids] if ids
                else [dice.choice(range(len(records))) for _ in range(count)]
            )
            now = int(time.time())
            changed = []
            for pos in positions:
                if pos < len(records):
                    record = dict(records[pos])
                    record["updated_at"] = max(now, int(record.get("updated_at", 0)) + 1)
                    if isinstance(record.get("rating_count"), int):
                        record["rating_count"] += 1
                    records[pos] = record  # one reference swap: readers see the old or new record
                    changed.append(record["id"])
            return changed

    def update(self, entity: str, record_id: int, **fields: Any) -> dict[str, Any]:
        """Edit one record as an IGDB editor would: new field values and a new updated_at."""
        with self._lock:
            pos = bisect.bisect_left(self._ids[entity], record_id)
            records = self._records[entity]
            if pos >= len(records) or records[pos]["id"] != record_id:
                raise KeyError(f"{entity} has no id {record_id}")
            record = {**records[pos], **fields}
            record["updated_at"] = max(int(time.time()), int(records[pos].get("updated_at", 0)) + 1)
            records[pos] = record
            return record

    def delete(self, entity: str, ids: Iterable[int]) -> list[dict[str, Any]]:
        """Remove records, as IGDB does with duplicates and spam: they are simply no longer served.
        Returns the records removed (to put back, for a comeback or a day that lost them)."""
        gone = set(ids)
        with self._lock:
            kept = [r for r in self._records[entity] if r["id"] not in gone]
            removed = [r for r in self._records[entity] if r["id"] in gone]
            self._records[entity] = kept  # one reference swap each: readers see before or after
            self._ids[entity] = [r["id"] for r in kept]
            for record in removed:  # the kept JSON of a gone record is memory only: drop it
                self._json[entity].pop(record["id"], None)
        return removed

    def put(self, entity: str, records: Iterable[dict[str, Any]]) -> None:
        """Add records (or replace those with the same id) as they are, updated_at included."""
        incoming = {r["id"]: r for r in records}
        with self._lock:
            merged = sorted([r for r in self._records[entity] if r["id"] not in incoming] + list(incoming.values()),
                            key=lambda r: r["id"])
            self._records[entity] = merged
            self._ids[entity] = [r["id"] for r in merged]

    def create(self, entity: str, dice: FaultDice) -> int | None:
        """A new record appears above the current max id (a game added while a client pages)."""
        with self._lock:
            records = self._records[entity]
            if not records:
                return None
            record = dict(dice.choice(records))
            record["id"] = self._ids[entity][-1] + 1
            if "slug" in record:
                record["slug"] = f"{record['slug']}-{record['id']}"
            record["updated_at"] = int(time.time())
            records.append(record)  # records first: a reader bisecting ids never overruns them
            self._ids[entity].append(record["id"])
            return int(record["id"])

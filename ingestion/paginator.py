"""Keyset pagination over id ranges, walked concurrently, streamed to disk.

Why keyset and not offset: `where id > last; sort id asc; limit 500` returns every id once even
when records change or appear while we page, whereas offset pages shift under updates (rows are
skipped or returned twice).

Why several ranges: one walker waits a full round trip per page, so it cannot use the 4 req/s
the API allows (nor fill a multiquery's 10 sub-queries); K walkers on disjoint id ranges can.
The first page and the highest id are asked together; a first page that is not full is the
whole entity. Otherwise the ids after the first page, up to the highest, are cut into K equal
ranges, K from the density the first page showed (no more ranges than pages, at most
`ranges`); each range lands in its own part file, so the files are the same whatever the
timing. When a walker runs out of work, it splits the largest unfinished range in two, so the
tail of the run keeps the rate ceiling busy. Records are written as each page arrives: memory
holds a handful of pages, whatever the entity size.

Pages come from a `PageSource` (ingestion/multiquery.py): one request each, or batched into
multiqueries with other walkers' pages; the walkers do not know which.
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson

from core.errors import IngestError
from core.logs import bind_context, current_context, event
from ingestion.client import RetriesExhausted
from ingestion.multiquery import PageSource, Query

log = logging.getLogger(__name__)

MIN_PAGES_PER_RANGE = 4  # when cutting an entity into ranges (splits at the tail may go below)


def page_query(fields: tuple[str, ...], where: str | None, after_id: int, upto_id: int | None,
               limit: int, offset: int = 0) -> str:
    """The Apicalypse body of one keyset page (`offset`: a later link of a chain, see _land_chain)."""
    conditions = [f"id > {after_id}"]
    if upto_id is not None:
        conditions.append(f"id <= {upto_id}")
    if where:
        conditions.append(f"({where})")
    skip = f" offset {offset};" if offset else ""
    return f"fields {','.join(fields)}; where {' & '.join(conditions)}; sort id asc; limit {limit};{skip}"


def max_id_query(where: str | None) -> str:
    clause = f" where {where};" if where else ""
    return f"fields id;{clause} sort id desc; limit 1;"


@dataclass
class _Range:
    """Ids in (lo, hi]; hi None means unbounded. `cursor` is the last id landed."""

    part: int
    lo: int
    hi: int | None
    cursor: int
    path: Path
    records: int = 0
    pages: int = 0
    done: bool = False
    max_updated_at: int | None = None
    sha: Any = field(default_factory=hashlib.sha256)
    size: int = 0
    handle: IO[bytes] | None = None

    def write(self, lines: list[bytes]) -> None:
        if self.handle is None:
            self.handle = open(self.path, "ab")
        for line in lines:
            self.handle.write(line)
            self.sha.update(line)
            self.size += len(line)

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()
            self.handle = None


@dataclass(frozen=True)
class Page:
    """A page as it lands: its ids (ascending), each record's JSON line, each record's updated_at
    (None when absent), the fields its records hold, and how many records the answer had."""

    ids: list[int]
    lines: list[bytes]
    stamps: list[int | None]
    fields: frozenset[str]
    size: int

    def without_first(self) -> Page:
        """A chain link without the record it repeats from the link before."""
        return Page(self.ids[1:], self.lines[1:], self.stamps[1:], self.fields, self.size)


def compact_page(endpoint: str) -> Callable[[Any], Page]:
    """The shape a page is kept in from the moment its answer arrives: the checks every page
    needs (a JSON array of records with integer ids, ascending) and the JSON lines to write
    (compact UTF-8, like json.dumps(ensure_ascii=False); orjson because this runs for every record
    landed, see docs/architecture.md "JSON")."""

    def compact(records: Any) -> Page:
        if not isinstance(records, list):
            raise IngestError(f"{endpoint}: expected a JSON array, got {type(records).__name__}")
        ids: list[int] = []
        stamps: list[int | None] = []
        fields: set[str] = set()
        for record in records:
            if not isinstance(record, dict) or not isinstance(record.get("id"), int):
                raise IngestError(f"{endpoint}: a record without an integer id")
            ids.append(record["id"])
            stamp = record.get("updated_at")
            stamps.append(stamp if isinstance(stamp, int) else None)
            fields.update(record)  # IGDB leaves out a record's empty fields: a field is seen if any record has it
        if any(b <= a for a, b in itertools.pairwise(ids)):
            raise IngestError(f"{endpoint}: a page is not in ascending id order")
        return Page(ids, [orjson.dumps(r) + b"\n" for r in records], stamps, frozenset(fields), len(records))

    return compact


@dataclass(frozen=True)
class PartFile:
    name: str
    path: Path
    records: int
    bytes: int
    sha256: str


@dataclass
class FetchResult:
    files: list[PartFile]
    records: int
    pages: int
    max_updated_at: int | None
    seconds: float
    splits: int = 0
    fields_seen: frozenset[str] = frozenset()  # every field some landed record holds (schema drift)


class KeysetFetcher:
    """Fetch every record of one endpoint matching `where` into part files under `scratch`."""

    def __init__(self, source: PageSource, endpoint: str, fields: tuple[str, ...], where: str | None, *,
                 scratch: Path, page_size: int = 500, ranges: int = 1, chain: int = 1, retry_rounds: int = 3,
                 round_pause: float = 2.0, progress_seconds: float = 5.0) -> None:
        self.source = source
        self.endpoint = endpoint
        self.fields = fields if "id" in fields else ("id", *fields)
        self.where = where
        self.scratch = scratch
        self.page_size = page_size
        self.ranges = ranges
        self.chain = chain if page_size > 1 else 1  # pages a walker asks for at once (a chain needs an overlap)
        self.retry_rounds = retry_rounds
        self.round_pause = round_pause
        self.progress_seconds = progress_seconds
        self._lock = threading.Lock()
        self._all: list[_Range] = []
        self._queue: list[_Range] = []
        self._active: set[int] = set()  # id() of ranges being walked
        self._parked: list[tuple[_Range, str]] = []
        self._fields_seen: set[str] = set()
        self._fatal: BaseException | None = None
        self._records = 0
        self._pages = 0
        self._last_progress = time.monotonic()
        self._started = time.monotonic()
        self._max_id = 0
        self._page = compact_page(endpoint)
        self._density = 0.0  # records per id in the first page: how far a range's records go before walked
        self._splits = 0
        self.broken_chains = 0  # chains cut short because the records changed between their pages

    # --- planning -------------------------------------------------------------------------------

    def _plan(self) -> None:
        """Land the first page; queue what is left of the entity as ranges to walk."""
        self.scratch.mkdir(parents=True, exist_ok=True)
        first_page = Query(self.endpoint, page_query(self.fields, self.where, 0, None, self.page_size),
                           shape=self._page)
        if self.ranges <= 1:
            [records] = self._planning_fetch([first_page])
            top = None
        else:
            records, top = self._planning_fetch([first_page, Query(self.endpoint, max_id_query(self.where))])
        first = self._add_range(0, 0, None, queued=False)
        self._land_page(first, records)
        if first.done:
            return
        if top is None:
            self._queue.append(first)
            return
        if not (isinstance(top, list) and top and isinstance(top[0], dict) and isinstance(top[0].get("id"), int)):
            raise IngestError(f"{self.endpoint}: the highest-id query answered {str(top)[:200]}")
        self._max_id = max(int(top[0]["id"]), first.cursor)
        first.hi, first.done = first.cursor, True  # the ranges below start after it
        after = first.cursor
        pages_left = math.ceil((self._max_id - after) / after) if after > 0 else self.ranges  # one page per `after` ids
        self._density = self.page_size / after if after > 0 else 0.0
        # a range ends on a partial page: ranges of a few chains each waste few sub-queries on them
        count = max(1, min(self.ranges, pages_left // max(MIN_PAGES_PER_RANGE, self.chain)))
        bounds = [after + (self._max_id - after) * i // count for i in range(count + 1)]
        for part in range(count):
            lo, hi = bounds[part], bounds[part + 1]
            if hi > lo or part == count - 1:
                # the last range stays open: ids created while we page are landed too
                self._add_range(part + 1, lo, None if part == count - 1 else hi)

    def _planning_fetch(self, queries: list[Query]) -> list[Any]:
        """The planning queries, tried again in later rounds like a parked page (nothing is landed yet)."""
        for round_no in range(self.retry_rounds + 1):
            try:
                return self.source.fetch(queries)
            except RetriesExhausted as exc:
                if round_no == self.retry_rounds:
                    raise IngestError(f"{self.endpoint}: pages still missing after {self.retry_rounds} retry rounds: "
                                      f"ids in (0, max]: {exc}") from exc
                event(log, f"{self.endpoint}: first page failed, retry round {round_no + 1}", logging.WARNING,
                      error=str(exc))
                time.sleep(self.round_pause * (round_no + 1))
        raise AssertionError("unreachable")

    def _add_range(self, part: int, lo: int, hi: int | None, queued: bool = True) -> _Range:
        rng = _Range(part, lo, hi, lo, self.scratch / f"range-{part:05d}-{lo:012d}.jsonl")
        self._all.append(rng)
        if queued:
            self._queue.append(rng)
        return rng

    # --- walking --------------------------------------------------------------------------------

    def _take(self) -> _Range | None:
        """Next range to walk: queued work first, else split the largest unfinished range."""
        with self._lock:
            if self._fatal is not None:
                return None
            if self._queue:
                rng = self._queue.pop(0)
                self._active.add(id(rng))
                return rng
            return self._split_largest()

    def _split_largest(self) -> _Range | None:
        best, best_left = None, 0.0
        for rng in self._all:
            if id(rng) not in self._active or rng.done or rng.pages == 0:
                continue
            top = rng.hi if rng.hi is not None else max(self._max_id, rng.cursor)
            walked = rng.cursor - rng.lo
            density = rng.records / walked if walked > 0 else 0.0
            left = density * (top - rng.cursor)
            if left > best_left:
                best, best_left = rng, left
        if best is None or best_left < 2 * self.page_size:
            return None
        top = best.hi if best.hi is not None else max(self._max_id, best.cursor)
        middle = best.cursor + (top - best.cursor) // 2
        upper = _Range(best.part, middle, best.hi, middle, self.scratch / f"range-{best.part:05d}-{middle:012d}.jsonl")
        best.hi = middle
        self._splits += 1
        self._all.append(upper)
        self._active.add(id(upper))
        return upper

    def _walk(self, rng: _Range) -> None:
        while not rng.done:
            with self._lock:
                if self._fatal is not None:
                    return
                upto = rng.hi
                cursor, links = rng.cursor, self._chain_length(rng)
            step = self.page_size - 1  # each link repeats the last record of the one before it
            pages = self.source.fetch([Query(self.endpoint, page_query(self.fields, self.where, cursor, upto,
                                                                       self.page_size, link * step), shape=self._page)
                                       for link in range(links)])
            self._land_chain(rng, pages)

    def _chain_length(self, rng: _Range) -> int:
        """Pages to ask for at once: up to `chain`, no more than the range's records seem to fill
        (from the density walked so far, else the first page's). Called under the lock."""
        if self.chain <= 1:
            return 1
        walked = rng.cursor - rng.lo
        density = rng.records / walked if walked > 0 and rng.records else self._density
        top = rng.hi if rng.hi is not None else max(self._max_id, rng.cursor)
        if density <= 0:
            return 1
        return max(1, min(self.chain, math.ceil(density * (top - rng.cursor) / (self.page_size - 1))))

    def _land_chain(self, rng: _Range, pages: list[Page]) -> None:
        """Land a chain's pages in order. Link j + 1 was asked with an offset of j + 1 pages minus
        one record, so it begins with link j's last record when no record before that one
        appeared or vanished between the two answers: then it is exactly the keyset page after
        it, and lands without its first record. Otherwise the rest of the chain is dropped and the
        next round asks again from the cursor: the chain never skips nor repeats an id."""
        for link, page in enumerate(pages):
            if link == 0:
                self._land_page(rng, page)
            else:
                if not page.ids or page.ids[0] != pages[link - 1].ids[-1]:
                    with self._lock:
                        self.broken_chains += 1
                    return
                self._land_page(rng, page.without_first())
            if rng.done:
                return

    def _land_page(self, rng: _Range, page: Page) -> None:
        """Write a page's records past the cursor (clipped to the range's bound); a page with
        fewer records than asked for ends the range."""
        ids = page.ids
        if ids and ids[0] <= rng.cursor:
            raise IngestError(f"{self.endpoint}: page after id {rng.cursor} is not in ascending id order")
        # Clip to the range's bound and advance its cursor in ONE critical section: a split computes
        # its midpoint from the cursor, so reading the bound and moving the cursor apart would let a
        # split in between hand ids this page already holds to the new range (landed twice).
        with self._lock:
            upto = rng.hi  # may have shrunk by a split while the request was in flight
            keep = len(ids) if upto is None else bisect.bisect_right(ids, upto)
            stamps = [s for s in page.stamps[:keep] if s is not None]
            if stamps:
                rng.max_updated_at = max(stamps + ([rng.max_updated_at] if rng.max_updated_at else []))
            rng.records += keep
            rng.pages += 1
            self._records += keep
            self._pages += 1
            if keep:
                rng.cursor = ids[keep - 1]
                self._fields_seen |= page.fields
            if keep < len(ids) or page.size < self.page_size:
                rng.done = True
        # only this range's walker writes its file, so the write needs no lock
        rng.write(page.lines[:keep])
        self._maybe_report()

    def _maybe_report(self) -> None:
        now = time.monotonic()
        with self._lock:
            if now - self._last_progress < self.progress_seconds:
                return
            self._last_progress = now
            elapsed = now - self._started
            covered = sum(min(r.cursor, r.hi or r.cursor) - r.lo for r in self._all)
            share = covered / self._max_id if self._max_id else 0.0
            eta = elapsed * (1 - share) / share if share > 0.01 else None
            records, pages = self._records, self._pages
        event(log, f"{self.endpoint}: {records} records so far", records=records, pages=pages,
              rate_per_s=round(records / elapsed, 1) if elapsed else None,
              done_pct=round(100 * share, 1) if self._max_id else None,
              eta_s=round(eta) if eta is not None else None)

    def _worker(self, context: dict[str, Any]) -> None:
        bind_context(context)
        try:
            self._walk_ranges()
        finally:
            self.source.leave()  # this walker asks no more

    def _walk_ranges(self) -> None:
        while True:
            rng = self._take()
            if rng is None:
                return
            try:
                self._walk(rng)
            except RetriesExhausted as exc:
                with self._lock:
                    self._parked.append((rng, str(exc)))
                event(log, f"{self.endpoint}: parked ids after {rng.cursor} for a later round", logging.WARNING,
                      error=str(exc))
            except BaseException as exc:  # noqa: BLE001 - any other failure stops every walker
                with self._lock:
                    self._fatal = self._fatal or exc
                return
            finally:
                rng.close()
                with self._lock:
                    self._active.discard(id(rng))

    def _run_round(self, walkers: int) -> None:
        context = current_context()
        threads = [threading.Thread(target=self._worker, args=(context,), name=f"{self.endpoint}-walker-{i}",
                                    daemon=True) for i in range(walkers)]
        self.source.enter(walkers)
        with self.source.idle():  # this thread only waits for its walkers now
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        if self._fatal is not None:
            raise self._fatal

    def fetch(self) -> FetchResult:
        self._started = time.monotonic()
        self._plan()
        self._run_round(max(1, min(self.ranges, len(self._queue))))
        for round_no in range(1, self.retry_rounds + 1):
            if not self._parked:
                break
            event(log, f"{self.endpoint}: retry round {round_no} for {len(self._parked)} parked range(s)",
                  logging.WARNING)
            time.sleep(self.round_pause * round_no)
            with self._lock:
                self._queue = [rng for rng, _ in self._parked]
                self._parked = []
            self._run_round(len(self._queue))
        if self._parked:
            missing = "; ".join(
                f"ids in ({rng.cursor}, {'max' if rng.hi is None else rng.hi}]: {error}" for rng, error in self._parked
            )
            raise IngestError(f"{self.endpoint}: pages still missing after {self.retry_rounds} retry rounds: {missing}")
        return self._assemble()

    def _assemble(self) -> FetchResult:
        """Concatenate each part's range files (ascending ids) into its part file."""
        by_part: dict[int, list[_Range]] = {}
        for rng in self._all:
            rng.close()  # the first page's range is written while planning, by no walker
        for rng in self._all:
            if rng.records:
                by_part.setdefault(rng.part, []).append(rng)
        files = []
        for index, part in enumerate(sorted(by_part)):
            pieces = sorted(by_part[part], key=lambda r: r.lo)
            name = f"part-{index:05d}.jsonl"
            target = self.scratch / name
            if len(pieces) == 1:
                pieces[0].path.rename(target)
                digest, size = pieces[0].sha.hexdigest(), pieces[0].size
            else:
                sha, size = hashlib.sha256(), 0
                with open(target, "wb") as out:
                    for piece in pieces:
                        with open(piece.path, "rb") as src:
                            while chunk := src.read(1 << 20):
                                out.write(chunk)
                                sha.update(chunk)
                                size += len(chunk)
                        piece.path.unlink()
                digest = sha.hexdigest()
            files.append(PartFile(name, target, sum(p.records for p in pieces), size, digest))
        stamps = [r.max_updated_at for r in self._all if r.max_updated_at is not None]
        return FetchResult(files, self._records, self._pages, max(stamps) if stamps else None,
                           time.monotonic() - self._started, self._splits, frozenset(self._fields_seen))

"""`igdb-pipeline ingest --date D`: land every configured entity of date D in the raw lake.

Every entity is fetched at once, through one page source (ingestion/multiquery.py), so the
pages of all of them share multiquery requests and the rate limit. Each entity's partition is
published as soon as it is complete; an entity that fails does not stop the others, and a
rerun of D fetches only the entities not yet published with the window planned for them
(`force` refetches all). The ingest of D is done only when every entity is.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

from core.config import Settings
from core.entities import ENTITIES, EntitySpec, LandingMode
from core.errors import IngestError
from core.lake import Lake, open_lake
from core.logs import event, log_context
from core.raw_lake import partition_path, read_manifest
from core.threads import map_in_threads
from ingestion.client import IGDBClient, RetryPolicy
from ingestion.drift import EntityDrift, check_drift
from ingestion.landing import write_manifest
from ingestion.memory import limit_malloc_arenas
from ingestion.multiquery import PageSource, Turn, page_source
from ingestion.paginator import KeysetFetcher
from ingestion.sandbox.faults import Faults, Limits
from ingestion.sandbox.generator import GeneratorSpec
from ingestion.sandbox.server import start_sandbox
from ingestion.sandbox.store import Store
from ingestion.watermarks import WatermarkStore, Window, plan_window

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EntityReport:
    entity: str
    mode: str
    records: int
    files: int
    pages: int
    queries: int  # pages and probes asked for (several share one request through multiquery)
    seconds: float
    drift: EntityDrift | None = None  # fields IGDB added or dropped (ingestion/drift.py), when checked
    resumed: bool = False  # published by an earlier ingest of D with the same window: not fetched again


@contextmanager
def igdb_client(settings: Settings) -> Iterator[IGDBClient]:
    """A client for the configured IGDB, or for a sandbox started here when no credentials are set."""
    def client(api_url: str, token_url: str, client_id: str, client_secret: str) -> IGDBClient:
        retry = RetryPolicy(settings.igdb_max_attempts, settings.igdb_backoff_base_seconds,
                            settings.igdb_backoff_max_seconds)
        return IGDBClient.build(api_url, token_url, client_id, client_secret,
                                per_second=settings.igdb_rate_limit_per_second,
                                max_in_flight=settings.igdb_max_in_flight, margin=settings.igdb_rate_margin,
                                retry=retry, timeout=settings.igdb_request_timeout_seconds)

    if settings.igdb_credentials is not None:
        igdb = client(settings.igdb_api_url, settings.igdb_token_url, *settings.igdb_credentials)
        try:
            yield igdb
        finally:
            igdb.close()
        return
    store = Store.generated(GeneratorSpec(games=settings.sandbox_games, seed=settings.sandbox_seed))
    sandbox = start_sandbox(store, limits=Limits(settings.igdb_rate_limit_per_second, settings.igdb_max_in_flight),
                            faults=Faults(latency_ms=settings.sandbox_latency_ms,
                                          latency_per_record_ms=settings.sandbox_latency_per_record_ms))
    event(log, "no IGDB credentials set: using the built-in IGDB sandbox", url=sandbox.url,
          games=settings.sandbox_games, seed=settings.sandbox_seed)
    igdb = client(sandbox.api_url, sandbox.token_url, sandbox.state.client_id, sandbox.state.client_secret)
    try:
        yield igdb
    finally:
        igdb.close()
        sandbox.stop()


@dataclass(frozen=True)
class Walking:
    """How a large entity is walked: `ranges` id ranges at once, each asking `chain` pages at a time."""

    ranges: int
    chain: int

    @classmethod
    def of(cls, settings: Settings) -> Walking:
        """Through multiquery, chains of a request's worth of pages, on one range per open request
        allowed: enough pages asked at once to keep every allowed request full while answers are
        on their way (more would only hold more answers in memory: bench-ingest's peak RSS); one
        page per request otherwise."""
        if not settings.igdb_multiquery:
            return cls(settings.ingest_parallel_ranges, 1)
        return cls(settings.igdb_max_in_flight, settings.igdb_subqueries_per_request)


def plan_entity(lake: Lake, spec: EntitySpec, day: dt.date, settings: Settings, full_refresh: bool,
                manifest: dict[str, Any] | None) -> Window:
    """The window D fetches: a rerun of D reuses the one its `manifest` recorded (plan_window)."""
    if not spec.incremental:
        return Window(LandingMode.SNAPSHOT, None)
    return plan_window(day, WatermarkStore(lake).get(spec.name), manifest, force_full=full_refresh,
                       margin_seconds=settings.ingest_safety_margin_seconds,
                       full_refresh_days=settings.ingest_full_refresh_days)


def published_report(spec: EntitySpec, manifest: dict[str, Any] | None, window: Window) -> EntityReport | None:
    """The report of D's published partition (its `manifest`) when it is what `window` would land."""
    if manifest is None or manifest.get("mode") != window.mode.value:
        return None
    if (manifest.get("window") or {}).get("since") != window.since:
        return None
    return EntityReport(spec.name, window.mode.value, int(manifest["records"]), len(manifest["files"]),
                        int(manifest.get("pages", 0)), 0, 0.0, resumed=True)


def ingest_entity(source: PageSource, lake: Lake, spec: EntitySpec, day: dt.date, window: Window,
                  settings: Settings, run_id: str, walking: Walking, turn: Turn | None = None) -> EntityReport:
    """Fetch one entity for `day` and publish its partition atomically, then move its watermark.
    `turn`: this thread's place among the source's callers, given up once the pages are fetched
    (publishing to S3 is slow; requests do not wait for a thread that will not ask)."""
    started_epoch = int(time.time())
    queries_before = Counter(source.stats)
    with log_context(entity=spec.name, mode=window.mode.value):
        event(log, f"ingesting {spec.name}", since=window.since)
        with lake.staged_partition(partition_path(spec.name, day), run_id) as staging:
            fetcher = KeysetFetcher(
                source, spec.endpoint, spec.fields, window.where(), scratch=staging,
                page_size=settings.igdb_page_size, ranges=walking.ranges if spec.large else 1, chain=walking.chain,
                retry_rounds=settings.igdb_retry_rounds, round_pause=max(1.0, settings.igdb_backoff_max_seconds / 4),
                progress_seconds=settings.ingest_progress_seconds,
            )
            result = fetcher.fetch()
            if turn is not None:
                turn.done_asking()
            reached = None if result.max_updated_at is None else min(result.max_updated_at, started_epoch)
            calls = Counter(source.stats)
            calls.subtract(queries_before)
            api_calls = {"queries": calls[f"queries:{spec.endpoint}"], "retried": calls[f"retried:{spec.endpoint}"],
                         "broken_chains": fetcher.broken_chains}
            write_manifest(staging, entity=spec.name, day=day, window=window, files=result.files,
                           api_calls={k: v for k, v in api_calls.items() if v}, run_id=run_id, reached=reached,
                           fetch_seconds=result.seconds, fields_seen=result.fields_seen, pages=result.pages)
        if spec.incremental:
            WatermarkStore(lake).advance(spec.name, day, window.mode, reached)
        report = EntityReport(spec.name, window.mode.value, result.records, len(result.files), result.pages,
                              api_calls["queries"], round(result.seconds, 2))
        event(log, f"landed {spec.name}", records=report.records, files=report.files, pages=report.pages,
              queries=report.queries, seconds=report.seconds,
              records_per_s=round(report.records / result.seconds, 1) if result.seconds else None)
    return report


def ingest(settings: Settings, day: dt.date, run_id: str, entities: tuple[str, ...] | None = None,
           full_refresh: bool = False, force: bool = False) -> list[EntityReport]:
    """Land every entity asked for D (those already published for D with the same window are kept,
    unless `force`), then (`ingest.drift_check`) compare the fields IGDB returns with those
    declared (each report's `drift`). Raises IngestError naming every entity that failed, once
    the others are published."""
    limit_malloc_arenas()  # before the threads below exist (ingestion/memory.py says why)
    lake = open_lake(settings.lake_uri, staging_root=f"{settings.data_dir}/staging")
    names = entities or settings.ingest_entities
    manifests = {name: read_manifest(lake, name, day) for name in names}  # D's, when an ingest of D published it
    windows = {name: plan_entity(lake, ENTITIES[name], day, settings, full_refresh, manifests[name]) for name in names}
    kept = {} if force else {name: r for name in names
                             if (r := published_report(ENTITIES[name], manifests[name], windows[name])) is not None}
    if kept:
        event(log, f"dt={day}: {', '.join(kept)} already published with the same window, not fetched again "
                   "(--force refetches)", entities=list(kept))
    todo = [name for name in names if name not in kept]
    with log_context(step="ingest"), igdb_client(settings) as client, \
            page_source(client, settings.igdb_multiquery, settings.igdb_subqueries_per_request) as source:
        walking = Walking.of(settings)
        source.enter(len(todo))  # every entity may ask for pages until its thread ends

        def land(name: str) -> EntityReport | BaseException:
            turn = Turn(source)
            try:
                return ingest_entity(source, lake, ENTITIES[name], day, windows[name], settings, run_id, walking,
                                     turn)
            except Exception as exc:  # noqa: BLE001 - reported with the others' outcome below
                event(log, f"{name}: not landed: {exc}", logging.ERROR)
                return exc
            finally:
                turn.done_asking()

        began = time.monotonic()
        outcomes: dict[str, Any] = dict(zip(todo, map_in_threads(land, todo, max(1, len(todo)), "ingest"),
                                            strict=True))
        fetched = time.monotonic() - began
        failed = {name: o for name, o in outcomes.items() if isinstance(o, BaseException)}
        if failed:
            first = next(iter(failed.values()))
            raise IngestError(f"dt={day}: {len(failed)} of {len(names)} entities not landed (the others are "
                              "published; a rerun fetches only these): "
                              + "; ".join(f"{name}: {exc}" for name, exc in failed.items())) from first
        reports = [kept.get(name) or outcomes[name] for name in names]
        landed = sum(r.records for name, r in outcomes.items())
        event(log, f"dt={day}: {landed} records of {len(todo)} entities landed in {fetched:.1f}s, "
                   f"{client.stats['requests']} requests", records=landed, seconds=round(fetched, 3),
              requests=client.stats["requests"], multiquery=settings.igdb_multiquery)
        if settings.ingest_drift_check:
            drift = check_drift(source, lake, day, names, settings.igdb_page_size)
            reports = [replace(report, drift=drift.get(report.entity)) for report in reports]
    return reports

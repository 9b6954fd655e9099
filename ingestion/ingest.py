"""`igdb-pipeline ingest --date D`: land every configured entity of date D in the raw lake."""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

from ingestion.client import IGDBClient, RetryPolicy
from ingestion.drift import EntityDrift, check_drift
from ingestion.entities import ENTITIES, EntitySpec, LandingMode
from ingestion.landing import partition_path, read_manifest, write_manifest
from ingestion.paginator import KeysetFetcher
from ingestion.watermarks import WatermarkStore, Window, plan_window
from pipeline.config import Settings
from pipeline.lake import Lake, open_lake
from pipeline.logs import event, log_context

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EntityReport:
    entity: str
    mode: str
    records: int
    files: int
    pages: int
    requests: int
    seconds: float
    drift: EntityDrift | None = None  # fields IGDB added or dropped (ingestion/drift.py), when checked


@contextmanager
def igdb_client(settings: Settings) -> Iterator[IGDBClient]:
    """A client for the configured IGDB, or for a sandbox started here when no credentials are set."""
    retry = RetryPolicy(settings.igdb_max_attempts, settings.igdb_backoff_base_seconds,
                        settings.igdb_backoff_max_seconds)
    client_options = dict(per_second=settings.igdb_rate_limit_per_second, max_in_flight=settings.igdb_max_in_flight,
                  margin=settings.igdb_rate_margin, retry=retry, timeout=settings.igdb_request_timeout_seconds)
    if not settings.uses_sandbox:
        client = IGDBClient.build(settings.igdb_api_url, settings.igdb_token_url, settings.igdb_client_id,
                                  settings.igdb_client_secret, **client_options)
        try:
            yield client
        finally:
            client.close()
        return
    from ingestion.sandbox.faults import Faults, Limits
    from ingestion.sandbox.generator import GeneratorSpec
    from ingestion.sandbox.server import start_sandbox
    from ingestion.sandbox.store import Store

    store = Store.generated(GeneratorSpec(games=settings.sandbox_games, seed=settings.sandbox_seed))
    sandbox = start_sandbox(store, limits=Limits(settings.igdb_rate_limit_per_second, settings.igdb_max_in_flight),
                            faults=Faults(latency_ms=settings.sandbox_latency_ms))
    event(log, "no IGDB credentials set: using the built-in IGDB sandbox", url=sandbox.url,
          games=settings.sandbox_games, seed=settings.sandbox_seed)
    client = IGDBClient.build(sandbox.api_url, sandbox.token_url, sandbox.state.client_id,
                              sandbox.state.client_secret, **client_options)
    try:
        yield client
    finally:
        client.close()
        sandbox.stop()


def ingest_entity(client: IGDBClient, lake: Lake, spec: EntitySpec, day: dt.date, settings: Settings,
                  run_id: str, full_refresh: bool = False) -> EntityReport:
    """Fetch one entity for `day` and publish its partition atomically, then move its watermark."""
    watermarks = WatermarkStore(lake)
    if spec.incremental:
        window = plan_window(day, watermarks.get(spec.name), read_manifest(lake, spec.name, day),
                             force_full=full_refresh, margin_seconds=settings.ingest_safety_margin_seconds,
                             full_refresh_days=settings.ingest_full_refresh_days)
    else:
        window = Window(LandingMode.SNAPSHOT, None)
    started_epoch = int(time.time())
    calls_before = Counter(client.stats)
    with log_context(entity=spec.name, mode=window.mode.value):
        event(log, f"ingesting {spec.name}", since=window.since)
        with lake.staged_partition(partition_path(spec.name, day), run_id) as staging:
            fetcher = KeysetFetcher(
                client, spec.endpoint, spec.fields, window.where(), scratch=staging,
                page_size=settings.igdb_page_size, ranges=settings.ingest_parallel_ranges if spec.large else 1,
                retry_rounds=settings.igdb_retry_rounds, round_pause=max(1.0, settings.igdb_backoff_max_seconds / 4),
                progress_seconds=settings.ingest_progress_seconds,
            )
            result = fetcher.fetch()
            reached = None if result.max_updated_at is None else min(result.max_updated_at, started_epoch)
            calls = Counter(client.stats)
            calls.subtract(calls_before)
            write_manifest(staging, entity=spec.name, day=day, window=window, files=result.files,
                           api_calls={k: v for k, v in calls.items() if v}, run_id=run_id, reached=reached,
                           fetch_seconds=result.seconds, fields_seen=result.fields_seen)
        if spec.incremental:
            watermarks.advance(spec.name, day, window.mode, reached)
        report = EntityReport(spec.name, window.mode.value, result.records, len(result.files), result.pages,
                              calls["requests"], round(result.seconds, 2))
        event(log, f"landed {spec.name}", records=report.records, files=report.files, pages=report.pages,
              requests=report.requests, seconds=report.seconds,
              records_per_s=round(report.records / result.seconds, 1) if result.seconds else None)
    return report


def ingest(settings: Settings, day: dt.date, run_id: str, entities: tuple[str, ...] | None = None,
           full_refresh: bool = False) -> list[EntityReport]:
    """Land every entity asked for D, then (`ingest.drift_check`) compare the fields IGDB returns
    with those declared (each report's `drift`)."""
    lake = open_lake(settings.lake_uri, staging_root=f"{settings.data_dir}/staging")
    names = entities or settings.ingest_entities
    reports = []
    with log_context(step="ingest"), igdb_client(settings) as client:
        for name in names:
            reports.append(ingest_entity(client, lake, ENTITIES[name], day, settings, run_id, full_refresh))
        if settings.ingest_drift_check:
            drift = check_drift(client, lake, day, names, settings.igdb_page_size)
            reports = [replace(report, drift=drift.get(report.entity)) for report in reports]
    return reports

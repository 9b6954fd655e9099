"""Schema drift: fields IGDB added to an entity, and fields it stopped returning.

Ingestion asks IGDB for a fixed list of fields, so a field IGDB adds is never seen in the lake.
Once per ingest, one page of each entity is fetched with `fields *` (every field a record has):
a field there that the entity neither declares nor knows as unused (`EntitySpec.unused_fields`)
is new. A declared field is gone when the previous complete landing of the entity (a full refresh
or a snapshot: every record) held it and D's complete landing and the sample do not: IGDB leaves
a record's empty fields out, so only a complete landing can show that no record has a field any
more, as only a complete list can show a deletion. Nothing fails for drift: it is written to
`reports/drift/dt=D/summary.json`, shown in the run summary, and the gate reports it as a warning.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from core.entities import ENTITIES, EntitySpec
from core.errors import IngestError
from core.lake import Lake
from core.logs import event
from core.raw_lake import DRIFT_REPORT, read_manifest
from ingestion.multiquery import PageSource, Query

log = logging.getLogger(__name__)

COMPLETE_MODES = ("full", "snapshot")


@dataclass(frozen=True)
class EntityDrift:
    new: list[str]  # fields IGDB returns that are neither declared nor known as unused
    gone: list[str] | None  # declared fields no longer returned; None: D's landing cannot tell
    compared_with: str | None  # the date of the complete landing `gone` compares with
    sampled: int  # records in the `fields *` page
    note: str = ""

    @property
    def drifted(self) -> bool:
        return bool(self.new or self.gone)


def sample_query(spec: EntitySpec, limit: int) -> Query:
    """One page of the entity with `fields *`: every field IGDB holds for its first records."""
    return Query(spec.endpoint, f"fields *; sort id asc; limit {limit};")


def fields_of(spec: EntitySpec, records: Any) -> Sample:
    """The fields a `fields *` page holds, and how many records it had."""
    if not isinstance(records, list):
        raise IngestError(f"{spec.endpoint}: expected a JSON array for `fields *`, got {type(records).__name__}")
    fields: set[str] = set()
    for record in records:
        if isinstance(record, dict):
            fields.update(record)
    return fields, len(records)


Sample = tuple[set[str], int]  # the fields a `fields *` page held, and its records


def sample_all(source: PageSource, specs: list[EntitySpec], limit: int) -> dict[str, Sample | IngestError]:
    """Every entity's `fields *` page, asked together (one multiquery for up to 10 entities); when
    that fails, one by one, so a failing entity is named and the others are still checked."""
    try:
        pages = source.fetch([sample_query(spec, limit) for spec in specs])
        return {spec.name: fields_of(spec, page) for spec, page in zip(specs, pages, strict=True)}
    except IngestError:
        pass
    found: dict[str, Sample | IngestError] = {}
    for spec in specs:
        try:
            [page] = source.fetch([sample_query(spec, limit)])
            found[spec.name] = fields_of(spec, page)
        except IngestError as exc:  # ApiError, RetriesExhausted: the day's data is landed; drift waits
            found[spec.name] = exc
    return found


def previous_complete(lake: Lake, entity: str, day: dt.date) -> tuple[str, set[str]] | None:
    """(date, fields seen) of the newest complete landing of the entity before D that recorded its
    fields; None when there is none."""
    days = sorted((name[3:] for name in lake.list_dirs(f"raw/{entity}") if name.startswith("dt=")), reverse=True)
    for earlier in days:
        if earlier >= day.isoformat():
            continue
        manifest = read_manifest(lake, entity, dt.date.fromisoformat(earlier))
        if manifest and manifest.get("mode") in COMPLETE_MODES and "fields_seen" in manifest:
            return earlier, set(manifest["fields_seen"])
    return None


def entity_drift(spec: EntitySpec, sampled: set[str], records: int, manifest: dict[str, Any] | None,
                 previous: tuple[str, set[str]] | None) -> EntityDrift:
    """Compare what IGDB returned with what the entity declares and last returned (pure)."""
    new = sorted(sampled - set(spec.fields) - set(spec.unused_fields))
    if manifest is None or manifest.get("mode") not in COMPLETE_MODES or "fields_seen" not in manifest:
        return EntityDrift(new, None, None, records, "D's landing is not complete: fields gone are judged on "
                                                      "full refreshes and snapshots")
    if previous is None:
        return EntityDrift(new, [], None, records, "no earlier complete landing to compare with")
    since, fields_then = previous
    gone = sorted((fields_then & set(spec.fields)) - set(manifest["fields_seen"]) - sampled)
    return EntityDrift(new, gone, since, records)


def check_drift(source: PageSource, lake: Lake, day: dt.date, entities: Iterable[str],
                page_size: int) -> dict[str, EntityDrift]:
    """Drift of each entity landed for D, written to `reports/drift/dt=D/summary.json` (merged with
    the entities an earlier ingest of D checked). A failed sample is noted, never fatal."""
    found: dict[str, EntityDrift] = {}
    specs = [ENTITIES[name] for name in entities]
    samples = sample_all(source, specs, page_size)
    for spec in specs:
        name, sample = spec.name, samples[spec.name]
        if isinstance(sample, IngestError):
            event(log, f"{name}: schema drift not checked: {sample}", logging.WARNING)
            found[name] = EntityDrift([], None, None, 0, f"not checked: {sample}")
            continue
        sampled, records = sample
        drift = entity_drift(spec, sampled, records, read_manifest(lake, name, day),
                             previous_complete(lake, name, day))
        found[name] = drift
        if drift.drifted:
            event(log, f"{name}: schema drift", logging.WARNING, new=drift.new, gone=drift.gone,
                  compared_with=drift.compared_with)
    path = DRIFT_REPORT.format(day=day.isoformat())
    earlier = json.loads(lake.read_text(path) or "{}").get("entities", {})
    report = {"dt": day.isoformat(), "checked_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
              "entities": {**earlier, **{name: asdict(drift) for name, drift in found.items()}}}
    lake.write_text(path, json.dumps(report, indent=2, sort_keys=True) + "\n")
    return found

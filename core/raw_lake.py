"""What ingestion leaves in the lake for the jobs to read: the raw partitions' paths, their
manifests and the drift report. The contract between the stages, so neither imports the other."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from core.errors import IngestError
from core.lake import MANIFEST, Lake

DRIFT_REPORT = "reports/drift/dt={day}/summary.json"


def partition_path(entity: str, day: dt.date) -> str:
    return f"raw/{entity}/dt={day.isoformat()}"


def read_manifest(lake: Lake, entity: str, day: dt.date) -> dict[str, Any] | None:
    """D's manifest of the entity, None when it has none; a clear error when it is not readable
    (it is written whole, so only a hand edit or a damaged copy gets here)."""
    path = f"{partition_path(entity, day)}/{MANIFEST}"
    text = lake.read_text(path)
    if text is None:
        return None
    try:
        manifest = json.loads(text)
    except ValueError as exc:
        raise IngestError(f"{path} is not valid JSON ({exc}): remove raw/{entity}/dt={day} and rerun the date "
                          "with --force") from None
    if not isinstance(manifest, dict):
        raise IngestError(f"{path} is not a manifest (a JSON object): remove raw/{entity}/dt={day} and rerun")
    return manifest


def drift_lines(entities: dict[str, dict[str, Any]]) -> dict[str, str]:
    """What drifted, per entity of a drift report's `entities`, in words (for summaries and the gate)."""
    lines = {}
    for name, drift in sorted(entities.items()):
        parts = []
        if drift.get("new"):
            parts.append(f"new field(s) not ingested: {', '.join(drift['new'])}")
        if drift.get("gone"):
            parts.append(f"declared field(s) no longer returned since dt={drift.get('compared_with')}: "
                         f"{', '.join(drift['gone'])}")
        if parts:
            lines[name] = f"{name}: {'; '.join(parts)}"
    return lines

"""Raw partitions and their manifests: what `raw/<entity>/dt=D/` holds and how it is described."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ingestion.paginator import PartFile
from ingestion.watermarks import Window
from pipeline.errors import IngestError
from pipeline.lake import MANIFEST, Lake


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


def write_manifest(folder: Path, *, entity: str, day: dt.date, window: Window, files: list[PartFile],
                   api_calls: dict[str, int], run_id: str, reached: int | None,
                   fetch_seconds: float, fields_seen: Iterable[str] | None = None, pages: int | None = None
                   ) -> dict[str, Any]:
    """Describe a partition: the files with counts and checksums, the window, the run, and the
    fields its records hold (what schema drift compares with the next complete landing)."""
    manifest: dict[str, Any] = {
        "entity": entity,
        "dt": day.isoformat(),
        "mode": window.mode.value,
        "records": sum(f.records for f in files),
        "files": [{"name": f.name, "records": f.records, "bytes": f.bytes, "sha256": f.sha256} for f in files],
        "window": {"field": "updated_at", "since": window.since, "reached": reached},
        "api_calls": dict(sorted(api_calls.items())),
        **({"pages": pages} if pages is not None else {}),
        "fetch_seconds": round(fetch_seconds, 3),
        "run_id": run_id,
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    if fields_seen is not None:
        manifest["fields_seen"] = sorted(fields_seen)
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest

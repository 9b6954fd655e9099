"""Writing a raw partition's manifest (its paths and reading live in core.raw_lake, which the jobs share)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from core.lake import MANIFEST
from ingestion.paginator import PartFile
from ingestion.watermarks import Window


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

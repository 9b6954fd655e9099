"""Write a raw lake partition straight from the sandbox generator, laid out as ingestion lands it.

Benchmarks need 350k games; through HTTP at IGDB's 4 req/s the popularity rows alone would take
far longer than the benchmark itself, so the records go from the generator to part files and manifests directly, in the
same layout (id-range part files, compact UTF-8 JSON lines, manifest with counts and sha256).
Generated lakes are cached under bench/out/ by size and seed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from core.entities import ENTITIES, LandingMode
from core.lake import LocalLake
from core.raw_lake import partition_path
from ingestion.landing import write_manifest
from ingestion.paginator import PartFile
from ingestion.sandbox.generator import (
    REFERENCE_ENTITIES,
    GeneratorSpec,
    generate_reference,
    iter_games,
    iter_popularity_primitives,
)
from ingestion.watermarks import Window

PARTS = 6


def write_entity(lake: LocalLake, entity: str, day: dt.date, records: Iterable[dict[str, Any]],
                  max_id: int, window: Window | None = None, reached: int | None = None) -> int:
    """One partition of records in ascending id; games land as a full refresh unless a window is given."""
    fields = set(ENTITIES[entity].fields)
    bounds = [max_id * i // PARTS for i in range(PARTS + 1)]
    with lake.staged_partition(partition_path(entity, day), "bench") as folder:
        handles: dict[int, Any] = {}
        stats: dict[int, list[Any]] = {}
        for record in records:
            part = next(p for p in range(PARTS) if record["id"] <= bounds[p + 1] or p == PARTS - 1)
            if part not in handles:
                handles[part] = open(folder / f"part-{len(handles):05d}.jsonl", "wb")
                stats[part] = [folder / f"part-{len(handles) - 1:05d}.jsonl", 0, 0, hashlib.sha256()]
            line = (json.dumps({k: v for k, v in record.items() if k in fields}, ensure_ascii=False,
                               separators=(",", ":")) + "\n").encode()
            handles[part].write(line)
            stats[part][1] += 1
            stats[part][2] += len(line)
            stats[part][3].update(line)
        for handle in handles.values():
            handle.close()
        files = [PartFile(p.name, p, n, size, sha.hexdigest()) for p, n, size, sha in stats.values()]
        if window is None:
            window = Window(LandingMode.FULL if entity == "games" else LandingMode.SNAPSHOT, None)
        write_manifest(folder, entity=entity, day=day, window=window, files=files, api_calls={},
                       run_id="bench", reached=reached, fetch_seconds=0.0)
    return sum(f.records for f in files)


def write_reference(lake: LocalLake, spec: GeneratorSpec, day: dt.date) -> dict[str, int]:
    """The six reference snapshots of `day`; record counts."""
    counts = {}
    for entity in REFERENCE_ENTITIES:
        rows = generate_reference(entity, spec)
        counts[entity] = write_entity(lake, entity, day, rows, max(r["id"] for r in rows))
    return counts


def write_raw_lake(root: Path, games: int, day: dt.date, seed: int = 42) -> dict[str, int]:
    """All eight entities of `day` for a generated catalogue of `games` games; record counts."""
    lake = LocalLake(root)
    spec = GeneratorSpec(games=games, seed=seed)
    counts = write_reference(lake, spec, day)
    game_ids: list[int] = []

    def games_seen() -> Iterable[dict[str, Any]]:
        for game in iter_games(spec):
            game_ids.append(game["id"])
            yield game

    # ids grow about 1.3 per game: the bound only shapes the part files, as ingestion's id ranges do
    counts["games"] = write_entity(lake, "games", day, games_seen(), int(games * 1.3) + 20)
    counts["popularity_primitives"] = write_entity(
        lake, "popularity_primitives", day, iter_popularity_primitives(spec), games * 11 + 20)
    return counts


def cached_raw_lake(games: int, day: dt.date, cache: Path) -> tuple[Path, dict[str, int]]:
    """A raw lake for `games` games, generated once and reused by later benchmark runs."""
    root = cache / f"raw-{games}-{day}"
    marker = root / "_counts.json"
    if marker.is_file():
        return root, json.loads(marker.read_text())
    counts = write_raw_lake(root, games, day)
    marker.write_text(json.dumps(counts))
    return root, counts

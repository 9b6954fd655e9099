"""Real IGDB responses (../shared/igdb-samples) served by the sandbox land exactly as IGDB sent them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from core.entities import ENTITIES
from ingestion.ingest import ingest
from ingestion.sandbox.store import Store
from tests.conftest import DAY, SAMPLES, landed_records, settings_for

SAMPLE_FILES = {
    "games": "yipyiphouray__igdb-rag-recommender__data_raw_games.json",
    "platforms": "yipyiphouray__igdb-rag-recommender__data_raw_platforms.json",
    "genres": "yipyiphouray__igdb-rag-recommender__data_raw_genres.json",
    "popularity_types": "yipyiphouray__igdb-rag-recommender__data_raw_popularity_types.json",
    "popularity_primitives": "yipyiphouray__igdb-rag-recommender__data_raw_popularity_primitives.json",
}


@pytest.fixture(scope="module")
def samples() -> dict[str, list[dict]]:
    if not SAMPLES.is_dir():
        pytest.fail(f"the shared IGDB samples are missing: expected them at {SAMPLES}")
    return {entity: json.loads((SAMPLES / name).read_text(encoding="utf-8")) for entity, name in SAMPLE_FILES.items()}


def test_samples_land_record_for_record(samples: dict[str, list[dict]], make_sandbox, tmp_path: Path) -> None:
    data_dir = tmp_path / "igdb-data"
    data_dir.mkdir()
    for entity, records in samples.items():
        with open(data_dir / f"{entity}.jsonl", "w", encoding="utf-8") as handle:
            handle.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    sandbox = make_sandbox(store=Store.from_dir(data_dir))
    lake = tmp_path / "lake"
    settings = settings_for(sandbox, lake, INGEST_ENTITIES=",".join(SAMPLE_FILES), INGEST_PARALLEL_RANGES=3)
    ingest(settings, DAY, "samples")

    for entity, records in samples.items():
        fields = set(ENTITIES[entity].fields)
        expected = sorted(({k: v for k, v in r.items() if k in fields} for r in records), key=lambda r: r["id"])
        landed = landed_records(lake, entity)
        assert [r["id"] for r in landed] == [r["id"] for r in expected], f"{entity}: ids differ"
        differing = [(a, b) for a, b in zip(landed, expected, strict=True) if a != b]
        assert not differing, f"{entity}: {len(differing)} records differ, first: {differing[0]}"
    raw = b"".join(p.read_bytes() for p in sorted((lake / "raw/games" / f"dt={DAY}").glob("part-*.jsonl")))
    assert "God of War Ragnarök".encode() in raw, "unicode must land as UTF-8, not \\u escapes"
    # a tiny value lands as an exact text of it, not rounded (in plain or exponent notation)
    texts = re.findall(rb'"value":([-0-9.eE+]+)', b"".join(
        p.read_bytes() for p in (lake / "raw/popularity_primitives" / f"dt={DAY}").glob("part-*.jsonl")))
    assert 8.958727144e-05 in {float(text) for text in texts}


def test_sandbox_refuses_data_files_it_cannot_serve(tmp_path: Path) -> None:
    (tmp_path / "games.jsonl").write_text('{"id": 1}\n{"name": "no id"}\n')
    with pytest.raises(ValueError, match=r"games.jsonl:2: a record needs an integer id"):
        Store.from_dir(tmp_path)
    (tmp_path / "games.jsonl").write_text('{"id": 1}\n{"id": 2,\n')
    with pytest.raises(ValueError, match=r"games.jsonl:2: not valid JSON"):
        Store.from_dir(tmp_path)

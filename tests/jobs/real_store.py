"""The sandbox's store built from real IGDB data (../shared/igdb-samples): what tests run on when
the generator's tidy values would hide how sparse and uneven real catalogues are."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ingestion.sandbox.generator import GeneratorSpec, generate_reference
from ingestion.sandbox.store import Store
from tests.conftest import SAMPLES

FILES = {
    "games": "yipyiphouray__igdb-rag-recommender__data_raw_games.json",
    "platforms": "yipyiphouray__igdb-rag-recommender__data_raw_platforms.json",
    "genres": "yipyiphouray__igdb-rag-recommender__data_raw_genres.json",
    "popularity_types": "yipyiphouray__igdb-rag-recommender__data_raw_popularity_types.json",
    "popularity_primitives": "yipyiphouray__igdb-rag-recommender__data_raw_popularity_primitives.json",
}
GAMES = 100


def real_store() -> Store:
    """The first 100 real games by id, their real popularity rows, the real genres, platforms and
    popularity types; themes, game modes and perspectives (not in the samples) as IGDB lists them
    (the generator's tables are IGDB's own ids and names)."""
    if not SAMPLES.is_dir():
        pytest.fail(f"the shared IGDB samples are missing: expected them at {SAMPLES}")
    data: dict[str, list[dict[str, Any]]] = {entity: json.loads((SAMPLES / name).read_text(encoding="utf-8"))
                                             for entity, name in FILES.items()}
    data["games"] = sorted(data["games"], key=lambda g: g["id"])[:GAMES]
    kept = {g["id"] for g in data["games"]}
    data["popularity_primitives"] = [p for p in data["popularity_primitives"] if p["game_id"] in kept]
    for entity in ("themes", "game_modes", "player_perspectives"):
        data[entity] = generate_reference(entity, GeneratorSpec())
    return Store(data)

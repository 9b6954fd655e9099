"""Tests of the sandbox data generator: determinism, referential integrity and realistic shape."""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from itertools import islice, pairwise
from pathlib import Path
from typing import Any

import pytest

from ingestion.sandbox import generator as gen
from ingestion.sandbox.generator import (
    DEFAULT_ANCHOR,
    REFERENCE_ENTITIES,
    GeneratorSpec,
    generate_dataset,
    generate_reference,
    iter_games,
    iter_popularity_primitives,
)

N_GAMES = 3000
TWO_YEARS = 2 * 365 * 86_400
REPO = Path(__file__).resolve().parents[2]
REFERENCE_FIELDS = {
    "genres": "genres", "themes": "themes", "platforms": "platforms",
    "game_modes": "game_modes", "player_perspectives": "player_perspectives",
}
CHILD_FIELDS = ("external_games", "involved_companies", "multiplayer_modes", "release_dates", "screenshots", "websites")


@pytest.fixture(scope="module")
def spec() -> GeneratorSpec:
    return GeneratorSpec(games=N_GAMES, seed=42)


@pytest.fixture(scope="module")
def data(spec: GeneratorSpec) -> dict[str, list[dict[str, Any]]]:
    return generate_dataset(spec)


@pytest.fixture(scope="module")
def games(data: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return data["games"]


def _digest(dataset: dict[str, list[dict[str, Any]]]) -> str:
    return hashlib.sha256(json.dumps(dataset, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def _walk(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every (path, value) pair inside a JSON-like value, containers included."""
    yield path, value
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _walk(item, f"{path}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _walk(item, f"{path}[{i}]")


def _tolerance(p: float, n: int) -> float:
    """Four binomial standard deviations plus a little slack: fails only if the generator drifted."""
    return 4 * math.sqrt(p * (1 - p) / n) + 0.005


# --- determinism -------------------------------------------------------------------------------

def test_same_spec_gives_identical_data() -> None:
    small = GeneratorSpec(games=300, seed=7)
    assert generate_dataset(small) == generate_dataset(small)


def test_different_seed_gives_different_games() -> None:
    a = list(iter_games(GeneratorSpec(games=50, seed=1)))
    b = list(iter_games(GeneratorSpec(games=50, seed=2)))
    assert [g["name"] for g in a] != [g["name"] for g in b]
    assert [g["id"] for g in a] != [g["id"] for g in b]
    assert sum(x == y for x, y in zip(a, b, strict=True)) == 0


def test_same_data_in_another_process_with_another_hash_seed() -> None:
    small = GeneratorSpec(games=200, seed=11)
    code = (
        "import hashlib, json\n"
        "from ingestion.sandbox.generator import GeneratorSpec, generate_dataset\n"
        "d = generate_dataset(GeneratorSpec(games=200, seed=11))\n"
        "print(hashlib.sha256(json.dumps(d, sort_keys=True, ensure_ascii=False).encode()).hexdigest())\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == _digest(generate_dataset(small))


def test_a_shorter_spec_is_a_prefix_of_a_longer_one(games: list[dict[str, Any]]) -> None:
    assert list(iter_games(GeneratorSpec(games=120, seed=42))) == games[:120]


def test_iter_games_is_lazy() -> None:
    first = list(islice(iter_games(GeneratorSpec(games=10**12)), 3))
    assert [g["id"] for g in first] == [g["id"] for g in iter_games(GeneratorSpec(games=3))]


def test_anchor_moves_the_timestamps() -> None:
    early = next(iter_games(GeneratorSpec(games=1, anchor=DEFAULT_ANCHOR - 1000)))
    late = next(iter_games(GeneratorSpec(games=1, anchor=DEFAULT_ANCHOR)))
    assert late["updated_at"] - early["updated_at"] == 1000


# --- counts, ids and references ----------------------------------------------------------------

def test_game_count_matches_spec(games: list[dict[str, Any]]) -> None:
    assert len(games) == N_GAMES
    assert list(iter_games(GeneratorSpec(games=0))) == []
    with pytest.raises(ValueError):
        GeneratorSpec(games=-1)


def test_ids_strictly_increasing_and_sparse(games: list[dict[str, Any]]) -> None:
    ids = [g["id"] for g in games]
    assert all(a < b for a, b in pairwise(ids))
    assert 1 <= ids[0] <= 13
    gaps = Counter(b - a for a, b in pairwise(ids))
    assert 1.25 < (ids[-1] - ids[0]) / (len(ids) - 1) < 1.35
    assert len(gaps) >= 3  # the gaps vary


def test_dataset_has_every_entity_sorted_by_id(data: dict[str, list[dict[str, Any]]]) -> None:
    assert set(data) == {*REFERENCE_ENTITIES, "games", "popularity_primitives"}
    for entity, rows in data.items():
        ids = [r["id"] for r in rows]
        assert ids == sorted(set(ids)), entity


def test_reference_entities_have_expected_sizes_and_unique_slugs(spec: GeneratorSpec) -> None:
    sizes = {"platforms": 220, "genres": 23, "themes": 22, "game_modes": 6, "player_perspectives": 7,
             "popularity_types": 11}
    for entity in REFERENCE_ENTITIES:
        rows = generate_reference(entity, spec)
        assert len(rows) == sizes[entity], entity
        if entity != "popularity_types":
            slugs = [r["slug"] for r in rows]
            assert len(set(slugs)) == len(slugs) and all(slugs), entity
    assert {r["id"] for r in generate_reference("popularity_types", spec)} == {*range(1, 11), 34}
    with pytest.raises(ValueError):
        generate_reference("companies", spec)


def test_platform_optional_fields_are_sometimes_absent(spec: GeneratorSpec) -> None:
    platforms = generate_reference("platforms", spec)
    n = len(platforms)
    assert abs(sum("abbreviation" in p for p in platforms) / n - 0.57) < 0.1
    assert abs(sum("generation" in p for p in platforms) / n - 0.48) < 0.1
    assert 0.1 < sum("platform_family" in p for p in platforms) / n < 0.4
    assert {p["slug"] for p in platforms} >= {"pc", "ps4", "switch"}


def test_games_reference_existing_ids(data: dict[str, list[dict[str, Any]]]) -> None:
    existing = {entity: {r["id"] for r in data[entity]} for entity in REFERENCE_FIELDS}
    for game in data["games"]:
        for field, entity in REFERENCE_FIELDS.items():
            values = game.get(field, [])
            assert set(values) <= existing[entity], (game["id"], field)
            assert values == sorted(set(values)), (game["id"], field)


def test_parent_and_version_parent_point_to_earlier_games(games: list[dict[str, Any]]) -> None:
    ids = {g["id"] for g in games}
    parents = [g for g in games if "parent_game" in g]
    assert parents
    for game in games:
        for field in ("parent_game", "version_parent"):
            if field in game:
                assert game[field] < game["id"] and game[field] in ids
    assert all(g["game_type"] != 0 for g in parents)


def test_child_ids_are_distinct_across_games(games: list[dict[str, Any]]) -> None:
    for field in (*CHILD_FIELDS, "cover"):
        values = [v for g in games for v in (g[field] if isinstance(g.get(field), list) else [g.get(field)])
                  if v is not None]
        assert len(values) == len(set(values)), field


# --- shape: no nulls, presence rates, lengths, values -------------------------------------------

def test_no_null_values_and_no_empty_arrays(data: dict[str, list[dict[str, Any]]]) -> None:
    for entity, rows in data.items():
        for row in rows:
            for path, value in _walk(row):
                assert value is not None, f"{entity}{path}"
                assert value != [] and value != "", f"{entity}{path}"


def test_games_only_use_known_fields(games: list[dict[str, Any]]) -> None:
    allowed = {
        "id", "name", "slug", "summary", "storyline", "first_release_date", "rating", "rating_count",
        "aggregated_rating", "aggregated_rating_count", "total_rating", "total_rating_count", "game_type",
        "game_status", "parent_game", "version_parent", "genres", "themes", "keywords", "platforms", "game_modes",
        "multiplayer_modes", "player_perspectives", "involved_companies", "cover", "screenshots", "external_games",
        "release_dates", "websites", "updated_at",
    }
    seen = set().union(*(g.keys() for g in games))
    assert seen == allowed


@pytest.mark.parametrize(("field", "target"), [
    ("storyline", 0.69), ("aggregated_rating", 0.938), ("aggregated_rating_count", 0.938),
    ("parent_game", 0.094), ("game_status", 0.022), ("version_parent", 0.002), ("multiplayer_modes", 0.442),
    ("themes", 0.998), ("keywords", 0.996), ("summary", 1.0), ("rating", 1.0), ("platforms", 1.0),
    ("genres", 1.0), ("first_release_date", 1.0), ("cover", 1.0), ("websites", 1.0), ("game_type", 1.0),
])
def test_presence_rates_follow_the_real_sample(games: list[dict[str, Any]], field: str, target: float) -> None:
    rate = sum(field in g for g in games) / len(games)
    assert abs(rate - target) <= _tolerance(target, len(games)), rate


@pytest.mark.parametrize(("field", "mean", "tol"), [
    ("genres", 2.37, 0.15), ("themes", 3.25, 0.2), ("platforms", 4.35, 0.3), ("game_modes", 1.84, 0.15),
    ("player_perspectives", 1.23, 0.1), ("involved_companies", 3.32, 0.3), ("screenshots", 8.27, 0.5),
    ("release_dates", 8.07, 0.5), ("websites", 9.63, 0.5), ("multiplayer_modes", 1.55, 0.15),
    ("keywords", 20.0, 1.5), ("external_games", 8.0, 0.7),
])
def test_array_lengths_keep_the_real_means(games: list[dict[str, Any]], field: str, mean: float, tol: float) -> None:
    lengths = [len(g[field]) for g in games if field in g]
    assert abs(sum(lengths) / len(lengths) - mean) <= tol


def test_value_types_and_ranges(games: list[dict[str, Any]], spec: GeneratorSpec) -> None:
    earliest, latest = 315_532_800, spec.anchor + 365 * 86_400
    for g in games:
        for field in ("rating", "total_rating", "aggregated_rating"):
            if field in g:
                assert type(g[field]) is float and 0 < g[field] <= 100, field
        for field in ("rating_count", "aggregated_rating_count", "total_rating_count", "game_type", "cover"):
            if field in g:
                assert type(g[field]) is int and g[field] >= 0, field
        assert g["total_rating_count"] == g["rating_count"] + g.get("aggregated_rating_count", 0)
        assert earliest <= g["first_release_date"] <= latest and g["first_release_date"] % 86_400 == 0
        assert spec.anchor - TWO_YEARS <= g["updated_at"] <= spec.anchor
        assert all(type(v) is int for f in (*REFERENCE_FIELDS, *CHILD_FIELDS, "keywords") for v in g.get(f, []))
    upcoming = sum(g["first_release_date"] > spec.anchor for g in games) / len(games)
    assert 0.01 < upcoming < 0.08


def test_text_lengths_look_like_igdb(games: list[dict[str, Any]]) -> None:
    summaries = [len(g["summary"]) for g in games]
    assert 450 < sum(summaries) / len(summaries) < 620
    stories = [g["storyline"] for g in games if "storyline" in g]
    assert sum(map(len, stories)) / len(stories) > 700
    assert any("\n\n" in s for s in stories)
    assert 0.1 < sum(not g["summary"].isascii() for g in games) / len(games) < 0.35


def test_reference_updated_at_in_range(data: dict[str, list[dict[str, Any]]], spec: GeneratorSpec) -> None:
    for entity in REFERENCE_ENTITIES:
        assert all(spec.anchor - TWO_YEARS <= r["updated_at"] <= spec.anchor for r in data[entity]), entity


# --- names and slugs ---------------------------------------------------------------------------

def test_slugs_unique_and_url_safe(games: list[dict[str, Any]]) -> None:
    slugs = [g["slug"] for g in games]
    assert len(set(slugs)) == len(slugs)
    assert all(s.isascii() and s == s.lower() and " " not in s and s.strip("-") == s for s in slugs)


def test_names_include_realistic_unicode(games: list[dict[str, Any]]) -> None:
    names = [g["name"] for g in games]
    assert 0.03 < sum(not n.isascii() for n in names) / len(names) < 0.08
    assert any(any("\u3040" <= c <= "\u9fff" for c in n) for n in names)  # Japanese
    assert any("é" in n or "ö" in n for n in names)
    assert len(set(names)) > 0.95 * len(names)


def test_whole_name_space_gives_unique_slugs() -> None:
    prefixes, nouns, tails = gen._PREFIX_SLUGS, gen._NOUN_SLUGS, gen._TAIL_SLUGS
    slugs = {f"{p}-{n}{t}" for p in prefixes for n in nouns for t in tails}
    assert len(slugs) == gen._NAME_SPACE == len(prefixes) * len(nouns) * len(tails)
    assert not any("--" in s for s in slugs)  # so the "--<id>" slugs can never collide with them


def test_games_past_the_name_space_get_an_id_suffix() -> None:
    spec = GeneratorSpec(seed=3)
    ctx = gen._context(spec)
    index = gen._NAME_SPACE + 5
    game = gen._make_game(ctx, index, random.Random())
    assert game["slug"].endswith(f"--{game['id']}")
    assert game["id"] == gen._game_id(spec.seed, index) > gen._game_id(spec.seed, index - 1)


# --- popularity primitives ---------------------------------------------------------------------

def test_popularity_rows_point_to_games_and_types(data: dict[str, list[dict[str, Any]]], spec: GeneratorSpec) -> None:
    rows = data["popularity_primitives"]
    game_ids = {g["id"] for g in data["games"]}
    source_of = {t["id"]: t["external_popularity_source"] for t in data["popularity_types"]}
    assert [r["id"] for r in rows] == list(range(1, len(rows) + 1))
    assert len({(r["game_id"], r["popularity_type"]) for r in rows}) == len(rows)
    for r in rows:
        assert r["game_id"] in game_ids
        assert r["external_popularity_source"] == source_of[r["popularity_type"]]
        assert type(r["value"]) is float and 0.0 <= r["value"] < 1.0
        assert r["calculated_at"] == spec.anchor and 1 <= r["updated_at"] - r["calculated_at"] <= 9
    assert set(source_of.values()) == {121, 1, 14}


@pytest.mark.parametrize(("type_id", "target"), [(1, 0.998), (2, 1.0), (4, 1.0), (5, 0.62), (8, 0.62),
                                                 (9, 0.53), (34, 0.95)])
def test_popularity_type_rates(data: dict[str, list[dict[str, Any]]], type_id: int, target: float) -> None:
    games_with_type = {r["game_id"] for r in data["popularity_primitives"] if r["popularity_type"] == type_id}
    rate = len(games_with_type) / len(data["games"])
    assert abs(rate - target) <= _tolerance(target, len(data["games"])) + 0.01, rate


def test_popularity_values_have_real_magnitudes(data: dict[str, list[dict[str, Any]]]) -> None:
    by_type: dict[int, list[float]] = {}
    for r in data["popularity_primitives"]:
        by_type.setdefault(r["popularity_type"], []).append(r["value"])
    for type_id, (low, high) in {1: (-4.3, -3.7), 4: (-3.4, -3.05), 5: (-4.6, -3.7), 34: (-5.1, -4.1)}.items():
        positive = sorted(v for v in by_type[type_id] if v > 0)
        median = math.log10(positive[len(positive) // 2])
        assert low < median < high, (type_id, median)
    unit = 4.835613325e-06  # "Visits" are whole multiples of one unit, like the real shares
    assert all(abs(v / unit - round(v / unit)) < 1e-6 for v in by_type[1])


def test_popularity_default_games_match_the_dataset(data: dict[str, list[dict[str, Any]]]) -> None:
    small = GeneratorSpec(games=200, seed=42)
    rows = list(iter_popularity_primitives(small))
    ids = {g["id"] for g in data["games"][:200]}
    assert rows == data["popularity_primitives"][: len(rows)]
    assert {r["game_id"] for r in rows} == ids


def test_dataset_is_json_round_trippable(data: dict[str, list[dict[str, Any]]]) -> None:
    sample = {k: v[:200] for k, v in data.items()}
    assert json.loads(json.dumps(sample, ensure_ascii=False)) == sample

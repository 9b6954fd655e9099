"""Marts: the catalogue merge, names, the popularity fact and the marketing marts' definitions."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from chispa import assert_df_equality

from jobs.datasets import GAME_COLUMNS, Layer, dataset
from jobs.transform import marts

DAY = dt.date(2026, 11, 20)
GAME_SCHEMA = dataset(Layer.STAGING, "games").schema


def games(spark, *rows: dict[str, Any]):
    """Catalogue rows with every declared column; unspecified ones null (arrays empty, counts 0)."""
    defaults: dict[str, Any] = {name: None for name, _, _ in GAME_COLUMNS}
    defaults.update({c: [] for c in ("platform_ids", "genre_ids", "theme_ids", "game_mode_ids",
                                     "player_perspective_ids")})
    defaults.update(keyword_count=0, screenshot_count=0, website_count=0, updated_at=dt.datetime(2026, 1, 1))
    return spark.createDataFrame([{**defaults, **r} for r in rows], GAME_SCHEMA)


def popularity(spark, *rows: tuple[int, int, float]):
    data = [(g, t, DAY, v, 121, None) for g, t, v in rows]
    return spark.createDataFrame(data, dataset(Layer.STAGING, "popularity_primitives").schema)


def test_incremental_merge_keeps_the_newest_version_of_each_game(spark) -> None:
    old = dt.datetime(2026, 1, 1)
    new = dt.datetime(2026, 11, 20)
    previous = games(spark, {"game_id": 1, "name": "a v1", "updated_at": old},
                     {"game_id": 2, "name": "b", "updated_at": old},
                     {"game_id": 3, "name": "c newer in the catalogue", "updated_at": new})
    changes = games(spark, {"game_id": 1, "name": "a v2", "updated_at": new},
                    {"game_id": 3, "name": "c stale change", "updated_at": old},
                    {"game_id": 4, "name": "d", "updated_at": new},
                    {"game_id": 5, "name": "e same stamp, changed on D", "updated_at": old})
    previous = previous.unionByName(games(spark, {"game_id": 5, "name": "e", "updated_at": old}))
    merged = marts.merge_catalogue(previous, changes, full_refresh=False)
    assert sorted((r["game_id"], r["name"]) for r in merged.collect()) == [
        (1, "a v2"), (2, "b"), (3, "c newer in the catalogue"), (4, "d"), (5, "e same stamp, changed on D")]
    assert merged.columns == marts.GAME_COLUMN_NAMES
    # a full refresh replaces every game it lists, a stale version too (game 3); game 2, which it does
    # not list, keeps its row here: jobs/transform/deletions.py decides whether it is gone (test_deletions.py)
    refreshed = marts.merge_catalogue(previous, changes, full_refresh=True)
    assert sorted((r["game_id"], r["name"]) for r in refreshed.collect()) == [
        (1, "a v2"), (2, "b"), (3, "c stale change"), (4, "d"), (5, "e same stamp, changed on D")]


def test_reference_names_are_resolved_in_id_order(spark) -> None:
    catalogue = games(spark, {"game_id": 1, "platform_ids": [6, 48, 999], "genre_ids": [5]},
                      {"game_id": 2})
    named = marts.resolve_names(catalogue, {"platforms": {6: "PC (Microsoft Windows)", 48: "PlayStation 4"},
                                            "genres": {5: "Shooter"}})
    rows = {r["game_id"]: r for r in named.collect()}
    assert rows[1]["platform_names"] == ["PC (Microsoft Windows)", "PlayStation 4"]  # 999 is an orphan
    assert rows[1]["genre_names"] == ["Shooter"]
    assert rows[1]["theme_names"] == [] and rows[2]["platform_names"] == []


def test_popularity_fact_pivots_types_and_ranks_percentiles(spark) -> None:
    facts = marts.popularity_fact(popularity(spark, (1, 1, 0.5), (1, 2, 0.1), (2, 1, 0.7), (3, 1, 0.2),
                                             (3, 34, 9.0)), DAY)
    rows = {r["game_id"]: r for r in facts.collect()}
    assert (rows[1]["visits"], rows[1]["want_to_play"], rows[3]["hours_watched_24h"]) == (0.5, 0.1, 9.0)
    assert (rows[3]["visits_pct"], rows[1]["visits_pct"], rows[2]["visits_pct"]) == (0.0, 0.5, 1.0)
    assert rows[2]["want_to_play"] is None and rows[2]["want_to_play_pct"] is None
    assert rows[1]["want_to_play_pct"] == 0.0  # the only game with that signal
    assert {r["snapshot_date"] for r in rows.values()} == {DAY}


def test_the_fact_counts_repeated_and_unchecked_staging_keys_per_game(spark) -> None:
    facts = marts.popularity_fact(popularity(spark, (1, 1, 0.5), (1, 2, 0.1), (2, 1, 0.7), (2, 1, 0.8),
                                             (2, 0, 0.1), (2, 62, 0.3), (3, 63, 1.0), (3, 63, 2.0), (4, -1, 0.0)),
                                  DAY, count_key_repeats=True)
    counts = {r["game_id"]: (r[marts.KEY_REPEATS], r[marts.KEY_UNCHECKED]) for r in facts.collect()}
    # type 1 twice for game 2; types 0 and 62 are the ends of what one long's bits can tell apart
    assert counts == {1: (0, 0), 2: (1, 0), 3: (0, 2), 4: (0, 1)}
    assert marts.KEY_REPEATS not in marts.popularity_fact(popularity(spark, (1, 1, 0.5)), DAY).columns


def test_percentiles_break_ties_by_game_id_and_skip_games_without_a_value(spark) -> None:
    facts = marts.popularity_fact(popularity(spark, (1, 1, 0.5), (2, 1, 0.5), (3, 1, None), (4, 1, 0.2),
                                             (4, 2, 0.3), (5, 99, 1.0)), DAY)
    rows = {r["game_id"]: r for r in facts.collect()}
    assert {g: rows[g]["visits_pct"] for g in (1, 2, 3, 4)} == {4: 0.0, 1: 0.5, 2: 1.0, 3: None}
    assert rows[3]["visits"] is None
    assert rows[4]["want_to_play_pct"] == 0.0 and rows[1]["want_to_play_pct"] is None
    # a type the fact does not name leaves the game's row empty, not missing
    assert all(rows[5][c] is None for c in ("visits", "visits_pct", "want_to_play")) and len(rows) == 5


def test_top_rated_uses_the_weighted_rating_and_breaks_ties_by_votes_then_id(spark) -> None:
    catalogue = games(spark,
                      {"game_id": 1, "total_rating": 99.0, "total_rating_count": 10},  # few votes: pulled to the mean
                      {"game_id": 2, "total_rating": 90.0, "total_rating_count": 2000},
                      {"game_id": 3, "total_rating": 70.0, "total_rating_count": 500},
                      {"game_id": 4, "total_rating": 70.0, "total_rating_count": 500},
                      {"game_id": 5, "total_rating": 100.0, "total_rating_count": 3})  # under MIN_VOTES
    top = marts.top_rated(catalogue, DAY, 10).orderBy("rank").collect()
    assert [r["game_id"] for r in top] == [2, 1, 3, 4]
    assert [r["rank"] for r in top] == [1, 2, 3, 4]
    mean = (99 + 90 + 70 + 70 + 100) / 5
    assert top[1]["weighted_rating"] == pytest.approx((10 * 99 + 50 * mean) / 60)


def test_top_hyped_ranks_unreleased_games_by_want_to_play(spark) -> None:
    later, earlier = dt.date(2027, 3, 1), dt.date(2020, 1, 1)
    catalogue = games(spark, {"game_id": 1, "first_release_date": later}, {"game_id": 2, "first_release_date": later},
                      {"game_id": 3, "first_release_date": earlier}, {"game_id": 4, "first_release_date": None})
    facts = marts.popularity_fact(popularity(spark, (1, 2, 0.2), (2, 2, 0.4), (3, 2, 0.9), (4, 2, 0.8)), DAY)
    top = marts.top_hyped(catalogue, facts, DAY, 10).orderBy("rank").collect()
    assert [r["game_id"] for r in top] == [2, 1]


def test_trending_blends_activity_with_momentum_since_the_previous_snapshot(spark) -> None:
    released = dt.date(2020, 1, 1)
    catalogue = games(spark, *({"game_id": g, "first_release_date": released} for g in (1, 2, 3)))
    today = marts.popularity_fact(popularity(spark, (1, 3, 0.3), (2, 3, 0.2), (3, 3, 0.1),
                                             (1, 1, 0.1), (2, 1, 0.9), (3, 1, 0.5)), DAY)
    before = marts.popularity_fact(popularity(spark, (1, 1, 0.9), (2, 1, 0.1), (3, 1, 0.5)), DAY)
    ranked = marts.trending_now(catalogue, today, before, DAY, 10).orderBy("rank").collect()
    scores = {r["game_id"]: (r["activity_score"], r["momentum"], r["trend_score"]) for r in ranked}
    assert scores[1] == pytest.approx((1.0, -1.0, 0.4))
    assert scores[2] == pytest.approx((0.5, 1.0, 0.65))
    assert [r["game_id"] for r in ranked] == [2, 1, 3]
    without_history = marts.trending_now(catalogue, today, None, DAY, 10)
    assert {r["momentum"] for r in without_history.collect()} == {0.0}


def test_hidden_gems_are_good_and_little_visited(spark) -> None:
    released = dt.date(2020, 1, 1)
    catalogue = games(spark,
                      {"game_id": 1, "first_release_date": released, "total_rating": 92.0, "total_rating_count": 40},
                      {"game_id": 2, "first_release_date": released, "total_rating": 95.0, "total_rating_count": 900},
                      {"game_id": 3, "first_release_date": released, "total_rating": 60.0, "total_rating_count": 40},
                      {"game_id": 4, "first_release_date": released, "total_rating": 85.0, "total_rating_count": 40})
    facts = marts.popularity_fact(popularity(spark, (1, 1, 0.1), (2, 1, 0.9), (3, 1, 0.2), (4, 1, 0.15)), DAY)
    gems = marts.hidden_gems(catalogue, facts, DAY, 10).orderBy("rank").collect()
    assert [r["game_id"] for r in gems] == [1, 4]  # 2 is popular, 3 is not good enough


def test_marts_are_the_same_on_a_rerun(spark) -> None:
    catalogue = games(spark, *({"game_id": g, "total_rating": 80.0, "total_rating_count": 100} for g in range(1, 30)))
    first = marts.top_rated(catalogue, DAY, 5)
    assert_df_equality(first, marts.top_rated(catalogue, DAY, 5), ignore_row_order=True)
    assert [r["game_id"] for r in first.orderBy("rank").collect()] == [1, 2, 3, 4, 5]

"""Staging tables -> marts. Pure DataFrame functions; definitions documented in the README.

Every ranking breaks ties deterministically (ending with game_id ascending), so a rerun of a
date produces the same rows in the same ranks.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from jobs.datasets import BRIDGES, GAME_COLUMNS, POPULARITY_COLUMNS, RANKED_POPULARITY

GAME_COLUMN_NAMES = [name for name, _, _ in GAME_COLUMNS]

# The catalogue columns the marketing marts read (the transform caches only these).
CATALOGUE_COLUMNS = ("game_id", "name", "first_release_date", "total_rating", "total_rating_count")

# Bayesian prior of the weighted rating: a game needs about this many votes to be trusted.
PRIOR_VOTES = 50
MIN_VOTES = 10
GEM_MIN_RATING = 80.0
GEM_MIN_VOTES = 5
GEM_MAX_VISITS_PCT = 0.5


def merge_catalogue(previous: DataFrame | None, changes: DataFrame, full_refresh: bool,
                    columns: Sequence[str] = GAME_COLUMN_NAMES) -> DataFrame:
    """The catalogue as of D: the previous catalogue with D's changed games, latest updated_at wins.

    A full refresh of D replaces every game it lists; the earlier rows of the games it does not
    list stay as they are (jobs/transform/deletions.py marks those it shows deleted: a row is never dropped
    for being absent, since a quarantined line is absent too). On equal updated_at the change of
    D wins over the previous catalogue. Both sides hold one row per game_id; each is filtered by
    the other's (game_id, updated_at) pairs, so only those narrow pairs move (a day changes a small
    share of the wide rows: ranking their union would shuffle them all). `columns`: what
    both sides hold and the result keeps (the staged game columns, or whole catalogue rows with
    their names and fingerprints).
    """
    changes = changes.select(*columns)
    if previous is None:
        return changes
    previous = previous.select(*columns)
    if full_refresh:
        unlisted = previous.join(F.broadcast(changes.select("game_id")), "game_id", "left_anti")
        return unlisted.unionByName(changes)
    changed_at = changes.select("game_id", F.col("updated_at").alias("_changed_at"))
    kept_at = previous.select("game_id", F.col("updated_at").alias("_kept_at"))
    still_newest = (previous.join(changed_at, "game_id", "left")
                    .where(F.col("_changed_at").isNull() | (F.col("updated_at") > F.col("_changed_at"))))
    newer = (changes.join(kept_at, "game_id", "left")
             .where(F.col("_kept_at").isNull() | (F.col("updated_at") >= F.col("_kept_at"))))
    return still_newest.select(*columns).unionByName(newer.select(*columns))


def _names(ids: Column, names: Mapping[int, str]) -> Column:
    if not names:
        return F.array().cast(T.ArrayType(T.StringType()))
    lookup = F.create_map(*[F.lit(x) for pair in sorted(names.items()) for x in pair])
    return F.filter(F.transform(ids, lambda i: F.element_at(lookup, i)), lambda n: n.isNotNull())


def resolve_names(games: DataFrame, names: Mapping[str, Mapping[int, str]]) -> DataFrame:
    """Add `<ref>_names` arrays (platforms, genres, ...) next to the id arrays, in id order.

    `names` maps each reference entity to {id: name}; the tables are tiny, so the lookup is a map
    literal evaluated per row rather than an explode-join-collect (no shuffle of the catalogue).
    Ids with no name (a reference row missing from D's snapshot) are left out of the names and
    reported by validation as orphans.
    """
    out = games
    for _, entity, id_col, _ in BRIDGES:
        stem = id_col.removesuffix("_id")
        out = out.withColumn(f"{stem}_names", _names(F.col(f"{stem}_ids"), names.get(entity, {})))
    return out


# Helper columns of popularity_fact(count_key_repeats=True), dropped when the fact is written.
KEY_REPEATS = "_key_repeats"
KEY_UNCHECKED = "_key_unchecked"


def key_repeat_counts(kind: Column) -> tuple[Column, Column]:
    """Per game (aggregates over its staging rows): the rows beyond one per popularity type, and the
    rows whose type this cannot check. 0 and 0 for every game means (game_id, popularity_type) is
    a key. The types seen are the bits of one long, so the check rides on the fact's own
    aggregation instead of a shuffle of its own; IGDB's type ids are small, and a type outside
    0..62 is counted as unchecked (a reason to count the keys the slow way)."""
    checked = kind.between(0, 62)
    seen = F.bit_or(F.when(checked, F.call_function("shiftleft", F.lit(1).cast(T.LongType()), kind)))
    repeats = F.count_if(checked) - F.coalesce(F.bit_count(seen), F.lit(0))
    return repeats.alias(KEY_REPEATS), F.count_if(~checked).alias(KEY_UNCHECKED)


def popularity_fact(popularity: DataFrame, day: dt.date, count_key_repeats: bool = False) -> DataFrame:
    """One row per game for D: each popularity type a named column, plus percentile ranks (0..1).

    A type's percentile is the game's percent_rank among the games with a value of that type
    (ties broken by game_id). The ranks are computed on the long rows, one window partition per
    ranked type, before pivoting: six narrow sorts side by side instead of six sorts of the wide
    rows one after the other; the rows no rank needs (other types, missing values) bypass the sort.
    """
    kind, value = F.col("popularity_type"), F.col("value")
    ranked_types = {t: c for t, c in POPULARITY_COLUMNS.items() if c in RANKED_POPULARITY}
    rankable = value.isNotNull() & kind.isin(list(ranked_types))
    ranked = popularity.where(rankable).withColumn(
        "_pct", F.percent_rank().over(Window.partitionBy(kind).orderBy(value, F.col("game_id"))))
    # a game with only types not named here still gets its row (all nulls), as in a pivot
    unranked = popularity.where(~rankable).withColumn("_pct", F.lit(None).cast(T.DoubleType()))
    # (game_id, popularity_type) is staging's key: each max below sees at most one row
    wide = ranked.unionByName(unranked).groupBy("game_id").agg(
        *[F.max(F.when(kind == t, value)).alias(c) for t, c in POPULARITY_COLUMNS.items()],
        *[F.max(F.when(kind == t, F.col("_pct"))).alias(f"{c}_pct") for t, c in ranked_types.items()],
        *(key_repeat_counts(kind) if count_key_repeats else ()),
    )
    return wide.withColumn("snapshot_date", F.lit(day).cast(T.DateType()))


def _top(df: DataFrame, day: dt.date, order: list[Column], n: int) -> DataFrame:
    """The first n rows by `order` (ties end with game_id), ranked 1..n, stamped with D."""
    ordered = [*order, F.col("game_id").asc()]
    top = df.orderBy(*ordered).limit(n)
    # n rows at most: one window partition is right here (the literal silences Spark's warning)
    return (top.withColumn("rank", F.row_number().over(Window.partitionBy(F.lit(0)).orderBy(*ordered)))
            .withColumn("snapshot_date", F.lit(day).cast(T.DateType())))


def with_weighted_rating(games: DataFrame) -> DataFrame:
    """Bayesian average: (v*R + m*C) / (v + m), R the game's total_rating over v votes, C the mean."""
    rated = F.col("total_rating").isNotNull() & (F.col("total_rating_count") > 0)
    mean = games.where(rated).agg(F.avg("total_rating").alias("_mean"))
    v, r = F.col("total_rating_count"), F.col("total_rating")
    return (games.crossJoin(F.broadcast(mean))
            .withColumn("weighted_rating", F.when(rated, (v * r + F.lit(PRIOR_VOTES) * F.col("_mean"))
                                                  / (v + F.lit(PRIOR_VOTES))))
            .drop("_mean"))


def top_rated(catalogue: DataFrame, day: dt.date, n: int) -> DataFrame:
    candidates = with_weighted_rating(catalogue).where(F.col("total_rating_count") >= MIN_VOTES)
    return _top(candidates, day, [F.col("weighted_rating").desc(), F.col("total_rating_count").desc()], n)


def top_hyped(catalogue: DataFrame, popularity: DataFrame, day: dt.date, n: int) -> DataFrame:
    """Unreleased games (release date after D) most people want to play."""
    upcoming = catalogue.where(F.col("first_release_date") > F.lit(day)).select("game_id", "name",
                                                                                "first_release_date")
    joined = upcoming.join(popularity.select("game_id", "want_to_play", "visits", "want_to_play_pct"), "game_id")
    joined = joined.where(F.col("want_to_play").isNotNull()).withColumnRenamed("want_to_play_pct", "hype_score")
    return _top(joined, day, [F.col("want_to_play").desc(), F.col("visits").desc_nulls_last()], n)


def trending_now(catalogue: DataFrame, popularity: DataFrame, previous: DataFrame | None, day: dt.date,
                 n: int) -> DataFrame:
    """Released games most played and watched now, lifted by their rise in visits since the last snapshot.

    activity = mean of the present percentiles of playing, 24h peak players and 24h hours watched;
    momentum = visits percentile now minus at the previous snapshot (0 without one);
    trend_score = 0.7 * activity + 0.3 * momentum.
    """
    released = catalogue.where(F.col("first_release_date") <= F.lit(day)).select("game_id", "name")
    signals = [F.col(c) for c in ("playing_pct", "peak_players_24h_pct", "hours_watched_24h_pct")]
    present = sum((F.when(s.isNotNull(), 1).otherwise(0) for s in signals), F.lit(0))
    total = sum((F.coalesce(s, F.lit(0.0)) for s in signals), F.lit(0.0))
    now = popularity.select("game_id", "visits_pct", *signals).withColumn(
        "activity_score", F.when(present > 0, total / present).otherwise(F.lit(0.0)))
    if previous is not None:
        now = now.join(previous.select("game_id", F.col("visits_pct").alias("_before")), "game_id", "left")
    else:
        now = now.withColumn("_before", F.lit(None).cast(T.DoubleType()))
    now = now.withColumn("momentum", F.coalesce(F.col("visits_pct") - F.col("_before"), F.lit(0.0)))
    scored = released.join(now, "game_id").withColumn(
        "trend_score", F.lit(0.7) * F.col("activity_score") + F.lit(0.3) * F.col("momentum"))
    return _top(scored, day, [F.col("trend_score").desc(), F.col("activity_score").desc()], n)


def hidden_gems(catalogue: DataFrame, popularity: DataFrame, day: dt.date, n: int) -> DataFrame:
    """Released, rated at least 80 by at least 5 voters, in the less visited half: best weighted first."""
    rated = with_weighted_rating(catalogue).where(
        (F.col("first_release_date") <= F.lit(day))
        & (F.col("total_rating") >= GEM_MIN_RATING)
        & (F.col("total_rating_count") >= GEM_MIN_VOTES)
    )
    quiet = rated.join(popularity.select("game_id", "visits_pct"), "game_id").where(
        F.col("visits_pct") <= GEM_MAX_VISITS_PCT)
    return _top(quiet, day, [F.col("weighted_rating").desc(), F.col("total_rating_count").desc()], n)

"""Explicit schemas of the raw IGDB entities (never inferred): what a valid raw line must hold.

Each schema lists the fields ingestion asks IGDB for (core/entities.py), with IGDB's types.
A line whose value does not fit its field's type is quarantined, not silently nulled.
"""

from __future__ import annotations

from pyspark.sql import types as T

CORRUPT = "_corrupt_record"

_ids = T.ArrayType(T.LongType())


def _struct(*fields: tuple[str, T.DataType]) -> T.StructType:
    return T.StructType([T.StructField(name, kind) for name, kind in fields])


_NAMED = (("id", T.LongType()), ("name", T.StringType()), ("slug", T.StringType()), ("updated_at", T.LongType()))

RAW_SCHEMAS: dict[str, T.StructType] = {
    "games": _struct(
        ("id", T.LongType()),
        ("name", T.StringType()),
        ("slug", T.StringType()),
        ("summary", T.StringType()),
        ("storyline", T.StringType()),
        ("first_release_date", T.LongType()),
        ("rating", T.DoubleType()),
        ("rating_count", T.LongType()),
        ("aggregated_rating", T.DoubleType()),
        ("aggregated_rating_count", T.LongType()),
        ("total_rating", T.DoubleType()),
        ("total_rating_count", T.LongType()),
        ("game_type", T.LongType()),
        ("game_status", T.LongType()),
        ("parent_game", T.LongType()),
        ("version_parent", T.LongType()),
        ("genres", _ids),
        ("themes", _ids),
        ("keywords", _ids),
        ("platforms", _ids),
        ("game_modes", _ids),
        ("multiplayer_modes", _ids),
        ("player_perspectives", _ids),
        ("involved_companies", _ids),
        ("cover", T.LongType()),
        ("screenshots", _ids),
        ("external_games", _ids),
        ("release_dates", _ids),
        ("websites", _ids),
        ("updated_at", T.LongType()),
    ),
    "platforms": _struct(*_NAMED, ("abbreviation", T.StringType()), ("generation", T.LongType()),
                         ("platform_family", T.LongType())),
    "genres": _struct(*_NAMED),
    "themes": _struct(*_NAMED),
    "game_modes": _struct(*_NAMED),
    "player_perspectives": _struct(*_NAMED),
    "popularity_types": _struct(("id", T.LongType()), ("name", T.StringType()),
                                ("external_popularity_source", T.LongType()), ("updated_at", T.LongType())),
    "popularity_primitives": _struct(
        ("id", T.LongType()),
        ("game_id", T.LongType()),
        ("popularity_type", T.LongType()),
        ("external_popularity_source", T.LongType()),
        ("value", T.DoubleType()),
        ("calculated_at", T.LongType()),
        ("updated_at", T.LongType()),
    ),
}


def with_corrupt_column(schema: T.StructType) -> T.StructType:
    """The parse schema: the entity's fields plus the column Spark fills with a line it cannot fit."""
    return T.StructType([*schema.fields, T.StructField(CORRUPT, T.StringType())])

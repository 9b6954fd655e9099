"""What we pull from IGDB: one declaration per entity (endpoint, fields, how it is landed)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class LandingMode(StrEnum):
    FULL = "full"  # every record of an incremental entity (first run, periodic refresh, --full-refresh)
    INCREMENTAL = "incremental"  # records updated since the watermark minus the safety margin
    SNAPSHOT = "snapshot"  # every record, every run (reference entities, the daily popularity series)


@dataclass(frozen=True)
class EntitySpec:
    name: str
    fields: tuple[str, ...]
    incremental: bool = False  # pulled by updated_at from a stored watermark
    large: bool = False  # walked as several id ranges at once
    # fields IGDB documents for the endpoint that the marts do not use: known, so schema drift
    # (ingestion/drift.py) reports only fields that are new to IGDB, not these every day
    unused_fields: tuple[str, ...] = ("checksum", "created_at", "url")

    @property
    def endpoint(self) -> str:
        return self.name


_NAMED = ("id", "name", "slug", "updated_at")

ENTITIES: dict[str, EntitySpec] = {
    spec.name: spec
    for spec in (
        EntitySpec("platforms", ("id", "name", "slug", "abbreviation", "generation", "platform_family", "updated_at"),
                   unused_fields=("alternative_name", "category", "checksum", "created_at", "platform_logo",
                                  "platform_type", "summary", "url", "versions", "websites")),
        EntitySpec("genres", _NAMED),
        EntitySpec("themes", _NAMED),
        EntitySpec("game_modes", _NAMED),
        EntitySpec("player_perspectives", _NAMED),
        EntitySpec("popularity_types", ("id", "name", "external_popularity_source", "updated_at"),
                   unused_fields=("checksum", "created_at", "popularity_source")),
        EntitySpec(
            "games",
            (
                "id", "name", "slug", "summary", "storyline", "first_release_date", "rating", "rating_count",
                "aggregated_rating", "aggregated_rating_count", "total_rating", "total_rating_count",
                "game_type", "game_status", "parent_game", "version_parent", "genres", "themes", "keywords",
                "platforms", "game_modes", "multiplayer_modes", "player_perspectives", "involved_companies",
                "cover", "screenshots", "external_games", "release_dates", "websites", "updated_at",
            ),
            incremental=True,
            large=True,
            unused_fields=(
                "age_ratings", "alternative_names", "artworks", "bundles", "category", "checksum", "collection",
                "collections", "created_at", "dlcs", "expanded_games", "expansions", "follows", "forks", "franchise",
                "franchises", "game_engines", "game_localizations", "hypes", "language_supports", "ports", "remakes",
                "remasters", "similar_games", "standalone_expansions", "status", "tags", "url", "version_title",
                "videos",
            ),
        ),
        EntitySpec(
            "popularity_primitives",
            ("id", "game_id", "popularity_type", "external_popularity_source", "value", "calculated_at",
             "updated_at"),
            large=True,
            unused_fields=("checksum", "created_at", "popularity_source"),
        ),
    )
}

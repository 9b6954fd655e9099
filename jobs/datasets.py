"""One declaration per output dataset: name, layer, schema, key, and how it is loaded.

The same declaration drives the writer (path, partition, exact columns and types, file count),
the validation suite (jobs/validate/suites.py: key unique and not null, exact column set and types, plus
the value rules declared here in `checks`) and the PostgreSQL upsert (conflict key, newer-wins
column, replace-the-set bridges, replace-the-date time series).

The dimensions (`dim_games`, `dim_<entity>`) keep a row for what was deleted: `deleted_at` is the
date whose complete source no longer had it (null while live). The marts that follow a dimension's
deletions (`follows_deletions_of`) never hold a deleted row's key, in the lake or in PostgreSQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from pyspark.sql import types as T

from core.entities import ENTITIES
from jobs.fingerprint import FINGERPRINT

PARTITION = "dt"
DELETED_AT = "deleted_at"  # on the dimensions: the date that found the row gone, null while live


class Layer(StrEnum):
    STAGING = "staging"
    QUARANTINE = "quarantine"
    MARTS = "marts"


class LoadKind(StrEnum):
    """How the loader (issue #7) writes a mart into PostgreSQL."""

    UPSERT_NEWER = "upsert_newer"  # ON CONFLICT (key) DO UPDATE when the row is newer (version column)
    REPLACE_SET = "replace_set"  # bridges: the parent's stored set becomes exactly the new set
    REPLACE_DATE = "replace_date"  # time series: the snapshot date's rows are replaced


class Severity(StrEnum):
    """A critical failure blocks the load; a warning is reported and does not (GX's own levels)."""

    CRITICAL = "critical"
    WARNING = "warning"


@dataclass(frozen=True)
class Between:
    """Every non-null value of these columns lies in [low, high] (None: open on that side)."""

    columns: tuple[str, ...]
    low: float | None
    high: float | None
    severity: Severity = Severity.CRITICAL


@dataclass(frozen=True)
class NotInFuture:
    """Timestamps the source stamped when something happened: none may lie after the check runs."""

    columns: tuple[str, ...]
    severity: Severity = Severity.CRITICAL


@dataclass(frozen=True)
class IsRunDate:
    """A date column that must equal the partition's date D (the snapshot a row belongs to)."""

    columns: tuple[str, ...]
    severity: Severity = Severity.CRITICAL


@dataclass(frozen=True)
class References:
    """Every value of `column` exists in `target_column` of dataset `target` ("layer/name") for D."""

    column: str
    target: str
    target_column: str
    severity: Severity = Severity.CRITICAL


@dataclass(frozen=True)
class NotNull:
    """Nullable in the schema, yet a missing value deserves attention (a warning by default)."""

    columns: tuple[str, ...]
    severity: Severity = Severity.WARNING


Check = Between | NotInFuture | IsRunDate | References | NotNull


def _struct(columns: tuple[tuple[str, T.DataType, bool], ...]) -> T.StructType:
    return T.StructType([T.StructField(n, t, nullable) for n, t, nullable in columns])


@dataclass(frozen=True)
class Dataset:
    name: str
    layer: Layer
    columns: tuple[tuple[str, T.DataType, bool], ...]  # name, type, nullable
    key: tuple[str, ...]
    description: str
    # STAGING: the raw entity (core/entities.py) whose records this table holds, one row per key;
    # None for a table made from another staging table (the bridges)
    staged_from: str | None = None
    files: int = 1  # parquet files per partition: few, never thousands
    load: LoadKind | None = None
    version_column: str | None = None  # newer-wins comparison for UPSERT_NEWER
    parent_key: str | None = None  # REPLACE_SET: the column whose set is replaced
    # REPLACE_SET: the dataset listing every parent seen on D (rel_path), so a parent whose set
    # became empty (no rows in this mart) still has its old rows removed
    parents_from: str | None = None
    # REPLACE_SET: the loaded table (loaded before this one) whose source_dt tells when each parent
    # last changed, so an older date never brings back a set that a later date emptied
    parents_versioned_by: str | None = None
    checks: tuple[Check, ...] = ()  # value rules beyond those the schema and key imply
    min_rows: int = 0  # rows an output must have: the catalogue, dimensions, fact, snapshots; not D's deltas
    # how an output with fewer rows is judged: critical blocks the load; a warning is reported and the
    # output loaded as it is (a ranked mart where no game qualifies, which real catalogues produce)
    min_rows_severity: Severity = Severity.CRITICAL
    # the dimension (a mart name) whose deleted keys (DELETED_AT) this mart must never hold: the load
    # removes their rows in the dimension's transaction, and an older date never brings them back
    follows_deletions_of: str | None = None
    # the writer stores each row's fingerprint (jobs/fingerprint.py) as one more column of the files, so
    # the load compares D with the date loaded before by key and fingerprint alone; never loaded
    fingerprinted: bool = False

    @property
    def schema(self) -> T.StructType:
        return _struct(self.columns)

    @property
    def column_names(self) -> list[str]:
        return [n for n, _, _ in self.columns]

    @property
    def file_columns(self) -> tuple[tuple[str, T.DataType, bool], ...]:
        """The columns of the parquet files: the declared ones, then the fingerprint if stored."""
        return (*self.columns, (FINGERPRINT, T.LongType(), False)) if self.fingerprinted else self.columns

    @property
    def file_schema(self) -> T.StructType:
        return _struct(self.file_columns)

    @property
    def file_column_names(self) -> list[str]:
        return [n for n, _, _ in self.file_columns]

    @property
    def keeps_deletions(self) -> bool:
        """A dimension that keeps its deleted rows, marked with the date that found them gone."""
        return DELETED_AT in self.column_names

    @property
    def rel_path(self) -> str:
        return f"{self.layer.value}/{self.name}"

    def partition_rel_path(self, day: str) -> str:
        return f"{self.rel_path}/{PARTITION}={day}"


def _c(name: str, kind: T.DataType, nullable: bool = True) -> tuple[str, T.DataType, bool]:
    return (name, kind, nullable)


_long, _int, _dbl, _str = T.LongType(), T.IntegerType(), T.DoubleType(), T.StringType()
_ts, _date = T.TimestampType(), T.DateType()
_ids, _names = T.ArrayType(T.LongType()), T.ArrayType(T.StringType())  # no nulls: cleaned, and validated

# (bridge table, reference entity, id column of the reference, array field of a raw game)
BRIDGES: tuple[tuple[str, str, str, str], ...] = (
    ("game_platforms", "platforms", "platform_id", "platforms"),
    ("game_genres", "genres", "genre_id", "genres"),
    ("game_themes", "themes", "theme_id", "themes"),
    ("game_modes", "game_modes", "game_mode_id", "game_modes"),
    ("game_player_perspectives", "player_perspectives", "player_perspective_id", "player_perspectives"),
)

REFERENCE_IDS = {entity: id_column for _, entity, id_column, _ in BRIDGES} | {"popularity_types": "popularity_type_id"}

GAME_COLUMNS = (
    _c("game_id", _long, False),
    _c("name", _str),
    _c("slug", _str),
    _c("summary", _str),
    _c("storyline", _str),
    _c("first_release_date", _date),
    _c("rating", _dbl),
    _c("rating_count", _long),
    _c("aggregated_rating", _dbl),
    _c("aggregated_rating_count", _long),
    _c("total_rating", _dbl),
    _c("total_rating_count", _long),
    _c("game_type", _int),
    _c("game_status", _int),
    _c("parent_game_id", _long),
    _c("version_parent_id", _long),
    _c("cover_id", _long),
    _c("platform_ids", _ids, False),
    _c("genre_ids", _ids, False),
    _c("theme_ids", _ids, False),
    _c("game_mode_ids", _ids, False),
    _c("player_perspective_ids", _ids, False),
    _c("keyword_count", _int, False),
    _c("screenshot_count", _int, False),
    _c("website_count", _int, False),
    _c("updated_at", _ts, False),
)

NAME_COLUMNS = tuple(_c(f"{id_col.removesuffix('_id')}_names", _names, False) for _, _, id_col, _ in BRIDGES)
DELETION_COLUMN = _c(DELETED_AT, _date)

POPULARITY_COLUMNS: dict[int, str] = {
    1: "visits",
    2: "want_to_play",
    3: "playing",
    4: "played",
    5: "peak_players_24h",
    6: "positive_reviews",
    7: "negative_reviews",
    8: "total_reviews",
    9: "global_top_sellers",
    10: "most_wishlisted_upcoming",
    34: "hours_watched_24h",
}
RANKED_POPULARITY = ("visits", "want_to_play", "playing", "played", "peak_players_24h", "hours_watched_24h")


def _reference(entity: str, *extra: tuple[str, T.DataType, bool]) -> tuple[tuple[str, T.DataType, bool], ...]:
    return (_c(REFERENCE_IDS[entity], _long, False), _c("name", _str), *extra, _c("updated_at", _ts))


REFERENCE_COLUMNS = {
    "platforms": _reference("platforms", _c("slug", _str), _c("abbreviation", _str), _c("generation", _int),
                            _c("platform_family_id", _long)),
    "genres": _reference("genres", _c("slug", _str)),
    "themes": _reference("themes", _c("slug", _str)),
    "game_modes": _reference("game_modes", _c("slug", _str)),
    "player_perspectives": _reference("player_perspectives", _c("slug", _str)),
    "popularity_types": _reference("popularity_types", _c("external_popularity_source", _int)),
}

QUARANTINE_COLUMNS = (
    _c("entity", _str, False),
    _c("source_file", _str, False),
    _c("line_number", _long, False),
    _c("raw_line", _str, False),
    _c("reason", _str, False),
)

_MART_HEAD = (_c("snapshot_date", _date, False), _c("rank", _int, False), _c("game_id", _long, False),
              _c("name", _str))


_RATINGS = ("rating", "aggregated_rating", "total_rating")
_COUNTS = ("rating_count", "aggregated_rating_count", "total_rating_count", "keyword_count", "screenshot_count",
           "website_count")
GAME_CHECKS: tuple[Check, ...] = (
    Between(_RATINGS, 0, 100),
    Between(_COUNTS, 0, None),
    NotInFuture(("updated_at",)),  # not first_release_date: upcoming games have future release dates
    NotNull(("name",)),
)
_PERCENTILES = tuple(f"{col}_pct" for col in RANKED_POPULARITY)
_MART_CHECKS: tuple[Check, ...] = (
    IsRunDate(("snapshot_date",)),
    Between(("rank",), 1, None),
    References("game_id", "marts/dim_games", "game_id"),
)


def _ranked(name: str, columns: tuple[tuple[str, T.DataType, bool], ...], description: str,
            *checks: Check) -> Dataset:
    """A marketing mart: the top games of D by its definition, keyed by date and game. It may be empty
    (few real games have enough votes, or none is upcoming): a warning, and D is loaded as empty."""
    return Dataset(name, Layer.MARTS, (*_MART_HEAD, *columns), ("snapshot_date", "game_id"), description,
                   load=LoadKind.REPLACE_DATE, min_rows=1, min_rows_severity=Severity.WARNING,
                   follows_deletions_of="dim_games", checks=(*_MART_CHECKS, *checks))


def _datasets() -> dict[str, Dataset]:
    out: list[Dataset] = [
        Dataset("games", Layer.STAGING, GAME_COLUMNS, ("game_id",),
                "one row per game id seen on D, latest updated_at wins", staged_from="games", files=2,
                checks=GAME_CHECKS),
        Dataset("popularity_primitives", Layer.STAGING,
                (_c("game_id", _long, False), _c("popularity_type", _int, False), _c("snapshot_date", _date, False),
                 _c("value", _dbl), _c("external_popularity_source", _int), _c("calculated_at", _ts)),
                ("game_id", "popularity_type", "snapshot_date"), "the day's popularity values, typed",
                staged_from="popularity_primitives", files=2,
                checks=(IsRunDate(("snapshot_date",)), Between(("value",), 0, None), NotInFuture(("calculated_at",)),
                        References("popularity_type", "staging/ref_popularity_types", "popularity_type_id",
                                   Severity.WARNING))),
        Dataset("dim_games", Layer.MARTS, (*GAME_COLUMNS, *NAME_COLUMNS, DELETION_COLUMN), ("game_id",),
                "the whole catalogue as of D, reference names resolved, deleted games marked", files=2,
                load=LoadKind.UPSERT_NEWER, version_column="updated_at", checks=GAME_CHECKS, min_rows=1,
                fingerprinted=True),
        Dataset("fct_game_popularity", Layer.MARTS,
                (_c("snapshot_date", _date, False), _c("game_id", _long, False),
                 *(_c(col, _dbl) for col in POPULARITY_COLUMNS.values()),
                 *(_c(col, _dbl) for col in _PERCENTILES)),
                # two files: the load COPYs each file on its own stream, and the day's new rows are the
                # load's longest part. The date first, like the marketing marts: PostgreSQL's primary key
                # then takes each new date's rows at its right edge (game first, they landed all over an
                # ever-growing index) and serves the load's lookups by date, so no second index is kept
                # up to date
                ("snapshot_date", "game_id"), "one row per live game per D, types pivoted, percentile ranks",
                files=2, load=LoadKind.REPLACE_DATE, min_rows=1, follows_deletions_of="dim_games",
                checks=(IsRunDate(("snapshot_date",)), Between(tuple(POPULARITY_COLUMNS.values()), 0, None),
                        Between(_PERCENTILES, 0, 1),
                        # popularity also covers games the catalogue has not seen yet (before a full refresh)
                        References("game_id", "marts/dim_games", "game_id", Severity.WARNING))),
        _ranked("mart_top_rated", (_c("total_rating", _dbl), _c("total_rating_count", _long),
                                   _c("weighted_rating", _dbl, False)), "best rated games, Bayesian-weighted",
                Between(("total_rating", "weighted_rating"), 0, 100), Between(("total_rating_count",), 0, None)),
        _ranked("mart_top_hyped", (_c("first_release_date", _date), _c("want_to_play", _dbl), _c("visits", _dbl),
                                   _c("hype_score", _dbl, False)), "most anticipated unreleased games",
                Between(("want_to_play", "visits"), 0, None), Between(("hype_score",), 0, 1)),
        _ranked("mart_trending_now", (_c("activity_score", _dbl, False), _c("momentum", _dbl, False),
                                      _c("trend_score", _dbl, False)),
                "released games most played and watched now, and rising",
                Between(("activity_score",), 0, 1), Between(("momentum",), -1, 1)),
        _ranked("mart_hidden_gems", (_c("total_rating", _dbl), _c("total_rating_count", _long), _c("visits_pct", _dbl),
                                     _c("weighted_rating", _dbl, False)), "highly rated games few people visit",
                Between(("total_rating", "weighted_rating"), 0, 100), Between(("total_rating_count",), 0, None),
                Between(("visits_pct",), 0, 1)),
    ]
    for entity, columns in REFERENCE_COLUMNS.items():
        ref_checks = (NotInFuture(("updated_at",)), NotNull(("name",)))
        # a snapshot is the whole entity: an empty one is a broken answer, never a day with no platforms
        out.append(Dataset(f"ref_{entity}", Layer.STAGING, columns, (columns[0][0],), f"{entity} snapshot of D",
                           staged_from=entity, checks=ref_checks, min_rows=1))
        out.append(Dataset(f"dim_{entity}", Layer.MARTS, (*columns, DELETION_COLUMN), (columns[0][0],),
                           f"{entity} as of D, deleted rows marked", load=LoadKind.UPSERT_NEWER,
                           version_column="updated_at", checks=ref_checks, min_rows=1))
    for bridge, entity, id_column, _ in BRIDGES:
        columns = (_c("game_id", _long, False), _c(id_column, _long, False))
        out.append(Dataset(bridge, Layer.STAGING, columns, ("game_id", id_column),
                           f"game to {entity}, for the games seen on D",
                           checks=(References("game_id", "staging/games", "game_id"),
                                   References(id_column, f"staging/ref_{entity}", id_column))))
        out.append(Dataset(bridge, Layer.MARTS, columns, ("game_id", id_column),
                           f"game to {entity}: the full set for each game seen on D",
                           # only D's changed games: a quiet day may change none that have any
                           load=LoadKind.REPLACE_SET, parent_key="game_id", parents_from="staging/games",
                           parents_versioned_by="dim_games", min_rows=0, follows_deletions_of="dim_games",
                           # the reference rows live on D (D's snapshot, not the dimension's deleted rows)
                           checks=(References("game_id", "marts/dim_games", "game_id"),
                                   References(id_column, f"staging/ref_{entity}", id_column))))
    for entity in ENTITIES:
        out.append(Dataset(entity, Layer.QUARANTINE, QUARANTINE_COLUMNS, ("source_file", "line_number"),
                           f"raw lines of {entity} that could not be staged, with the reason"))
    return {f"{d.layer.value}/{d.name}": d for d in out}


DATASETS = _datasets()


def dataset(layer: Layer, name: str) -> Dataset:
    return DATASETS[f"{layer.value}/{name}"]


def _check_references() -> None:
    """A reference to an undeclared dataset or column is a typo: fail at import, not at 3 a.m."""
    for ds in DATASETS.values():
        known = set(ds.column_names)
        for check in ds.checks:
            named = (check.column,) if isinstance(check, References) else check.columns
            if unknown := set(named) - known:
                raise AssertionError(f"{ds.rel_path}: checks name unknown column(s) {sorted(unknown)}")
            if isinstance(check, References) and check.target_column not in DATASETS[check.target].column_names:
                raise AssertionError(f"{ds.rel_path}: {check.target} has no column {check.target_column}")
        if ds.fingerprinted and ds.load is not LoadKind.UPSERT_NEWER:
            raise AssertionError(f"{ds.rel_path}: only newer-wins marts are loaded as a delta, which the fingerprint "
                                 f"serves")
        if ds.parents_from and DATASETS[ds.parents_from].key != (ds.parent_key,):
            raise AssertionError(f"{ds.rel_path}: parents_from {ds.parents_from} must be keyed by {ds.parent_key} "
                                 f"(the load reads its ids without a distinct)")
        if ds.follows_deletions_of:
            dimension = DATASETS[f"{Layer.MARTS.value}/{ds.follows_deletions_of}"]
            if not dimension.keeps_deletions or dimension.key[0] not in ds.column_names or ds.load is None:
                raise AssertionError(f"{ds.rel_path}: follows_deletions_of must name a loaded dimension that keeps "
                                     f"its deletions, whose key this mart holds")
            if ds.load is LoadKind.REPLACE_SET and ds.parents_versioned_by != ds.follows_deletions_of:
                raise AssertionError(f"{ds.rel_path}: a bridge follows the deletions of the mart that versions its "
                                     f"parents (the load checks both in one lookup)")
        if ds.load is LoadKind.REPLACE_SET and not ds.parents_versioned_by:
            raise AssertionError(f"{ds.rel_path}: a bridge names the mart that versions its parents (the load "
                                 f"keeps a newer set by it)")
        if ds.parents_versioned_by:
            versions = DATASETS[f"{Layer.MARTS.value}/{ds.parents_versioned_by}"]
            marts = list(DATASETS.values())
            if ds.parent_key not in versions.column_names or marts.index(versions) > marts.index(ds):
                raise AssertionError(f"{ds.rel_path}: parents_versioned_by must name a mart loaded before it, "
                                     f"with column {ds.parent_key}")


_check_references()


MARTS = [d for d in DATASETS.values() if d.layer is Layer.MARTS]
STAGING = [d for d in DATASETS.values() if d.layer is Layer.STAGING]


STAGED: dict[str, Dataset] = {d.staged_from: d for d in STAGING if d.staged_from is not None}


def staging_table(entity: str) -> str:
    """The staging table ("staging/<name>") a raw entity lands in: the one declared `staged_from` it."""
    return STAGED[entity].rel_path


def _check_staged() -> None:
    """Every raw entity lands in exactly one staging table, and no staging table names an entity
    ingestion does not pull: a missing one would fail the transform, not the import."""
    if misplaced := [d.rel_path for d in DATASETS.values() if d.staged_from and d.layer is not Layer.STAGING]:
        raise AssertionError(f"{misplaced}: only a staging table is staged from a raw entity")
    named = [d.staged_from for d in STAGING if d.staged_from is not None]
    if sorted(named) != sorted(ENTITIES):
        raise AssertionError(f"staging tables must stage each raw entity once: {sorted(named)} "
                             f"against {sorted(ENTITIES)}")


_check_staged()

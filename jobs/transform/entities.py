"""One declaration per raw entity (core/entities.py): how its records become its staging table, and
which outputs of D are built from that table. The transform (jobs/transform/run.py) looks them up
instead of branching on entity names.

What is stored is declared in jobs/datasets.py (the staging table an entity lands in, `staged_from`,
and its key), which the validation and the load read too; how it is made is declared here, beside
the staging functions, which jobs/datasets.py may not import (pyproject.toml's contracts). The
dedupe key is not declared again: it is the staging table's key, under the raw records' names.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from pyspark.sql import DataFrame

from core.entities import ENTITIES
from jobs.datasets import BRIDGES, DATASETS, REFERENCE_COLUMNS, REFERENCE_IDS, STAGED, Dataset, Layer
from jobs.schemas import RAW_SCHEMAS
from jobs.transform import staging

# valid records of D, D, the dedupe key (raw names), whether the keys are known unique -> staged rows
Stage = Callable[[DataFrame, dt.date, tuple[str, ...], bool], DataFrame]


@dataclass(frozen=True)
class EntityTransform:
    """How one raw entity is staged, and the outputs made from its staging table."""

    entity: str
    stage: Stage
    # a column of the staging table's key -> the raw field it is made from, where the names differ;
    # None: the staging function fills it with D, one value in the partition, so it dedupes nothing
    raw_names: Mapping[str, str | None] = field(default_factory=dict)
    # fields a record cannot be staged without, beyond its id and its dedupe key
    also_required: tuple[str, ...] = ()
    dimension: str | None = None  # the mart of D's snapshot, earlier rows it no longer lists marked deleted
    catalogue: str | None = None  # the mart of every record seen so far, D's changes merged in, names resolved
    bridges: tuple[str, ...] = ()  # the tables pairing each staged record with the ids of one of its arrays
    # the daily fact: it counts the staging table's keys as it aggregates, so staging runs no count of its own
    fact: str | None = None

    @property
    def staging(self) -> Dataset:
        return STAGED[self.entity]

    @property
    def dedupe_key(self) -> tuple[str, ...]:
        """The staging table's declared key in raw field names: what the versions of one record share."""
        raw = (self.raw_names.get(column, column) for column in self.staging.key)
        return tuple(name for name in raw if name is not None)

    @property
    def required(self) -> tuple[str, ...]:
        """The fields a line must hold to be staged: a record without its key cannot be deduped."""
        return tuple(dict.fromkeys(("id", *self.dedupe_key, *self.also_required)))

    @property
    def stage_counts_keys(self) -> bool:
        """Whether staging counts the keys of the table it wrote (else its fact does, on the way)."""
        return self.fact is None

    @property
    def outputs(self) -> tuple[str, ...]:
        """The marts built from the staging table."""
        return tuple(o for o in (self.dimension, self.catalogue, *self.bridges, self.fact) if o is not None)

    def staged(self, valid: DataFrame, day: dt.date, keys_unique: bool = False) -> DataFrame:
        """D's staging rows from the entity's valid records, one per key."""
        return self.stage(valid, day, self.dedupe_key, keys_unique)


def _reference(entity: str) -> EntityTransform:
    """A reference snapshot (platforms, genres, ...): keyed by its id, staged under REFERENCE_IDS' name."""
    return EntityTransform(
        entity, lambda valid, _day, key, unique: staging.stage_reference(valid, entity, key, unique),
        raw_names={REFERENCE_IDS[entity]: "id"}, dimension=f"dim_{entity}")


DECLARED: tuple[EntityTransform, ...] = (
    *(_reference(entity) for entity in REFERENCE_COLUMNS),
    EntityTransform("games", lambda valid, _day, key, unique: staging.stage_games(valid, key, unique),
                    raw_names={"game_id": "id"}, also_required=("updated_at",),  # it picks the latest version
                    catalogue="dim_games", bridges=tuple(table for table, _, _, _ in BRIDGES)),
    EntityTransform("popularity_primitives", staging.stage_popularity, raw_names={"snapshot_date": None},
                    fact="fct_game_popularity"),
)


def by_entity(declared: Iterable[EntityTransform]) -> dict[str, EntityTransform]:
    """The declarations in core.entities.ENTITIES' order, checked: one per raw entity, keys that
    name the staging table's columns and the raw records' fields, outputs that are declared marts
    built from one entity each. A broken declaration fails the import, not a run."""
    declared = list(declared)
    if sorted(d.entity for d in declared) != sorted(ENTITIES):
        raise AssertionError(f"each raw entity needs one transform declaration: declared "
                             f"{sorted(d.entity for d in declared)}, ingested {sorted(ENTITIES)}")
    outputs = [o for d in declared for o in d.outputs]
    if len(set(outputs)) != len(outputs):
        raise AssertionError(f"an output is built from one entity: {sorted(outputs)}")
    for d in declared:
        if unknown := set(d.raw_names) - set(d.staging.key):
            raise AssertionError(f"{d.entity}: raw_names maps {sorted(unknown)}, not in {d.staging.rel_path}'s key")
        if missing := set(d.required) - set(RAW_SCHEMAS[d.entity].fieldNames()):
            raise AssertionError(f"{d.entity}: required fields {sorted(missing)} are no raw fields of it")
        if undeclared := [o for o in d.outputs if f"{Layer.MARTS.value}/{o}" not in DATASETS]:
            raise AssertionError(f"{d.entity}: outputs {undeclared} are no declared marts")
    named = {d.entity: d for d in declared}
    return {entity: named[entity] for entity in ENTITIES}


TRANSFORMS = by_entity(DECLARED)
# the two outputs the transform's graph wires by name, as the declarations give them (one of each):
# each also reads what other tasks found (deletions, names)
(CATALOGUE,) = [d.catalogue for d in TRANSFORMS.values() if d.catalogue is not None]
(FACT,) = [d.fact for d in TRANSFORMS.values() if d.fact is not None]


def source_of(output: str) -> EntityTransform:
    """The declaration of the raw entity whose staging table `output` is built from."""
    return next(d for d in TRANSFORMS.values() if output in d.outputs)

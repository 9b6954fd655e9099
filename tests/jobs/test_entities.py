"""The transform's per-entity declarations (jobs/transform/entities.py): one per raw entity that
ingestion pulls, each deduping on its staging table's declared key under the raw names."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from core.entities import ENTITIES
from jobs.datasets import DATASETS, STAGED, Layer, staging_table
from jobs.schemas import RAW_SCHEMAS
from jobs.transform import entities
from jobs.transform.entities import DECLARED, TRANSFORMS, by_entity, source_of
from jobs.transform.parse import REASON


def test_every_entity_ingestion_pulls_has_one_declaration_and_no_other() -> None:
    assert list(TRANSFORMS) == list(ENTITIES)
    with pytest.raises(AssertionError, match="one transform declaration"):
        by_entity(d for d in DECLARED if d.entity != "genres")  # a new entity in ENTITIES, not declared
    extra = dataclasses.replace(TRANSFORMS["genres"], entity="franchises")
    with pytest.raises(AssertionError, match="one transform declaration"):
        by_entity([*DECLARED, extra])


@pytest.mark.parametrize("entity", list(ENTITIES))
def test_the_dedupe_key_is_the_staging_key_under_its_raw_names(entity: str) -> None:
    transform = TRANSFORMS[entity]
    assert transform.staging is DATASETS[staging_table(entity)] is STAGED[entity]
    assert transform.staging.layer is Layer.STAGING and transform.staging.staged_from == entity
    staged_names = {raw: column for column, raw in transform.raw_names.items() if raw is not None}
    filled_with_d = tuple(c for c, raw in transform.raw_names.items() if raw is None)
    key = tuple(staged_names.get(field, field) for field in transform.dedupe_key)
    assert (*key, *filled_with_d) == transform.staging.key
    raw_fields = RAW_SCHEMAS[entity].fieldNames()
    assert set(transform.dedupe_key) <= set(raw_fields), "the dedupe key names raw fields"
    assert set(transform.dedupe_key) <= set(transform.required), "a record without its key is quarantined"
    assert REASON not in transform.required


def test_each_output_comes_from_one_declared_entity() -> None:
    outputs = [o for t in TRANSFORMS.values() for o in t.outputs]
    assert len(outputs) == len(set(outputs))
    assert all(DATASETS[f"marts/{o}"].layer is Layer.MARTS for o in outputs)
    assert source_of("dim_games").entity == "games" and source_of("fct_game_popularity").entity == (
        "popularity_primitives")
    assert [t.entity for t in TRANSFORMS.values() if not t.stage_counts_keys] == ["popularity_primitives"]


def test_the_transform_does_not_choose_by_entity_name() -> None:
    """Per-entity choices come from the declarations: no comparison with an entity's name is left."""
    names = "|".join(map(re.escape, ENTITIES))
    compared = re.compile(rf"""(==|!=|\bin)\s*\(?\s*["']({names})["']|["']({names})["']\s*(==|!=)""")
    folder = Path(entities.__file__).parent
    found = [f"{p.name}:{n}" for p in sorted(folder.glob("*.py"))
             for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if compared.search(line)]
    assert found == []

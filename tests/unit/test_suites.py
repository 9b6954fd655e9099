"""The GX suites are derived from the dataset declarations: what each declaration must produce."""

from __future__ import annotations

import datetime as dt

import pytest

from jobs.datasets import DATASETS, MARTS, STAGING, Between, Layer, LoadKind, References, Severity, dataset
from jobs.fingerprint import FINGERPRINT
from jobs.validate.rule_pass import signature
from jobs.validate.suites import dataset_suite, narrowed, orphan_column, reconciliation_suite

DAY = dt.date(2026, 11, 20)
NOW = dt.datetime(2026, 11, 24, 9, 0)


def _kinds(ds_name: str, layer: Layer = Layer.MARTS) -> list[tuple[str, object, str]]:
    suite = dataset_suite(dataset(layer, ds_name), DAY, NOW)
    return [(e.expectation_type, e.configuration.kwargs.get("column") or e.configuration.kwargs.get("column_list"),
             str(e.severity.value)) for e in suite.expectations]


def test_every_staging_table_and_mart_gets_key_columns_types_and_dt() -> None:
    for ds in (*STAGING, *MARTS):
        kinds = _kinds(ds.name, ds.layer)
        assert ("expect_table_columns_to_match_ordered_list",
                [*ds.file_column_names, "dt", *(orphan_column(c) for c in ds.checks if isinstance(c, References))],
                "critical") in kinds, ds.rel_path
        key = ds.key[0] if len(ds.key) == 1 else list(ds.key)
        unique = "expect_column_values_to_be_unique" if len(ds.key) == 1 else "expect_compound_columns_to_be_unique"
        assert (unique, key, "critical") in kinds, ds.rel_path
        typed = {column for kind, column, _ in kinds if kind == "expect_column_values_to_be_of_type"}
        assert typed == set(ds.file_column_names), ds.rel_path
        not_null = {column for kind, column, sev in kinds
                    if kind == "expect_column_values_to_not_be_null" and sev == "critical"}
        assert not_null == {name for name, _, nullable in ds.file_columns if not nullable}, ds.rel_path
        assert ("expect_column_values_to_be_in_set", "dt", "critical") in kinds, ds.rel_path


def test_the_catalogue_files_end_with_their_row_fingerprint() -> None:
    games = dataset(Layer.MARTS, "dim_games")
    assert games.file_column_names == [*games.column_names, FINGERPRINT]
    ordered = [kw for kind, kw, _ in _kinds("dim_games") if kind == "expect_table_columns_to_match_ordered_list"]
    assert ordered and ordered[0][-2:] == [FINGERPRINT, "dt"]


def test_outputs_that_must_have_rows_say_so_and_ranked_marts_only_warn() -> None:
    ranked = {"mart_top_rated", "mart_top_hyped", "mart_trending_now", "mart_hidden_gems"}
    for ds in (*STAGING, *MARTS):
        counts = [severity for kind, _, severity in _kinds(ds.name, ds.layer)
                  if kind == "expect_table_row_count_to_be_between"]
        if ds.name in ranked:  # no game may qualify on a real catalogue: loaded as empty, with a warning
            expected = ["warning"]
        elif (ds.layer is Layer.MARTS and ds.load is not LoadKind.REPLACE_SET) or ds.name.startswith("ref_"):
            expected = ["critical"]  # the catalogue, the dimensions, the fact and the day's snapshots
        else:
            expected = []  # D's changed games and their bridges: a quiet day may have none
        assert counts == expected, ds.rel_path


def test_value_rules_follow_the_declaration() -> None:
    suite = dataset_suite(dataset(Layer.MARTS, "dim_games"), DAY, NOW)
    between = {e.configuration.kwargs["column"]: (e.configuration.kwargs.get("min_value"),
                                                  e.configuration.kwargs.get("max_value"))
               for e in suite.expectations if e.expectation_type == "expect_column_values_to_be_between"}
    assert between["rating"] == (0, 100)
    assert between["total_rating_count"] == (0, None)
    assert between["updated_at"] == (None, NOW)
    assert "first_release_date" not in between  # upcoming games are released in the future
    warnings = [e for e in suite.expectations if e.severity.value == Severity.WARNING.value]
    assert [(e.expectation_type, e.configuration.kwargs["column"]) for e in warnings] == [
        ("expect_column_values_to_not_be_null", "name")]


def test_bridges_reference_games_and_their_dimension_in_their_own_layer() -> None:
    staged = dataset(Layer.STAGING, "game_platforms").checks
    served = dataset(Layer.MARTS, "game_platforms").checks
    assert References("game_id", "staging/games", "game_id") in staged
    assert References("platform_id", "staging/ref_platforms", "platform_id") in staged
    assert References("game_id", "marts/dim_games", "game_id") in served
    # the platform must be live on D: D's snapshot, not the dimension that keeps deleted platforms
    assert References("platform_id", "staging/ref_platforms", "platform_id") in served
    suite = dataset_suite(dataset(Layer.MARTS, "game_platforms"), DAY, NOW)
    nulls = [e.configuration.kwargs["column"] for e in suite.expectations
             if e.expectation_type == "expect_column_values_to_be_null"]
    assert nulls == ["orphan_game_id", "orphan_platform_id"]


def _reference_signatures(layer: Layer, targets: dict[str, str] | None) -> dict[str, str]:
    suite = dataset_suite(dataset(layer, "game_platforms"), DAY, NOW, targets)
    return {e.configuration.kwargs["column"]: signature(e.configuration) for e in suite.expectations
            if e.expectation_type == "expect_column_values_to_be_null"}


def test_a_reference_is_one_rule_across_copies_only_when_its_targets_hold_the_same_files() -> None:
    # the gate measures a rule once for a staging table and the mart copied from it (same signature)
    by_name = [_reference_signatures(layer, None) for layer in (Layer.STAGING, Layer.MARTS)]
    assert by_name[0]["orphan_game_id"] != by_name[1]["orphan_game_id"]  # different targets by name: two rules
    assert by_name[0]["orphan_platform_id"] == by_name[1]["orphan_platform_id"]  # both check D's snapshot
    files = {"staging/ref_platforms": "f1", "staging/games": "f2", "marts/dim_games": "f3"}
    staged, served = (_reference_signatures(layer, files) for layer in (Layer.STAGING, Layer.MARTS))
    assert staged["orphan_platform_id"] == served["orphan_platform_id"]
    assert staged["orphan_game_id"] != served["orphan_game_id"]  # D's changed games vs the whole catalogue
    other = {**files, "staging/ref_platforms": "f4"}  # the same name, other files: another rule
    assert _reference_signatures(Layer.MARTS, other)["orphan_platform_id"] != served["orphan_platform_id"]


def test_every_declared_reference_targets_a_declared_column() -> None:
    for ds in DATASETS.values():
        for check in ds.checks:
            if isinstance(check, References):
                assert check.target_column in DATASETS[check.target].column_names
            elif isinstance(check, Between):
                assert set(check.columns) <= set(ds.column_names)


def test_reconciliation_threshold_is_the_setting() -> None:
    suite = reconciliation_suite(0.02)
    share = [e for e in suite.expectations if e.configuration.kwargs["column"] == "quarantine_share"]
    assert share[0].configuration.kwargs["max_value"] == 0.02
    assert all(e.severity.value == "critical" for e in suite.expectations)


def test_narrowed_keeps_only_the_chosen_expectations_in_order() -> None:
    suite = dataset_suite(dataset(Layer.MARTS, "mart_top_rated"), DAY, NOW)
    kept = narrowed(suite, {1, 3})
    assert [e.expectation_type for e in kept.expectations] == [suite.expectations[1].expectation_type,
                                                               suite.expectations[3].expectation_type]


@pytest.mark.parametrize("ds", [d for d in MARTS if d.load is not None], ids=lambda d: d.rel_path)
def test_loaded_marts_declare_a_key(ds) -> None:
    assert ds.key and set(ds.key) <= set(ds.column_names)

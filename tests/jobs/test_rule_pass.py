"""The one-pass measure must judge every expectation exactly as Great Expectations does.

The gate trusts the pass on what it finds passing, so each kind of rule is compared with GX's own
SUMMARY result on small frames built to sit on its edges: nulls, bounds, NaN, repeated and null keys.
"""

from __future__ import annotations

import copy
import datetime as dt
import random

import great_expectations as gx
import great_expectations.expectations as gxe
import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F
from pyspark.sql import types as T

from jobs.datasets import MARTS, STAGING
from jobs.io import literal_frame
from jobs.spark_internals import executed_plan
from jobs.validate.rule_pass import (
    bitmap_pays,
    bounds_wanted,
    key_columns,
    measurable,
    measure_suite,
    rejected_rows,
    rows_in_repeated_keys,
    signature,
)
from jobs.validate.run import GxRunner
from jobs.validate.suites import dataset_suite
from tests.jobs.spark_jobs import jobs_run_by

DAY = dt.date(2026, 11, 20)
NOW = dt.datetime(2026, 11, 24, 9, 0)

SCHEMA = T.StructType([
    T.StructField("game_id", T.LongType()),
    T.StructField("platform_id", T.LongType()),
    T.StructField("rating", T.DoubleType()),
    T.StructField("updated_at", T.TimestampType()),
    T.StructField("snapshot_date", T.DateType()),
    T.StructField("name", T.StringType()),
    T.StructField("orphan_game_id", T.LongType()),
])
ROWS = [
    (1, 10, 0.0, dt.datetime(2026, 11, 24, 9, 0), DAY, "Zelda", None),  # both bounds hit exactly
    (2, 10, 100.0, dt.datetime(2026, 11, 24, 9, 0, 1), DAY, None, None),  # one second in the future
    (2, 11, 100.5, None, DAY - dt.timedelta(days=1), "Ōkami", 7),
    (3, 11, float("nan"), dt.datetime(2020, 1, 1), None, "", None),
    (None, None, -0.5, None, DAY, "x", 9),
    (None, None, None, None, DAY, None, None),
    (4, None, None, None, DAY, "y", None),
    (4, None, 50.0, None, DAY, "y", None),
]

EXPECTATIONS = [
    gxe.ExpectColumnValuesToBeBetween(column="rating", min_value=0, max_value=100),
    gxe.ExpectColumnValuesToBeBetween(column="rating", min_value=0),
    gxe.ExpectColumnValuesToBeBetween(column="rating", min_value=0, max_value=100, strict_min=True, strict_max=True),
    gxe.ExpectColumnValuesToBeBetween(column="updated_at", max_value=NOW),
    gxe.ExpectColumnValuesToBeInSet(column="snapshot_date", value_set=[DAY]),
    gxe.ExpectColumnValuesToNotBeNull(column="name"),
    gxe.ExpectColumnValuesToNotBeNull(column="game_id"),
    gxe.ExpectColumnValuesToBeNull(column="orphan_game_id"),
    gxe.ExpectColumnValuesToBeUnique(column="game_id"),
    gxe.ExpectCompoundColumnsToBeUnique(column_list=["game_id", "platform_id"]),
    gxe.ExpectTableRowCountToBeBetween(min_value=1),
    gxe.ExpectTableRowCountToBeBetween(min_value=9),
    gxe.ExpectColumnValuesToBeOfType(column="rating", type_="DoubleType"),
    gxe.ExpectColumnValuesToBeOfType(column="game_id", type_="IntegerType"),
    gxe.ExpectTableColumnsToMatchOrderedList(column_list=[f.name for f in SCHEMA.fields]),
    gxe.ExpectTableColumnsToMatchOrderedList(column_list=["game_id"]),
]


@pytest.fixture(scope="module")
def runner() -> GxRunner:
    return GxRunner()


def test_every_kind_of_rule_is_judged_as_gx_judges_it(spark, runner) -> None:
    frame = spark.createDataFrame(ROWS, SCHEMA)
    suite = gx.ExpectationSuite(name="edges", expectations=EXPECTATIONS)

    rows, measures = measure_suite(suite, frame)
    by_gx = runner.explain(suite, frame, ["game_id"], range(len(EXPECTATIONS)))

    assert rows == len(ROWS)
    for i, expectation in enumerate(EXPECTATIONS):
        label = f"{expectation.expectation_type} {expectation.configuration.kwargs}"
        assert measures[i].success == by_gx[i].success, label
        if measures[i].unexpected_count is not None:
            assert measures[i].unexpected_count == by_gx[i].unexpected_count, label
    # the edges are real: each kind has a failing case above, except the ones built to pass
    assert [m.success for m in measures] == [False, False, False, False, False, False, False, False, False, False,
                                             True, False, True, False, True, False]


def test_the_group_by_for_keys_reads_the_frame_it_is_given(spark) -> None:
    """Uniqueness is counted on `keyed` (the output without the gate's joins), the rest on `frame`."""
    frame = spark.createDataFrame(ROWS, SCHEMA)
    suite = gx.ExpectationSuite(name="keys", expectations=[gxe.ExpectColumnValuesToBeUnique(column="game_id"),
                                                           gxe.ExpectColumnValuesToNotBeNull(column="name")])

    _, measures = measure_suite(suite, frame, keyed=frame.dropDuplicates(["game_id"]))

    assert measures[0].success and measures[0].unexpected_count == 0
    assert measures[1].unexpected_count == 2


def test_every_declared_suite_is_measurable(spark) -> None:  # a rule's predicate is a Column: it needs the session
    """The generated suites never fall back to GX's engine: that is the gate's speed."""
    for ds in (*STAGING, *MARTS):
        for expectation in dataset_suite(ds, DAY, NOW).expectations:
            assert measurable(expectation), (ds.rel_path, expectation.expectation_type)
            rejected_rows(expectation)  # schema and table rules need no predicate
    keyed = [key_columns(e) for e in dataset_suite(MARTS[0], DAY, NOW).expectations if key_columns(e)]
    assert keyed == [list(MARTS[0].key)]


def test_an_unknown_rule_is_refused_not_passed() -> None:
    with pytest.raises(ValueError, match="expect_column_values_to_match_regex has no one-pass measure"):
        rejected_rows(gxe.ExpectColumnValuesToMatchRegex(column="name", regex="^x"))


def test_what_the_pass_cannot_decide_as_gx_does_is_left_to_gx(spark) -> None:
    """Another type, or arguments that change GX's verdict (mostly, row_condition, a suite
    parameter), get no measure (None) instead of a guess; GX's own defaults change nothing."""
    frame = spark.createDataFrame(ROWS, SCHEMA)
    left = [gxe.ExpectColumnValuesToMatchRegex(column="name", regex="^x"),
            gxe.ExpectColumnValuesToNotBeNull(column="name", mostly=0.5),
            gxe.ExpectColumnValuesToBeBetween(column="rating", min_value=0, max_value=100,
                                              row_condition='col("game_id")>1', condition_parser="great_expectations"),
            gxe.ExpectColumnValuesToBeBetween(column="rating", min_value={"$PARAMETER": "low"}, max_value=100)]
    kept = [gxe.ExpectColumnValuesToNotBeNull(column="name", mostly=1.0),
            gxe.ExpectCompoundColumnsToBeUnique(column_list=["game_id", "name"],
                                                ignore_row_if="all_values_are_missing")]
    suite = gx.ExpectationSuite(name="mixed", expectations=[*left, *kept])

    _, measures = measure_suite(suite, frame)

    assert measures[:len(left)] == [None] * len(left)
    assert all(m is not None for m in measures[len(left):])
    assert measures[len(left)].unexpected_count == 2  # the two null names of ROWS


def test_small_frames_are_built_in_the_jvm(spark) -> None:
    schema = T.StructType([T.StructField("entity", T.StringType()), T.StructField("lines", T.LongType()),
                           T.StructField("share", T.DoubleType())])
    rows = [("games", 3, 0.5), ("genres", 0, 0.0)]

    frame = literal_frame(spark, rows, schema)

    assert_df_equality(frame, spark.createDataFrame(rows, schema), ignore_nullable=True)
    plan = executed_plan(frame)
    assert "ExistingRDD" not in plan and "Python" not in plan


def test_measures_of_the_same_files_are_reused_and_only_new_rules_read_the_data(spark) -> None:
    """A mart published as a copy of a staging table's files shares most rules with it: those are
    taken from the staging suite's measures, the others measured (a reference's orphans), and a
    suite with nothing new to count runs no job at all."""
    frame = spark.createDataFrame(ROWS, SCHEMA)
    orphans = 7  # the mart's own reference rule
    shared = [copy.copy(e) for i, e in enumerate(EXPECTATIONS) if i != orphans]
    rows, measured = measure_suite(gx.ExpectationSuite(name="staging", expectations=shared), frame)
    known = {signature(e.configuration): m for e, m in zip(shared, measured, strict=True)}
    everything = gx.ExpectationSuite(name="all", expectations=EXPECTATIONS)
    (full_rows, full), jobs_alone = jobs_run_by(spark, lambda: measure_suite(everything, frame))
    one_aggregate = jobs_run_by(spark, lambda: frame.agg(F.count(F.lit(1))).first())[1]

    mart = gx.ExpectationSuite(name="mart", expectations=EXPECTATIONS)
    (mart_rows, reused), jobs = jobs_run_by(spark, lambda: measure_suite(mart, frame, known=known, rows=rows))
    assert (mart_rows, reused) == (full_rows, full)
    assert jobs == one_aggregate < jobs_alone, "only the orphan rule's aggregate runs, not the key group-bys again"

    copied = gx.ExpectationSuite(name="copy", expectations=[*shared[:5], gxe.ExpectTableRowCountToBeBetween(
        min_value=len(ROWS))])
    (_, only_known), jobs = jobs_run_by(spark, lambda: measure_suite(copied, frame, known=known, rows=rows))
    assert only_known[:5] == measured[:5] and only_known[5].success and jobs == 0


KEYS = T.StructType([T.StructField("game_id", T.LongType()), T.StructField("day", T.DateType()),
                     T.StructField("slot", T.IntegerType()), T.StructField("name", T.StringType())])


def _bounds(frame, key):
    """Each key column's (min, max) as measure_suite finds them, through the same aggregates."""
    found = frame.agg(*bounds_wanted(frame, key)).first()
    return [(found[2 * j], found[2 * j + 1]) for j in range(len(key))]


def _random_keys(spark, seed: int, rows: int):
    """Small ranges so keys repeat, nulls in every column, negative ids and both bounds hit."""
    rnd = random.Random(seed)
    def maybe(value):
        return None if rnd.random() < 0.15 else value
    data = [(maybe(rnd.randint(-3, 40)), maybe(DAY + dt.timedelta(days=rnd.randint(-4, 4))),
             maybe(rnd.randint(0, 2)), "n") for _ in range(rows)]
    return spark.createDataFrame(data, KEYS)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_bitmap_count_gives_what_the_exact_group_by_gives(spark, seed) -> None:
    frame = _random_keys(spark, seed, 300)
    for key in (["game_id"], ["game_id", "day"], ["game_id", "day", "slot"], ["day", "slot"]):
        bounds = _bounds(frame, key)
        assert bitmap_pays(bounds, 300), key
        assert rows_in_repeated_keys(frame, key, bounds) == rows_in_repeated_keys(frame, key), key
    # and on keys made unique, by a count only the bitmap runs
    unique = frame.dropDuplicates(["game_id", "day", "slot"])
    key = ["game_id", "day", "slot"]
    bounds = _bounds(unique, key)
    assert rows_in_repeated_keys(unique, key) == 0
    assert rows_in_repeated_keys(unique, key, bounds) == 0


def test_a_unique_key_costs_only_the_bitmap_count_and_a_repeated_one_also_the_group_by(spark) -> None:
    """The exact group-by runs only when the bitmap finds fewer codes than rows."""
    key = ["game_id", "day"]
    unique = spark.createDataFrame([(i, DAY + dt.timedelta(days=i % 3), 0, "n") for i in range(200)], KEYS)
    repeated = unique.unionByName(unique.limit(1))
    for frame in (unique, repeated):
        frame.cache().count()
    bounds = _bounds(unique, key)
    exact_alone = jobs_run_by(spark, lambda: rows_in_repeated_keys(unique, key))[1]

    (found, jobs) = jobs_run_by(spark, lambda: rows_in_repeated_keys(unique, key, bounds))
    assert found == 0
    (found, jobs_repeated) = jobs_run_by(spark, lambda: rows_in_repeated_keys(repeated, key, bounds))
    assert found == 2 and jobs_repeated == jobs + exact_alone, "a repeated key is counted exactly as well"


def test_stale_bounds_never_prove_a_repeated_key_unique(spark) -> None:
    """Values outside the bounds only merge codes, and merged codes never pass for unique keys."""
    frame = spark.range(0, 500).select((F.col("id") * 7 - 900).alias("game_id"))
    duplicated = frame.unionByName(frame.limit(3))
    for bounds in ([(0, 10)], [(-900, 2593)], [(10**9, 10**9 + 5)]):
        assert rows_in_repeated_keys(frame, ["game_id"], bounds) == 0, bounds
        assert rows_in_repeated_keys(duplicated, ["game_id"], bounds) == 6, bounds


def test_keys_the_bitmap_does_not_suit_are_grouped_exactly(spark) -> None:
    frame = spark.createDataFrame([(1, DAY, None, "a"), (1, DAY, None, "a"), (2, None, None, "b")], KEYS)
    assert bounds_wanted(frame, ["game_id", "name"]) is None, "a string key has no whole-number form"
    assert not bitmap_pays(None, 3), "an all-null column has no bounds"
    assert not bitmap_pays([(0, 2**40), (0, 2**30)], 10**9), "codes that overflow a long"
    assert not bitmap_pays([(0, 10**9)], 1_000), "a billion codes for a thousand rows: too many buckets"
    assert bitmap_pays([(0, 10**6)], 1_000)
    suite = gx.ExpectationSuite(name="unsuited", expectations=[
        gxe.ExpectCompoundColumnsToBeUnique(column_list=["game_id", "name"]),
        gxe.ExpectCompoundColumnsToBeUnique(column_list=["game_id", "slot"]),
        gxe.ExpectCompoundColumnsToBeUnique(column_list=["game_id", "day"])])
    _, measures = measure_suite(suite, frame)
    assert [m.unexpected_count for m in measures] == [2, 2, 2]


def test_measure_suite_proves_a_whole_number_key_unique_as_gx_does(spark, runner) -> None:
    frame = _random_keys(spark, 7, 200).dropDuplicates(["game_id", "day"])
    suite = gx.ExpectationSuite(name="unique", expectations=[
        gxe.ExpectCompoundColumnsToBeUnique(column_list=["game_id", "day"]),
        gxe.ExpectCompoundColumnsToBeUnique(column_list=["game_id", "slot", "day"]),
        gxe.ExpectColumnValuesToBeUnique(column="game_id")])
    _, measures = measure_suite(suite, frame)
    by_gx = runner.explain(suite, frame, ["game_id", "day"], range(3))
    assert [m.success for m in measures] == [by_gx[i].success for i in range(3)] == [True, True, False]
    assert [m.unexpected_count for m in measures] == [by_gx[i].unexpected_count for i in range(3)]

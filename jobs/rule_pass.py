"""One Spark pass measures every expectation of a suite; Great Expectations explains the failures.

GX's Spark engine runs four or five jobs per output (a row count, its bundled aggregates, a
window over the whole frame for a unique column, a group-by for a unique key) and then spends
Python time assembling results. Over the 29 outputs of a date that was most of the gate's time.
Here each GX expectation of a suite becomes one Spark aggregate (the count of rows it would
reject, with the same null handling as GX), so an output costs one aggregate job plus one
group-by for its key, and the schema rules read no data at all. Only what this pass finds
failing goes back to GX (jobs/validation.py), whose verdict, counts and sample rows are what the
report shows. An expectation type without a measure here raises, so a new rule in jobs/suites.py
cannot pass unmeasured.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from great_expectations.core.expectation_suite import ExpectationSuite
from great_expectations.expectations.expectation import Expectation
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

ROWS_IN_REPEATED_KEYS = "_rows_in_repeated_keys"


@dataclass(frozen=True)
class Measure:
    """What the pass found for one expectation: its verdict and, for row rules, the rows it rejects."""

    success: bool
    unexpected_count: int | None = None
    observed: Any = None


def _between(column: Column, kwargs: dict[str, Any]) -> Column:
    """The rows GX's expect_column_values_to_be_between accepts (bounds inclusive unless strict)."""
    accepted = F.lit(True)
    if kwargs.get("min_value") is not None:
        low = F.lit(kwargs["min_value"])
        accepted &= (column > low) if kwargs.get("strict_min") else (column >= low)
    if kwargs.get("max_value") is not None:
        high = F.lit(kwargs["max_value"])
        accepted &= (column < high) if kwargs.get("strict_max") else (column <= high)
    return accepted


def _in_set(column: Column, kwargs: dict[str, Any]) -> Column:
    return column.isin(list(kwargs["value_set"]))


# Per GX map expectation: the rows it accepts among the non-null ones (GX ignores nulls for these)
_ACCEPTS: dict[str, Callable[[Column, dict[str, Any]], Column]] = {
    "expect_column_values_to_be_between": _between,
    "expect_column_values_to_be_in_set": _in_set,
}
_NULLS = {"expect_column_values_to_not_be_null": True, "expect_column_values_to_be_null": False}
_KEYS = ("expect_column_values_to_be_unique", "expect_compound_columns_to_be_unique")
_SCHEMA = ("expect_table_columns_to_match_ordered_list", "expect_column_values_to_be_of_type")
_TABLE = ("expect_table_row_count_to_be_between",)


def signature(config: Any) -> str:
    """What identifies an expectation across suites: its type, arguments and meta (where a reference
    names its target), not its generated id."""
    kwargs = {k: v for k, v in config.kwargs.items() if k not in ("result_format", "batch_id")}
    return json.dumps([config.type, kwargs, config.meta or {}], sort_keys=True, default=str)


def rejected_rows(expectation: Expectation) -> Column | None:
    """A predicate true on each row the expectation rejects; None for a rule that is not per row."""
    kind, kwargs = expectation.expectation_type, expectation.configuration.kwargs
    if kind in _NULLS:
        column = F.col(kwargs["column"])
        return column.isNull() if _NULLS[kind] else column.isNotNull()
    if kind in _ACCEPTS:
        column = F.col(kwargs["column"])
        return column.isNotNull() & ~_ACCEPTS[kind](column, kwargs)
    if kind in (*_KEYS, *_SCHEMA, *_TABLE):
        return None
    raise ValueError(f"{kind} has no one-pass measure in jobs/rule_pass.py: add one before using it in a suite")


def key_columns(expectation: Expectation) -> list[str] | None:
    """The columns a uniqueness expectation groups by; None for any other expectation."""
    kwargs = expectation.configuration.kwargs
    if expectation.expectation_type == _KEYS[0]:
        return [kwargs["column"]]
    if expectation.expectation_type == _KEYS[1]:
        return list(kwargs["column_list"])
    return None


def rows_in_repeated_keys(frame: DataFrame, key: list[str]) -> int:
    """Rows whose key occurs more than once (GX's unexpected count for uniqueness): one group-by.

    Like GX, a row whose key columns are all null has no key to repeat.
    """
    present = F.lit(False)
    for column in key:
        present |= F.col(column).isNotNull()
    per_key = frame.where(present).groupBy(*key).agg(F.count(F.lit(1)).alias("n"))
    found = per_key.agg(F.sum(F.when(F.col("n") > 1, F.col("n"))).alias(ROWS_IN_REPEATED_KEYS)).first()
    return int(found[0] or 0) if found else 0


def _schema_measure(expectation: Expectation, schema: T.StructType) -> Measure:
    kwargs = expectation.configuration.kwargs
    if expectation.expectation_type == _SCHEMA[0]:
        return Measure(success=schema.names == list(kwargs["column_list"]))
    found = {f.name: type(f.dataType).__name__ for f in schema.fields}.get(kwargs["column"])
    return Measure(success=found == kwargs["type_"], observed=found)


def _row_count_measure(expectation: Expectation, rows: int) -> Measure:
    kwargs = expectation.configuration.kwargs
    low, high = kwargs.get("min_value"), kwargs.get("max_value")
    return Measure(success=(low is None or rows >= low) and (high is None or rows <= high), observed=rows)


def measure_suite(suite: ExpectationSuite, frame: DataFrame, keyed: DataFrame | None = None,
                  known: Mapping[str, Measure] | None = None, rows: int | None = None) -> tuple[int, list[Measure]]:
    """(rows, one Measure per expectation in the suite's order): one aggregate job over `frame`,
    plus one group-by per distinct key a uniqueness rule names, over `keyed` when given (the same
    rows without the columns only other rules need, such as the gate's joined orphan_* columns).

    `known` holds measures (by `signature`) of another suite over the same files, with their
    `rows`: those expectations are not measured again, and when nothing else needs the data no
    job runs at all (a mart that is a copy of a staging table costs only its own rules).
    """
    known = known or {}
    expectations = list(suite.expectations)
    signatures = [signature(e.configuration) for e in expectations]
    predicates = {i: p for i, e in enumerate(expectations)
                  if signatures[i] not in known and (p := rejected_rows(e)) is not None}
    columns = set(frame.columns)
    # a rule on a column the files lack cannot be counted: the column-set rule already fails
    counted = {i: p for i, p in predicates.items() if expectations[i].configuration.kwargs["column"] in columns}
    totals = None
    if counted or rows is None:
        totals = frame.agg(F.count(F.lit(1)).alias("rows"),
                           *[F.count_if(p).alias(f"r{i}") for i, p in counted.items()]).first()
        rows = int(totals["rows"]) if totals else 0
    repeated: dict[tuple[str, ...], int] = {}
    measures = []
    for i, expectation in enumerate(expectations):
        key = key_columns(expectation)
        if signatures[i] in known:
            measures.append(known[signatures[i]])
        elif expectation.expectation_type in _SCHEMA:
            measures.append(_schema_measure(expectation, frame.schema))
        elif expectation.expectation_type in _TABLE:
            measures.append(_row_count_measure(expectation, rows))
        elif key is not None:
            if not set(key) <= columns:
                measures.append(Measure(success=False))
                continue
            if tuple(key) not in repeated:
                repeated[tuple(key)] = rows_in_repeated_keys(frame if keyed is None else keyed, key)
            measures.append(Measure(success=repeated[tuple(key)] == 0, unexpected_count=repeated[tuple(key)]))
        elif i in counted:
            rejected = int(totals[f"r{i}"]) if totals else 0
            measures.append(Measure(success=rejected == 0, unexpected_count=rejected))
        else:
            measures.append(Measure(success=False))  # its column is missing from the files
    return rows, measures

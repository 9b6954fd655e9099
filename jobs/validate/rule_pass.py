"""One Spark pass measures every expectation of a suite; Great Expectations explains the failures.

GX's Spark engine runs four or five jobs per output (a row count, its bundled aggregates, a
window over the whole frame for a unique column, a group-by for a unique key) and then spends
Python time assembling results. Over the 29 outputs of a date that was most of the gate's time.
Here each GX expectation of a suite becomes one Spark aggregate (the count of rows it would
reject, with the same null handling as GX), so an output costs one aggregate job plus one
group-by for its key, and the schema rules read no data at all. A key of whole numbers and dates
is not grouped row by row: the same aggregate job finds each key column's bounds, the key becomes
one long code, and Spark's bitmap functions count its distinct values per 32,768-code bucket.
Rows equal to distinct codes proves the key unique; anything else (rare: a failing key) falls back
to the exact group-by, which also gives GX's unexpected count. Only what this pass finds
failing goes back to GX (jobs/validate/run.py), whose verdict, counts and sample rows are what the
report shows. An expectation this pass cannot decide exactly as GX does (`measurable`: another
type, or arguments such as `mostly` or `row_condition`, as users' own suites may hold) gets no
measure: the gate hands it to GX's engine whole, so nothing passes unmeasured.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from great_expectations.core.expectation_suite import ExpectationSuite
from great_expectations.expectations.expectation import Expectation
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from jobs.footers import EPOCH_DATE, FooterStats

ROWS_IN_REPEATED_KEYS = "_rows_in_repeated_keys"


@dataclass(frozen=True)
class Measure:
    """What the pass found for one expectation: its verdict and, for row rules, the rows it rejects."""

    success: bool
    unexpected_count: int | None = None
    observed: Any = None


def _bound(value: Any) -> Column:
    """A bound as a literal; a naive time is UTC, as the session's timestamps are (PySpark would
    read it in the driver's local zone)."""
    if isinstance(value, dt.datetime) and value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return F.lit(value)


def _within(low: Any, high: Any, kwargs: dict[str, Any], bound: Callable[[Any], Any], accepted: Any) -> Any:
    """GX's expect_column_values_to_be_between (bounds inclusive unless strict) on the smallest and
    largest value: a Column of the rows it accepts when given a column for both, a bool when given
    the values the footers hold. One rule for both, so the proof and the count agree."""
    if kwargs.get("min_value") is not None:
        floor = bound(kwargs["min_value"])
        accepted = accepted & ((low > floor) if kwargs.get("strict_min") else (low >= floor))
    if kwargs.get("max_value") is not None:
        ceiling = bound(kwargs["max_value"])
        accepted = accepted & ((high < ceiling) if kwargs.get("strict_max") else (high <= ceiling))
    return accepted


def _between(column: Column, kwargs: dict[str, Any]) -> Column:
    """The rows GX's expect_column_values_to_be_between accepts."""
    accepted: Column = _within(column, column, kwargs, _bound, F.lit(True))
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

# The arguments each measured type is measured with. Any other argument (mostly, row_condition, a
# suite parameter, ...) changes what GX decides, so such an expectation is left to GX's engine.
_ARGUMENTS: dict[str, frozenset[str]] = {
    "expect_column_values_to_not_be_null": frozenset({"column"}),
    "expect_column_values_to_be_null": frozenset({"column"}),
    "expect_column_values_to_be_between": frozenset({"column", "min_value", "max_value", "strict_min", "strict_max"}),
    "expect_column_values_to_be_in_set": frozenset({"column", "value_set"}),
    _KEYS[0]: frozenset({"column"}),
    _KEYS[1]: frozenset({"column_list"}),
    _SCHEMA[0]: frozenset({"column_list"}),
    _SCHEMA[1]: frozenset({"column", "type_"}),
    _TABLE[0]: frozenset({"min_value", "max_value"}),
}
_NEUTRAL = frozenset({"result_format", "catch_exceptions", "include_config", "batch_id"})
_DEFAULTS = {"mostly": 1, "ignore_row_if": "all_values_are_missing"}  # GX's defaults: the same as leaving them out


def signature(config: Any) -> str:
    """What identifies an expectation across suites: its type, arguments and meta (where a reference
    names its target), not its generated id."""
    kwargs = {k: v for k, v in config.kwargs.items() if k not in ("result_format", "batch_id")}
    return json.dumps([config.type, kwargs, config.meta or {}], sort_keys=True, default=str)


def measurable(expectation: Expectation) -> bool:
    """Whether this pass decides the expectation exactly as GX would: a measured type, with only the
    arguments it is measured with (a suite parameter, a dict, is GX's to resolve)."""
    kind, kwargs = expectation.expectation_type, expectation.configuration.kwargs
    known = _ARGUMENTS.get(kind)
    if known is None:
        return False
    for name, value in kwargs.items():
        if isinstance(value, dict):
            return False
        if name not in known and name not in _NEUTRAL and not (name in _DEFAULTS and value == _DEFAULTS[name]):
            return False
    return True


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
    raise ValueError(f"{kind} has no one-pass measure in jobs/validate/rule_pass.py: add one before using it "
                     "in a suite")


def _bounds_hold(low: Any, high: Any, kwargs: dict[str, Any]) -> bool:
    """Whether every value in [low, high] passes GX's between with these kwargs (a bound of
    another kind, such as a timestamp against a date, proves nothing)."""
    try:
        return bool(_within(low, high, kwargs, lambda value: value, True))
    except TypeError:
        return False


def proved_by_footers(expectation: Expectation, footers: FooterStats | None) -> bool:
    """Whether the files' own statistics show that no row can fail this rule, so no row need be
    read for it. False whenever they cannot tell: the rule is then counted on the rows."""
    kind, kwargs = expectation.expectation_type, expectation.configuration.kwargs
    if footers is None or kind not in (*_NULLS, *_ACCEPTS):
        return False
    stats = footers.columns.get(kwargs["column"])
    if stats is None:
        return False
    if kind in _NULLS:
        return stats.nulls is not None and stats.nulls == (0 if _NULLS[kind] else footers.rows)
    if not stats.bounded:
        return False
    if stats.low is None:
        return True  # no non-null value, and GX ignores nulls for these
    if kind == "expect_column_values_to_be_in_set":
        return stats.low == stats.high and stats.low in list(kwargs["value_set"])
    return _bounds_hold(stats.low, stats.high, kwargs)


def key_columns(expectation: Expectation) -> list[str] | None:
    """The columns a uniqueness expectation groups by; None for any other expectation."""
    kwargs = expectation.configuration.kwargs
    if expectation.expectation_type == _KEYS[0]:
        return [kwargs["column"]]
    if expectation.expectation_type == _KEYS[1]:
        return list(kwargs["column_list"])
    return None


# A bitmap aggregate holds 4 KiB per bucket of 32,768 codes: a key spread much thinner than its rows
# would cost more buckets than rows, and the exact group-by is then the cheaper count.
_BITMAP_BUCKET = 32_768
_MAX_CODE_SPAN = 2**62


def _as_whole_number(frame: DataFrame, column: str) -> Column | None:
    """The column as a long that keeps equality (days since 1970 for a date); None when it has no such form."""
    data_type = frame.schema[column].dataType
    if isinstance(data_type, T.DateType):
        return F.unix_date(F.col(column))
    if isinstance(data_type, T.IntegralType):
        return F.col(column).cast("long")
    return None


def bounds_wanted(frame: DataFrame, key: list[str]) -> list[Column] | None:
    """The aggregates (min and max of each key column) the bitmap count needs, or None when a key
    column has no whole-number form; they ride along in the suite's one aggregate job."""
    numbers = [_as_whole_number(frame, column) for column in key]
    if any(number is None for number in numbers):
        return None
    return [agg(number) for number in numbers for agg in (F.min, F.max)]  # type: ignore[arg-type]


def footer_bounds(frame: DataFrame, key: list[str], footers: FooterStats | None) -> list[tuple[int, int]] | None:
    """Each key column's (min, max) as whole numbers from the files' statistics, when every column
    of the key has them (and a value); None otherwise. Stale or not, they keep the count sound."""
    found = []
    for column in key:
        stats = footers.columns.get(column) if footers is not None else None
        if stats is None or not stats.bounded or stats.low is None or _as_whole_number(frame, column) is None:
            return None
        as_number = (lambda v: (v - EPOCH_DATE).days) if isinstance(stats.low, dt.date) else int
        found.append((as_number(stats.low), as_number(stats.high)))
    return found


def _code_span(bounds: list[tuple[int, int]]) -> int:
    """How many codes a key with these column bounds can take (each column: its values and null)."""
    span = 1
    for low, high in bounds:
        span *= high - low + 2
    return span


def bitmap_pays(bounds: list[tuple[int, int]] | None, rows: int) -> bool:
    """Whether the bitmap count suits this key: bounds known (None: a column is all null), codes
    that fit a long, and no more buckets than about one per 16 rows (each bucket holds 4 KiB)."""
    if bounds is None:
        return False
    span = _code_span(bounds)
    return span < _MAX_CODE_SPAN and span <= _BITMAP_BUCKET * max(64, rows // 16)


def _key_code(frame: DataFrame, key: list[str], bounds: list[tuple[int, int]]) -> Column:
    """The key as one mixed-radix long: digit = value - min + 1 and a null is digit 0, so different
    keys within the bounds get different codes."""
    code, place = F.lit(0).cast("long"), 1
    for column, (low, high) in zip(key, bounds, strict=True):
        number = _as_whole_number(frame, column)
        assert number is not None, f"{column} has no whole-number form"
        digit = F.coalesce(number - F.lit(low) + F.lit(1), F.lit(0)).cast("long")
        code = code + digit * F.lit(place).cast("long")
        place *= high - low + 2
    return code


def _proved_unique(keyed: DataFrame, key: list[str], bounds: list[tuple[int, int]]) -> bool:
    """Whether one bitmap aggregate finds as many distinct key codes as rows."""
    code = _key_code(keyed, key, bounds).alias("k")
    per_bucket = (keyed.select(code)
                  .groupBy(F.bitmap_bucket_number("k").alias("bucket"))
                  .agg(F.count(F.lit(1)).alias("n"),
                       F.bitmap_count(F.bitmap_construct_agg(F.bitmap_bit_position("k"))).alias("d")))
    found = per_bucket.agg(F.sum("n").alias("n"), F.sum("d").alias("d")).first()
    return found is None or found["n"] is None or int(found["n"]) == int(found["d"])


def rows_in_repeated_keys(frame: DataFrame, key: list[str], bounds: list[tuple[int, int]] | None = None) -> int:
    """Rows whose key occurs more than once (GX's unexpected count for uniqueness).

    Like GX, a row whose key columns are all null has no key to repeat. Given each key column's
    (min, max) in `bounds`, one bitmap aggregate first counts rows and distinct codes: the code is a
    function of the key, so distinct codes never exceed distinct keys, and rows == codes proves
    every key unique even were the bounds stale. Otherwise one exact group-by counts the repeats.
    """
    present = F.lit(False)
    for column in key:
        present |= F.col(column).isNotNull()
    keyed = frame.where(present)
    if bounds is not None and _proved_unique(keyed, key, bounds):
        return 0
    per_key = keyed.groupBy(*key).agg(F.count(F.lit(1)).alias("n"))
    found = per_key.agg(F.sum(F.when(F.col("n") > 1, F.col("n"))).alias(ROWS_IN_REPEATED_KEYS)).first()
    return int(found[0] or 0) if found else 0


def _schema_measure(expectation: Expectation, schema: T.StructType) -> Measure:
    kwargs = expectation.configuration.kwargs
    if expectation.expectation_type == _SCHEMA[0]:
        return Measure(success=schema.names == list(kwargs["column_list"]), observed=schema.names)  # as GX's
    found = {f.name: type(f.dataType).__name__ for f in schema.fields}.get(kwargs["column"])
    return Measure(success=found == kwargs["type_"], observed=found)


def _row_count_measure(expectation: Expectation, rows: int) -> Measure:
    kwargs = expectation.configuration.kwargs
    low, high = kwargs.get("min_value"), kwargs.get("max_value")
    return Measure(success=(low is None or rows >= low) and (high is None or rows <= high), observed=rows)


def _bounds_found(totals: Any, k: int, width: int) -> list[tuple[int, int]] | None:
    """The (min, max) of each column of the k-th bounded key, or None when one is all null."""
    if totals is None:
        return None
    found = [(totals[f"b{k}_{2 * j}"], totals[f"b{k}_{2 * j + 1}"]) for j in range(width)]
    return None if any(low is None for low, _ in found) else [(int(low), int(high)) for low, high in found]


def measure_suite(suite: ExpectationSuite, frame: DataFrame, keyed: DataFrame | None = None,
                  known: Mapping[str, Measure] | None = None, rows: int | None = None,
                  footers: FooterStats | None = None) -> tuple[int, list[Measure | None]]:
    """(rows, one Measure per expectation in the suite's order, None for one that is not
    `measurable`: the caller asks GX for those): one aggregate job over `frame`
    (which also finds the bounds of each whole-number key), plus one count per distinct key a
    uniqueness rule names (a bitmap aggregate, or the exact group-by), over `keyed` when given (the same
    rows without the columns only other rules need, such as the gate's joined orphan_* columns).

    `known` holds measures (by `signature`) of another suite over the same files, with their
    `rows`: those expectations are not measured again, and when nothing else needs the data no
    job runs at all (a mart that is a copy of a staging table costs only its own rules).

    `footers` holds the statistics of the files `frame` reads (jobs/footers.py): they give the row
    count and the key bounds, and a rule they prove (`proved_by_footers`) reads no rows, so the
    aggregate job reads only the columns of the rules they cannot prove.
    """
    known = known or {}
    expectations = list(suite.expectations)
    signatures = [signature(e.configuration) for e in expectations]
    unmeasured = {i for i, e in enumerate(expectations) if signatures[i] not in known and not measurable(e)}
    if rows is None and footers is not None:
        rows = footers.rows
    predicates = {i: p for i, e in enumerate(expectations)
                  if signatures[i] not in known and i not in unmeasured and (p := rejected_rows(e)) is not None}
    proved = {i for i in predicates if proved_by_footers(expectations[i], footers)}
    columns = set(frame.columns)
    # a rule on a column the files lack cannot be counted: the column-set rule already fails
    counted = {i: p for i, p in predicates.items()
               if i not in proved and expectations[i].configuration.kwargs["column"] in columns}
    keys = {tuple(key) for i, e in enumerate(expectations) if signatures[i] not in known and i not in unmeasured
            and (key := key_columns(e)) is not None and set(key) <= columns}
    from_footers = {key: found for key in keys if (found := footer_bounds(frame, list(key), footers))}
    wanted = {key: aggregates for key in sorted(keys - set(from_footers))
              if (aggregates := bounds_wanted(frame, list(key)))}
    bound_columns = [a.alias(f"b{k}_{j}") for k, aggregates in enumerate(wanted.values())
                     for j, a in enumerate(aggregates)]
    totals = None
    if counted or bound_columns or rows is None:
        totals = frame.agg(F.count(F.lit(1)).alias("rows"),
                           *[F.count_if(p).alias(f"r{i}") for i, p in counted.items()], *bound_columns).first()
        rows = int(totals["rows"]) if totals else 0
    bounds = {key: _bounds_found(totals, k, len(key)) for k, key in enumerate(wanted)} | from_footers
    repeated: dict[tuple[str, ...], int] = {}
    measures: list[Measure | None] = []
    for i, expectation in enumerate(expectations):
        key = key_columns(expectation)
        if i in unmeasured:
            measures.append(None)
        elif signatures[i] in known:
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
                found = bounds.get(tuple(key))
                repeated[tuple(key)] = rows_in_repeated_keys(frame if keyed is None else keyed, key,
                                                             found if bitmap_pays(found, rows) else None)
            measures.append(Measure(success=repeated[tuple(key)] == 0, unexpected_count=repeated[tuple(key)]))
        elif i in proved:
            measures.append(Measure(success=True, unexpected_count=0))
        elif i in counted:
            rejected = int(totals[f"r{i}"]) if totals else 0
            measures.append(Measure(success=rejected == 0, unexpected_count=rejected))
        else:
            measures.append(Measure(success=False))  # its column is missing from the files
    return rows, measures

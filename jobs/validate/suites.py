"""Great Expectations suites, built from the dataset declarations (jobs/datasets.py), never by hand.

Every dataset gets the rules its declaration implies (exact columns and types as written in the
files, the partition's dt is D, non-nullable columns not null, key unique, marts not empty) plus
the value rules it declares in `checks`. A reference to another dataset is checked on a column
the gate appends (jobs/validate/run.py joins the target): `orphan_<column>` holds the value when
the target lacks it, null otherwise, so its unexpected values are exactly the orphans. The count
reconciliation runs on a small frame of per-entity counts. Pure: declarations in, suites out.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Iterator, Mapping, Sequence

import great_expectations as gx
import great_expectations.expectations as gxe
from great_expectations.expectations.expectation import Expectation
from great_expectations.expectations.metadata_types import FailureSeverity

from jobs.datasets import (
    PARTITION,
    Between,
    Dataset,
    IsRunDate,
    NotInFuture,
    NotNull,
    References,
    Severity,
)
from jobs.fingerprint import FINGERPRINT

RECONCILIATION = "checks/reconciliation"
CRITICAL = FailureSeverity.CRITICAL


def _gx(severity: Severity) -> FailureSeverity:
    return FailureSeverity(severity.value)
RECONCILIATION_KEY = ("entity",)


def orphan_column(ref: References) -> str:
    """The gate's column holding each value of `ref.column` the target lacks (null when it exists)."""
    return f"orphan_{ref.column}"


def _between(column: str, low: float | dt.datetime | None, high: float | dt.datetime | None,
             severity: Severity, description: str) -> Expectation:
    return gxe.ExpectColumnValuesToBeBetween(column=column, min_value=low, max_value=high,
                                             severity=_gx(severity), description=description)


def _range_text(low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f"between {low:g} and {high:g}"
    return f"at least {low:g}" if low is not None else f"at most {high:g}"


def _declared(ds: Dataset) -> Iterator[Expectation]:
    """What the schema, partition and key of a declaration imply."""
    orphans = [orphan_column(r) for r in references(ds)]
    yield gxe.ExpectTableColumnsToMatchOrderedList(
        column_list=[*ds.file_column_names, PARTITION, *orphans], severity=CRITICAL,
        description="exactly the declared columns, in order"
                    + (f", then the stored row fingerprint {FINGERPRINT}" if ds.fingerprinted else "")
                    + ", plus the partition column dt" + (" (and the gate's orphan_* columns)" if orphans else ""))
    for name, kind, nullable in ds.file_columns:
        yield gxe.ExpectColumnValuesToBeOfType(column=name, type_=type(kind).__name__, severity=CRITICAL,
                                               description=f"{name} is {kind.simpleString()} in the files")
        if not nullable:
            yield gxe.ExpectColumnValuesToNotBeNull(column=name, severity=CRITICAL, description=f"{name} is never null")
    if len(ds.key) == 1:
        yield gxe.ExpectColumnValuesToBeUnique(column=ds.key[0], severity=CRITICAL,
                                               description=f"primary key {ds.key[0]} is unique")
    else:
        yield gxe.ExpectCompoundColumnsToBeUnique(column_list=list(ds.key), severity=CRITICAL,
                                                  description=f"primary key ({', '.join(ds.key)}) is unique")
    if ds.min_rows:
        why = ("a ranked mart no game qualifies for is loaded as empty (load.on_empty)"
               if ds.min_rows_severity is Severity.WARNING else f"an empty {ds.layer.value} table is never loaded")
        yield gxe.ExpectTableRowCountToBeBetween(min_value=ds.min_rows, severity=_gx(ds.min_rows_severity),
                                                 description=f"at least {ds.min_rows} row(s): {why}")


def reference_identity(ref: References, targets: Mapping[str, str] | None = None) -> str:
    """What a reference rule checks against: the target's files (`targets` maps a dataset to an
    identity of its files, such as their digest), else its name. It is in the rule's `meta`, so
    rule_pass.signature tells apart references of one column to different contents (a mart bridge
    against the catalogue, the staging bridge it copies against D's changed games) and shares
    those to the same files (a mart dimension published as a copy of its staging table)."""
    return f"{(targets or {}).get(ref.target, ref.target)}.{ref.target_column}"


def reference_rule(ref: References, targets: Mapping[str, str] | None = None) -> Expectation:
    """Every value of the column exists in the target: the gate's orphan column is all null."""
    return gxe.ExpectColumnValuesToBeNull(
        column=orphan_column(ref), severity=_gx(ref.severity),
        description=f"every {ref.column} exists in {ref.target}.{ref.target_column}",
        meta={"references": reference_identity(ref, targets)})


def _value_rules(ds: Dataset, day: dt.date, now: dt.datetime,
                 targets: Mapping[str, str] | None) -> Iterator[Expectation]:
    """The declaration's own `checks` (references read the orphan_* columns the gate appends)."""
    yield gxe.ExpectColumnValuesToBeInSet(column=PARTITION, value_set=[day], severity=CRITICAL,
                                          description=f"dt is {day}")
    for check in ds.checks:
        if isinstance(check, Between):
            for column in check.columns:
                yield _between(column, check.low, check.high, check.severity,
                               f"{column} {_range_text(check.low, check.high)}")
        elif isinstance(check, NotInFuture):
            for column in check.columns:
                yield _between(column, None, now, check.severity,
                               f"{column} not in the future (after {now:%Y-%m-%d %H:%M} UTC)")
        elif isinstance(check, IsRunDate):
            for column in check.columns:
                yield gxe.ExpectColumnValuesToBeInSet(column=column, value_set=[day], severity=_gx(check.severity),
                                                      description=f"{column} is {day}")
        elif isinstance(check, NotNull):
            for column in check.columns:
                yield gxe.ExpectColumnValuesToNotBeNull(column=column, severity=_gx(check.severity),
                                                        description=f"{column} is present")
        elif isinstance(check, References):
            yield reference_rule(check, targets)


def dataset_suite(ds: Dataset, day: dt.date, now: dt.datetime, targets: Mapping[str, str] | None = None,
                  user: Sequence[Expectation] = ()) -> gx.ExpectationSuite:
    """Everything checked on one dataset's dt=D as read from its files: the rules its declaration
    implies, then the users' own for this output (jobs/validate/user_expectations.py; copies, as a suite
    takes ownership of its expectations). `now` is naive UTC; `targets` names the files of
    reference targets (`reference_identity`)."""
    return gx.ExpectationSuite(name=ds.rel_path, expectations=[*_declared(ds), *_value_rules(ds, day, now, targets),
                                                               *(copy.copy(e) for e in user)])


def narrowed(suite: gx.ExpectationSuite, keep: set[int]) -> gx.ExpectationSuite:
    """A copy of a suite with only the expectations at these positions (to re-run the failed ones)."""
    return gx.ExpectationSuite(name=f"{suite.name}/failed",
                               expectations=[copy.copy(e) for i, e in enumerate(suite.expectations) if i in keep])


def references(ds: Dataset) -> list[References]:
    return [c for c in ds.checks if isinstance(c, References)]


def reconciliation_suite(max_quarantine_share: float) -> gx.ExpectationSuite:
    """Per entity: raw lines = staged rows + lines collapsed by dedupe + quarantined lines, and few rejects."""
    return gx.ExpectationSuite(name=RECONCILIATION, expectations=[
        gxe.ExpectColumnValuesToBeBetween(
            column="unaccounted_lines", min_value=0, max_value=0, severity=CRITICAL,
            description="raw lines = staged + collapsed + quarantined (no line lost or doubled)"),
        gxe.ExpectColumnValuesToBeBetween(
            column="quarantine_share", min_value=0, max_value=max_quarantine_share, severity=CRITICAL,
            description=f"at most {max_quarantine_share:.2%} of raw lines quarantined "
                        f"(setting validation.max_quarantine_share)"),
    ])

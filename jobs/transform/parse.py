"""Raw lines -> typed records, or a quarantine row with the reason. Nothing is dropped silently.

Reasons, checked in this order:
  empty line | malformed JSON | not a JSON object | wrong type: <fields> | missing <field> | invalid id |
  NUL character (valid JSON, but PostgreSQL text cannot store it: the load of the date would fail)
"""

from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from jobs.schemas import CORRUPT, with_corrupt_column

RECORD = "record"
REASON = "reason"
NUL_ESCAPE = "\\u0000"  # how JSON writes the NUL character


def _wrong_type_fields(value: Column, schema: T.StructType) -> Column:
    """Names of the fields whose JSON value does not fit the schema (parsed one field at a time)."""
    checks = []
    for field in schema.fields:
        alone = T.StructType([field, T.StructField(CORRUPT, T.StringType())])
        parsed = F.from_json(value, alone, {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": CORRUPT})
        checks.append(F.when(parsed[CORRUPT].isNotNull(), F.lit(field.name)))
    return F.array_join(F.array_compact(F.array(*checks)), ", ")


def _reason(value: Column, record: Column, schema: T.StructType, required: Sequence[str]) -> Column:
    """Null for a good line. The costly checks (a second JSON parse) run only on lines Spark
    already flagged: from_json gives no record for a blank line and fills the corrupt-record
    column for malformed JSON, a non-object and a wrong-typed field alike."""
    corrupt_reason = (
        F.when(F.get_json_object(value, "$").isNull(), F.lit("malformed JSON"))
        .when(~F.ltrim(value).startswith("{"), F.lit("not a JSON object"))
        .otherwise(F.concat(F.lit("wrong type: "), _wrong_type_fields(value, schema)))
    )
    reason = (
        F.when(record.isNull(), F.lit("empty line"))
        .when(record[CORRUPT].isNotNull(), corrupt_reason)
    )
    for name in required:
        reason = reason.when(record[name].isNull(), F.lit(f"missing {name}"))
    reason = reason.when(record["id"] <= 0, F.lit("invalid id: not positive"))
    # \u0000 escaped in the JSON text (an odd run of backslashes before the u); the cheap substring
    # test runs first, the regex only on the rare lines holding the six characters at all
    nul = value.contains(NUL_ESCAPE) & value.rlike(r"(?<!\\)(\\\\)*\\u0000")
    return reason.when(nul, F.lit("NUL character: PostgreSQL text cannot store it"))


def parse_lines(lines: DataFrame, schema: T.StructType, required: Sequence[str] = ("id",)) -> DataFrame:
    """(source_file, line_number, value) -> the same plus `record` (typed struct) and `reason`.

    `value` is kept only on rejected lines: good lines need only their typed record. `required`: the
    fields a record cannot be staged without (its entity's declaration, jobs/transform/entities.py).
    """
    options = {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": CORRUPT}
    record = F.from_json("value", with_corrupt_column(schema), options).alias(RECORD)
    # Parsing is the costly part of a transform: it must run once a line. As a plain column, Spark
    # would copy the from_json into every filter on the reason pushed below it, parsing each line
    # again per filter; the output of a generator (one row in, one row out) is computed once and kept.
    parsed = lines.select("*", F.inline(F.array(F.struct(record))))
    parsed = parsed.withColumn(REASON, _reason(F.col("value"), F.col(RECORD), schema, required))
    return parsed.select(
        "source_file", "line_number", RECORD, REASON,
        F.when(F.col(REASON).isNotNull(), F.col("value")).alias("value"),
    )


def valid_records(parsed: DataFrame) -> DataFrame:
    """The typed fields of lines that passed, with where they came from (for deterministic dedupe)."""
    record_type = parsed.schema[RECORD].dataType
    assert isinstance(record_type, T.StructType)
    fields = [f for f in record_type.fieldNames() if f != CORRUPT]
    return parsed.where(F.col(REASON).isNull()).select(
        "source_file", "line_number", *[F.col(f"{RECORD}.{f}").alias(f) for f in fields]
    )


def quarantine_rows(parsed: DataFrame, entity: str) -> DataFrame:
    return parsed.where(F.col(REASON).isNotNull()).select(
        F.lit(entity).alias("entity"),
        "source_file",
        "line_number",
        F.coalesce(F.col("value"), F.lit("")).alias("raw_line"),
        F.col(REASON).alias("reason"),
    )

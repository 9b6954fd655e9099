"""Raw lines to typed records or quarantine rows: every kind of bad line gets its own reason."""

from __future__ import annotations

from chispa import assert_df_equality
from pyspark.sql import types as T

from jobs.io import LINES_SCHEMA
from jobs.schemas import RAW_SCHEMAS
from jobs.spark_internals import executed_plan
from jobs.transform.parse import parse_lines, quarantine_rows, valid_records

SCHEMA = T.StructType([
    T.StructField("id", T.LongType()),
    T.StructField("name", T.StringType()),
    T.StructField("platforms", T.ArrayType(T.LongType())),
    T.StructField("rating", T.DoubleType()),
    T.StructField("updated_at", T.LongType()),
])

QUARANTINE_SCHEMA = T.StructType([
    T.StructField("entity", T.StringType(), False),
    T.StructField("source_file", T.StringType(), False),
    T.StructField("line_number", T.LongType(), False),
    T.StructField("raw_line", T.StringType(), False),
    T.StructField("reason", T.StringType(), True),
])

LINES = [
    ("f1", 1, '{"id": 1, "name": "Pokémon", "platforms": [4, null, 4], "rating": 81.5, "updated_at": 10}'),
    ("f1", 2, ""),
    ("f1", 3, "   "),
    ("f1", 4, '{"id": 2, "name": "cut'),
    ("f1", 5, "[1, 2]"),
    ("f1", 6, '"just a string"'),
    ("f1", 7, '{"id": "three", "name": "x", "updated_at": 1}'),
    ("f1", 8, '{"id": 4, "rating": "high", "platforms": ["a"], "updated_at": 1}'),
    ("f1", 9, '{"name": "no id", "updated_at": 1}'),
    ("f2", 1, '{"id": 5, "name": "no updated_at"}'),
    ("f2", 2, '{"id": 0, "name": "zero", "updated_at": 1}'),
    ("f2", 3, '{"id": 6, "name": "ctrl\\u0007 and \\ud83c\\udfae", "platforms": [], "updated_at": 2}'),
    ("f2", 4, '{"id": 7, "name": "nul\\u0000byte", "updated_at": 3}'),
    ("f2", 5, '{"id": 8, "name": "a backslash, then u0000: \\\\u0000", "updated_at": 3}'),
]


def _parsed(spark):
    lines = spark.createDataFrame(LINES, LINES_SCHEMA)
    return parse_lines(lines, SCHEMA, required=("id", "updated_at"))


def test_each_kind_of_bad_line_is_quarantined_with_its_reason(spark) -> None:
    actual = quarantine_rows(_parsed(spark), "games")
    expected = spark.createDataFrame([
        ("games", "f1", 2, "", "empty line"),
        ("games", "f1", 3, "   ", "empty line"),
        ("games", "f1", 4, '{"id": 2, "name": "cut', "malformed JSON"),
        ("games", "f1", 5, "[1, 2]", "not a JSON object"),
        ("games", "f1", 6, '"just a string"', "not a JSON object"),
        ("games", "f1", 7, '{"id": "three", "name": "x", "updated_at": 1}', "wrong type: id"),
        ("games", "f1", 8, '{"id": 4, "rating": "high", "platforms": ["a"], "updated_at": 1}',
         "wrong type: platforms, rating"),
        ("games", "f1", 9, '{"name": "no id", "updated_at": 1}', "missing id"),
        ("games", "f2", 1, '{"id": 5, "name": "no updated_at"}', "missing updated_at"),
        ("games", "f2", 2, '{"id": 0, "name": "zero", "updated_at": 1}', "invalid id: not positive"),
        ("games", "f2", 4, '{"id": 7, "name": "nul\\u0000byte", "updated_at": 3}',
         "NUL character: PostgreSQL text cannot store it"),
    ], QUARANTINE_SCHEMA)
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


def test_good_lines_become_typed_records(spark) -> None:
    actual = valid_records(_parsed(spark))
    expected = spark.createDataFrame([
        ("f1", 1, 1, "Pokémon", [4, None, 4], 81.5, 10),
        ("f2", 3, 6, "ctrl\u0007 and \U0001f3ae", [], None, 2),
        ("f2", 5, 8, "a backslash, then u0000: \\u0000", None, None, 3),
    ], T.StructType([T.StructField("source_file", T.StringType(), False),
                     T.StructField("line_number", T.LongType(), False), *SCHEMA.fields]))
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


def test_every_line_is_either_valid_or_quarantined(spark) -> None:
    parsed = _parsed(spark)
    assert valid_records(parsed).count() + quarantine_rows(parsed, "games").count() == len(LINES)


def test_real_game_schema_accepts_a_real_record(spark) -> None:
    line = ('{"id":1020,"name":"Grand Theft Auto V","rating":89.3,"rating_count":5754,"genres":[5,31],'
            '"first_release_date":1379376000,"updated_at":1780948080}')
    parsed = parse_lines(spark.createDataFrame([("f", 1, line)], LINES_SCHEMA), RAW_SCHEMAS["games"],
                         required=("id", "updated_at"))
    row = valid_records(parsed).collect()[0]
    assert (row["id"], row["rating_count"], row["genres"], row["storyline"]) == (1020, 5754, [5, 31], None)


def test_each_line_is_parsed_once_even_when_only_its_fields_are_kept(spark) -> None:
    """The staging write keeps the good lines' fields and drops the line numbers: Spark then pushes
    the filter on the reason below the parse and copies the from_json into it, unless the parse is
    the output of a node of its own."""
    from pyspark.sql import functions as F

    kept = valid_records(_parsed(spark)).select("id", F.col("name").alias("title"))
    plan = executed_plan(kept)
    assert plan.count("from_json(") == 1, plan

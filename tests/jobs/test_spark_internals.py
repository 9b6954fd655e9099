"""PySpark's private attributes are reached in jobs/spark_internals.py alone, so a Spark upgrade
has one module to check."""

from __future__ import annotations

import re
from pathlib import Path

from jobs import spark_internals
from jobs.spark_internals import executed_plan, optimized_plan

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = ("core", "ingestion", "jobs", "pipeline", "tests", "bench", "reliability", "dags")
PRIVATE = re.compile(r"\._(jvm|jsc|jdf|jsparkSession|sc|jconf|jreader|jwrite|jseq)\b")


def test_no_private_pyspark_attribute_outside_the_adapter() -> None:
    adapter = Path(spark_internals.__file__).resolve()
    files = [p for folder in FOLDERS for p in (ROOT / folder).rglob("*.py")] + [ROOT / "setup.py"]
    found = [f"{p.relative_to(ROOT)}:{n}" for p in files if p.resolve() != adapter
             for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if PRIVATE.search(line)]
    assert found == []


def test_the_plans_are_spark_s_own_text(spark) -> None:
    frame = spark.range(3).where("id > 1")
    assert "Filter" in optimized_plan(frame)
    assert "Range" in executed_plan(frame)

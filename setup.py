"""igdb-pipeline: IGDB API -> raw JSONL lake -> Spark marts -> validated -> PostgreSQL.

`make setup` installs this package in editable mode with the pins of constraints.txt.
"""

from setuptools import find_packages, setup

setup(
    name="igdb-pipeline",
    version="0.1.0",
    description="Daily, idempotent IGDB catalogue and popularity marts: ingestion, Spark, validation, load",
    python_requires=">=3.11,<3.12",
    packages=find_packages(include=["core", "core.*", "pipeline", "pipeline.*", "ingestion", "ingestion.*", "jobs", "jobs.*"]),
    install_requires=[
        "pyspark>=3.5,<3.6",  # EMR 7 runs Spark 3.5
        "great-expectations>=1.5,<2",
        "pandas>=2,<3",  # great-expectations 1.x and pyspark 3.5 need pandas 2
        "boto3>=1.34",
        "requests>=2.31",
        # ingestion parses and re-writes every IGDB record on one core: orjson does both much faster
        # than the standard json module (docs/architecture.md, "JSON"), with the same compact UTF-8 output
        "orjson>=3.10",
        "psycopg2-binary>=2.9",
        "pyyaml>=6",  # conf/<env>.yaml
    ],
    extras_require={
        # an embedded PostgreSQL for machines without a database server (make run, tests)
        "local": ["pgserver>=0.1.4"],
        "dev": [
            "pgserver>=0.1.4",
            "pytest>=8",
            # two test workers: the suite is mostly latency (JVM, HTTP, PostgreSQL), not CPU
            "pytest-xdist>=3.5",
            "chispa>=0.10",
            "moto[server]>=5",  # S3/EMR over HTTP in tests (server mode, not in-process patching)
            "ruff>=0.6",
            "mypy>=1.10",
            # the layering contract (core <- stages <- pipeline) checked by `make lint`
            "import-linter>=2.1",
            "duckdb>=1.0",  # benchmark baseline only
            "psutil>=5.9",  # benchmark: peak RSS of the measured process
            "matplotlib>=3.10,<3.11",  # benchmark report: the chart of the stages' times (bench/report.png)
            # the DAG's tests make Airflow's own virtual environment (well over a hundred packages): uv
            # installs it far faster than pip, which keeps the suite inside its time budget
            "uv>=0.9",
        ],
    },
    entry_points={"console_scripts": ["igdb-pipeline=pipeline.cli:main"]},
)

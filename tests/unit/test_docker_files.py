"""What can be checked of the Docker set-up without a Docker engine: the files agree with each other
and with the code (settings the pipeline knows, credentials that match, jars that match Spark)."""

from __future__ import annotations

import re
from pathlib import Path

import pyspark
import yaml

from core.config import SETTINGS, load_settings
from pipeline import environment
from tests.conftest import PROJECT_ROOT

COMPOSE = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())
DOCKERFILE = (PROJECT_ROOT / "Dockerfile").read_text()


def _interpolated(value: str) -> str:
    """Compose's ${VAR:-default} with nothing set in the environment."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", value)


def _pipeline_env() -> dict[str, str]:
    return {k: _interpolated(str(v)) for k, v in COMPOSE["services"]["pipeline"]["environment"].items()}


def test_compose_services_depend_on_services_that_exist_and_are_checked() -> None:
    services = COMPOSE["services"]
    assert set(services) == {"postgres", "minio", "create-bucket", "pipeline"}
    for name, service in services.items():
        for needed, condition in (service.get("depends_on") or {}).items():
            assert needed in services, f"{name} depends on unknown {needed}"
            if condition["condition"] == "service_healthy":
                assert "healthcheck" in services[needed], f"{needed} has no healthcheck"


def test_the_pipeline_container_settings_are_valid_and_point_at_the_compose_services() -> None:
    env = _pipeline_env()
    known = {s.env for s in SETTINGS} | {"AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                                         "AWS_DEFAULT_REGION"}
    assert set(env) <= known, set(env) - known
    settings = load_settings(environ=env)
    assert settings.uses_sandbox  # no credentials in the file
    services = COMPOSE["services"]
    postgres = services["postgres"]["environment"]
    assert settings.database_url == (f"postgresql://{postgres['POSTGRES_USER']}:{postgres['POSTGRES_PASSWORD']}"
                                     f"@postgres:5432/{postgres['POSTGRES_DB']}")
    minio = services["minio"]["environment"]
    assert (env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]) == (minio["MINIO_ROOT_USER"],
                                                                         minio["MINIO_ROOT_PASSWORD"])
    bucket = settings.lake_uri.split("/")[2]
    assert f"mb --ignore-existing lake/{bucket}" in services["create-bucket"]["command"][0]
    assert services["pipeline"]["command"][:3] == ["igdb-pipeline", "run", "--date"]


def test_spark_in_the_image_reads_s3_from_the_same_minio() -> None:
    conf = dict(line.split(None, 1) for line in
                (PROJECT_ROOT / "docker/spark-conf/spark-defaults.conf").read_text().splitlines()
                if line.strip() and not line.startswith("#"))
    assert conf["spark.hadoop.fs.s3a.endpoint"].strip() == _pipeline_env()["AWS_ENDPOINT_URL"]
    assert conf["spark.hadoop.fs.s3.impl"].strip() == "org.apache.hadoop.fs.s3a.S3AFileSystem"
    assert re.search(r"^ENV [^#]*SPARK_CONF_DIR=/app/docker/spark-conf", DOCKERFILE, re.MULTILINE | re.DOTALL)


def test_the_image_matches_python_spark_and_hadoop_of_the_project() -> None:
    assert re.search(r"^FROM debian:bookworm", DOCKERFILE, re.MULTILINE)
    # Debian 12's python3.11 lives where the environment archive's bin/python points
    assert "python3.11" in DOCKERFILE and environment.DEFAULT_PYTHON_PREFIX == "/usr"
    jars = Path(pyspark.__file__).parent / "jars"
    hadoop = next(jars.glob("hadoop-client-api-*.jar")).name.removeprefix("hadoop-client-api-").removesuffix(".jar")
    assert f"ARG HADOOP_AWS_VERSION={hadoop}" in DOCKERFILE  # hadoop-aws must equal Spark's Hadoop
    pins = dict(line.split("==", 1) for line in (PROJECT_ROOT / "constraints.txt").read_text().splitlines()
                if "==" in line)
    assert f"ARG PYSPARK_VERSION={pins['pyspark']}" in DOCKERFILE and f"ARG PY4J_VERSION={pins['py4j']}" in DOCKERFILE
    bundle = {f"dist/{environment.ARCHIVE}"}  # made by `make package`, which `make docker-build` runs first
    for source in re.findall(r"^COPY (.+) \S+$", DOCKERFILE, re.MULTILINE):
        for path in source.split():
            assert path in bundle or (PROJECT_ROOT / path).exists(), f"Dockerfile copies {path}, which does not exist"


def test_the_image_runs_on_the_environment_archive_of_emr() -> None:
    copied = re.findall(r"^COPY (\S+) ", DOCKERFILE, re.MULTILINE)
    assert f"dist/{environment.ARCHIVE}" in copied
    assert "tar -xzf /tmp/pyspark_env.tar.gz -C /opt/environment" in DOCKERFILE
    assert "PYSPARK_PYTHON=/opt/environment/bin/python" in DOCKERFILE and "PATH=/opt/environment/bin:" in DOCKERFILE
    assert not re.search(r"pip install[^\n]*-c constraints\.txt", DOCKERFILE)  # packages come from the archive
    makefile = (PROJECT_ROOT / "Makefile").read_text()
    assert re.search(r"^docker-build: package\b", makefile, re.MULTILINE)

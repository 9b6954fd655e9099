# syntax=docker/dockerfile:1
# Local Spark in Docker: Spark 3.5 (pyspark), Python 3.11, Java 17 and the project.
# `make docker-run DATE=D` runs it with docker-compose.yml (PostgreSQL + MinIO as the S3 lake).
# Not built or run on the machine this was written on (no Docker engine there): see the README.
FROM python:3.11-slim-bookworm

# Hadoop 3.3.4 is what pyspark 3.5 bundles; hadoop-aws must match it, and the AWS SDK bundle must
# match hadoop-aws (its pom). Fetched at build time: nothing is downloaded when a job runs.
ARG HADOOP_AWS_VERSION=3.3.4
ARG AWS_SDK_BUNDLE_VERSION=1.12.262

RUN apt-get update \
 && apt-get install -y --no-install-recommends openjdk-17-jre-headless curl ca-certificates procps \
 && rm -rf /var/lib/apt/lists/*

RUN useradd --create-home --uid 1000 pipeline
WORKDIR /app

# dependencies first (cached while only the code changes), pinned like `make setup`
COPY setup.py constraints.txt ./
RUN mkdir pipeline ingestion jobs && touch pipeline/__init__.py ingestion/__init__.py jobs/__init__.py \
 && pip install --no-cache-dir -c constraints.txt ".[local]" \
 && pip uninstall -y igdb-pipeline

RUN jars=$(python -c 'import pyspark, os; print(os.path.join(os.path.dirname(pyspark.__file__), "jars"))') \
 && curl -fsSL -o "$jars/hadoop-aws-${HADOOP_AWS_VERSION}.jar" \
      "https://repo1.maven.org/maven2/org/apache/hadoop/hadoop-aws/${HADOOP_AWS_VERSION}/hadoop-aws-${HADOOP_AWS_VERSION}.jar" \
 && curl -fsSL -o "$jars/aws-java-sdk-bundle-${AWS_SDK_BUNDLE_VERSION}.jar" \
      "https://repo1.maven.org/maven2/com/amazonaws/aws-java-sdk-bundle/${AWS_SDK_BUNDLE_VERSION}/aws-java-sdk-bundle-${AWS_SDK_BUNDLE_VERSION}.jar"

COPY pipeline ./pipeline
COPY ingestion ./ingestion
COPY jobs ./jobs
COPY conf ./conf
COPY docker/spark-conf ./docker/spark-conf
COPY spark-submit.sh Makefile README.md ./
RUN pip install --no-cache-dir --no-deps . && chown -R pipeline:pipeline /app

# s3:// paths go through S3A to the compose MinIO (docker/spark-conf/spark-defaults.conf)
ENV SPARK_CONF_DIR=/app/docker/spark-conf \
    PYTHONUNBUFFERED=1 \
    PIPELINE_DATA_DIR=/app/.data
USER pipeline
ENTRYPOINT []
CMD ["igdb-pipeline", "--help"]

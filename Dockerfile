# syntax=docker/dockerfile:1
# Local Spark in Docker on the Python environment EMR gets: `make docker-build` runs `make package`
# first and the image unpacks dist/pyspark_env.tar.gz, the archive the cluster test runs its
# executors on, so one artefact is tested. Spark 3.5 (pyspark, pinned like constraints.txt), Java 17.
# `make docker-run DATE=D` runs it with docker-compose.yml (PostgreSQL + MinIO as the S3 lake).
# Not built or run on the machine this was written on (no Docker engine there): see the README.
FROM debian:bookworm-slim

# Hadoop 3.3.4 is what pyspark 3.5 bundles; hadoop-aws must match it, and the AWS SDK bundle must
# match hadoop-aws (its pom). Fetched at build time: nothing is downloaded when a job runs.
ARG HADOOP_AWS_VERSION=3.3.4
ARG AWS_SDK_BUNDLE_VERSION=1.12.262
# Spark itself is the cluster's on EMR, so the archive leaves it out; here it is the pinned wheel
ARG PYSPARK_VERSION=3.5.9
ARG PY4J_VERSION=0.10.9.9

# Debian 12's python3.11 is /usr/bin/python3.11: the interpreter the archive's bin/python links to
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3.11 python3-pip openjdk-17-jre-headless curl \
      ca-certificates procps \
 && rm -rf /var/lib/apt/lists/*

RUN useradd --create-home --uid 1000 pipeline
WORKDIR /app

COPY dist/pyspark_env.tar.gz /tmp/pyspark_env.tar.gz
RUN mkdir -p /opt/environment \
 && tar -xzf /tmp/pyspark_env.tar.gz -C /opt/environment \
 && rm /tmp/pyspark_env.tar.gz \
 && python3.11 -m pip install --no-cache-dir --break-system-packages --no-deps \
      --target /opt/environment/lib/python3.11/site-packages "pyspark==${PYSPARK_VERSION}" "py4j==${PY4J_VERSION}"

RUN jars=/opt/environment/lib/python3.11/site-packages/pyspark/jars \
 && curl -fsSL -o "$jars/hadoop-aws-${HADOOP_AWS_VERSION}.jar" \
      "https://repo1.maven.org/maven2/org/apache/hadoop/hadoop-aws/${HADOOP_AWS_VERSION}/hadoop-aws-${HADOOP_AWS_VERSION}.jar" \
 && curl -fsSL -o "$jars/aws-java-sdk-bundle-${AWS_SDK_BUNDLE_VERSION}.jar" \
      "https://repo1.maven.org/maven2/com/amazonaws/aws-java-sdk-bundle/${AWS_SDK_BUNDLE_VERSION}/aws-java-sdk-bundle-${AWS_SDK_BUNDLE_VERSION}.jar"

COPY core ./core
COPY pipeline ./pipeline
COPY ingestion ./ingestion
COPY jobs ./jobs
COPY conf ./conf
COPY docker/spark-conf ./docker/spark-conf
COPY spark-submit.sh Makefile README.md ./
RUN printf '#!/bin/sh\nexec python -m pipeline.cli "$@"\n' > /usr/local/bin/igdb-pipeline \
 && chmod 755 /usr/local/bin/igdb-pipeline && chown -R pipeline:pipeline /app

# s3:// paths go through S3A to the compose MinIO (docker/spark-conf/spark-defaults.conf)
ENV PATH=/opt/environment/bin:$PATH \
    PYTHONPATH=/app \
    PYSPARK_PYTHON=/opt/environment/bin/python \
    SPARK_CONF_DIR=/app/docker/spark-conf \
    PYTHONUNBUFFERED=1 \
    PIPELINE_DATA_DIR=/app/.data
USER pipeline
ENTRYPOINT []
CMD ["igdb-pipeline", "--help"]

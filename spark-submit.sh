#!/usr/bin/env bash
# Submit one pipeline job to Spark, exactly as EMR runs it (pipeline/main.py).
#
#   ./spark-submit.sh <job> --date 2026-11-20 [--lake URI] [--set key=value ...]
#       runs the job here: --master $SPARK_SUBMIT_MASTER (default local[*]); on a cluster
#       (spark://host:port, e.g. `make cluster-up`) the executors run the bundle of `make package`
#       (built into $SPARK_SUBMIT_BUNDLE, default dist/)
#   ./spark-submit.sh --emr --date 2026-11-20 [--to 2026-11-22] --bundle-uri s3://bucket/bundles/igdb-pipeline/0.1.0
#       prints the EMR step(s) that run those dates (JSON for `aws emr add-steps --steps file://...`)
#   ./spark-submit.sh --emr --date 2026-11-20 --bundle-uri s3://... --cluster-id j-XXXX
#       builds and uploads the bundle, then adds the step(s) to the cluster (same as make emr-run)
#
# Jobs: ingest, transform, validate, load, run (all steps, resuming), backfill, status.
set -euo pipefail

usage="usage: $0 <ingest|transform|validate|load|run|backfill|status> --date YYYY-MM-DD [pipeline flags]
       $0 --emr --date YYYY-MM-DD [--to YYYY-MM-DD] --bundle-uri s3://... [--cluster-id j-...]"
here=$(cd "$(dirname "$0")" && pwd)
job=${1:-}
case "$job" in
  ingest|transform|validate|load|run|backfill|status) shift ;;
  --emr)
    shift
    make -C "$here" --no-print-directory setup >/dev/null
    if [[ " $* " == *" --cluster-id "* ]]; then
      exec "$here/.venv/bin/python" -m pipeline.emr submit "$@"
    fi
    exec "$here/.venv/bin/python" -m pipeline.emr step "$@" ;;
  -h|--help|"") echo "$usage"; exit 0 ;;
  *) echo "$usage" >&2; exit 2 ;;
esac

make -C "$here" --no-print-directory setup >/dev/null
master=${SPARK_SUBMIT_MASTER:-local[*]}
ship=()
if [[ $master == local* ]]; then
  # one JVM: its Python workers run the project's own environment
  export PYSPARK_PYTHON="${PYSPARK_PYTHON:-$here/.venv/bin/python}"
else
  # a cluster (spark://, yarn): executors get exactly what EMR gets, the bundle built by
  # `make package`: the code as a --py-files zip, the packages as the environment archive, unpacked
  # in each executor's working directory. The driver (client mode) stays on the project's .venv.
  bundle=${SPARK_SUBMIT_BUNDLE:-$here/dist}
  "$here/.venv/bin/python" -m pipeline.emr package --out "$bundle" >&2
  unset PYSPARK_PYTHON PYSPARK_DRIVER_PYTHON
  SPARK_HOME=$("$here/.venv/bin/python" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')
  export SPARK_HOME
  ship=(--py-files "$bundle/igdb_pipeline.zip"
        --archives "$bundle/pyspark_env.tar.gz#environment"
        --conf spark.pyspark.python=./environment/bin/python
        --conf spark.pyspark.driver.python="$here/.venv/bin/python"
        --conf spark.executor.memory="${SPARK_EXECUTOR_MEMORY:-1g}"
)
  export SPARK_LOCAL_IP="${SPARK_LOCAL_IP:-127.0.0.1}"  # the driver as executors reach it
fi
exec "$here/.venv/bin/spark-submit" \
  --master "$master" \
  --driver-memory "${SPARK_DRIVER_MEMORY:-4g}" \
  --conf spark.sql.shuffle.partitions="${SPARK_SHUFFLE_PARTITIONS:-8}" \
  --conf spark.ui.enabled=false \
  "${ship[@]}" \
  "$here/pipeline/main.py" --job "$job" "$@"

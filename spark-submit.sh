#!/usr/bin/env bash
# Submit one pipeline job to Spark, exactly as EMR runs it (jobs/main.py).
#
#   ./spark-submit.sh <job> --date 2026-11-20 [--lake URI] [--set key=value ...]
#       runs the job here: --master $SPARK_SUBMIT_MASTER (default local[*])
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
export PYSPARK_PYTHON="${PYSPARK_PYTHON:-$here/.venv/bin/python}"
exec "$here/.venv/bin/spark-submit" \
  --master "${SPARK_SUBMIT_MASTER:-local[*]}" \
  --driver-memory "${SPARK_DRIVER_MEMORY:-4g}" \
  --conf spark.sql.shuffle.partitions="${SPARK_SHUFFLE_PARTITIONS:-8}" \
  --conf spark.ui.enabled=false \
  "$here/jobs/main.py" --job "$job" "$@"

#!/usr/bin/env bash
# Submit one pipeline job to Spark, exactly as EMR runs it (jobs/main.py), on this machine.
#
#   ./spark-submit.sh transform --date 2026-11-20 [--lake URI] [--set key=value ...]
#
# Master: $SPARK_SUBMIT_MASTER (default local[*]). The EMR step (upload, add-steps) is issue #8.
set -euo pipefail

usage="usage: $0 <transform|validate|load> --date YYYY-MM-DD [pipeline flags]"
job=${1:-}
case "$job" in
  transform|validate|load) shift ;;
  -h|--help|"") echo "$usage"; exit 0 ;;
  *) echo "$usage" >&2; exit 2 ;;
esac

here=$(cd "$(dirname "$0")" && pwd)
make -C "$here" --no-print-directory setup >/dev/null
export PYSPARK_PYTHON="${PYSPARK_PYTHON:-$here/.venv/bin/python}"
exec "$here/.venv/bin/spark-submit" \
  --master "${SPARK_SUBMIT_MASTER:-local[*]}" \
  --driver-memory "${SPARK_DRIVER_MEMORY:-4g}" \
  --conf spark.ui.enabled=false \
  "$here/jobs/main.py" --job "$job" "$@"

#!/bin/bash
# Optional EMR bootstrap action: install the pipeline's Python dependencies for Python 3.11 on every
# node, for steps submitted with `--python-env bootstrap`. The default needs none of this: the
# bundle's environment archive (pyspark_env.tar.gz, spark.archives) brings every package, with no
# pip and no internet on the nodes. This route needs PyPI from every node at every cluster start.
#
#   --bootstrap-actions Path=s3://BUCKET/bundles/igdb-pipeline/VERSION/bootstrap/install-python-deps.sh,\
#                       Args=[s3://BUCKET/bundles/igdb-pipeline/VERSION]
#
# The argument is the bundle `make emr-run` (or `python -m pipeline.emr submit`) uploaded: it holds
# requirements.txt (exact pins, without pyspark: EMR's Spark is used) and constraints.txt (the pins
# of everything else). EMR 7 runs Amazon Linux 2023, whose default python3 is 3.9, so 3.11 comes
# from the distribution's python3.11 package. Bootstrap actions run as the hadoop user, before
# applications start; a non-zero exit fails the cluster's start, which is what we want.
set -euo pipefail

bundle=${1:?usage: install-python-deps.sh s3://bucket/prefix-of-the-bundle}
bundle=${bundle%/}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if ! command -v python3.11 >/dev/null 2>&1; then
  sudo dnf install -y -q python3.11 python3.11-pip
fi
aws s3 cp --only-show-errors "$bundle/requirements.txt" "$work/requirements.txt"
aws s3 cp --only-show-errors "$bundle/constraints.txt" "$work/constraints.txt"
sudo python3.11 -m pip install --quiet --no-cache-dir -r "$work/requirements.txt" -c "$work/constraints.txt"

echo "igdb-pipeline dependencies installed for $(python3.11 --version)"

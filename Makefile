# igdb-pipeline: `make run DATE=YYYY-MM-DD` and `make test` are all a newcomer needs.
# Every target that needs Python installs the virtualenv first (make setup), once.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
DATE   ?= $(shell date -u -d yesterday +%F 2>/dev/null || date -u -v-1d +%F)
PYTEST_ARGS ?=
TEST_WORKERS ?= 2

.DEFAULT_GOAL := help
.PHONY: help setup lock run backfill catchup gc status ingest transform validate sandbox test browser lint typecheck readme-settings \
        reliability bench bench-ingest bench-transform bench-validate bench-load bench-daily bench-cluster bench-fact-history bench-report load package \
        emr-run emr-serverless-run cluster-up cluster-down docker-build docker-run docker-config clean

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(STAMP): setup.py constraints.txt
	$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "Python 3.11 is required (EMR 7)"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP) ## create .venv and install everything pinned (constraints.txt)

lock: ## re-pin constraints.txt from a fresh resolve of setup.py
	rm -rf /tmp/igdb-lock-venv && $(PYTHON) -m venv /tmp/igdb-lock-venv
	/tmp/igdb-lock-venv/bin/pip install --quiet -e ".[dev]"
	/tmp/igdb-lock-venv/bin/pip freeze --exclude-editable | grep -v '^igdb-pipeline' > constraints.txt.new
	(head -2 constraints.txt; cat constraints.txt.new) > constraints.txt.tmp && mv constraints.txt.tmp constraints.txt
	rm -f constraints.txt.new

ingest: $(STAMP) ## land the raw lake for DATE (sandbox unless IGDB credentials are set)
	$(BIN)/igdb-pipeline ingest --date $(DATE)

run: $(STAMP) ## the whole pipeline for DATE on embedded defaults (or your settings); resumes
	$(BIN)/igdb-pipeline run --date $(DATE)

backfill: $(STAMP) ## every date FROM..TO in order (each resumes at its first step not done)
	@test -n "$(FROM)" -a -n "$(TO)" || { echo "usage: make backfill FROM=YYYY-MM-DD TO=YYYY-MM-DD" >&2; exit 2; }
	$(BIN)/igdb-pipeline backfill --from $(FROM) --to $(TO)

catchup: $(STAMP) ## every date not fully done, from pipeline.start_date to yesterday (gap-fill)
	$(BIN)/igdb-pipeline run --catchup

gc: $(STAMP) ## remove lake partitions older than retention.days, not what later runs read (ARGS="--dry-run")
	$(BIN)/igdb-pipeline gc $(ARGS)

status: $(STAMP) ## date x step table of what is done (FROM=/TO= optional)
	$(BIN)/igdb-pipeline status $(if $(FROM),--from $(FROM)) $(if $(TO),--to $(TO))

sandbox: $(STAMP) ## serve the IGDB sandbox on 127.0.0.1:8788
	$(BIN)/igdb-pipeline sandbox

test: $(STAMP) browser lint typecheck ## lint, type-check, then the whole test suite (real HTTP, files, moto S3)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

browser: ## Debian's chromium, which renders the validation report in a test (installed once, needs apt)
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium for the report test"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null; }

lint: $(STAMP) ## ruff, and the layering contract (core <- stages <- pipeline; pyproject.toml)
	$(BIN)/ruff check core pipeline ingestion jobs tests bench reliability dags
	$(BIN)/lint-imports --no-cache

readme-settings: $(STAMP) ## rewrite the README's configuration table from the settings' declarations
	$(BIN)/python -m core.settings_table

typecheck: $(STAMP) ## mypy
	$(BIN)/mypy core pipeline ingestion jobs reliability bench

reliability: $(STAMP) ## the pipeline under faults, one PASS/FAIL line per scenario (45-70 min with the machine; ARGS="--only secrets")
	$(BIN)/python -m reliability $(ARGS)

bench-ingest: $(STAMP) ## ingestion throughput vs the multiquery ceiling of 20,000 records/s (a 100k-game catalogue)
	$(BIN)/python -m bench.bench_ingest

bench-transform: $(STAMP) ## Spark transform vs DuckDB doing the same work (350k games)
	$(BIN)/python -m bench.bench_transform

transform: $(STAMP) ## the Spark jobs for DATE on local Spark
	$(BIN)/igdb-pipeline transform --date $(DATE)

validate: $(STAMP) ## the validation gate for DATE (report in lake/reports/validation/dt=DATE/)
	$(BIN)/igdb-pipeline validate --date $(DATE)

load: $(STAMP) ## upsert the validated marts of DATE into PostgreSQL (DATABASE_URL, else embedded)
	$(BIN)/igdb-pipeline load --date $(DATE)

bench-validate: $(STAMP) ## validation of every output vs the transform time (350k games)
	$(BIN)/python -m bench.bench_validate

bench-load: $(STAMP) ## upsert of 350k dim_games + bridges vs plain COPY, and a 1%-changed rerun
	$(BIN)/python -m bench.bench_load

bench-daily: $(STAMP) ## daily run end to end, its ingest included: 2k changed games on a 350k catalogue (goal <= 240 s)
	$(BIN)/python -m bench.bench_daily

bench-cluster: $(STAMP) ## the daily date on a local standalone cluster vs local mode, same run (ratio = the cluster path's cost)
	$(BIN)/python -m bench.bench_cluster

bench-fact-history: $(STAMP) ## a new day of the popularity fact in PostgreSQL after 15 stored: date-first key vs game-first
	$(BIN)/python -m bench.bench_fact_history

bench: bench-ingest bench-transform bench-validate bench-load bench-daily ## every benchmark, then bench/REPORT.md + report.png
	$(BIN)/python -m bench.report

bench-report: $(STAMP) ## bench/REPORT.md and bench/report.png from the results in bench/out/ (missing: "not run")
	$(BIN)/python -m bench.report

package: $(STAMP) ## build the EMR bundle into dist/ (code zip, entry point, Python environment archive, settings)
	$(BIN)/python -m pipeline.emr package --out dist

cluster-up: $(STAMP) ## a Spark standalone cluster here (master + 2 one-core workers on 127.0.0.1) for spark-submit.sh
	$(BIN)/python -m pipeline.local_cluster up

cluster-down: $(STAMP) ## stop the cluster of make cluster-up
	$(BIN)/python -m pipeline.local_cluster down

emr-run: $(STAMP) ## upload the bundle to BUNDLE_URI and add the step(s) running DATE (..TO) to CLUSTER_ID
	@test -n "$(CLUSTER_ID)" -a -n "$(BUNDLE_URI)" || { \
	  echo "usage: make emr-run DATE=YYYY-MM-DD [TO=YYYY-MM-DD] CLUSTER_ID=j-... BUNDLE_URI=s3://bucket/prefix" >&2; exit 2; }
	$(BIN)/python -m pipeline.emr submit --date $(DATE) $(if $(TO),--to $(TO)) --cluster-id $(CLUSTER_ID) \
	  --bundle-uri $(BUNDLE_URI) $(if $(RETRIES),--retries $(RETRIES))

emr-serverless-run: $(STAMP) ## upload the bundle, then one EMR Serverless job run per date DATE..TO, in order
	@test -n "$(APPLICATION_ID)" -a -n "$(ROLE_ARN)" -a -n "$(BUNDLE_URI)" || { \
	  echo "usage: make emr-serverless-run DATE=YYYY-MM-DD [TO=YYYY-MM-DD] APPLICATION_ID=... ROLE_ARN=arn:aws:iam::...:role/... BUNDLE_URI=s3://bucket/prefix" >&2; exit 2; }
	$(BIN)/python -m pipeline.emr_serverless --date $(DATE) $(if $(TO),--to $(TO)) --application-id $(APPLICATION_ID) \
	  --role-arn $(ROLE_ARN) --bundle-uri $(BUNDLE_URI) $(if $(RETRIES),--retries $(RETRIES))

docker-build: package ## build the image (the environment archive of make package, Spark 3.5, the project, s3a jars)
	docker compose build pipeline

docker-run: ## the pipeline for DATE in Docker, against the compose PostgreSQL and MinIO
	DATE=$(DATE) docker compose run --rm pipeline igdb-pipeline run --date $(DATE)

docker-config: ## check docker-compose.yml (needs the compose plugin; no engine)
	docker compose config --quiet && echo "docker-compose.yml: valid"

clean: ## remove the local lake, data dir and caches (not .venv)
	rm -rf lake .data reports dist .cluster .pytest_cache .ruff_cache .mypy_cache bench/out

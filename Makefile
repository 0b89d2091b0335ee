# The README's commands. `make run` and `make test` are all a fresh machine needs.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PG_CLUSTER_VERSION = $(shell ls /etc/postgresql 2>/dev/null | head -n 1)

.PHONY: setup run test test-fast lint docs mlflow orchestrate postgres bench-tools clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[dev,spark,orchestration]"
	touch $@ $(VENV)/.installed $(VENV)/.installed-orchestration

$(VENV)/.installed-orchestration: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[orchestration]"
	touch $@ $(VENV)/.installed

## setup: create .venv and install the package
setup: $(VENV)/.installed

## run: the main job on the embedded defaults: demo data -> ingest -> profiles -> features -> models ->
## segments -> scores, then the demo API keys (one per role, kept in data/demo-keys.json: the same ones
## every time) and the service on 127.0.0.1:8000 (Ctrl+C stops it)
run: $(VENV)/.installed
	$(BIN)/crm run
	$(BIN)/crm keys demo
	$(BIN)/crm serve --port 8000

# Each test worker's numerical libraries run one thread: two workers on two cores, each starting OpenMP
# threads for every core, made a k-means test take 26.6 s in make test-fast (1.6 s alone, under 5 s with
# one thread) and the served fixture 70 s (19 s); make test went from 17:47 to 12:33 on a quiet machine
test test-fast: export OMP_NUM_THREADS := 1

## test: lint, type-check, build the docs strictly and run the whole test suite on both cores, a test
## file per worker, the longest files first (conftest.LONGEST_FIRST), the 15 slowest steps listed after;
## starts PostgreSQL if it is down
test: $(VENV)/.installed-dev postgres lint docs
	$(BIN)/pytest -n 2 --dist loadfile --no-loadscope-reorder --durations=15

## test-fast: lint and the fast loop (unit and route tests on shared small fixtures; no whole-flow,
## slow or Spark tests), under 3 minutes on 2 cores
test-fast: $(VENV)/.installed-dev postgres lint
	$(BIN)/pytest -n 2 --dist loadfile -m "not e2e and not slow and not spark"

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

## docs: build the manual (mkdocs.yml, docs/) strictly into build/site; a broken link or page fails it
docs: $(VENV)/.installed-dev
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir build/site

## mlflow: the MLflow UI on the project's own tracking store, registry and artifact folder (the CRM_MLFLOW_*
## settings the jobs use), on 127.0.0.1:5000 (Ctrl+C stops it)
mlflow: $(VENV)/.installed
	$(BIN)/crm mlflow --port 5000

## orchestrate: Dagster on 127.0.0.1:3000 (webserver and daemon) running the daily refresh: one asset per
## stage, a daily schedule, a sensor on the incoming folder; its run history in data/dagster (Ctrl+C stops it)
orchestrate: $(VENV)/.installed-orchestration
	mkdir -p data/dagster
	test -f data/dagster/dagster.yaml || cp src/orchestration/dagster.yaml data/dagster/dagster.yaml
	DAGSTER_HOME="$(CURDIR)/data/dagster" $(BIN)/dagster dev -m crm_analytics.orchestration -h 127.0.0.1 -p 3000

## postgres: start the local PostgreSQL cluster unless it already answers on 127.0.0.1:5432
postgres:
	@pg_isready -q -h 127.0.0.1 -p 5432 || pg_ctlcluster --skip-systemctl-redirect $(PG_CLUSTER_VERSION) main start
	@for i in 1 2 3 4 5 6 7 8 9 10; do pg_isready -q -h 127.0.0.1 -p 5432 && exit 0; sleep 1; done; \
		echo "PostgreSQL is not answering on 127.0.0.1:5432" >&2; exit 1

## bench-tools: what the benchmarks need beyond the dev install: wrk, the HTTP load generator of
## benchmarks/serving_throughput.py (Debian's package; apt-get as root when it is missing)
bench-tools: $(VENV)/.installed-dev
	@command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)

clean:
	rm -rf data/ .pytest_cache .mypy_cache .ruff_cache

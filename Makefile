# Sentimon — the everyday commands. `make run` and `make test` set themselves up.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: setup run test lint bench browser-deps clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools wheel
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

## run: the embedded service with demo data, the API and pages on http://127.0.0.1:8000
run: setup
	$(BIN)/sentimon run

## test: the whole test suite (browser tests use Debian's chromium, installed if missing)
test: setup browser-deps
	$(BIN)/python -m pytest -q

## lint: ruff and mypy --strict
lint: setup
	$(BIN)/ruff check services tests
	$(BIN)/mypy

## bench: throughput benchmarks; figures are ratios against baselines measured in the same run
bench: setup
	$(BIN)/python -m tests.bench.bench_pipeline
	$(BIN)/python -m tests.bench.bench_matcher
	$(BIN)/python -m tests.bench.bench_hostile

browser-deps:
	@bash deploy/scripts/ensure-chromium.sh

clean:
	rm -rf $(VENV) .sentimon .pytest_cache .mypy_cache .ruff_cache

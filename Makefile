# Sentimon — the everyday commands. `make run` and `make test` set themselves up.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: setup run test lint bench test-deps clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools wheel
	$(BIN)/python -m pip install --quiet -e '.[dev,ml]'
	touch $(STAMP)

## run: the embedded service with demo data, the API and pages on http://127.0.0.1:8000
run: setup
	$(BIN)/sentimon run

## test: the whole test suite; real PostgreSQL, Kafka, Prometheus and Chromium are installed if missing
test: setup test-deps
	$(BIN)/python -m pytest -q

## lint: ruff, mypy --strict, and every test module collects (two test files with one basename break collection)
lint: setup
	$(BIN)/ruff check services tests
	$(BIN)/mypy
	$(BIN)/python -m pytest --collect-only -q -p no:cacheprovider > /dev/null

## bench: throughput benchmarks; figures are ratios against baselines measured in the same run
bench: setup
	$(BIN)/python -m tests.bench.bench_pipeline
	$(BIN)/python -m tests.bench.bench_ingest --rounds 3
	$(BIN)/python -m tests.bench.bench_langid --rounds 3
	$(BIN)/python -m tests.bench.bench_decode --rounds 3
	$(BIN)/python -m tests.bench.bench_writer --rounds 3
	$(BIN)/python -m tests.bench.bench_matcher
	$(BIN)/python -m tests.bench.bench_hostile
	$(BIN)/python -m tests.bench.bench_lexicon
	$(BIN)/python -m tests.bench.bench_brand_gauges
	$(BIN)/python -m tests.bench.bench_reports
	$(BIN)/python -m tests.bench.bench_reports --postgres --requests 10
	$(BIN)/python -m tests.bench.bench_sentiment
	$(BIN)/python -m tests.bench.bench_targets
	$(BIN)/python -m tests.bench.bench_alerts
	$(BIN)/python -m tests.bench.bench_nab
	$(BIN)/python -m tests.bench.bench_review
	$(BIN)/python -m tests.bench.bench_adjusted
	$(BIN)/python -m tests.bench.bench_language
	$(BIN)/python -m tests.bench.bench_stories
	$(BIN)/python -m tests.bench.bench_distributed --rate 1000
	$(BIN)/python -m tests.bench.bench_soak --minutes 1

## pg-up / pg-down: a PostgreSQL cluster on 127.0.0.1:$${PG_PORT:-5433} (data in .sentimon/postgres)
.PHONY: pg-up pg-down up down status
pg-up:
	@deploy/postgres/pg.sh start

pg-down:
	@deploy/postgres/pg.sh stop

## kafka-up / kafka-down: a single-node Kafka 3.9.1 (KRaft) on 127.0.0.1:$${KAFKA_PORT:-9092} (data in .sentimon/kafka)
.PHONY: kafka-up kafka-down
kafka-up:
	@deploy/kafka/kafka.sh start

kafka-down:
	@deploy/kafka/kafka.sh stop

## up / status / down: the distributed stack (Kafka, PostgreSQL, ingest, 2 scorers, API) with its processes under supervisord; state in .sentimon/stack
up: setup
	@deploy/local/stack.sh up

down:
	@deploy/local/stack.sh down

status:
	@deploy/local/stack.sh status

## test-deps: the real servers and browser the tests run (Debian packages, Kafka jars)
test-deps:
	@bash deploy/scripts/ensure-test-deps.sh

clean:
	rm -rf $(VENV) .sentimon .pytest_cache .mypy_cache .ruff_cache

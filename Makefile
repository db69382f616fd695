# mall-notify: two commands on a fresh machine (Python 3.11, Java 17 and Maven preinstalled; make
# test also unpacks Debian's prometheus package with apt-get and runs npm for the manifest check):
#   make demo   sample events through broker + sandbox + worker, and a table of what happened
#   make test   ruff, mypy and the whole pytest suite against a real local Kafka
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)
BENCH_STAMP := $(VENV)/.bench-$(shell cat pyproject.toml | sha1sum | cut -c1-12)
KAFKA := deploy/kafka-local/kafka.sh
WITH_BROKER := deploy/kafka-local/with-broker.sh
WITH_POSTGRES := deploy/postgres-local/with-postgres.sh
POSTGRES := deploy/postgres-local/postgres.sh
PROMETHEUS_TOOLS := .local/tools/prometheus/usr/bin
PYTEST_ARGS ?=

.PHONY: help venv tools demo test bench lint typecheck pytest test-unit test-integration kafka-up kafka-down kafka-status postgres-up postgres-down clean

help:
	@echo "make demo | test | test-unit | test-integration | bench | lint | typecheck | kafka-up | kafka-down | postgres-up | postgres-down | clean"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $@

venv: $(STAMP)

# promtool (alert-rule tests, metric names) and prometheus (the scrape test), from Debian's package
$(PROMETHEUS_TOOLS)/promtool:
	deploy/tools/install-prometheus.sh .local/tools/prometheus

# the manifest check: Kubernetes and CRD schemas pinned in deploy/k8s/validate/package-lock.json
MANIFEST_CHECK := deploy/k8s/validate/node_modules/.package-lock.json
$(MANIFEST_CHECK): deploy/k8s/validate/package-lock.json
	npm ci --prefix deploy/k8s/validate --no-audit --no-fund --loglevel=error

tools: $(PROMETHEUS_TOOLS)/promtool $(MANIFEST_CHECK)

# the benchmark also runs a faust agent, for comparison
$(BENCH_STAMP): $(STAMP)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev,bench]'
	rm -f $(VENV)/.bench-* && touch $@

demo: venv
	$(WITH_BROKER) $(WITH_POSTGRES) $(BIN)/mall-notify demo

# lint and typecheck run beside the tests (a fresh mypy takes most of a minute): one wall clock
test: venv tools
	@mkdir -p .local
	( $(MAKE) --no-print-directory lint && $(MAKE) --no-print-directory typecheck ) > .local/checks.log 2>&1 & checks=$$!; \
	$(MAKE) --no-print-directory pytest; tests=$$?; \
	wait $$checks; checks=$$?; \
	echo "== lint and typecheck, run beside the tests (.local/checks.log) =="; \
	cat .local/checks.log; \
	if [ $$checks -ne 0 ]; then exit $$checks; fi; \
	exit $$tests

# Throughput side by side (plain loop, faust, router, end to end, OA with a slow SMS provider) on
# the local broker; writes docs/BENCHMARKS.md. BENCH_EVENTS=5000 for a quick run.
bench: $(BENCH_STAMP)
	$(WITH_BROKER) $(WITH_POSTGRES) $(BIN)/python bench/pipeline_bench.py

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: venv
	$(BIN)/mypy streams channels

# Two pytest processes at once: the integration tests (one after the other, on the session's broker
# and database) and, beside them, the unit tests (their output printed after). pytest exits 5 when
# it collected no tests: when both did, the run tested nothing, a failure here. PYTEST_ARGS goes to both;
# UNIT and INTEGRATION pick each one's tests (INTEGRATION='-m "integration and not slow"').
UNIT ?= -m "not integration and not slow"
INTEGRATION ?= -m "integration or slow"
pytest: venv tools
	@mkdir -p .local
	$(BIN)/pytest $(UNIT) $(PYTEST_ARGS) > .local/unit-tests.log 2>&1 & unit=$$!; \
	$(BIN)/pytest $(INTEGRATION) $(PYTEST_ARGS); integration=$$?; \
	wait $$unit; unit=$$?; \
	echo "== the unit tests, run beside the integration tests (.local/unit-tests.log) =="; \
	cat .local/unit-tests.log; \
	if [ $$unit -eq 5 ] && [ $$integration -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi; \
	for status in $$unit $$integration; do \
	  if [ $$status -ne 0 ] && [ $$status -ne 5 ]; then exit $$status; fi; \
	done

test-unit: venv tools
	$(BIN)/pytest $(UNIT) $(PYTEST_ARGS)

test-integration: venv tools
	$(BIN)/pytest $(INTEGRATION) $(PYTEST_ARGS)

kafka-up:
	$(KAFKA) up

kafka-down:
	$(KAFKA) down

kafka-status:
	$(KAFKA) status

postgres-up:
	$(POSTGRES) up

postgres-down:
	$(POSTGRES) down

clean: kafka-down postgres-down
	rm -rf $(VENV) .local .mypy_cache .ruff_cache .pytest_cache .hypothesis

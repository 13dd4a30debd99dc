# The two commands in the README: `make demo` and `make test`. Both set up what they need.
VENV   ?= .venv
PY     := $(VENV)/bin/python
BIN    := $(VENV)/bin
PYTEST_ARGS ?=

# `make faults`: the fault matrix F1-F15 (tests marked `fault`, tests/factories/fault_matrix.py); writes
# build/fault-report.json and a table, and fails if any fault's row fails. `--fault-report=PATH` in
# one word: pytest takes a separate existing PATH for a test path and then misses tests/conftest.py.
FAULT_REPORT ?= build/fault-report.json

.PHONY: faults demo test lint types imports unit integration e2e infra contract synth bench bench-sandbox redis deps deps-sandbox clean

$(VENV)/bin/python:
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip setuptools wheel

$(VENV)/.sandbox: pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install -q -e '.[sandbox]'
	touch $@

$(VENV)/.dev: pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install -q -e '.[dev]'
	touch $@ $(VENV)/.sandbox

deps-sandbox: $(VENV)/.sandbox
deps: $(VENV)/.dev

# CI runs as root on Debian 12; developers without root get a clear message.
redis:
	@command -v redis-server >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; \
	  else echo "redis-server is missing: sudo apt-get install -y redis-server" >&2; exit 1; fi; }
	@# The Debian package starts a system redis on 127.0.0.1:6379; the sandbox never uses it.

demo: deps-sandbox redis
	$(BIN)/eks-rolling demo

test: deps redis lint types imports
	$(BIN)/pytest -n 2 --dist loadgroup $(PYTEST_ARGS)

faults: deps redis
	$(BIN)/pytest -m fault -n 2 --dist loadgroup --fault-report=$(FAULT_REPORT) $(PYTEST_ARGS)

lint: deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

types: deps
	$(BIN)/mypy

imports: deps
	$(BIN)/lint-imports

unit: deps
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

integration: deps redis
	$(BIN)/pytest tests/integration $(PYTEST_ARGS)

e2e: deps redis
	$(BIN)/pytest tests/e2e $(PYTEST_ARGS)

contract: deps
	$(BIN)/pytest tests/contract $(PYTEST_ARGS)

infra: deps
	$(BIN)/pytest tests/infra $(PYTEST_ARGS)

# Builds build/lambda-layer (pip, Lambda's platform; compiled by a CPython 3.12: LAYER_PYTHON, else
# python3.12 on PATH, else pyenv's) and writes cdk.out/. No Docker, no cdk CLI, no AWS credentials.
# Context overrides: make synth SYNTH_ARGS='-c batch_size=2'
synth: deps
	$(if $(LAYER_PYTHON),LAYER_PYTHON=$(LAYER_PYTHON) )$(BIN)/python -m infra.synth $(SYNTH_ARGS)

bench: deps-sandbox redis
	$(BIN)/python bench/run_all.py

# Issue 10 item 6: the sandbox's time to all-Ready per pod grows at most 2x from 100 nodes / 1,500
# pods to 1,000 / 15,000; writes build/bench/sandbox-scale.json, exits 1 over the bound.
bench-sandbox: deps-sandbox
	$(BIN)/python bench/sandbox_scale.py --sizes 100x1500,1000x15000

clean:
	rm -rf cdk.out build .pytest_cache .mypy_cache .ruff_cache

# chathooks: `make run` starts the service on SQLite, `make test` runs every check.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8700

# A local receiver (chathooks receive on 127.0.0.1) must be reachable from a
# service started by `make run`, so loopback is opened as a destination here.
# In production leave CHATHOOKS_ALLOWED_DESTINATIONS empty.
export CHATHOOKS_ALLOWED_DESTINATIONS ?= 127.0.0.0/8

.PHONY: run test lint typecheck pytest bench install install-dev install-bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@ $(VENV)/.installed

# The peers the benchmark compares with (Celery, procrastinate) and py-spy; not runtime needs.
$(VENV)/.installed-bench: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[dev,bench]'
	touch $@ $(VENV)/.installed-dev $(VENV)/.installed

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev
install-bench: $(VENV)/.installed-bench

run: install
	$(BIN)/chathooks migrate
	$(BIN)/chathooks serve --host $(HOST) --port $(PORT)

lint: install-dev
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: install-dev
	$(BIN)/mypy

pytest: install-dev
	$(BIN)/pytest $(PYTEST_ARGS)

test: lint typecheck pytest

bench: install-bench
	$(BIN)/python -m bench.delivery $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache

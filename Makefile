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

.PHONY: run test lint typecheck pytest lowest openapi faults fuzz bench install install-dev install-bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# `pip install chathooks` is the receiver toolkit alone; the service is the
# [server] extra, so every target that runs it installs that.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[server]'
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[server,dev]'
	touch $@ $(VENV)/.installed

# The peers the benchmark compares with (Celery, procrastinate) and py-spy; not runtime needs.
$(VENV)/.installed-bench: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[server,dev,bench]'
	touch $@ $(VENV)/.installed-dev $(VENV)/.installed

# axe-core, pinned in package-lock.json, which the browser tests inject into every page.
# Without npm the accessibility checks skip with the reason shown (and fail in CI).
node_modules/.package-lock.json: package.json package-lock.json
	@if command -v npm >/dev/null 2>&1; then npm ci --no-audit --no-fund --loglevel=error; \
	else echo "npm not found: the browser tests' accessibility checks will not run"; fi

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev node_modules/.package-lock.json
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

# The lowest versions pyproject.toml allows, proven: chathooks' own requirements
# at their floors (uv's lowest-direct), the test tools at their usual versions,
# then the unit tests, the inline SQLite engine's tests and those of the statements run
# straight through the driver (which lean on SQLAlchemy's execution) in that environment.
LOWEST     ?= .venv-lowest
TEST_TOOLS := 'pytest>=8' 'pytest-asyncio>=0.24' 'pytest-timeout>=2.3' 'hypothesis>=6.100' \
              'httpx>=0.27' 'standardwebhooks>=1.0'

lowest: install-dev
	rm -rf $(LOWEST)
	$(BIN)/uv venv -q --python $(BIN)/python $(LOWEST)
	$(BIN)/uv pip install -q --python $(LOWEST)/bin/python --resolution lowest-direct -e '.[server]'
	$(BIN)/uv pip install -q --python $(LOWEST)/bin/python $(TEST_TOOLS)
	$(LOWEST)/bin/python -m pytest -q -p no:cacheprovider tests/unit tests/integration/test_sqlite_inline.py \
		tests/integration/test_driver_statements.py

test: lint typecheck pytest lowest

# The committed OpenAPI document; a test fails when it and the code disagree.
openapi: install-dev
	$(BIN)/python -m chathooks.api.openapi > docs/openapi.json

# Also part of `make test`; alone, for a quicker look at one concern.
faults: install-dev
	$(BIN)/pytest tests/faults $(PYTEST_ARGS)

fuzz: install-dev
	$(BIN)/pytest tests/contract $(PYTEST_ARGS)

bench: install-bench
	$(BIN)/python -m bench.delivery $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(LOWEST) .mypy_cache .pytest_cache .ruff_cache

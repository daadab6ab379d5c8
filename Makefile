# Fidelia — the two commands that matter are `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev

.PHONY: demo test check bench screenshots install install-dev serve clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(DEV_STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(STAMP)

install: $(STAMP)
install-dev: $(DEV_STAMP)

demo: $(STAMP)  ## create the demo database and serve it on http://127.0.0.1:8000
	$(BIN)/fidelia demo $(DEMO_ARGS)

test: $(DEV_STAMP)  ## run the whole suite (PostgreSQL too if FIDELIA_TEST_DATABASE_URL is set)
	$(BIN)/pytest -n 2 --dist loadgroup $(PYTEST_ARGS)

check: $(DEV_STAMP)  ## types, lint, import contracts
	$(BIN)/mypy src
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/lint-imports

screenshots: $(DEV_STAMP)  ## the back-office and portal screenshots in docs/screenshots (needs /usr/bin/chromium)
	FIDELIA_SCREENSHOTS=1 FIDELIA_REQUIRE_BROWSER=1 $(BIN)/pytest -p no:cacheprovider tests/web/test_browser.py tests/portal/test_browser.py

bench: $(DEV_STAMP)  ## every benchmark; prints the table for docs/benchmarks.md
	$(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache

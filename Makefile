# The two commands a newcomer needs: `make run` and `make test` (ruff, mypy, pytest).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
CONFIG ?= config/aggregator.yaml
# The suite runs on this many processes (pytest-xdist; each test file stays on one process).
PYTEST_WORKERS ?= 2
PYTEST := $(BIN)/python -m pytest -q -n $(PYTEST_WORKERS) --dist loadfile

.PHONY: bytecode run test test-fast install install-test lint pytest pytest-fast clean bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Re-install whenever pyproject.toml changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed

# The package's bytecode, written once here: an editable install leaves none, and where
# PYTHONDONTWRITEBYTECODE is set every command (and every parse server) would compile the
# sources again at each start (~0.15 CPU s). Up-to-date files are skipped.
bytecode:
	@$(BIN)/python -m compileall -q aggregator >/dev/null

install: $(VENV)/.installed
	@$(MAKE) --no-print-directory bytecode

install-test: $(VENV)/.installed-test
	@$(MAKE) --no-print-directory bytecode

run: install
	$(BIN)/aggregator --config $(CONFIG) run

lint: install-test
	$(BIN)/ruff check .
	$(BIN)/mypy

pytest: install-test
	$(PYTEST)

test: lint pytest

# Everything but the tests marked `slow` (daemons, kill -9, whole corpora): for the edit-test
# loop. `make test` and CI run everything.
pytest-fast: install-test
	$(PYTEST) -m "not slow"

test-fast: lint pytest-fast

bench: install
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) var/*.db var/*.db-* var/public

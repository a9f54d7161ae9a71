# The two commands: `make serve` (local stack) and `make test` (everything CI checks).
PYTHON := $(shell scripts/find-python)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup serve test lint bench build demo clean

$(STAMP): pyproject.toml
	test -n "$(PYTHON)"
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP)

serve: setup
	$(PY) scripts/serve

lint: setup
	$(PY) -m ruff check .
	$(PY) -m mypy

test: lint
	$(PY) -m pytest

bench: setup
	$(PY) scripts/bench

demo: setup
	$(PY) scripts/demo $(ARGS)

build: setup
	$(PY) scripts/build

clean:
	rm -rf build .pytest_cache .mypy_cache .ruff_cache

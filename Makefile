# The two commands: `make serve` (local stack) and `make test` (everything CI checks).
# The console commands (vod-serve, vod-upload, …) are installed into .venv/bin by `make setup`.
PYTHON := $(shell scripts/find-python)
VENV := .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup serve test lint bench build deploy-build demo clean

$(STAMP): pyproject.toml
	test -n "$(PYTHON)"
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

# The upload page's browser SDK, fetched from npm with its pinned integrity checked.
SDK := functions/upload_page/vendor/vod-js-sdk-v6.js.gz
$(SDK): functions/upload_page/vendor.json $(STAMP)
	$(PY) scripts/vendor-sdk
	touch $@  # vendor-sdk leaves a copy that already matches as it is: newer than the stamp all the same

setup: $(STAMP) $(SDK)

serve: setup
	$(BIN)/vod-serve $(ARGS)

lint: setup
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

test: lint
	$(PY) -m pytest

bench: setup
	$(BIN)/vod-bench $(ARGS)

demo: setup
	$(BIN)/vod-demo $(ARGS)

build: setup
	$(PY) scripts/build

# serverless.yml's src.hook: the bundles, once every setting it deploys is set in this shell (see the script).
deploy-build: setup
	$(PY) scripts/check-deploy-env serverless.yml
	$(PY) scripts/build --deploy

clean:
	rm -rf build .pytest_cache .mypy_cache .ruff_cache

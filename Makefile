# Fresh machine: `make demo` sets everything up and runs the nightly job on the embedded sample;
# `make test` runs the test suite. Both create/refresh the virtualenv first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup demo test lint dagster mlflow serve clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/pip check
	touch $@

demo: setup
	$(BIN)/media-gateway nightly --config configs/sample.yaml

test: setup
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/lint-imports

dagster: setup
	$(BIN)/media-gateway ui dagster -c configs/sample.yaml --port $(or $(PORT),3001)

mlflow: setup
	$(BIN)/media-gateway ui mlflow -c configs/sample.yaml --port $(or $(PORT),5000)

serve: setup
	$(BIN)/media-gateway serve --config configs/sample.yaml

clean:
	rm -rf var

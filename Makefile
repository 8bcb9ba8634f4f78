# sog-api: `make help` lists the targets.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-test
RUN_STAMP := $(VENV)/.installed-run

# The suite runs on SQLite and on this PostgreSQL; SOG_TEST_DATABASE_URL= (empty) means SQLite only.
SOG_TEST_DATABASE_URL ?= postgresql+asyncpg://postgres@127.0.0.1:5432/postgres
export SOG_TEST_DATABASE_URL

.DEFAULT_GOAL := help
.PHONY: help run test lint format openapi bench worker migrate clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-9s %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# make run installs what the service needs; the test tools come with make test
$(RUN_STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e .
	@touch $(RUN_STAMP)

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP) $(RUN_STAMP)

run: $(RUN_STAMP) ## Install and serve on 127.0.0.1:8001 (SQLite ./sog.db, simulated cloud, worker)
	$(BIN)/sog-api serve

test: $(STAMP) ## Install and run the whole test suite: lint, types, tests on SQLite and PostgreSQL
	$(BIN)/ruff check src tests migrations bench
	$(BIN)/ruff format --check src tests migrations bench
	$(BIN)/mypy
	$(BIN)/pytest

lint: $(STAMP) ## ruff and mypy
	$(BIN)/ruff check src tests migrations bench
	$(BIN)/mypy

format: $(STAMP) ## Format the code
	$(BIN)/ruff format src tests migrations bench
	$(BIN)/ruff check --fix src tests migrations bench

openapi: $(STAMP) ## Regenerate openapi/openapi.json from the app
	$(BIN)/sog-api openapi openapi/openapi.json

bench: $(STAMP) ## Run the benchmarks (prints ratios measured side by side)
	$(BIN)/python -m bench

worker: $(RUN_STAMP) ## Run a worker process only
	$(BIN)/sog-api worker

migrate: $(RUN_STAMP) ## Migrate the database named by SOG_DATABASE_URL
	$(BIN)/sog-api migrate

clean: ## Remove the virtualenv, caches and the local database
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache sog.db sog.db-wal sog.db-shm

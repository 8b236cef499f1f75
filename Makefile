# One entry point for humans and CI. `make test` is what CI runs (via .ci/run).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PACKAGES := selfhosted_cli selfhosted_core integrations/langchain_selfhosted integrations/litellm_selfhosted

.PHONY: demo bench bench-servers test lint typecheck pytest format clean

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[all,dev,bench]'
	touch $@

# The whole product on embedded local servers; the first run builds llama-server (~4 min).
demo: $(BIN)/.installed
	$(BIN)/selfhosted demo

# Every client against a canned server; prints the tables and writes benchmarks/results/.
bench: $(BIN)/.installed
	$(BIN)/python -m benchmarks

# Routing strategies over two real llama-servers (issue 18); a few minutes, plus the first
# build of llama-server. Writes benchmarks/results/servers.md and servers.json.
bench-servers: $(BIN)/.installed
	$(BIN)/python -m benchmarks.servers $(ARGS)

lint: $(BIN)/.installed
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

typecheck: $(BIN)/.installed
	$(BIN)/mypy $(PACKAGES) tests notebooks/strip.py benchmarks

pytest: $(BIN)/.installed
	$(BIN)/pytest

test: lint typecheck pytest

format: $(BIN)/.installed
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache

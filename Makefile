# One entry point for humans and CI. `make test` is what CI runs (via .ci/run).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PACKAGES := selfhosted_cli selfhosted_core integrations/langchain_selfhosted integrations/litellm_selfhosted

.PHONY: demo bench bench-servers test lint typecheck pytest install-matrix format clean uv redis-server

# uv makes the venvs (seconds with its cache warm, against pip's ~40 s); it is installed from
# PyPI once per machine into a venv of its own under the project's cache, shared by every
# checkout. Where that cannot be done, python -m venv and pip do the same job, slower. Nothing
# installed here needs a wheel that only pip's local wheel folders have (no torch).
CACHE := $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/selfhosted-llm
UV_VERSION := 0.13.10
UV_HOME := $(CACHE)/tools/uv-$(UV_VERSION)
UV := $(UV_HOME)/bin/uv
# A failed install leaves nothing half made.
INSTALL_UV = rm -rf $(UV_HOME); $(PYTHON) -m venv $(UV_HOME) \
	&& $(UV_HOME)/bin/python -m pip install --quiet 'uv==$(UV_VERSION)' || { rm -rf $(UV_HOME); false; }

$(BIN)/.installed: pyproject.toml
	@if test -x $(UV) || ( $(INSTALL_UV) ) >/dev/null 2>&1; then \
	  set -e; \
	  test -x $(BIN)/python || $(UV) venv --quiet --python $(PYTHON) $(VENV); \
	  echo "uv: installing .[all,dev,bench] into $(VENV)"; \
	  VIRTUAL_ENV=$(VENV) $(UV) pip install --quiet -e '.[all,dev,bench]'; \
	else \
	  set -e; \
	  echo "uv unavailable: pip installs .[all,dev,bench] into $(VENV)"; \
	  test -x $(BIN)/python || $(PYTHON) -m venv $(VENV); \
	  $(BIN)/python -m pip --version >/dev/null 2>&1 || $(BIN)/python -m ensurepip --upgrade; \
	  $(BIN)/python -m pip install --quiet --upgrade pip; \
	  $(BIN)/python -m pip install --quiet -e '.[all,dev,bench]'; \
	fi
	touch $@

# uv alone, in its own venv (`make uv`).
uv: $(UV)
$(UV):
	$(INSTALL_UV)

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

pytest: $(BIN)/.installed redis-server
	$(BIN)/pytest

# The shared-routing-state tests (issue 21) start a real redis-server, as the integration tests
# start llama-server: installed here from Debian's package when missing and we are root.
# Without it those tests fail with the reason; they never skip.
redis-server:
	@command -v redis-server >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing redis-server (apt-get)"; \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q redis-server >/dev/null \
	      || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q redis-server >/dev/null; }; \
	  else \
	    echo "redis-server is missing: install it (Debian: apt-get install redis-server)" >&2; \
	    if [ "$$CI" = true ]; then exit 1; fi; \
	  fi; \
	}

# The package as users install it: the wheel and sdist built and checked, each extra alone in a
# fresh uv venv with its smoke, and the unit tests on Python 3.10 and 3.13 (tests/install/).
install-matrix: $(BIN)/.installed $(UV)
	$(BIN)/python -m tests.install --uv $(UV)

test: lint typecheck pytest install-matrix

format: $(BIN)/.installed
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache

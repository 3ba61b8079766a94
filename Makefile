# The two commands: `make run` and `make test`. Everything else is a helper of theirs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run test install lint typecheck imports unit contract e2e node-deps clean bench bench-http production-local

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/rwa-market migrate
	@$(BIN)/rwa-market walkthrough
	$(BIN)/rwa-market serve

# Node packages (pinned solc and Hardhat) for the artifact check and the JSON-RPC chain tests.
node-deps:
	@if command -v npm >/dev/null 2>&1; then \
	  if [ ! -d contracts/node_modules ]; then npm ci --prefix contracts --no-audit --no-fund --loglevel=error; fi; \
	else echo "npm not found: artifact and Hardhat tests will skip (they fail with CI=true)"; fi

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: install
	$(BIN)/mypy

imports: install
	$(BIN)/lint-imports

unit: install
	$(BIN)/pytest tests/unit -q

contract: install node-deps
	$(BIN)/pytest tests/contract -q

e2e: install node-deps
	$(BIN)/pytest tests/e2e -q

test: install node-deps lint typecheck imports
	$(BIN)/pytest tests -q -p no:cacheprovider

bench: install
	$(BIN)/python bench/market_lifecycle.py

# The embedded server under wrk (apt-get install wrk): healthz, market reads and registration.
bench-http: install
	$(BIN)/python bench/http.py --runs 3

# Orders through an `rwa-market engine` (Redis Streams) beside an in-process writer, on Postgres.
bench-engine: install
	$(BIN)/python bench/engine_routing.py --runs 3

# The production topology on this machine (Postgres, Redis, Hardhat, stand-in Permissions Core,
# API, taskiq worker, matching engine, poller), everything on loopback, until Ctrl-C. See
# docs/operations.md.
production-local: install node-deps
	$(BIN)/python -m tests.harness.topology --port $${RWA_PORT:-8000}

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache

# The two commands: `make run` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: setup tools run test unit integration bench lint clean

$(STAMP): pyproject.toml constraints.txt
	@command -v java >/dev/null || { echo "make: Java 17+ is needed for the local Kafka broker (apt-get install openjdk-17-jre-headless), or set OLLYSTACK_KAFKA_BOOTSTRAP"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test,lint]'
	touch $(STAMP)

# Alertmanager, amtool and helm, built from the Go module proxy into the user's cache
# folder once (ops/tools/fetch); the tests run them for real and never build them.
tools:
	ops/tools/fetch alertmanager helm

setup: $(STAMP)

run: setup
	$(BIN)/ollystack up

test: setup tools
	$(BIN)/python -m pytest

unit: setup
	$(BIN)/python -m pytest tests/unit

integration: setup tools
	$(BIN)/python -m pytest tests/integration

# Style and bug rules (ruff), strict types (mypy), and no upward import or cycle (import-linter).
lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: setup
	@for b in benchmarks/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .ollystack

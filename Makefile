# The two commands: `make run` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: setup tools ui chromium run test unit integration bench lint clean

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

# The web UI's chart and graph libraries (uPlot, Cytoscape.js) from ui/package-lock.json, copied
# next to the pages (api/web/vendor/, not committed); the API serves them from /ui/vendor/.
UI_VENDOR := api/web/vendor
UI_STAMP := $(UI_VENDOR)/.built-stamp

$(UI_STAMP): ui/package.json ui/package-lock.json
	@command -v npm >/dev/null || { echo "make: Node.js 18+ and npm are needed to build the web UI (apt-get install nodejs npm)"; exit 1; }
	cd ui && npm ci --no-audit --no-fund --loglevel=error
	mkdir -p $(UI_VENDOR)
	cp ui/node_modules/uplot/dist/uPlot.esm.js ui/node_modules/uplot/dist/uPlot.min.css $(UI_VENDOR)/
	cp ui/node_modules/cytoscape/dist/cytoscape.esm.min.mjs $(UI_VENDOR)/cytoscape.esm.min.js
	touch $@

ui: $(UI_STAMP)

# The browser tests drive Debian's Chromium (never a downloaded browser build).
chromium:
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium; \
	  else echo "make: the browser tests need Chromium (sudo apt-get install chromium); without it they are skipped"; fi; }

setup: $(STAMP) ui

run: setup
	$(BIN)/ollystack up

test: setup tools chromium
	$(BIN)/python -m pytest

unit: setup
	$(BIN)/python -m pytest tests/unit

integration: setup tools chromium
	$(BIN)/python -m pytest tests/integration

# Style and bug rules (ruff), strict types (mypy), and no upward import or cycle (import-linter).
lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: setup
	@for b in benchmarks/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .ollystack $(UI_VENDOR) ui/node_modules

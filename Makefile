# undying — set-up and entry points. Everything a command needs is installed by it.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
NPM    ?= npm
#: Debian's chromium, which the web UI's browser tests drive (Playwright downloads no browser).
CHROMIUM := /usr/bin/chromium

.PHONY: run test setup lint typecheck unit interop bench bench-sdk proto clean

setup: $(VENV)/.stamp node_modules/.stamp $(CHROMIUM)

$(VENV)/.stamp: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

node_modules/.stamp: package.json package-lock.json
	$(NPM) ci --no-audit --no-fund --loglevel=error
	node_modules/.bin/node --version
	touch $@

# Installed from Debian once; the binary itself is the stamp.
$(CHROMIUM):
	@if [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then \
		sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	else \
		echo "The web UI's browser tests need Debian's chromium at $(CHROMIUM), and installing"; \
		echo "it needs root. Run as root: apt-get install -y chromium   then run make again."; \
		exit 1; \
	fi
	@test -x $(CHROMIUM) || { echo "apt-get installed no $(CHROMIUM)"; exit 1; }

## Start the server with embedded storage plus every example (examples/app.py), registered.
run: setup
	$(VENV)/bin/undying dev examples/app.py

## Set up and run the whole test suite (lint, types, unit, interop, chaos), then the undying
## SDK's conformance scenarios once more against the real restate-server.
test: setup lint
	$(PY) -m pytest
	$(PY) -m pytest tests/conformance --target restate -k ud

lint: $(VENV)/.stamp node_modules/.stamp
	$(VENV)/bin/ruff check src tests bench examples scripts
	$(VENV)/bin/ruff format --check src tests bench examples scripts
	$(VENV)/bin/mypy
	$(VENV)/bin/mypy examples
	node_modules/.bin/node node_modules/pyright/index.js

bench: setup
	$(PY) -m bench.run

## The undying SDK vs restate-sdk, the same service on one restate-server (bench/sdk.py).
bench-sdk: setup
	$(PY) -m bench.sdk

## Regenerate the protobuf code from proto/ (committed; needs the dev extra).
proto: $(VENV)/.stamp
	$(PY) -m grpc_tools.protoc -Iproto --python_out=src/undying/protocol/_pb \
		--pyi_out=src/undying/protocol/_pb proto/undying_protocol.proto

clean:
	rm -rf $(VENV) node_modules .pytest_cache .mypy_cache .ruff_cache

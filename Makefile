# undying — set-up and entry points. Everything a command needs is installed by it.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
NPM    ?= npm

.PHONY: run test setup lint typecheck unit interop bench bench-sdk proto clean

setup: $(VENV)/.stamp node_modules/.stamp

$(VENV)/.stamp: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

node_modules/.stamp: package.json package-lock.json
	$(NPM) ci --no-audit --no-fund --loglevel=error
	node_modules/.bin/node --version
	touch $@

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

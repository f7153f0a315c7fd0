# kfkit: `make demo` runs the main job on the local backend, `make test` runs every test tier.
# Both set up everything they need first; every target is idempotent.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
VENV_STAMP := $(VENV)/.kfkit-installed
# Downloads and builds (tools, MNIST) are cached per machine, outside the clone, so CI
# on this machine reuses them and only a fresh machine rebuilds.
export KFKIT_CACHE ?= $(HOME)/.cache/kfkit

# Extra set-up that tests need (tools, servers); component makefiles append to it.
TEST_DEPS :=

.PHONY: all venv demo test lint typecheck unit clean
all: test

$(VENV_STAMP): pyproject.toml requirements/runtime.txt requirements/dev.txt requirements/constraints.txt
	$(PY) -m pip --version >/dev/null 2>&1 || $(PYTHON) -m venv --clear $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -c requirements/constraints.txt \
		-r requirements/runtime.txt -r requirements/dev.txt
	$(PY) -m pip install -q --disable-pip-version-check --no-deps -e .
	$(PY) -m pip check
	touch $@

venv: $(VENV_STAMP)

-include mk/*.mk

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: venv
	$(VENV)/bin/mypy

unit: venv
	$(VENV)/bin/pytest -m "not integration and not apiserver and not browser and not slow and not container"

test: venv $(TEST_DEPS) lint typecheck
	$(VENV)/bin/pytest

# The main job on the local backend: the @fast verification suite and the paper-sized
# PyTorchJob (master + worker, gloo, MNIST), in one report whose path is printed at the end.
demo: verify-demo

clean:
	rm -rf $(VENV) .cache reports

# lowlight-matting: every set-up step lives here. `make demo` and `make test` create .venv when missing.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
export HF_HUB_OFFLINE := 1
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: demo test lint unit nbtest lab bench test-ui book clean help

help:
	@echo "make demo     - run the main job headless, results in runs/demo/"
	@echo "make test     - lint, unit tests, every notebook under nbval in FAST mode"
	@echo "make lab      - open JupyterLab on notebooks/"
	@echo "make bench    - run the benchmark suite (prints tables with the hardware)"
	@echo "make test-ui  - drive notebook 01 in a real headless Chromium"
	@echo "make book     - execute every notebook and render the course to build/book/"

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools wheel
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/lowlight-matting demo --out runs/demo

lint: $(STAMP)
	$(BIN)/ruff check lowlight_matting tests benchmarks
	$(BIN)/ruff format --check lowlight_matting tests benchmarks

unit: $(STAMP)
	$(BIN)/python -m pytest tests -m "not ui"

nbtest: $(STAMP)
	LOWLIGHT_FAST=1 $(BIN)/python -m pytest --nbval-lax --nbval-current-env -p no:cacheprovider notebooks

test: lint unit nbtest

lab: $(STAMP)
	$(BIN)/jupyter lab notebooks

bench: $(STAMP)
	$(BIN)/python -m benchmarks

test-ui: $(STAMP)
	$(BIN)/python -m pytest tests -m ui -p no:cacheprovider

book: $(STAMP)
	$(BIN)/python -m lowlight_matting.book --out build/book

clean:
	rm -rf build runs .pytest_cache .ruff_cache

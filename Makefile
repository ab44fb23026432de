# lowlight-matting: every set-up step lives here. `make demo` and `make test` create .venv when missing.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
export HF_HUB_OFFLINE := 1
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: demo test lint unit nbtest nbtest-learner lab bench test-ui book clean help

help:
	@echo "make demo     - run the main job headless, results in runs/demo/"
	@echo "make test     - lint, unit tests, every notebook under nbval in FAST mode"
	@echo "make nbtest-learner - every notebook under nbval in the learner's (default) mode, as sized for a laptop"
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
	$(BIN)/ruff check lowlight_matting tests benchmarks tools
	$(BIN)/ruff format --check lowlight_matting tests benchmarks tools

unit: $(STAMP)
	$(BIN)/python -m pytest tests -m "not ui"

nbtest: $(STAMP)
	LOWLIGHT_FAST=1 $(BIN)/python -m pytest --nbval-lax --nbval-current-env -p no:cacheprovider notebooks

# The learner's mode: the sizes in each notebook's parameters cell (no FAST shrinking), so a claim that
# holds only at toy size fails here. About 20 minutes on 2 CPU cores; .ci/run calls it.
nbtest-learner: $(STAMP)
	LOWLIGHT_FAST=0 $(BIN)/python -m pytest --nbval-lax --nbval-current-env -p no:cacheprovider notebooks

test: lint unit nbtest

lab: $(STAMP)
	$(BIN)/jupyter lab notebooks

bench: $(STAMP)
	$(BIN)/python -m benchmarks

# Debian's chromium drives the UI test (Playwright's own browser downloads cannot be fetched here).
CHROMIUM ?= /usr/bin/chromium
test-ui: $(STAMP)
	@test -x $(CHROMIUM) || { echo "test-ui: installing Debian chromium (apt-get, a minute or two)"; \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }
	LOWLIGHT_UI_REQUIRED=1 LOWLIGHT_CHROMIUM=$(CHROMIUM) $(BIN)/python -m pytest tests/ui -m ui -p no:cacheprovider

# BOOK_ARGS: e.g. --no-fast (full size on a CPU too), --fast, --timeout 1800. FAST is the default on a CPU.
BOOK_ARGS ?=
book: $(STAMP)
	$(BIN)/python tools/build_book.py --out build/book $(BOOK_ARGS)

clean:
	rm -rf build runs .pytest_cache .ruff_cache

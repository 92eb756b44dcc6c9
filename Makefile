# Two commands do all the set-up (see README): `make demo` and `make test`.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
CORES ?= 2
# Rules call `medseg`, so the venv's bin must be on PATH for Snakemake's jobs.
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: demo test lint install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -e '.[test]'
	touch $@

install: $(VENV)/.installed

demo: install
	$(BIN)/snakemake --configfile config/demo.yaml --cores $(CORES)

# The layering (import-linter contracts in pyproject.toml), ruff's lint and format, snakefmt.
lint: install
	$(BIN)/lint-imports --no-cache
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/snakefmt --check Snakefile workflow/rules

test: lint
	$(BIN)/python -m pytest

clean:
	rm -rf results logs .snakemake

# bendlab: run `make help` for the targets.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
export OMP_NUM_THREADS ?= 1

.PHONY: help install test lint notebooks figures video demo model bench clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

install:  ## create .venv, install torch 2.13.0 (CPU) first, then bendlab with its extras
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[notebooks,dev]"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null

test:  ## unit tests, then every notebook headless (fast mode)
	$(BIN)/python -m pytest -q
	$(MAKE) notebooks

lint:  ## ruff
	$(BIN)/ruff check bendlab tests training benchmarks

clean:  ## remove build outputs (keeps .venv and figures/)
	rm -rf build *.egg-info .pytest_cache out/ notebooks/executed

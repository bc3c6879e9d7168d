# Two commands on a fresh Linux machine with Python >= 3.11: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed
TSTAMP  = $(VENV)/.installed-test

.PHONY: venv run test installer clean bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -e .
	touch $@

$(TSTAMP): $(STAMP)
	$(BIN)/python -m pip install -e ".[test]"
	touch $@

venv: $(STAMP)

run: $(STAMP)
	$(BIN)/python -m desktop

test: $(TSTAMP)
	$(BIN)/lint-imports
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

installer: $(STAMP)
	$(BIN)/python -m pip install -e ".[installer]"
	$(BIN)/python installer/build.py --variant $(or $(VARIANT),cpu)

clean:
	rm -rf $(VENV) build dist .pytest_cache

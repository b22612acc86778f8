# Two commands set everything up on a fresh machine with Python >= 3.11 and make:
#   make test      create .venv if missing, install -e .[dev], run ruff and pytest
#   make reports   same bootstrap, then regenerate every report under reports/
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test lint reports bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Reinstall whenever the declared dependencies change.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .

test: lint
	$(BIN)/python -m pytest

reports: $(STAMP)
	$(BIN)/python -m ptdlib.cli run --profile paper
	$(BIN)/python -m ptdlib.cli report

bench: $(STAMP)
	$(BIN)/python benchmarks/throughput.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis

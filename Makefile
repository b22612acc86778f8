# Two commands set everything up on a fresh machine with Python >= 3.11 and make:
#   make test      create .venv if missing, install -e .[dev], run ruff and pytest
#   make reports   same bootstrap, then regenerate every report under reports/
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test lint reports notebooks bench sweep-showcase clean

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

# Every notebook with its paper profile into reports/<stem>/, then the index (ptd run rebuilds it).
# Exits 1 if any pre-registered check fails; the index then marks that notebook failed.
reports: $(STAMP)
	$(BIN)/python -m ptdlib.cli run --profile paper

# Refresh the quick-profile outputs committed in notebooks/ (what nbval compares).
notebooks: $(STAMP)
	$(BIN)/jupyter nbconvert --to notebook --execute --inplace notebooks/*.ipynb

bench: $(STAMP)
	$(BIN)/python benchmarks/throughput.py

# The showcase sweep (N up to 4096 agents) on a local Dask cluster; resumable after a kill.
sweep-showcase: $(STAMP)
	$(BIN)/ptd sweep sweeps/linear_speedup.yaml

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis sweeps/results

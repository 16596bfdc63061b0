# Two commands do all set-up: `make demo` and `make test`. Both create .venv
# and install the pinned set from requirements.lock.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench lock clean

$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c requirements.lock -e '.[dev,bench]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/figwatch demo

test: $(STAMP)
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python bench/figures.py
	$(BIN)/python bench/extraction.py

# Re-pin after changing dependencies in pyproject.toml.
lock: $(STAMP)
	$(BIN)/pip freeze --exclude-editable --exclude figwatch > requirements.lock

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache

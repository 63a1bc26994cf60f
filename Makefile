# Two commands do all set-up: `make demo` and `make test`.
# Each creates or refreshes .venv from the pins (requirements.lock) first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.cmerisk-installed
# Pytest worker count: 2 cores on CI.
WORKERS ?= 2

.PHONY: demo test test-slow test-all lint typecheck bench lock clean ui

$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m cmerisk demo --out demo

# The README's test command: everything but the tests marked slow (CI runs those too).
test: $(STAMP)
	$(BIN)/python -m pytest -n $(WORKERS) -m "not slow"

# Slow tests (calibration on a 20,000-pupil LA, notebooks, end-to-end runs): CI runs them.
test-slow: $(STAMP)
	$(BIN)/python -m pytest -n $(WORKERS) -m slow

test-all: test test-slow

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python -m benchmarks

ui: $(STAMP)
	$(BIN)/mlflow ui --backend-store-uri sqlite:///mlflow.db --port 5000

# Refresh requirements.lock from pyproject.toml's pins (needs network).
lock:
	rm -rf .lockvenv && $(PYTHON) -m venv .lockvenv
	.lockvenv/bin/pip install --quiet -e ".[dev]"
	.lockvenv/bin/pip freeze --all --exclude-editable | grep -v '^-e' > requirements.lock
	rm -rf .lockvenv

clean:
	rm -rf $(VENV) demo mlflow.db mlartifacts .pytest_cache

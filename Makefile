# Set-up is two commands: `make demo` runs the demo, `make test` runs the test suite.
# Each creates the virtual environment and installs the project into it on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The CPU machines this project is developed on serve these two releases locally; override to taste.
TORCH ?= torch==2.14.1 torchvision==0.29.1

.PHONY: demo test lint

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet -e ".[export,test]"
	touch $@

demo: $(VENV)/.installed
	PATH="$(abspath $(BIN)):$$PATH" bash scripts/demo.sh

# One pytest-xdist worker per core; each test file stays on one worker, so its module fixtures are built once.
# Files go out in collection order, the slow ones first (tests/conftest.py), not xdist's most-tests-first.
test: $(VENV)/.installed
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m pytest -n auto --dist loadfile --no-loadscope-reorder

lint: $(VENV)/.installed
	$(BIN)/ruff check src tests benchmarks && $(BIN)/ruff format --check src tests benchmarks

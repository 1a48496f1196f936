# The README's commands. Everything installs into ./.venv from the project's own files.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
# Test files run on one worker per core, at most 4, each file on one worker (its module
# fixtures are built once). Most tests wait on real processes; TEST_WORKERS=0 runs in-process.
TEST_WORKERS ?= auto
PYTEST := $(PY) -m pytest -q -n $(TEST_WORKERS) --maxprocesses 4 --dist loadfile

.PHONY: install demo test test-unit test-integration lint format bench system-deps clean

install: $(STAMP)

# The folders map onto one import namespace, so setuptools installs editable through a finder
# and always adds an "Editable installation" notice with nothing to act on: filtered out.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	PYTHONWARNINGS='ignore:Editable installation' $(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

# Debian packages the integration tests drive for real (nginx, Chromium); no-op when present.
system-deps:
	bash scripts/install-system-deps.sh

demo: install
	$(VENV)/bin/llm-margin demo

test: install system-deps
	$(PYTEST)

test-unit: install
	$(PYTEST) -m "not integration"

test-integration: install system-deps
	$(PYTEST) -m integration

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: install
	for script in bench/bench_*.py; do $(PY) $$script || exit 1; done

clean:
	rm -rf $(VENV) llm-margin-data llm-margin-demo-data .pytest_cache .ruff_cache

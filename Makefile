# Two commands on a fresh clone: `make run` and `make test`. Each creates .venv with
# python3 -m venv when it is missing and installs the pinned requirements only when
# a requirements file changed since the last install.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install --quiet --disable-pip-version-check
RUNTIME_STAMP := $(VENV)/.runtime-installed
DEV_STAMP := $(VENV)/.dev-installed

.PHONY: run test lint fuzz bench seed clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(RUNTIME_STAMP): requirements.txt | $(PY)
	$(PIP) -r requirements.txt
	touch $@

$(DEV_STAMP): requirements.txt requirements-dev.txt | $(PY)
	$(PIP) -r requirements-dev.txt
	touch $(RUNTIME_STAMP) $@

run: $(RUNTIME_STAMP)
	$(PY) -m server

seed: $(RUNTIME_STAMP)
	$(PY) -m seeds

test: $(DEV_STAMP)
	$(PY) -m pytest

lint: $(DEV_STAMP)
	$(PY) -m ruff check .

# Needs wrk (apt-get install -y wrk). Takes a few minutes; BENCH_SECONDS=2 for a quick run.
bench: $(RUNTIME_STAMP)
	$(PY) -m bench.run

# The schemathesis fuzz test with 500 generated requests per operation (`make test` runs 25).
fuzz: $(DEV_STAMP)
	FUZZ_EXAMPLES=500 $(PY) -m pytest tests/test_fuzz.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache bench/results
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

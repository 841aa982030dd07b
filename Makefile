# Two commands on a fresh clone: `make run` and `make test`. Each creates .venv with
# python3 -m venv when it is missing and installs the pinned requirements only when
# a requirements file changed since the last install.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install --quiet --disable-pip-version-check
RUNTIME_STAMP := $(VENV)/.runtime-installed
DEV_STAMP := $(VENV)/.dev-installed
BENCH_STAMP := $(VENV)/.bench-installed

.PHONY: help run test test-asyncio screenshots lint fuzz bench seed clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z-]+):.*## /  make \1\t/' | expand -t 20

$(PY):
	$(PYTHON) -m venv $(VENV)

$(RUNTIME_STAMP): requirements.txt | $(PY)
	$(PIP) -r requirements.txt
	touch $@

# The bench's own (bench/requirements.txt: the FastAPI peer, mockupdb), never the service's.
$(BENCH_STAMP): $(RUNTIME_STAMP) bench/requirements.txt
	$(PIP) -r bench/requirements.txt
	touch $@

$(DEV_STAMP): requirements.txt requirements-dev.txt | $(PY)
	$(PIP) -r requirements-dev.txt
	touch $(RUNTIME_STAMP) $@

run: $(RUNTIME_STAMP) ## serve on HOST:PORT (default 127.0.0.1:8000), reading .env if present
	$(PY) -m server

seed: $(RUNTIME_STAMP) ## create the indexes and upsert the demo catalog (the release phase)
	$(PY) -m seeds

test: $(DEV_STAMP) ## run the whole test suite (on uvloop, the server's default event loop)
	$(PY) -m pytest

# The suite again on asyncio's own loop (EVENT_LOOP=asyncio, as the server runs where uvloop
# does not install), less what does not touch the loop: the fuzzer, the browser, the deploy files.
test-asyncio: $(DEV_STAMP) ## run the suite on asyncio's event loop (CI runs both)
	EVENT_LOOP=asyncio $(PY) -m pytest --ignore=tests/server/test_fuzz.py \
		--ignore=tests/server/test_browser.py --ignore=tests/server/test_deploy.py

# The console's browser test writes its screenshots to a temporary directory; this rewrites the
# README's (handlers/console/screenshots/). `SCREENSHOTS=refresh make test` does it too.
screenshots: $(DEV_STAMP) ## retake the README's screenshots of the console (headless Chromium)
	SCREENSHOTS=refresh $(PY) -m pytest tests/server/test_console_browser.py

# The workflow is checked against GitHub's schema (vendored in check-jsonschema) and audited
# by zizmor --offline: neither downloads anything.
lint: $(DEV_STAMP) ## ruff, mypy over server/, handlers/, services/, and .github/workflows (schema, zizmor)
	$(PY) -m ruff check .
	$(PY) -m mypy
	$(PY) -m check_jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml
	$(VENV)/bin/zizmor --offline --no-progress --quiet .github/workflows

# Needs wrk (apt-get install -y wrk). Takes a few minutes; BENCH_SECONDS=2 for a quick run.
bench: $(BENCH_STAMP) ## the performance harness (needs wrk; see bench/README.md)
	$(PY) -m bench.run

# The schemathesis fuzz test with 500 generated requests per operation (`make test` runs 25).
fuzz: $(DEV_STAMP) ## the OpenAPI fuzzer with 500 requests per operation
	FUZZ_EXAMPLES=500 $(PY) -m pytest tests/server/test_fuzz.py

clean: ## remove .venv, caches and bench results
	rm -rf $(VENV) .pytest_cache .ruff_cache bench/results
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

# The two commands of the README's quick start: `make demo` and `make test`.
# Both create .venv and install the project into it first.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: install demo test bench screenshot clean

$(STAMP): pyproject.toml setup.py storage/_bigram.c scraper/_plaintext.c
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# Starts the demo forum, crawls it into data/demo.db, then serves the archive on :8001.
demo: install
	$(BIN)/forum-archiver demo --db data/demo.db

test: install
	$(BIN)/python -m pytest -q

# Benchmarks print measured figures (see docs/benchmarks.md); never part of `make test`.
bench: install
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python -m benchmarks.bench_extract
	$(BIN)/python -m benchmarks.bench_writes
	$(BIN)/python -m benchmarks.bench_scale
	$(BIN)/python -m benchmarks.bench_e2e
	$(BIN)/python -m benchmarks.bench_fetch
	$(BIN)/python -m benchmarks.bench_politeness
	$(BIN)/python -m benchmarks.bench_incremental

# Refreshes docs/thread-page.png (the README's screenshot) from a real headless Chromium.
screenshot: install
	FORUM_ARCHIVER_UPDATE_SCREENSHOT=1 $(BIN)/python -m pytest -q tests/test_browser.py

clean:
	rm -rf $(VENV) data .pytest_cache .hypothesis

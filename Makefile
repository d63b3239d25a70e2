# Everything runs from the virtualenv in $(VENV); the only network use is pip.
PYTHON ?= python3
VENV = .venv
PYTEST_ARGS ?=

BIN = $(VENV)/bin
STAMP = $(VENV)/.installed
# make bench also needs the bench extra (the plot, memory sampling, the profiles).
BENCH_STAMP = $(VENV)/.installed-bench

.PHONY: install run test lint bench reliability clean chromium

install: $(STAMP)

# Rebuilt when pyproject.toml changes. The interpreter check applies to the venv's
# python when it exists, otherwise to $(PYTHON), which is what will create it.
$(STAMP): pyproject.toml
	@py="$(PYTHON)"; if [ -x "$(BIN)/python" ]; then py="$(BIN)/python"; fi; \
	if ! "$$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then \
		found=$$("$$py" --version 2>&1) || found="not runnable"; \
		echo "error: Python >= 3.11 is required, but '$$py' is $$found." >&2; \
		echo "       Run e.g. 'make PYTHON=python3.11 install' (and 'rm -rf $(VENV)' if the venv is old)." >&2; \
		exit 1; \
	fi
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -e '.[test]'
	touch $@

# var/ is the owner's only (0700); the generated keys are also written to var/keys (0600).
run: install
	mkdir -p -m 700 var
	$(BIN)/ledger serve --embedded --keys-file var/keys

# The browser tests drive Debian's Chromium (never Playwright's download):
# installed with apt when missing and run as root.
chromium:
	@if ! [ -x /usr/lib/chromium/chromium ] && ! command -v chromium >/dev/null 2>&1; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			apt-get install -y chromium || { apt-get update && apt-get install -y chromium; }; \
		else \
			echo "test: Chromium not found; install Debian's chromium package for the browser tests" >&2; \
		fi; \
	fi

test: install chromium
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install -e '.[test,bench]'
	touch $@

# pgbench (the durable-insert baseline) comes from Debian's postgresql-contrib:
# found on PATH or under /usr/lib/postgresql, else installed when run as root.
bench: $(BENCH_STAMP)
	@if ! command -v pgbench >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/pgbench >/dev/null 2>&1; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			apt-get install -y postgresql-contrib || { apt-get update && apt-get install -y postgresql-contrib; }; \
		else \
			echo "bench: pgbench not found; install postgresql-contrib (falling back to pgserver's copy)" >&2; \
		fi; \
	fi
	$(BIN)/python -m bench

reliability: install
	@if [ -d tests/reliability ]; then \
		$(BIN)/python -m pytest tests/reliability $(PYTEST_ARGS); \
	else \
		echo "reliability: no tests/reliability yet, nothing to run"; \
	fi

# Leaves $(VENV) and var/ (local data) alone.
clean:
	rm -rf build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

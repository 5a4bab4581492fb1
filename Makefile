# One command each: `make run` (the server) and `make test` (the whole suite).
# Each creates the virtual environment it needs in .venv on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: run serve demo test bench venv clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[test,local]'
	touch $@

venv: $(VENV)/.installed

# The REST + MCP server on the embedded default store; prints its URL, the docs URL
# and, on the first start, the admin key.
run: venv
	$(VENV)/bin/engram serve

serve: run

# A short library demo: stores, searches and prints, on the embedded default store.
demo: venv
	$(PY) examples/quickstart.py

test: venv
	$(PY) -m pytest -q

bench: venv
	$(PY) bench/core.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis bench/.data

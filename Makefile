# One command each: `make run` (the demo) and `make test` (the whole suite).
# Each creates the virtual environment it needs in .venv on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: run serve test bench venv clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[test,local]'
	touch $@

venv: $(VENV)/.installed

run: venv
	$(PY) examples/quickstart.py

# The REST + MCP server on the embedded default store; prints its URL, the docs URL
# and, on the first start, the admin key.
serve: venv
	$(VENV)/bin/engram serve

test: venv
	$(PY) -m pytest -q

bench: venv
	$(PY) bench/core.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis bench/.data

VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip

.PHONY: test test-slow lint bench demo clean

$(VENV)/bin/python:
	python3 -m venv $(VENV)
	$(PIP) install --upgrade pip >/dev/null

$(VENV)/.dev-installed: pyproject.toml | $(VENV)/bin/python
	$(PIP) install -e '.[dev]'
	touch $@

test: $(VENV)/.dev-installed
	$(PY) -m pytest -q

test-slow: $(VENV)/.dev-installed
	$(PY) -m pytest -q -m slow

lint: $(VENV)/.dev-installed
	$(VENV)/bin/ruff check fnbrrr tests bench

bench: $(VENV)/.dev-installed
	$(PY) bench/eager_overhead.py

clean:
	rm -rf $(VENV) build dist .pytest_cache

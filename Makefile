# The two commands a new user types: `make demo` and `make test` (see README.md).
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip

.PHONY: test test-slow lint bench demo docs clean

$(VENV)/bin/python:
	python3 -m venv $(VENV)
	$(PIP) install --upgrade pip >/dev/null

# The test suite also runs every example in --quick mode, so it installs their extra too.
$(VENV)/.dev-installed: pyproject.toml | $(VENV)/bin/python
	$(PIP) install -e '.[dev,examples]'
	touch $@

$(VENV)/.examples-installed: pyproject.toml | $(VENV)/bin/python
	$(PIP) install -e '.[examples]'
	touch $@

$(VENV)/.docs-installed: pyproject.toml | $(VENV)/bin/python
	$(PIP) install -e '.[docs]'
	touch $@

test: $(VENV)/.dev-installed
	$(PY) -m pytest -q

test-slow: $(VENV)/.dev-installed
	$(PY) -m pytest -q -m slow

lint: $(VENV)/.dev-installed
	$(VENV)/bin/ruff check fnbrrr tests bench examples

demo: $(VENV)/.examples-installed
	$(PY) examples/mnist.py

docs: $(VENV)/.docs-installed
	$(VENV)/bin/sphinx-build -W -b html docs docs/_build/html

bench: $(VENV)/.dev-installed
	$(PY) bench/run.py --single-core

clean:
	rm -rf $(VENV) build dist .pytest_cache docs/_build

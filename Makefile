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

# Two pytest-xdist workers: on the 2-core CI machine, from a fresh clone with empty compile
# caches, the suite took 5 min 39 s with -n 2 against 7 min 27 s in one process (measured
# 2026-11-21; Numba compilation is CPU-bound and the two workers share the disk caches). After
# the convolution helpers were split the same cold run took 3 min 49 s (4 min 45 s with the
# venv install).
test: $(VENV)/.dev-installed
	$(PY) -m pytest -q -n 2

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

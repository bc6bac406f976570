# Every target sets itself up: a fresh clone needs nothing but python3 (3.10+) and make.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
PYTEST_ARGS ?=
VIDEO ?=
BENCH_QUICK ?=

.PHONY: install test test-unit test-integration demo bench lint clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip setuptools wheel
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

test: install
	$(PY) -m pytest tests -q $(PYTEST_ARGS)

test-unit: install
	$(PY) -m pytest tests/unit -q $(PYTEST_ARGS)

test-integration: install
	$(PY) -m pytest tests/integration -q $(PYTEST_ARGS)

demo: install
	$(PY) -m engine.demo $(VIDEO)

bench: install
	$(PY) -m benchmarks.run $(if $(BENCH_QUICK),--quick,)

lint: install
	$(VENV)/bin/ruff check engine models kernels tests benchmarks

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache

# Two set-up commands: `make demo` and `make test`. Both need only Python 3.11 and make.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test test-all lint bench clean

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

## demo: a 3-instance stack in the local AWS; Ctrl-C tears it down
demo: $(STAMP)
	$(PY) etcd.py sim up --instances 3

## test: the whole suite except the soak tests (see README)
test: $(STAMP)
	$(PY) -m pytest

## test-all: also the soak tests (marked soak)
test-all: $(STAMP)
	$(PY) -m pytest -m ""

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/cfn-lint cloudformation/*.yaml

bench: $(STAMP)
	$(PY) benchmarks/bench_sim.py

clean:
	-$(PY) etcd.py sim down
	rm -rf $(VENV) .sim .pytest_cache

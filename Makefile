# Two set-up commands: `make demo` and `make test`. Both need only Python 3.11 and make.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

ETCD_OLD := .cache/etcd-3.4/usr/bin/etcd
SENZA := .venv-senza/bin/senza
CHECKOV := .venv-checkov/bin/checkov
HADOLINT := .venv-checkov/bin/hadolint

.PHONY: demo test test-all lint bench clean etcd-old

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

# senza in a virtualenv of its own (see requirements-senza.txt), for the senza test.
$(SENZA): requirements-senza.txt
	$(PYTHON) -m venv .venv-senza
	.venv-senza/bin/python -m pip install --quiet -r requirements-senza.txt
	touch $(SENZA)

# checkov and hadolint in a virtualenv of their own (see requirements-checkov.txt), for the lint
# target and the template and image tests. A current pip installs checkov's many pinned
# dependencies with a third less CPU than Python 3.11's own.
$(CHECKOV): requirements-checkov.txt
	$(PYTHON) -m venv .venv-checkov
	.venv-checkov/bin/python -m pip install --quiet --upgrade pip
	.venv-checkov/bin/python -m pip install --quiet -r requirements-checkov.txt
	touch $(CHECKOV)

## demo: a 3-instance stack in the local AWS; Ctrl-C tears it down
demo: $(STAMP)
	$(PY) etcd.py sim up --instances 3

## etcd-old: Debian's etcd 3.4 in .cache for the rolling-upgrade tests (skipped without it)
etcd-old:
	@scripts/fetch-etcd-old.sh .cache/etcd-3.4 || true

## test: the representative suite: everything but the soak and extended tests (docs/testing.md)
test: $(STAMP) etcd-old $(SENZA) $(CHECKOV)
	$(PY) -m pytest

## test-all: also the soak and extended tests (docs/testing.md)
test-all: $(STAMP) etcd-old $(SENZA) $(CHECKOV)
	$(PY) -m pytest -m ""

## lint: ruff (Python), cfn-lint and checkov (templates), hadolint (Dockerfile)
lint: $(STAMP) $(CHECKOV)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/cfn-lint cloudformation/*.yaml
	$(CHECKOV) --quiet --compact --skip-download --framework cloudformation -d cloudformation
	$(HADOLINT) Dockerfile

bench: $(STAMP) etcd-old
	$(PY) benchmarks/bench_sim.py
	$(PY) benchmarks/bench_rotate.py
	$(PY) benchmarks/bench_route53.py
	$(PY) benchmarks/mirror.py
	$(PY) benchmarks/bench_switchover.py
	$(PY) benchmarks/bench_stretched.py
	$(PY) benchmarks/bench_mirrored.py
	$(PY) benchmarks/bench_snapshots.py
	$(PY) benchmarks/bench_churn.py

clean:
	-$(PY) etcd.py sim down
	rm -rf $(VENV) .venv-senza .venv-checkov .sim .pytest_cache .cache

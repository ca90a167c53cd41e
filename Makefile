# Two set-up commands: `make demo` and `make test`. Both need only Python 3.11 and make.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

ETCD_OLD := .cache/etcd-3.4/usr/bin/etcd
SENZA := .venv-senza/bin/senza
CHECKOV := .venv-checkov/bin/checkov
HADOLINT := .venv-checkov/bin/hadolint
# The environment's PROMTOOL wins, as in the monitoring tests.
PROMTOOL ?= .cache/prometheus/usr/bin/promtool

.PHONY: demo test test-all lint bench clean etcd-old promtool lock

# What the image runs, to the file (requirements.lock), then the tools and the local AWS beside it: the tests run
# the versions production runs (tests/integration/test_image_pipeline.py checks it).
$(STAMP): requirements.txt requirements.lock requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --no-deps --require-hashes -r requirements.lock
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

## promtool: Debian's promtool in .cache for the monitoring rules and their tests (which fail, naming
## this target, without it)
promtool:
	@scripts/fetch-promtool.sh .cache/prometheus || true

## test: the representative suite: everything but the soak and extended tests (docs/testing.md)
test: $(STAMP) etcd-old promtool $(SENZA) $(CHECKOV)
	$(PY) -m pytest

## test-all: also the soak and extended tests (docs/testing.md)
test-all: $(STAMP) etcd-old promtool $(SENZA) $(CHECKOV)
	$(PY) -m pytest -m ""

## lint: ruff (Python), cfn-lint and checkov (templates), hadolint (Dockerfile), promtool (monitoring)
lint: $(STAMP) $(CHECKOV) promtool
	$(VENV)/bin/ruff check .
	$(VENV)/bin/cfn-lint cloudformation/*.yaml
	$(CHECKOV) --quiet --compact --skip-download --framework cloudformation -d cloudformation
	$(HADOLINT) Dockerfile
	$(PROMTOOL) check rules monitoring/alerts.yml
	$(PROMTOOL) check config monitoring/prometheus.yml

LOCK_VENV := .venv-lock
LOCK_ARGS ?=
## lock: requirements.lock, what the image installs (each package at one version, with its files' SHA-256s),
## compiled from requirements.txt's ranges; the pins stay unless LOCK_ARGS=--upgrade or --upgrade-package=NAME
lock:
	$(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(LOCK_VENV)/bin/python -m pip install --quiet pip-tools==7.6.2
	$(LOCK_VENV)/bin/pip-compile --quiet --generate-hashes --strip-extras --no-emit-index-url --no-emit-find-links \
		$(LOCK_ARGS) --output-file=requirements.lock requirements.txt

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
	rm -rf $(VENV) .venv-senza .venv-checkov .venv-lock .sim .pytest_cache .cache

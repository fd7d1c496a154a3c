# The two commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint format bench loadtest install install-dev clean

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

## Set up (virtualenv, packages, database, demo data, admin, the first model queued) and serve
## the site with a worker, which trains that first model in the background. `exec`: a SIGTERM
## that make passes on reaches the launcher itself, not a shell around it.
run: $(VENV)/.installed
	$(PY) manage.py migrate --noinput
	$(PY) manage.py generate_customers --if-empty
	$(PY) manage.py generate_transactions --if-demo
	$(PY) manage.py ensure_admin
	$(PY) manage.py train --if-no-model
	$(PY) manage.py clv --if-no-model
	DJANGO_DEBUG=$${DJANGO_DEBUG:-true} exec $(PY) scripts/run_dev.py --host $(HOST) --port $(PORT)

## Lint, format check and the whole test suite.
test: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m pytest

lint: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache

## Benchmarks: ratios against bare scikit-learn scripts (BENCH_DATABASE_URL for PostgreSQL).
bench: $(VENV)/.installed-dev
	$(PY) bench/run.py

## Load test: gunicorn on loopback, prediction API against a trivial authenticated view.
loadtest: $(VENV)/.installed-dev
	$(PY) bench/loadtest.py

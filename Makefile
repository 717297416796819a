# The two commands: `make demo` and `make test`. Everything else is for maintainers and CI.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# bench: make bench profiles with pyinstrument, and mypy checks bench/ against it.
# drf: the Django REST framework integration (django_conditional.drf) and its tests.
# django-redis: the fast path on django-redis and Redis Sentinel, and their tests.
# debug, metrics: the debug-toolbar panel and the exporters, and their tests; docs: make docs.
EXTRAS ?= test,dev,bench,drf,debug,metrics,docs,django-redis

# Modules holding the RFC 9110 precondition logic: they must stay at 100% branch coverage.
# Only the ones that exist are gated, so the gate never fails on a file that is not written yet.
COVERAGE_GATE := $(wildcard django_conditional/preconditions.py django_conditional/httpdate.py django_conditional/validators.py django_conditional/ranges.py)
comma := ,
empty :=
space := $(empty) $(empty)

.PHONY: venv lint format typecheck pytest test demo docs bench load matrix ci clean

venv: $(STAMP)

# Re-install whenever the packaging metadata changes.
$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[$(EXTRAS)]'
	touch $@

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: venv
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

typecheck: venv
	$(VENV)/bin/mypy django_conditional tests example_project $(if $(wildcard bench/*.py),bench)

pytest: venv
	scripts/ensure-chromium
	scripts/ensure-nginx
	scripts/ensure-redis-sentinel
	scripts/ensure-varnish
	$(PY) -m pytest --cov --cov-branch --cov-report=term-missing $(PYTEST_ARGS)
ifneq ($(strip $(COVERAGE_GATE)),)
	$(PY) -m coverage report --include='$(subst $(space),$(comma),$(strip $(COVERAGE_GATE)))' --fail-under=100
endif

test: venv lint typecheck pytest

demo: venv
	$(PY) manage.py migrate --noinput
	if $(PY) manage.py help seed_demo >/dev/null 2>&1; then $(PY) manage.py seed_demo; fi
	$(PY) manage.py runserver 127.0.0.1:8000

# The documentation site (MkDocs Material, docs/ + mkdocs.yml): any warning fails the build.
docs: venv
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --clean

bench: venv
	@if [ -f bench/run.py ]; then $(PY) bench/run.py; else echo "bench/run.py does not exist yet" >&2; exit 1; fi

load: venv
	$(PY) bench/load_oracle.py

# Django x Python matrix (the same script .ci/run uses).
matrix:
	scripts/matrix

ci:
	.ci/run

clean:
	rm -rf build dist *.egg-info .coverage .coverage.* htmlcov .pytest_cache .mypy_cache .ruff_cache .hypothesis
	find . -path ./$(VENV) -prune -o -path './.venv-matrix' -prune -o -name __pycache__ -type d -exec rm -rf {} +

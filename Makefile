# The README's two commands: `make run` and `make test`. Both create .venv themselves.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

export LITELLM_LOCAL_MODEL_COST_MAP := True

.PHONY: run test lint typecheck bench bench-full clean venv deploy-check

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	rm -f $(VENV)/.installed-*
	touch $@

run: $(STAMP)
	$(VENV)/bin/gateway serve $(ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check gateway tests bench deploy
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --no-cache

test: lint
	sh tests/prepare.sh
	$(PY) deploy/check.py
	$(PY) -m pytest -q $(PYTEST_ARGS)

# compose, HAProxy, Prometheus rules, Grafana dashboard and the Helm chart (deploy/check.py).
deploy-check: $(STAMP)
	$(PY) deploy/check.py

bench: $(STAMP)
	$(PY) bench/run.py --quick

bench-full: $(STAMP)
	$(PY) bench/run.py --full

clean:
	rm -rf $(VENV) data .mypy_cache .ruff_cache .pytest_cache

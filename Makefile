# Two commands do everything on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint format bench install browsers clean flare-poc flare-poc-stop node-image

$(STAMP): pyproject.toml clients/python/pyproject.toml package.json
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	$(PY) -m pip install --quiet -e "./clients/python[plot]"
	@if command -v npm >/dev/null 2>&1; then npm install --no-audit --no-fund --silent; \
	  else echo "npm not found: browser tests will be skipped (install Node.js for axe-core)"; fi
	@touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(PY) -m optima_portal.devrun

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: $(STAMP)
	@for script in benchmarks/*.py; do echo "== $$script"; $(PY) $$script || exit 1; done

# Federated learning demo: a real NVIDIA FLARE server and one client per demo node on 127.0.0.1.
flare-poc: $(STAMP)
	$(PY) manage.py flare_poc start

flare-poc-stop: $(STAMP)
	$(PY) manage.py flare_poc stop

# The node agent's OCI image from Debian packages, no registry (docs/node-install.md); needs root.
node-image:
	PYTHON=$(if $(wildcard $(PY)),$(PY),$(PYTHON)) node/build-image.sh

clean:
	rm -rf var/ .pytest_cache

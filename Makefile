# auxip: local development. `make up` runs the whole pipeline on this machine.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
STAMP := $(VENV)/.installed
# The first Python >= 3.11 on PATH (Debian 12 has 3.11; Ubuntu 22.04 needs python3.11 added).
PYTHON := $(shell for p in python3.13 python3.12 python3.11 python3; do \
	command -v $$p >/dev/null && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
	2>/dev/null && { echo $$p; break; }; done)
PYTEST_ARGS ?=

.PHONY: help venv system-deps up down status env run test bench schemas clean audit \
	secrets-baseline

help:
	@echo "make up | down | status | env | run | test | bench | schemas | venv | system-deps | clean"
	@echo "make audit | secrets-baseline"

venv: $(STAMP)

# Reinstalled only when pyproject.toml changes.
$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "Python >= 3.11 is required" >&2; exit 1; }
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

system-deps:
	@bash scripts/install-system-deps.sh

up: system-deps venv
	$(VENV)/bin/auxip up $(if $(MONITORING),--with-monitoring)

down:
	@if [ -x $(VENV)/bin/auxip ]; then $(VENV)/bin/auxip down; fi

status: venv
	$(VENV)/bin/auxip status

env: venv
	@$(VENV)/bin/auxip env

run: up
	$(VENV)/bin/auxip demo

test: system-deps venv
	$(VENV)/bin/pytest $(PYTEST_ARGS)

bench: system-deps venv
	$(VENV)/bin/python bench/run.py

schemas: venv
	$(VENV)/bin/python -m events.schemas

# Supply-chain and code checks (README, "Supply-chain checks"): SBOM, licences, SAST,
# secrets, vulnerabilities; reports in build/audit/. The tools and the runtime dependencies
# get virtual environments of their own (.venv-audit, .venv-runtime), not .venv.
AUDIT_ARGS ?=
audit:
	@test -n "$(PYTHON)" || { echo "Python >= 3.11 is required" >&2; exit 1; }
	$(PYTHON) -m audit $(AUDIT_ARGS)

# Record reviewed secret-scan findings: update audit/secrets.baseline, label the new ones.
secrets-baseline:
	$(PYTHON) -m audit --review-secrets


# The one target that forgets: the local stack's catalogue and archive go with .local.
clean:
	@if [ -x $(VENV)/bin/auxip ]; then $(VENV)/bin/auxip clean; else rm -rf .local; fi
	rm -rf .pytest_cache .hypothesis build dist *.egg-info
	find . -name __pycache__ -type d -not -path './$(VENV)/*' -prune -exec rm -rf {} +

IMAGE ?=
OVERLAY ?= production
FUNCTION ?=
.PHONY: image manifests deploy
image:
	IMAGE="$(IMAGE)" bash scripts/deploy.sh image
manifests: venv
	PYTHON=$(VENV)/bin/python bash scripts/deploy.sh manifests
deploy: venv
	IMAGE="$(IMAGE)" OVERLAY="$(OVERLAY)" PYTHON=$(VENV)/bin/python bash scripts/deploy.sh deploy $(FUNCTION)

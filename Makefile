# dnssec-watchdog: developer and operator entry points.
# `make test` and `make demo` set up everything they need themselves.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: test check lint format types pytest demo bench debian-deps clean

test: $(STAMP) debian-deps
	$(MAKE) --no-print-directory check

check: lint types pytest

lint: $(STAMP)
	$(BIN)/ruff check watchdog tests
	$(BIN)/ruff format --check watchdog tests

format: $(STAMP)
	$(BIN)/ruff format watchdog tests
	$(BIN)/ruff check --fix watchdog tests

types: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest $(PYTEST_ARGS)

# A signed zone on 127.0.0.1 crosses warning, strict-fail and skew-exhausted, then recovers;
# the webhooks are printed as they arrive. Needs no Debian package and no root.
demo: $(STAMP)
	$(BIN)/python -m watchdog.demo $(DEMO_ARGS)

# The Debian packages the real-server tests use (NSD, validators, signers, libfaketime).
debian-deps:
	@sh tests/install-debian-deps.sh

$(VENV)/bin/python:
	@sh tests/make-venv.sh $(PYTHON) $(VENV)

$(STAMP): $(VENV)/bin/python pyproject.toml
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

# Benchmarks of issue 7 (as root: NSD/Unbound on port 53 of 127.0.53.1-3, DNSViz in its own
# venv); the figures go into BENCHMARKS.md. Only loopback addresses are ever contacted.
bench: $(STAMP) debian-deps
	sh bench/run.sh $(BENCH_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .pytest_cache .ruff_cache

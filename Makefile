# Two commands for a newcomer: `make dev` (install, then run the hub locally) and
# `make test` (install, then run every test). Both install what they need into
# .venv/ (Python) and node_modules/ (the pinned CDK CLI) first.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20

.PHONY: install layer browser dev lint test test-fast fuzz soak synth bench schema openapi screenshots clean

install: $(VENV)/.installed node_modules/.installed layer

# The slim Lambda layer (phonenumbers, defusedxml, cryptography, PyJWT) for arm64 / Python 3.14:
# pip with --platform/--only-binary into build/layers/deps, no Docker (infra/aws/layers.py).
# A no-op while layers/deps/requirements.txt is unchanged; `cdk synth` only reads it.
layer: $(VENV)/.installed
	$(BIN)/python -m infra.aws.layers

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip==25.3"
	$(BIN)/python -m pip install --quiet -e ".[local,infra,dev]"
	touch $@

node_modules/.installed: package.json
	npm install --no-audit --no-fund --no-package-lock --loglevel=error
	touch $@

# Debian's chromium for the console's browser tests (Playwright drives it and never downloads a
# browser of its own). Installed with apt when missing: as root, or through sudo.
CHROMIUM ?= /usr/bin/chromium
browser:
	@test -x $(CHROMIUM) || { \
		if [ "$$(id -u)" = 0 ]; then sudo=; else sudo=sudo; fi; \
		$$sudo apt-get update -q && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -q chromium; }

dev: install
	$(BIN)/switchboard dev

# Lint, then every test with a coverage report (config for all three tools in pyproject.toml).
# One pytest-xdist worker per CPU; `--dist loadscope`, scoped in tests/conftest.py, keeps the
# tests of the CDK synth fixtures on one worker (synthesised once per run) and the integration
# modules on one worker, back to back (the local runtime started once). pytest-cov combines the
# workers' coverage; botocore and moto run untraced by it (tests/untraced_moto.py).
PYTEST_PARALLEL := -n auto --dist loadscope

test: install browser lint
	$(BIN)/pytest $(PYTEST_PARALLEL) --cov --cov-report=term:skip-covered

# ruff's lint rules, its formatter (check only) and mypy over functions/, the core layer and
# infra/; all three run, so one pass shows every problem. `ruff format` and `ruff check --fix`
# repair the mechanical ones.
lint: $(VENV)/.installed
	@status=0; \
	$(BIN)/ruff check . || status=1; \
	$(BIN)/ruff format --check --output-format concise . || status=1; \
	$(BIN)/mypy || status=1; \
	exit $$status

# Unit and contract tests only (no local runtime, no CDK synth, no lint or coverage).
test-fast: $(VENV)/.installed
	$(BIN)/pytest $(PYTEST_PARALLEL) tests/unit tests/contract

# The long property-based runs: 10,000 generated inputs per adapter, per admin-API mode, for
# ingest end to end (spoiled signed requests), the senders' reading of provider answers and
# the delivery function's reading of a partner endpoint's Retry-After.
fuzz: $(VENV)/.installed
	SWITCHBOARD_FUZZ_EXAMPLES=10000 $(BIN)/pytest tests/unit/providers tests/unit/admin \
		tests/unit/ingest/test_ingest_hostile.py tests/unit/outbound/test_hostile_responses.py \
		tests/unit/delivery/test_hostile_answers.py -k property -q

# The long forms of what CI runs short (hours): the property tests at 10,000 inputs, fault injection
# on every AWS call of every function, 20,000 webhooks through the local hub with a kill -9 halfway,
# and the local runtime under load (a burst, then four minutes at 7 webhooks/s, which the consumers
# must keep up with). Each runs whatever the others' verdicts; any failure exits 1.
soak: $(VENV)/.installed
	@status=0; \
	$(MAKE) fuzz || status=1; \
	$(BIN)/python -m tests.faults || status=1; \
	$(BIN)/python -m tests.load.reconcile --webhooks 20000 --kill-at 10000 || status=1; \
	$(BIN)/python -m tests.bench.local_load || status=1; \
	$(BIN)/python -m tests.bench.local_load --levels 32=1680 --rate 7 || status=1; \
	exit $$status

# The console's screenshots in docs/console/ (a local hub with a few webhooks, headless chromium).
screenshots: install browser
	$(BIN)/python -m tests.console_screenshots

synth: install
	npx cdk synth -q

# The local runtime under load and the cold starts last: each exits 1 when a target is missed,
# and both run whatever the other's verdict.
bench: $(VENV)/.installed
	$(BIN)/python -m tests.bench.ingest
	$(BIN)/python -m tests.bench.ingest_handler
	$(BIN)/python -m tests.bench.providers
	$(BIN)/python -m tests.bench.cost
	$(BIN)/python -m tests.bench.routing
	$(BIN)/python -m tests.bench.scale
	$(BIN)/python -m tests.bench.fanout
	$(BIN)/python -m tests.bench.emulator_requests
	@status=0; \
	$(BIN)/python -m tests.bench.local_load || status=1; \
	$(BIN)/python -m tests.bench.coldstart || status=1; \
	exit $$status

schema: $(VENV)/.installed
	$(BIN)/switchboard schema

# Regenerate docs/openapi.json (the admin API's OpenAPI document) after changing admin routes or models.
openapi: $(VENV)/.installed
	$(BIN)/python -m infra.local.openapi

clean:
	rm -rf $(VENV) node_modules cdk.out .pytest_cache .mypy_cache .ruff_cache .coverage

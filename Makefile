# `make run` and `make test` each set everything up on a fresh machine: .venv, CPU torch, the package.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
# llama.cpp (test LLM server, optional in-process generator) is compiled for a portable x86-64 baseline with
# AVX2: a native build may emit AMX kernels that crash under virtual machines that report AMX.
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF

.PHONY: install install-dev browser run check test unit check-make-run bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	# the pinned CPU build comes from local disk; an unpinned torch would pull GBs of CUDA
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed

install-dev: $(VENV)/.installed-dev

run: install
	$(BIN)/rag ingest data/
	$(BIN)/rag serve --host $(HOST) --port $(PORT)

# Browser tests need Debian's chromium; installed here when missing and running as root (as CI does).
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
		echo "chromium is missing: the browser tests will be skipped (run 'apt-get install chromium' as root)"

# lint, format, types and the layering contract (pyproject.toml: [tool.ruff], [tool.mypy], [tool.importlinter])
check: install-dev
	$(BIN)/ruff check rag ingest tests benchmarks conftest.py .ci
	$(BIN)/ruff format --check rag ingest tests benchmarks conftest.py .ci
	$(BIN)/mypy
	$(BIN)/lint-imports

test: install-dev browser check
	$(BIN)/python -m pytest -q

# pure-logic tests and doctests only: seconds, no model, no servers
unit: install-dev
	$(BIN)/python -m pytest -q -m unit

# the README's first command in a fresh clone of the committed work (CI runs it after `make test`)
check-make-run:
	$(PYTHON) .ci/check_make_run.py

bench: install-dev
	$(BIN)/python benchmarks/ingest.py
	$(BIN)/python benchmarks/retrieval.py
	$(BIN)/python benchmarks/chat.py

clean:
	rm -rf kb .pytest_cache

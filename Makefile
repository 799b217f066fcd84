# routerd: every target works on a fresh machine with Python 3.11+, pip and make.
# The first target that needs it creates .venv and installs the project into it; later runs
# reinstall only when pyproject.toml (or the template's) changes.
# `make test TEST_EXTRAS=embeddings` (what CI runs) also installs the optional extra `embeddings`
# and runs the tests that need it; they are skipped without it.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.routerd-installed
# Optional extras `make test` installs first, separated by spaces: `embeddings`.
TEST_EXTRAS ?=
EXTRA_STAMPS := $(foreach extra,$(TEST_EXTRAS),$(VENV)/.routerd-$(extra))

.PHONY: venv run test lint format docs bench clean

venv: $(STAMP)

# llama-cpp-python (the extra `local`) compiles llama.cpp. Its default, a native build, uses every
# instruction set the CPU reports, AMX included, and crashes at the first token on virtual machines
# whose kernel does not enable AMX; this builds for AVX2, which every x86-64 machine of the last
# decade has (the options are ignored elsewhere). scripts/check_llama_cpp.py runs the bundled model
# once: when the installed build crashes (a wheel pip cached from a native build, say), it is
# dropped from pip's cache and rebuilt with these options, once.
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON
export CMAKE_ARGS ?= $(LLAMA_CMAKE_ARGS)

$(STAMP): pyproject.toml plugin-template/pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "routerd needs Python 3.11 or newer")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,local]'
	$(BIN)/python scripts/check_llama_cpp.py || { \
	  echo "llama-cpp-python does not run here: rebuilding it (CMAKE_ARGS=$$CMAKE_ARGS)"; \
	  $(BIN)/python -m pip cache remove llama_cpp_python >/dev/null 2>&1 || true; \
	  $(BIN)/python -m pip install --quiet --force-reinstall --no-deps \
	    "llama-cpp-python==$$($(BIN)/python -c 'import importlib.metadata as m; print(m.version("llama-cpp-python"))')" && \
	  $(BIN)/python scripts/check_llama_cpp.py; }
	$(BIN)/python -m pip install --quiet -e 'plugin-template[test]'
	touch $(STAMP)

# torch first, exactly 2.13.0: the CI machines keep that release's CPU wheel on disk (pip's
# find-links). Left to the extra's range, pip would take the newest torch from PyPI: on Linux the
# CUDA build, gigabytes.
$(VENV)/.routerd-embeddings: $(STAMP)
	$(BIN)/python -m pip install --quiet 'torch==2.13.0'
	$(BIN)/python -m pip install --quiet -e '.[embeddings]'
	touch $@

## run: start the gateway on http://127.0.0.1:8080 (settings: ROUTERD_CONFIG, ROUTER_* variables)
run: $(STAMP)
	$(BIN)/routerd serve

## test: the kernel's tests (SQLite and PostgreSQL), then the plugin template's own tests
## (TEST_EXTRAS=embeddings: installs that extra first, and its tests fail rather than skip without it)
test: $(STAMP) $(EXTRA_STAMPS)
	ROUTERD_TEST_EXTRAS='$(TEST_EXTRAS)' $(BIN)/python -m pytest tests
	cd plugin-template && ../$(BIN)/python -m pytest tests

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

## bench: proxy overhead (gateway against direct), the upstream HTTP clients side by side, and the
## latency of a routing decision over 50 candidates (the others in bench/README.md take longer)
bench: $(STAMP)
	$(BIN)/python bench/overhead.py
	$(BIN)/python bench/upstream_clients.py
	$(BIN)/python bench/routing_latency.py  # exits 1 while its target is not met (bench/README.md)

## docs: regenerate the settings table in docs/configuration.md from the settings Structs
docs: $(STAMP)
	$(BIN)/routerd config docs --write docs/configuration.md

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache

# routerd: every target works on a fresh machine with Python 3.11+, pip and make.
# The first target that needs it creates the virtual environment and installs the project into it;
# later runs reinstall only when pyproject.toml (or, for the tests, the template's) changes.
#
# Two environments:
# - .venv, what `make run` (and lint, bench, docs) uses: routerd with its extras `dev` and `local`.
# - .venv-test, what `make test` uses: .venv's packages (a .pth file adds .venv's site-packages,
#   so nothing is installed twice) plus what only the tests need: the plugin template, whose demo
#   plugin `example` would otherwise be on in every user's gateway (an installed plugin is enabled),
#   and the TEST_EXTRAS. routerd is installed there again (editable, no dependencies) only so that
#   its `routerd` command runs with .venv-test's Python.
# `make test TEST_EXTRAS=embeddings` (what CI runs) also installs the optional extra `embeddings`
# into .venv-test and runs the tests that need it; they are skipped without it.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.routerd-installed
TEST_VENV  ?= .venv-test
TEST_BIN   := $(TEST_VENV)/bin
TEST_STAMP := $(TEST_VENV)/.routerd-installed
# Optional extras `make test` installs first (into .venv-test), separated by spaces: `embeddings`.
TEST_EXTRAS ?=
EXTRA_STAMPS := $(foreach extra,$(TEST_EXTRAS),$(TEST_VENV)/.routerd-$(extra))

.PHONY: venv test-venv run test lint format docs bench clean

venv: $(STAMP)
test-venv: $(TEST_STAMP)

# llama-cpp-python (the extra `local`) compiles llama.cpp. Its default, a native build, uses every
# instruction set the CPU reports, AMX included, and crashes at the first token on virtual machines
# whose kernel does not enable AMX; this builds for AVX2, which every x86-64 machine of the last
# decade has (the options are ignored elsewhere). scripts/check_llama_cpp.py runs the bundled model
# once: when the installed build crashes (a wheel pip cached from a native build, say), it is
# dropped from pip's cache and rebuilt with these options, once.
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON
export CMAKE_ARGS ?= $(LLAMA_CMAKE_ARGS)

# pip runs without --quiet for the long step, so that its "Building wheel for llama-cpp-python"
# lines show (PIP_VERBOSE=1 make run shows the compiler's output too).
$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "routerd needs Python 3.11 or newer")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	@echo "routerd: installing routerd and its extras dev and local into $(VENV). The first install builds"
	@echo "routerd: llama-cpp-python from source: about 5-8 minutes on 2 cores, most of it on the line"
	@echo "routerd: 'Building wheel for llama-cpp-python'. pip keeps the wheel: later installs take seconds."
	$(BIN)/python -m pip install -e '.[dev,local]'
	$(BIN)/python scripts/check_llama_cpp.py || { \
	  echo "routerd: llama-cpp-python does not run here: rebuilding it from source, about 5-8 minutes on 2 cores (CMAKE_ARGS=$$CMAKE_ARGS)"; \
	  $(BIN)/python -m pip cache remove llama_cpp_python >/dev/null 2>&1 || true; \
	  $(BIN)/python -m pip install --force-reinstall --no-deps \
	    "llama-cpp-python==$$($(BIN)/python -c 'import importlib.metadata as m; print(m.version("llama-cpp-python"))')" && \
	  $(BIN)/python scripts/check_llama_cpp.py; }
	@! $(BIN)/python -m pip show --quiet routerd-example-plugin >/dev/null 2>&1 || \
	  echo "routerd: the plugin template (plugin 'example') is installed in $(VENV), so it is on in 'make run';" \
	    "'make test' installs it in $(TEST_VENV) instead. To take it out: $(BIN)/pip uninstall routerd-example-plugin"
	touch $(STAMP)

# The test environment, layered on .venv: created by .venv's Python (the same interpreter) without
# pip of its own (.venv's pip runs it), with a .pth line that adds .venv's site-packages; a plain
# path line would not process .venv's own .pth files, which its editable install of routerd needs.
$(TEST_STAMP): $(STAMP) pyproject.toml plugin-template/pyproject.toml
	test -x $(TEST_BIN)/python || $(BIN)/python -m venv --without-pip $(TEST_VENV)
	$(BIN)/python -c 'import sysconfig; print("import site; site.addsitedir(%r)" % sysconfig.get_path("purelib"))' \
	  > "$$($(TEST_BIN)/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')/routerd-base-venv.pth"
	$(TEST_BIN)/python -m pip install --quiet --no-deps -e .
	$(TEST_BIN)/python -m pip install --quiet -e 'plugin-template[test]'
	touch $(TEST_STAMP)

# torch first, exactly 2.13.0: the CI machines keep that release's CPU wheel on disk (pip's
# find-links). Left to the extra's range, pip would take the newest torch from PyPI: on Linux the
# CUDA build, gigabytes. In .venv-test: with the extra, `make run`'s learned scorer would load torch.
$(TEST_VENV)/.routerd-embeddings: $(TEST_STAMP)
	$(TEST_BIN)/python -m pip install --quiet 'torch==2.13.0'
	$(TEST_BIN)/python -m pip install --quiet -e '.[embeddings]'
	touch $@

## run: start the gateway on http://127.0.0.1:8080 (settings: ROUTERD_CONFIG, ROUTER_* variables)
run: $(STAMP)
	$(BIN)/routerd serve

## test: the kernel's tests (SQLite and PostgreSQL), then the plugin template's own tests, in .venv-test
## (TEST_EXTRAS=embeddings: installs that extra first, and its tests fail rather than skip without it)
test: $(TEST_STAMP) $(EXTRA_STAMPS)
	ROUTERD_TEST_EXTRAS='$(TEST_EXTRAS)' $(TEST_BIN)/python -m pytest tests
	cd plugin-template && ../$(TEST_BIN)/python -m pytest tests

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
	rm -rf $(VENV) $(TEST_VENV) .pytest_cache .ruff_cache

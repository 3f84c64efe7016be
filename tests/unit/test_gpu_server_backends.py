"""SGLang's and TensorRT-LLM's launch commands from a spec, where their servers start from, and why they are not
available on a machine without a CUDA GPU."""

import importlib.util
import json
import sys

import pytest

from tuibench.backends.engine import dtype_name
from tuibench.backends.own_env import launcher, own_venv
from tuibench.backends.sglang_backend import SglangBackend
from tuibench.backends.trtllm_backend import TrtllmBackend
from tuibench.core.spec import DatasetSpec, Parallelism, RunSpec
from tuibench.runner.server_pool import ServerPool
from tuibench.telemetry.devices import cuda_visible

PLAIN = RunSpec(dataset=DatasetSpec(kind="random", source="random"))


@pytest.fixture
def launchers(monkeypatch, tmp_path):
    """Both servers' programs found, whatever this machine has installed."""
    monkeypatch.setenv("TUIBENCH_SGLANG_PYTHON", "/opt/sglang/bin/python")
    monkeypatch.setenv("TUIBENCH_TRTLLM_SERVE", "/opt/trtllm/bin/trtllm-serve")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))


@pytest.mark.skipif(cuda_visible(), reason="this machine has a CUDA GPU")
@pytest.mark.parametrize("backend, engine", [(SglangBackend, "SGLang"), (TrtllmBackend, "TensorRT-LLM")])
def test_without_a_cuda_gpu_each_is_unavailable_with_the_reason_even_when_installed(launchers, backend, engine):
    availability = backend.availability()
    assert not availability.ok and availability.reason == f"{engine} runs on a CUDA GPU, and this machine has none"


def test_a_server_starts_from_the_variable_else_its_own_venv_else_this_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("TUIBENCH_SGLANG_PYTHON", raising=False)
    monkeypatch.setattr(sys, "prefix", str(tmp_path / ".venv"))
    assert own_venv("sglang") == tmp_path / ".venv-sglang"
    assert launcher("sglang", "TUIBENCH_SGLANG_PYTHON", "python", "no_such_module_xyz") is None
    assert launcher("sglang", "TUIBENCH_SGLANG_PYTHON", "python", "json") == sys.executable  # importable here
    (tmp_path / ".venv-sglang" / "bin").mkdir(parents=True)
    (tmp_path / ".venv-sglang" / "bin" / "python").touch()
    assert launcher("sglang", "TUIBENCH_SGLANG_PYTHON", "python", "json") == str(tmp_path / ".venv-sglang/bin/python")
    monkeypatch.setenv("TUIBENCH_SGLANG_PYTHON", "/elsewhere/python")
    assert launcher("sglang", "TUIBENCH_SGLANG_PYTHON", "python", "json") == "/elsewhere/python"


def test_sglang_with_defaults_passes_no_switch_the_spec_did_not_ask_for(launchers):
    argv = SglangBackend.server_command("/m", 8123, PLAIN).argv
    assert argv == ["/opt/sglang/bin/python", "-m", "sglang.launch_server", "--model-path", "/m", "--host", "127.0.0.1",
                    "--port", "8123", "--enable-metrics", "--dtype", dtype_name("auto", True), "--random-seed", "0"]
    layout = RunSpec(dataset=PLAIN.dataset, parallel=Parallelism(tensor=2, pipeline=2, data=2), prefix_caching=True)
    argv = SglangBackend.server_command("/m", 8123, layout).argv
    assert argv[argv.index("--tp-size"):] == ["--tp-size", "2", "--pp-size", "2", "--dp-size", "2"]
    assert "--disable-radix-cache" not in argv  # on is its default


def test_trtllm_options_file_holds_what_its_command_line_cannot(launchers, tmp_path):
    command = TrtllmBackend.server_command("/m", 8124, PLAIN)
    options_file = command.argv[command.argv.index("--extra_llm_api_options") + 1]
    assert command.argv[:2] == ["/opt/trtllm/bin/trtllm-serve", "/m"] and options_file.startswith(str(tmp_path))
    assert json.loads(command.files[options_file]) == {"dtype": "bfloat16", "return_perf_metrics": True}
    cached = TrtllmBackend.server_command("/m", 8124, RunSpec(dataset=PLAIN.dataset, prefix_caching=True))
    assert json.loads(cached.files[options_file])["kv_cache_config"] == {"enable_block_reuse": True}


@pytest.mark.parametrize("backend, caching, reused", [
    (TrtllmBackend, None, False),  # its block reuse is on by default, with no route to empty it: restarted
    (TrtllmBackend, True, False),
    (TrtllmBackend, False, True),  # nothing cached: kept
])
def test_a_server_without_a_cache_reset_route_is_kept_only_when_it_caches_nothing(backend, caching, reused):
    spec = RunSpec(dataset=PLAIN.dataset, prefix_caching=caching)
    assert ServerPool()._reset(backend, spec, lambda event: None, lambda: 0.0) is reused


@pytest.mark.skipif(any(importlib.util.find_spec(m) for m in ("sglang", "tensorrt_llm")),
                    reason="installed into this environment: found here, never missing")
def test_on_a_fake_gpu_box_each_is_available_once_its_server_is_found(monkeypatch, tmp_path):
    import tuibench.telemetry.devices as devices

    monkeypatch.setattr(devices, "cuda_visible", lambda: True)  # a GPU box, as far as the check can tell
    monkeypatch.setattr(sys, "prefix", str(tmp_path / ".venv"))  # no .venv-sglang, no .venv-trtllm beside it
    for variable in ("TUIBENCH_SGLANG_PYTHON", "TUIBENCH_TRTLLM_SERVE"):
        monkeypatch.delenv(variable, raising=False)
    missing = SglangBackend.availability()
    assert not missing.ok and missing.reason == (
        "sglang not installed: `make install SGLANG=1` (its own venv: it pins another torch), or set "
        "TUIBENCH_SGLANG_PYTHON to a python that has it")
    assert TrtllmBackend.availability().reason.startswith("tensorrt_llm not installed: `make install TRTLLM=1`")
    (tmp_path / ".venv-trtllm" / "bin").mkdir(parents=True)
    (tmp_path / ".venv-trtllm" / "bin" / "trtllm-serve").touch()
    assert TrtllmBackend.availability().ok

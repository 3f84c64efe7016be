"""Multi-GPU vLLM: the layout is checked against the machine before anything starts, reaches the engine and the
server, and is said wherever the run is. No GPU is here: a layout that fits needs a fake NVML (names say so)."""

import pytest

from tuibench.backends.vllm_backend import VllmBackend, engine_options
from tuibench.core.errors import UserError
from tuibench.core.plan import PlanRequest
from tuibench.report.tables import describe_spec
from tuibench.runner.plans import build_plan
from tuibench.telemetry.devices import GpuInfo

pytest.importorskip("vllm")

SERVING = dict(libraries=("vllm",), datasets=("random",), scenarios=("serving",), num_requests=2)


@pytest.fixture
def fake_nvml_of_8_gpus(monkeypatch):
    gpus = [GpuInfo(index=i, name="NVIDIA H200", driver="fake", memory_total_mib=143771.0) for i in range(8)]
    monkeypatch.setattr("tuibench.telemetry.devices.detect_gpus", lambda: gpus)


def test_tensor_parallel_on_this_cpu_is_one_line_before_anything_starts():
    with pytest.raises(UserError) as error:
        build_plan(PlanRequest(**SERVING, tensor_parallel_size=2))
    assert str(error.value) == ("TP 2 · PP 1 · DP 1 needs 2 GPUs (tensor × pipeline × data) and this machine has none: "
                                "lower the parallel sizes")


@pytest.mark.parametrize("request_, says", [
    (PlanRequest(libraries=("transformers",), tensor_parallel_size=2), "add --library vllm"),
    (PlanRequest(libraries=("vllm",), scenarios=("profile",), pipeline_parallel_size=2), "profile runs on one GPU"),
    (PlanRequest(libraries=("vllm",), data_parallel_size=2), "data parallel is for --scenario serving"),
])
def test_layouts_vllm_cannot_run_say_why(fake_nvml_of_8_gpus, request_, says):
    with pytest.raises(UserError, match=says):
        build_plan(request_)


def test_fake_nvml_of_8_gpus_a_layout_of_8_reaches_vllms_specs_only(fake_nvml_of_8_gpus):
    plan = build_plan(PlanRequest(**{**SERVING, "libraries": ("vllm", "transformers")}, tensor_parallel_size=2,
                                  pipeline_parallel_size=2, data_parallel_size=2))
    layouts = {step.spec.library: step.spec.parallel for step in plan.steps}
    assert layouts["vllm"].gpus == 8 and layouts["transformers"].gpus == 1
    with pytest.raises(UserError, match="needs 16 GPUs .* has 8 \\(NVIDIA H200\\)"):
        build_plan(PlanRequest(**SERVING, tensor_parallel_size=4, pipeline_parallel_size=4))


def test_fake_nvml_the_layout_and_random_weights_reach_the_engine_and_the_server_command(fake_nvml_of_8_gpus):
    plan = build_plan(PlanRequest(**SERVING, models=("llama-2-7b",), tensor_parallel_size=4, data_parallel_size=2))
    spec = plan.steps[0].spec
    assert engine_options(spec) == {"load_format": "dummy", "tensor_parallel_size": 4, "data_parallel_size": 2}
    argv = VllmBackend.server_command("/models/llama-2-7b", 8000, spec).argv
    joined = " ".join(argv)
    assert "--load-format dummy" in joined and "--tensor-parallel-size 4" in joined
    assert "--data-parallel-size 2" in joined and "--pipeline-parallel-size" not in joined
    assert describe_spec(spec).startswith("vllm · llama-2-7b (random weights) · TP 4 · PP 1 · DP 2 · ")

"""Multi-GPU vLLM: the layout is checked against the machine before anything starts, reaches the engine and the
server, and is said wherever the run is. No GPU is here: a layout that fits needs a fake NVML (names say so)."""

import msgspec
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


def test_fake_cuda_on_a_ray_cluster_the_layout_is_the_clusters_to_check_and_vllm_runs_rays_executor(monkeypatch):
    import socket

    from tuibench.backends import vllm_backend


    with socket.socket() as head:  # something listening where the cluster's head would be
        head.bind(("127.0.0.1", 0))
        head.listen()
        address = f"127.0.0.1:{head.getsockname()[1]}"
        # No GPU here, but the cluster may have them: the run's child counts them once connected.
        plan = build_plan(PlanRequest(**SERVING, tensor_parallel_size=2, pipeline_parallel_size=2, ray_address=address))
    spec = plan.steps[0].spec
    assert spec.ray_address == address
    # On this CPU: vLLM's CPU build has no Ray executor, so vLLM stays on this node, and the run's log says why.
    assert "distributed_executor_backend" not in engine_options(spec)
    assert "no Ray executor" in VllmBackend.on_cluster(spec)
    monkeypatch.setattr(vllm_backend, "cuda_visible", lambda: True)  # a fake CUDA device from here on
    assert engine_options(spec) == {"tensor_parallel_size": 2, "pipeline_parallel_size": 2,
                                    "distributed_executor_backend": "ray"}
    command = VllmBackend.server_command("/models/smollm2", 8000, spec)
    assert "--distributed-executor-backend ray" in " ".join(command.argv)
    assert command.env["RAY_ADDRESS"] == address  # the server's executor joins the same cluster
    # A profile reads the model's modules where they run: in one process, not on Ray's workers.
    profile = msgspec.structs.replace(spec, scenario="profile", parallel=msgspec.structs.replace(spec.parallel, tensor=1,
                                                                                                 pipeline=1))
    assert "distributed_executor_backend" not in engine_options(profile)


def test_engine_switches_reach_the_server_as_vllm_spells_them():
    plan = build_plan(PlanRequest(**SERVING, prefix_caching=("off",), speculative_tokens=3))
    spec = plan.steps[0].spec
    assert engine_options(spec)["speculative_config"] == {"method": "ngram", "num_speculative_tokens": 3,
                                                          "prompt_lookup_max": 4}
    argv = VllmBackend.server_command("/models/smollm2", 8000, spec).argv
    assert "--no-enable-prefix-caching" in argv  # a switch is --x / --no-x, never --x False
    config = argv[argv.index("--speculative-config") + 1]
    assert config == '{"method": "ngram", "num_speculative_tokens": 3, "prompt_lookup_max": 4}'
    assert describe_spec(spec).startswith("vllm · smollm2-135m · prefix cache off · n-gram speculation of 3 · ")

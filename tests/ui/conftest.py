"""Fixtures of the app's tests: private config and data folders, and a results store with known runs.

The stored runs are written through the real store from fixed records (not measured here), so that
screens and snapshots are the same on every machine; the tests that run the real model live beside them.
"""

import random
import sqlite3
from pathlib import Path

import pytest

from tuibench.core.aggregate import compute_metrics
from tuibench.core.module_profile import ModuleNode, ModuleProfile
from tuibench.core.plan import Plan, PlanRequest, PlanStep
from tuibench.core.records import RequestRecord
from tuibench.core.roofline import Cost, Roofline
from tuibench.core.spec import DatasetSpec, ProfileParams, RunSpec, ServingParams
from tuibench.core.store import ResultsStore

FIXED_TIME = "2026-11-24T09:00:00+00:00"


@pytest.fixture(autouse=True)
def private_home(tmp_path, monkeypatch):
    """The app remembers settings in XDG_CONFIG_HOME and stores runs in XDG_DATA_HOME: both private here."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))


def _records(count: int, rng: random.Random, scale: float = 1.0) -> list[RequestRecord]:
    records = []
    for i in range(count):
        ttft = rng.uniform(80, 200) * scale
        out = rng.randint(8, 32)
        tpot = rng.uniform(40, 60) * scale
        records.append(RequestRecord(index=i, input_tokens=rng.randint(16, 64), output_tokens=out,
                                     target_output_tokens=out, start_s=0.5 * i, ttft_ms=ttft,
                                     e2el_ms=ttft + tpot * (out - 1), itl_ms=[tpot] * (out - 1), batch=i // 4))
    return records


def _leaf(name: str, ms: float, theory: tuple[str, ...], flops: float, bytes_moved: float) -> ModuleNode:
    return ModuleNode(name=name, path=f"M.layers.{name}", kind="module", time_ms=ms, calls=30.0, theory=theory,
                      cost=Cost(flops=flops, bytes_read=bytes_moved))


def sample_profile(phase: str, length: int, scale: float) -> ModuleProfile:
    attn = (_leaf("q_proj", 10 * scale, ("q_proj",), 4e9, 1e9), _leaf("attention core", 6 * scale, ("attn_core",), 1e9, 6e8))
    mlp = (_leaf("gate_proj", 20 * scale, ("gate_proj",), 9e9, 2e9), _leaf("act_fn", 2 * scale, ("act_mul",), 2e7, 5e7))
    layer_children = (
        ModuleNode(name="self_attn", path="M.layers.self_attn", kind="module", time_ms=16 * scale, calls=30.0,
                   theory=("q_proj", "attn_core"), cost=Cost(flops=5e9, bytes_read=1.6e9), children=attn),
        ModuleNode(name="mlp", path="M.layers.mlp", kind="module", time_ms=22 * scale, calls=30.0,
                   theory=("gate_proj", "act_mul"), cost=Cost(flops=9.02e9, bytes_read=2.05e9), children=mlp),
    )
    layer = lambda i: ModuleNode(name=f"layer {i}", path=f"M.layers.{i}", kind="module", time_ms=19 * scale,  # noqa: E731
                                 children=layer_children)
    layers = ModuleNode(name="layers ×2", path="M.layers", kind="layers", time_ms=38 * scale, calls=2.0,
                        theory=("q_proj", "attn_core", "gate_proj", "act_mul"),
                        cost=Cost(flops=1.4e10, bytes_read=3.65e9), children=layer_children, layers=(layer(0), layer(1)))
    root = ModuleNode(name="LlamaForCausalLM", path="M", kind="step", time_ms=40 * scale, children=(
        layers, _leaf("lm_head", 2 * scale, ("lm_head",), 4.5e8, 1.1e8)))
    return ModuleProfile(library="transformers", phase=phase, batch=8, input_len=length, context=float(length),
                         steps=1 if phase == "prefill" else 4, dtype="float32", attn="sdpa", root=root,
                         timer_on_off=1.012, step_wall_ms=41.5 * scale,
                         roofline=Roofline(device="test CPU (1 thread)", dtype="float32", peak_flops_s=8e10,
                                           bandwidth_bytes_s=2.5e10))


@pytest.fixture
def sample_db(tmp_path) -> Path:
    """Plan 1 compares transformers and vLLM on short2short: runs 1-3 (transformers offline, serving at 1 and 4
    req/s), 4-6 (the same on vLLM), MII skipped. Run 7 (transformers serving short2long) and run 8 (a module
    profile) stand alone."""
    path = tmp_path / "data" / "tuibench" / "results.db"
    rng = random.Random(7)
    short2short = DatasetSpec(kind="builtin", source="short2short")

    def offline(library):
        return RunSpec(library=library, dataset=short2short, num_requests=8)

    def serving(library, rate, dataset=short2short):
        return RunSpec(library=library, scenario="serving", dataset=dataset, serving=ServingParams(request_rate=rate),
                       num_requests=12)

    # (spec, records' latency scale): vLLM is quicker, and transformers queues at 4 req/s.
    steps = [(offline("transformers"), 1.0), (serving("transformers", 1.0), 1.0), (serving("transformers", 4.0), 3.0),
             (offline("vllm"), 0.6), (serving("vllm", 1.0), 0.6), (serving("vllm", 4.0), 0.8)]
    request = PlanRequest(label="demo: transformers vs vllm", libraries=("transformers", "vllm", "mii"),
                          scenarios=("offline", "serving"), rates=(1.0, 4.0), num_requests=12)
    plan = Plan(label=request.label, request=request, steps=(
        *(PlanStep(index=i + 1, spec=spec) for i, (spec, _) in enumerate(steps)),
        PlanStep(index=7, spec=offline("mii"), skip="is not available here: DeepSpeed-MII needs a CUDA GPU")))
    with ResultsStore.open(path) as store:
        def add(spec, records, status="finished"):
            run = store.begin_run(spec)
            store.add_records(run, requests=records)
            store.finish_run(run, status, compute_metrics(records, []))
            return run

        plan_id = store.begin_plan(plan)
        for index, (spec, scale) in enumerate(steps, start=1):
            run = add(spec, _records(8 if spec.scenario == "offline" else 12, rng, scale))
            store.set_step(plan_id, index, "finished", run)
        store.finish_plan(plan_id, "finished")
        add(serving("transformers", 1.0, DatasetSpec(kind="builtin", source="short2long")), _records(6, rng, 3.0))
        profile_spec = RunSpec(scenario="profile", profile=ProfileParams(lengths=(32, 128)),
                               dataset=DatasetSpec(kind="random", source="random", input_len=128, output_len=4))
        run = store.begin_run(profile_spec)
        for length, scale in ((32, 1.0), (128, 3.0)):
            for phase in ("prefill", "decode"):
                store.add_module_profile(run, sample_profile(phase, length, scale if phase == "prefill" else 0.1))
        store.finish_run(run, "finished", compute_metrics([], []))
    with sqlite3.connect(path) as connection:  # the same dates on every machine, for the snapshots
        connection.execute("UPDATE runs SET created_at = ?, updated_at = ?", (FIXED_TIME, FIXED_TIME))
        connection.execute("UPDATE plans SET created_at = ?, updated_at = ?", (FIXED_TIME, FIXED_TIME))
    return path


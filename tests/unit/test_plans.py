"""Plans: a user's choice (flags, a plan file, the app's form) becomes the steps the run service runs."""

import re
import socket

import pytest

from tuibench.core.errors import UserError
from tuibench.core.plan import PlanRequest, plan_status, request_from_table
from tuibench.core.planfiles import load_plan_file, shipped_plans
from tuibench.runner.plans import build_plan


def _keys(plan):
    return [(s.spec.library, s.spec.dataset.label if s.spec.scenario != "profile" else "", s.spec.scenario,
             s.spec.serving.request_rate if s.spec.scenario == "serving" else "") for s in plan.steps]


def test_the_cross_product_runs_library_by_library_with_each_librarys_serving_steps_together():
    plan = build_plan(PlanRequest(libraries=("transformers", "vllm"), datasets=("short2short", "short2long"),
                                  scenarios=("offline", "serving"), rates=(1.0, None), num_requests=4))
    assert _keys(plan)[:6] == [
        ("transformers", "short2short", "offline", ""), ("transformers", "short2long", "offline", ""),
        ("transformers", "short2short", "serving", 1.0), ("transformers", "short2short", "serving", None),
        ("transformers", "short2long", "serving", 1.0), ("transformers", "short2long", "serving", None)]
    assert [s.index for s in plan.steps] == list(range(1, 13)) and len(plan.runnable) == 12
    assert all(s.spec.num_requests == 4 and s.spec.threads >= 1 for s in plan.steps)
    assert plan.label == "transformers, vllm · short2short, short2long · offline, serving @ 1, inf req/s"


def test_each_librarys_own_serving_settings_are_in_its_steps():
    plan = build_plan(PlanRequest(libraries=("transformers", "vllm"), scenarios=("serving",), num_requests=2))
    by_library = {s.spec.library: s.spec.serving for s in plan.steps}
    assert by_library["vllm"].prompt_ids and by_library["vllm"].length_policy == "vllm"
    assert not by_library["transformers"].prompt_ids and by_library["transformers"].length_policy == "transformers"


def test_a_library_that_cannot_run_a_step_here_is_skipped_with_its_reason():
    plan = build_plan(PlanRequest(libraries=("transformers", "mii", "llamacpp"), scenarios=("offline", "profile"),
                                  num_requests=2, lengths=(8,)))
    skips = {(s.spec.library, s.spec.scenario): s.skip for s in plan.steps}
    assert skips[("transformers", "offline")] is None and skips[("transformers", "profile")] is None
    assert "not available here" in skips[("mii", "offline")] and "CUDA" in skips[("mii", "offline")]
    assert skips[("llamacpp", "profile")] == "does not support the profile scenario (it does: offline, serving)"
    assert skips[("llamacpp", "offline")] is None


def test_a_profile_step_is_one_per_library_whatever_the_datasets():
    plan = build_plan(PlanRequest(scenarios=("profile",), datasets=("short2short", "short2long"), lengths=(32, 128),
                                  batch_size=4, decode_steps=2))
    (step,) = plan.steps
    assert step.spec.profile.lengths == (32, 128) and step.spec.profile.batch_size == 4
    assert step.spec.dataset.kind == "random" and step.spec.dataset.input_len == 128


@pytest.mark.parametrize("request_, fragment", [
    (PlanRequest(libraries=("mii",)), "library 'mii' is not available here"),
    (PlanRequest(libraries=("llamacpp",), scenarios=("profile",)), "library 'llamacpp' does not support the profile"),
    (PlanRequest(libraries=("nope",)), "unknown library 'nope'"),
    (PlanRequest(datasets=("long2long",)), "unknown dataset 'long2long'"),
    (PlanRequest(models=("no-such-model",)), "unknown model 'no-such-model'"),
    (PlanRequest(rates=(1.0, 2.0)), "--rates sweeps the serving scenario"),
    (PlanRequest(scenarios=("serving",), rates=(0.0,)), "must be positive"),
    (PlanRequest(endpoint="http://127.0.0.1:1"), "--endpoint is for the serving scenario"),
    (PlanRequest(libraries=("vllm", "transformers"), scenarios=("serving",), endpoint="http://127.0.0.1:1"),
     "--endpoint names one server"),
    (PlanRequest(libraries=("endpoint",), scenarios=("serving",)), "give its URL with --endpoint"),
    (PlanRequest(libraries=("vllm", "transformers"), baseline="mii"), "--baseline mii: pick one of"),
    (PlanRequest(libraries=("vllm", "vllm")), "libraries: vllm given twice"),
    (PlanRequest(datasets=("short-16k",), num_requests=81), "has 80 requests"),
    (PlanRequest(scenarios=("capacity",)), "the capacity scenario needs its objectives"),
    (PlanRequest(datasets=("conversations",), num_requests=4), "--dataset conversations is for serving"),
    (PlanRequest(datasets=("conversations",), scenarios=("serving",), num_requests=4, client_workers=2),
     "a conversation's turns must come from one client"),
    (request_from_table({"scenarios": "capacity", "capacity": {"slo": "ttft_p99=500", "start_rate": 1000}}),
     "capacity: the start rate 1000 must lie within"),
])
def test_a_bad_choice_is_one_user_error_before_anything_runs(request_, fragment):
    with pytest.raises(UserError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        build_plan(request_)


def test_a_port_in_use_is_refused_when_a_managed_server_would_need_it():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(UserError, match=f"port {port} on 127.0.0.1 is already in use"):
            build_plan(PlanRequest(scenarios=("serving",), port=port, num_requests=2))
        build_plan(PlanRequest(scenarios=("offline",), port=port, num_requests=2))  # no server: no matter


def test_a_plan_table_takes_toml_inf_single_values_and_parts():
    request = request_from_table({"libraries": "vllm", "rates": [1, float("inf"), "inf"], "lengths": 32,
                                  "part": [{"scenarios": ["offline"]}, {"scenarios": ["serving"], "num_requests": 3}]})
    assert request.libraries == ("vllm",) and request.rates == (1.0, None, None) and request.lengths == (32,)
    offline, serving = request.part_requests()
    assert offline.scenarios == ("offline",) and offline.libraries == ("vllm",)
    assert serving.num_requests == 3 and serving.rates == (1.0, None, None)


def test_plan_files_say_what_is_wrong_in_their_own_terms(tmp_path):
    bad = tmp_path / "bad.toml"
    for text, fragment in (("[plan]\nlibrarys = ['vllm']\n", "plan.librarys: unknown key (did you mean 'libraries'?)"),
                           ("[plan]\nnum_requests = 0\n", "plan.num_requests: must be at least 1, got 0"),
                           ("[plan\n", "not valid TOML"),
                           ("[dataset]\nname = 'x'\n", "no [plan] table"),
                           ("[plan]\n[[plan.part]]\nscenarios = ['offlne']\n",
                            "plan.part[1].scenarios: invalid choice: 'offlne'")):
        bad.write_text(text)
        with pytest.raises(UserError, match=re.escape(fragment)):
            build_plan(load_plan_file(str(bad)))
    with pytest.raises(UserError, match="one of the shipped plans: .*quick"):
        load_plan_file("no-such-plan")


def test_every_shipped_plan_builds_and_quick_skips_what_cannot_run_here():
    names = shipped_plans()
    assert {"quick", "paper", "vllm-vs-transformers", "vllm-vs-llamacpp", "vllm-vs-mii"} <= set(names)
    plans = {name: build_plan(load_plan_file(name)) for name in names if name != "vllm-vs-mii"}
    quick = plans["quick"]
    assert {s.spec.library for s in quick.steps} == {"transformers", "vllm", "llamacpp", "mii"}
    assert {s.spec.library for s in quick.steps if s.skip} == {"mii"}  # this machine has no CUDA GPU
    assert sorted({s.spec.serving.request_rate for s in quick.steps if s.spec.scenario == "serving"}) == [1.0, 4.0]
    paper = plans["paper"]
    offline = {s.spec.dataset.label for s in paper.steps if s.spec.scenario == "offline"}
    served = {s.spec.dataset.label for s in paper.steps if s.spec.scenario == "serving"}
    assert offline == {"short2short", "short2long", "long2short", "short-16k"}
    assert served == {"short2short", "short2long", "long2short"}
    assert {s.spec.profile.lengths for s in paper.steps if s.spec.scenario == "profile"} == \
        {(32, 64, 128, 256, 512, 1024, 2048)}
    assert [s.index for s in paper.steps] == list(range(1, len(paper.steps) + 1))
    assert {s.spec.dataset.label for s in paper.steps if s.skip and "context" in s.skip} == {"short-16k"}  # 8k here
    capacity = plans["capacity"]  # a capacity step per library, the first probe's rate its spec's
    assert [(s.spec.library, s.spec.scenario, s.spec.serving.request_rate, bool(s.skip)) for s in capacity.steps] == \
        [("vllm", "serving", 1.0, False), ("transformers", "serving", 1.0, False), ("llamacpp", "serving", 1.0, False),
         ("mii", "serving", 1.0, True)]
    assert all(s.search.objectives[0].label == "ttft_p99≤1000 ms" and s.search.probe_seconds == 8 for s in capacity.steps)
    assert capacity.steps[0].label == "vllm · short2short · capacity under ttft_p99≤1000 ms, tpot_p99≤200 ms"
    caching = plans["prefix-caching"]  # vLLM's prefix cache on and off, at each rate: four steps
    assert [(s.spec.prefix_caching, s.spec.serving.request_rate) for s in caching.steps] == \
        [(True, 1.0), (True, 2.0), (False, 1.0), (False, 2.0)]
    assert caching.steps[0].spec.dataset.label == "shared-prefix(4×512+64/32)"


@pytest.mark.parametrize("statuses, outcome", [
    (["finished", "skipped", "finished"], "finished"),
    (["finished", "partial"], "partial"),
    (["failed", "finished"], "partial"),
    (["failed", "skipped"], "failed"),
    (["finished", "interrupted", "not run"], "interrupted"),
])
def test_a_plans_outcome_comes_from_the_steps_that_ran(statuses, outcome):
    assert plan_status(statuses) == outcome


def test_capacity_probes_size_themselves_where_a_dataset_needs_a_count():
    from tuibench.core.capacity import CapacitySearch
    from tuibench.runner.capacity_search import probe_spec

    plan = build_plan(PlanRequest(libraries=("transformers", "vllm"), datasets=("random",), scenarios=("capacity",),
                                  capacity=CapacitySearch(slo="ttft_p99=500", probe_seconds=8)))
    step = plan.steps[0]
    assert step.spec.num_requests is None and step.search.probe_seconds == 8
    probe = probe_spec(step, 4.0)  # 8 s at 4 req/s
    assert probe.num_requests == 32 and probe.serving.request_rate == 4.0
    assert probe_spec(step, 0.5).num_requests == 16  # never fewer than 16
    with pytest.raises(UserError, match="needs --num-requests"):  # a serving step beside it still needs one
        build_plan(PlanRequest(datasets=("random",), scenarios=("serving", "capacity"),
                               capacity=CapacitySearch(slo="ttft_p99=500")))


def test_a_device_that_is_not_one_or_not_here_is_refused_before_any_run():
    from tuibench.telemetry.devices import detect_gpus

    with pytest.raises(UserError, match="--device tpu9: not a device tuibench runs on; use auto, cpu, cuda or cuda:N"):
        build_plan(PlanRequest(device="tpu9", num_requests=2))
    if not detect_gpus():  # this machine, and CI: no GPU
        for device in ("cuda", "cuda:1"):
            with pytest.raises(UserError, match=f"--device {device}: no CUDA GPU is visible here"):
                build_plan(PlanRequest(device=device, num_requests=2))
    assert build_plan(PlanRequest(device="cpu", num_requests=2)).steps[0].spec.device == "cpu"


def test_a_dataset_longer_than_the_context_skips_its_offline_steps_and_the_rest_of_the_plan_runs():
    """The paper's plan on the embedded 8k-context model: short-16k's offline steps are skipped with the reason
    (the context check refused the whole plan); its other datasets run."""
    plan = build_plan(PlanRequest(libraries=("transformers",), datasets=("short2short", "short-16k"),
                                  num_requests=4))
    skipped = {s.spec.dataset.label: s.skip for s in plan.steps if s.skip}
    assert list(skipped) == ["short-16k"]
    assert "tokens of context but smollm2-135m has 8192" in skipped["short-16k"]
    assert [s.spec.dataset.label for s in plan.runnable] == ["short2short"]

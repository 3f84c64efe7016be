"""The option schema: every option declared once (PlanRequest's fields), every one reachable as a flag and in
Setup unless it says why not, and one parser behind flags, plan files and saved settings."""

import json

import msgspec
import pytest

from tuibench.cli import build_parser
from tuibench.core.errors import UserError
from tuibench.core.options import OptionError, parse_text
from tuibench.core.plan import PlanRequest, plan_options, request_from_table

COMMANDS_WITH_PLANS = ("run", "profile", "compare", "capacity")


def _flags_of(command: str) -> set[str]:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices[command]
    return {flag for action in sub._actions for flag in action.option_strings}


def test_every_field_of_the_plan_is_an_option_with_a_flag_unless_it_says_why_not():
    flags = set().union(*(_flags_of(command) for command in COMMANDS_WITH_PLANS))
    fields = plan_options()
    keys = {f.path[0] for f in fields}
    assert keys == set(PlanRequest.__struct_fields__)  # nothing of the plan left out of the schema
    missing = [f.key for f in fields if not f.opt.no_flag and f.flag not in flags]
    assert missing == []
    assert [f.key for f in fields if f.opt.no_flag] == ["parts"]


def test_no_flag_names_two_options_and_each_command_offers_the_options_of_its_scenarios():
    every = [flag for f in plan_options() for flag in f.flags]
    assert len(every) == len(set(every))
    run, profile = _flags_of("run"), _flags_of("profile")
    assert {"--lengths", "--timer", "--decode-steps"} <= profile and not {"--lengths", "--timer"} & run
    assert {"--rates", "--request-rate", "--endpoint", "--served-model-name", "--input-len"} <= run
    assert "--scenario" not in profile and "--scenario" in run
    assert {"--slo", "--capacity-slo", "--start-rate"} <= _flags_of("capacity") and "--rates" not in _flags_of("capacity")


@pytest.mark.parametrize("argv, expected", [
    (["run", "--num-requests", "3", "--request-rate", "2,inf", "--scenario", "serving"],
     {"num_requests": 3, "rates": (2.0, None), "scenarios": ("serving",)}),
    (["run", "--library", "vllm", "--slo", "ttft=200,tpot=50"], {"libraries": ("vllm",)}),
    (["profile", "--lengths", "32,128", "--batch", "2"], {"lengths": (32, 128), "batch_size": 2,
                                                          "scenarios": ("profile",)}),
    (["capacity", "--slo", "ttft_p99=500", "--start-rate", "2"], {"scenarios": ("capacity",)}),
    (["run", "--endpoint", "http://127.0.0.1:9", "--scenario", "serving"], {"libraries": ("endpoint",)}),
])
def test_flags_make_the_request_a_plan_table_with_the_same_keys_makes(argv, expected):
    from tuibench.cli.flags import request_from_args

    args = build_parser().parse_args(argv)
    request = request_from_args(args, args.scenarios_offered if hasattr(args, "scenarios_offered")
                                else (argv[0],))
    for key, value in expected.items():
        assert getattr(request, key) == value
    table = msgspec.to_builtins(request)
    assert request_from_table(table) == request  # what a flag gives, a plan file can hold


def test_a_typed_value_and_a_table_value_are_read_by_one_parser_with_one_message():
    fields = {f.key: f for f in plan_options()}
    for key, text, message in (("num_requests", "0", "must be at least 1, got 0"),
                               ("num_requests", "ten", "expected a whole number, got 'ten'"),
                               ("port", "70000", "must be 1 to 65535, got 70000"),
                               ("dtype", "int3", "invalid choice: 'int3'"),
                               ("range_ratio", "1", "must be at least 0 and less than 1, got 1")):
        with pytest.raises(OptionError, match=message):
            parse_text(fields[key], text)
        with pytest.raises(OptionError, match=f"plan.{key}: {message}"):
            request_from_table({key: text})


@pytest.mark.parametrize("table, message", [
    ({"batchsize": 3}, "plan.batchsize: unknown key (did you mean 'batch_size'?)"),
    ({"capacity": {"slos": "ttft_p99=1"}}, "plan.capacity.slos: unknown key (did you mean 'slo'?)"),
    ({"scenarios": ["offlne"]}, "plan.scenarios: invalid choice: 'offlne'"),
])
def test_a_plan_table_names_the_key_that_is_off_and_the_nearest_valid_one(table, message):
    with pytest.raises(OptionError) as caught:
        request_from_table(table)
    assert str(caught.value).startswith(message)


def test_plan_file_keys_say_what_is_wrong_with_the_file_named(tmp_path):
    from tuibench.core.planfiles import load_plan_file

    plan = tmp_path / "typo.toml"
    plan.write_text("[plan]\nbatchsize = 4\n")
    with pytest.raises(UserError, match=r"typo.toml: plan.batchsize: unknown key \(did you mean 'batch_size'\?\)"):
        load_plan_file(str(plan))


def test_saved_settings_with_an_unknown_key_are_refused_in_one_line_with_the_nearest_key(tmp_path, monkeypatch):
    from tuibench.ui.settings import load_settings

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    path = tmp_path / "tuibench" / "app.json"
    path.parent.mkdir()
    path.write_text(json.dumps({"setup": {"dataset": "random", "input_len": 8}}))
    with pytest.raises(UserError, match=r"app.json: setup.dataset: unknown key \(did you mean 'datasets'\?\)"):
        load_settings()
    path.write_text(json.dumps({"setup": {"datasets": ["random"], "input_len": 8}}))
    assert load_settings().request().datasets == ("random",)


def test_settings_of_the_form_before_the_schema_are_read_once_as_a_plan_table(tmp_path, monkeypatch):
    from tuibench.ui.settings import load_settings

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    path = tmp_path / "tuibench" / "app.json"
    path.parent.mkdir()
    old = {"plan": "", "model": "tiny-llama", "libraries": ["vllm"], "datasets": ["random"], "scenarios": ["serving"],
           "num_requests": 16, "batch_size": 8, "rates": "1,inf", "lengths": "32,128", "input_len": 128,
           "output_len": 64, "repeat": 1, "ray_address": "", "slo": "ttft_p99=900", "max_concurrency": None}
    path.write_text(json.dumps({"theme": "tuibench-light", "setup": old}))
    settings = load_settings()
    request = settings.request()
    assert settings.theme == "tuibench-light" and request.models == ("tiny-llama",) and request.rates == (1.0, None)
    assert request.lengths == (32, 128) and request.capacity.slo == "ttft_p99=900" and request.ray_address is None

"""Architecture-only models: the shipped configs hold the published shapes, the stand-in tokenizer maps ids and text
one to one, and a random-weights model is resolved, planned and refused where it cannot run."""

import json
import random

import pytest

from tuibench.analysis.theory import ModelShape
from tuibench.core.errors import UserError
from tuibench.core.plan import PlanRequest
from tuibench.models.architectures import ARCHITECTURES, context_tokens
from tuibench.models.resolve import resolve_model
from tuibench.models.stand_in_tokenizer import write_stand_in_tokenizer
from tuibench.runner.plans import build_plan

# Parameter counts as their model cards give them: a config field off would move them.
PUBLISHED_PARAMETERS_B = {"llama-2-7b": 6.738, "llama-2-13b": 13.016, "vicuna-7b-16k": 6.738, "llama-3-8b": 8.030,
                          "mistral-7b": 7.242, "qwen2-7b": 7.616}


def config_of(alias: str) -> dict:
    return json.loads(ARCHITECTURES[alias].config_path.read_text())


@pytest.mark.parametrize("alias", sorted(PUBLISHED_PARAMETERS_B))
def test_each_shipped_config_has_its_models_published_parameter_count(alias):
    shape = ModelShape.from_config(config_of(alias))
    assert shape.parameters / 1e9 == pytest.approx(PUBLISHED_PARAMETERS_B[alias], abs=0.001)
    assert ARCHITECTURES[alias].source.startswith("https://huggingface.co/")


def test_the_papers_16k_model_reaches_16k_tokens_through_its_rope_scaling():
    assert context_tokens(config_of("vicuna-7b-16k")) == 16384
    assert context_tokens(config_of("llama-2-7b")) == 4096
    # transformers 5 renames the field; the same config read back by it still says 16k.
    assert context_tokens({"max_position_embeddings": 4096, "rope_parameters": {"rope_type": "linear", "factor": 4.0}}) \
        == 16384


@pytest.mark.parametrize("alias", ["tiny-llama", "llama-3-8b", "qwen2-7b"])
def test_the_stand_in_tokenizer_turns_ids_to_text_and_back_exactly(tmp_path, alias):
    from transformers import AutoTokenizer

    config = config_of(alias)
    write_stand_in_tokenizer(config, tmp_path)
    tokenizer = AutoTokenizer.from_pretrained(tmp_path)
    assert len(tokenizer) == config["vocab_size"]
    assert tokenizer.eos_token_id == config["eos_token_id"]
    special = set(tokenizer.all_special_ids)
    assert config["eos_token_id"] in special and config["bos_token_id"] in special
    plain = [i for i in range(config["vocab_size"]) if i not in special]
    ids = random.Random(0).choices(plain, k=300)
    text = tokenizer.decode(ids)
    assert tokenizer(text, add_special_tokens=False)["input_ids"] == ids  # n ids are n words, and back


def test_an_architecture_alias_resolves_to_random_weights_in_a_folder_named_by_its_config(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    ref = resolve_model("llama-2-7b")
    assert ref.random_weights and ref.kind == "architecture" and ref.needs_conversion
    assert ref.path.startswith(str(tmp_path / "cache")) and "llama-2-7b-" in ref.path


def test_a_users_bare_config_with_random_weights_gets_a_stand_in_tokenizer_and_one_with_a_tokenizer_keeps_it(tmp_path,
                                                                                                           monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "config.json").write_text(json.dumps(config_of("tiny-llama")))
    with pytest.raises(UserError, match="no weights.*--random-weights"):
        resolve_model(str(bare))
    ref = resolve_model(str(bare), random_weights=True)
    assert ref.kind == "architecture" and ref.config_path == str(bare / "config.json")
    write_stand_in_tokenizer(config_of("tiny-llama"), bare)
    ref = resolve_model(str(bare), random_weights=True)
    assert ref.kind == "local" and ref.random_weights and ref.path == str(bare.resolve())


def test_a_plan_on_an_architecture_marks_every_spec_and_skips_the_libraries_that_need_weights():
    plan = build_plan(PlanRequest(models=("tiny-llama",), libraries=("transformers", "llamacpp"),
                                  datasets=("random",), scenarios=("offline", "serving"), num_requests=2))
    assert all(step.spec.random_weights for step in plan.steps)
    skipped = {(s.spec.library, s.spec.scenario): s.skip for s in plan.steps if s.skip}
    assert "random weights" in skipped[("llamacpp", "offline")]
    assert "random weights" in skipped[("transformers", "serving")]  # `transformers serve` reads weights
    assert ("transformers", "offline") not in skipped
    assert plan.steps[0].spec.model_label == "tiny-llama (random weights)"


def test_random_weights_on_the_embedded_model_keep_its_own_tokenizer():
    plan = build_plan(PlanRequest(random_weights=True, datasets=("random",), num_requests=2))
    assert plan.steps[0].spec.random_weights
    assert plan.steps[0].spec.model == "smollm2-135m"


def test_profile_lengths_are_held_to_the_same_context_as_runs_rope_scaling_included():
    from tuibench.scenarios.profile import check_profile_lengths
    from tuibench.core.spec import ProfileParams

    long = ProfileParams(lengths=(8192,), decode_steps=4)
    check_profile_lengths(long, config_of("vicuna-7b-16k"), "vicuna-7b-16k")  # 16k through linear RoPE ×4
    with pytest.raises(UserError, match="need 8196 positions but llama-2-7b has 4096"):
        check_profile_lengths(long, config_of("llama-2-7b"), "llama-2-7b")

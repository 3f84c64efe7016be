"""Module timing with CUDA events on a real GPU. Runs only where torch sees a CUDA GPU (none on CI)."""

import pytest

torch = pytest.importorskip("torch")
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU; none visible")]


def test_cuda_profile_times_modules_with_events_and_finds_the_gpu_roofline(gpu_model):
    from transformers import AutoTokenizer

    from tuibench.backends.hf_transformers import load_model
    from tuibench.core.prompts import plain_vocab_ids
    from tuibench.profiling.cpu_roofline import roofline_for
    from tuibench.profiling.hf_profile import HfPasses
    from tuibench.scenarios.profile import measure

    path, random_weights = gpu_model
    _, model = load_model(path, "cuda", "auto", "sdpa", random_weights=random_weights)
    roofline = roofline_for(torch.cuda.get_device_name(), "bfloat16", 1)
    profiles = []
    passes = HfPasses(model, batch=8, decode_steps=4, token_ids=plain_vocab_ids(AutoTokenizer.from_pretrained(path)),
                      seed=0, roofline=roofline)
    measure(passes, lengths=[128, 512], repeats=2, emit=profiles.append)
    assert [p.phase for p in profiles] == ["prefill", "decode"] * 2
    for profile in profiles:
        assert profile.step_ms > 0 and 0.5 < profile.coverage <= 1.0
        leaves = [n for n in profile.root.walk() if n.is_leaf and n.kind != "self"]
        assert all(n.time_ms >= 0 for n in leaves)

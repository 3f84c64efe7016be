"""The CUDA path of the transformers backend. Runs only where torch sees a CUDA GPU (none on CI)."""

import pytest

torch = pytest.importorskip("torch")
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU; none visible")]


def test_cuda_static_batch_holds_targets_in_bfloat16(gpu_model):
    from tuibench.backends.hf_transformers import StaticBatchEngine, load_model
    from tuibench.core.prompts import Prompt

    path, random_weights = gpu_model
    tokenizer, model = load_model(path, "cuda", "auto", random_weights=random_weights)
    assert model.device.type == "cuda" and model.dtype == torch.bfloat16
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    engine = StaticBatchEngine(model, pad_token_id=pad, eos_token_id=tokenizer.eos_token_id)
    prompts = [Prompt(i, list(range(100, 100 + 16 * (i + 1))), 8 * (i + 1)) for i in range(4)]
    result = engine.generate(prompts)
    assert result.output_tokens == [8, 16, 24, 32]
    assert len(result.step_s) == 32
    assert all(b >= a for a, b in zip(result.step_s, result.step_s[1:]))


def test_cuda_builds_the_papers_llama_2_7b_with_random_weights_on_the_gpu_and_decodes():
    import time

    from tuibench.backends.hf_transformers import StaticBatchEngine, load_model
    from tuibench.core.prompts import Prompt
    from tuibench.models.convert import ensure_converted
    from tuibench.models.resolve import resolve_model

    started = time.perf_counter()
    tokenizer, model = load_model(ensure_converted(resolve_model("llama-2-7b"), print), "cuda", "bfloat16",
                                  random_weights=True)
    built_s = time.perf_counter() - started
    assert model.device.type == "cuda" and model.dtype == torch.bfloat16
    assert sum(p.numel() for p in model.parameters()) == 6_738_415_616
    assert built_s < 60, f"building on the device took {built_s:.0f} s"
    engine = StaticBatchEngine(model, pad_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id)
    result = engine.generate([Prompt(i, list(range(100, 164)), 8) for i in range(4)])
    assert result.output_tokens == [8] * 4

"""The CUDA path of the transformers backend. Runs only where torch sees a CUDA GPU (none on CI)."""

import pytest

torch = pytest.importorskip("torch")
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU; none visible")]


def test_cuda_static_batch_holds_targets_in_bfloat16(model_path):
    from tuibench.backends.hf_transformers import StaticBatchEngine, load_model
    from tuibench.backends.prompts import Prompt

    tokenizer, model = load_model(model_path, "cuda", "auto")
    assert model.device.type == "cuda" and model.dtype == torch.bfloat16
    engine = StaticBatchEngine(model, pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
    prompts = [Prompt(i, list(range(100, 100 + 16 * (i + 1))), 8 * (i + 1)) for i in range(4)]
    result = engine.generate(prompts)
    assert result.output_tokens == [8, 16, 24, 32]
    assert len(result.step_s) == 32
    assert all(b >= a for a, b in zip(result.step_s, result.step_s[1:]))

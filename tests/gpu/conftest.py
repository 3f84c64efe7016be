"""The model the GPU tests load: SmolLM2 where its GGUF is installed (make install), else the shipped toy LLaMA with
random weights: a lent GPU machine carries no model, and the CUDA paths time the same either way."""

import pytest


@pytest.fixture(scope="session")
def gpu_model():
    """(folder, random_weights)."""
    from tuibench.core.errors import UserError
    from tuibench.models.convert import ensure_converted
    from tuibench.models.resolve import resolve_model

    try:
        ref = resolve_model("smollm2-135m")
    except UserError:
        ref = resolve_model("tiny-llama")
    return ensure_converted(ref, print), ref.random_weights

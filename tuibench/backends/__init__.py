"""The registry of libraries. Backend modules are light to import; each imports its library inside."""

import importlib

from tuibench.backends.engine import Availability, Backend
from tuibench.core.errors import UserError

_REGISTRY = {
    "transformers": "tuibench.backends.hf_transformers:TransformersBackend",
    "vllm": "tuibench.backends.vllm_backend:VllmBackend",
    "llamacpp": "tuibench.backends.llamacpp_backend:LlamaCppBackend",
    "mii": "tuibench.backends.mii_backend:MiiBackend",
    "sglang": "tuibench.backends.sglang_backend:SglangBackend",
    "trtllm": "tuibench.backends.trtllm_backend:TrtllmBackend",
    "endpoint": "tuibench.backends.endpoint:EndpointBackend",
}
# Deterministic, for tests: scripted step times, known tokens. Runnable by name, never offered to users (Backend.listed
# is False, and an unknown name's message leaves them out).
_FOR_TESTS = {
    "fake": "tuibench.backends.fake:FakeBackend",
    "fake-half-speed": "tuibench.backends.fake:FakeHalfSpeedBackend",  # the fake, each step twice its script
}


def backend_names() -> list[str]:
    return [*_REGISTRY, *_FOR_TESTS]


def backend_class(name: str) -> type[Backend]:
    found = _REGISTRY.get(name) or _FOR_TESTS.get(name)
    if found is None:
        raise UserError(f"unknown library '{name}': choose one of {', '.join(_REGISTRY)}")
    module, _, attr = found.partition(":")
    return getattr(importlib.import_module(module), attr)


def cannot_run(backend: type[Backend], scenario: str, random_weights: bool = False) -> str | None:
    """Why `backend` cannot run `scenario` here (to follow "library 'NAME' "), or None when it can."""
    if scenario not in backend.scenarios:
        return f"does not support the {scenario} scenario (it does: {', '.join(sorted(backend.scenarios))})"
    if random_weights and scenario not in backend.random_weight_scenarios:
        able = ", ".join(sorted(backend.random_weight_scenarios)) or "none"
        return (f"cannot build a model with random weights for the {scenario} scenario (its scenarios that can: "
                f"{able}); random weights run on transformers (offline, profile) and vllm")
    availability = backend.availability()
    return None if availability.ok else f"is not available here: {availability.reason}"


def require_backend(name: str, scenario: str, random_weights: bool = False) -> type[Backend]:
    """The backend for `name`, or a UserError saying why it cannot run `scenario` here."""
    backend = backend_class(name)
    if (why := cannot_run(backend, scenario, random_weights)) is not None:
        raise UserError(f"library '{name}' {why}")
    return backend


__all__ = ["Availability", "Backend", "backend_class", "backend_names", "cannot_run", "require_backend"]

"""Any OpenAI-compatible server someone else runs (SGLang, TGI, llama.cpp, TensorRT-LLM, ...): --endpoint URL."""

from tuibench.backends.engine import Availability, Backend


class EndpointBackend(Backend):
    name = "endpoint"
    scenarios = frozenset({"serving"})
    # Unknown servers get text prompts; ignore_eos/min_tokens are sent unless --length-policy none.
    serving_overrides = {}

    @classmethod
    def availability(cls) -> Availability:
        return Availability.of_modules("aiohttp")

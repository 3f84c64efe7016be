"""Any OpenAI-compatible server someone else runs (SGLang, TGI, llama.cpp, TensorRT-LLM, ...): --endpoint URL."""

import importlib.util

from tuibench.backends.base import Availability, Backend


class EndpointBackend(Backend):
    name = "endpoint"
    scenarios = frozenset({"serving"})
    requires = "a running OpenAI-compatible server, given with --endpoint URL"
    # Unknown servers get text prompts; ignore_eos/min_tokens are sent unless --length-policy none.
    serving_overrides = {}

    @classmethod
    def availability(cls) -> Availability:
        if importlib.util.find_spec("aiohttp") is None:
            return Availability(False, "aiohttp not installed: run `make install`")
        return Availability(True)

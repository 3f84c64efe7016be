"""The fake engine: a deterministic library for tests. Scripted step times, known tokens, no torch, no weights.

Its script is two step times, read from the environment of the process that runs it (a test sets them per run; the
run's child and the managed server inherit them):

    TUIBENCH_FAKE_PREFILL_MS  a prefill step, i.e. a request's TTFT (default 20)
    TUIBENCH_FAKE_DECODE_MS   a decode step, i.e. each gap between two tokens, its ITL (default 5)

Offline it takes static batches as transformers does: a batch's prefill step, then one decode step per token after
the first until its longest row is done, whatever the batch's size or the prompts' lengths. It sleeps that long, so
a run takes real wall time (a cancel has something to cancel), and reports the script exactly: every request's TTFT
is the prefill time, its ITL the decode time, its E2EL = TTFT + (output tokens - 1) x ITL; each batch's prefill
the prefill time and its decode (longest output - 1) x the decode time. Token k of request i is `token_id(i, k)`,
never a special one (so EOS ends nothing: honor_eos changes no length). Prompts are counted as handed.

Serving goes through `tuibench mock-server`, launched and stopped by the run service like vLLM's server, with the
script as its TTFT and ITL. Profiling sends scripted module times: each step's time spread evenly over the model's
leaf modules (named as transformers names them), its wall the step time exactly, no roofline.

A second library, `fake-half-speed`, is the same engine at half its speed: every step twice the script (a prefill
step 2 x TUIBENCH_FAKE_PREFILL_MS, a decode step 2 x TUIBENCH_FAKE_DECODE_MS), offline, served and profiled. A plan of
both is a comparison whose answer is known: the half-speed side's throughput is exactly half the fake's, its
latencies exactly twice.

Neither is offered where users pick a library (Backend.listed is False), unless TUIBENCH_FAKE_LISTED=1 is in the
environment when this module is imported: then both are listed, so a test can tick them in the app's Setup when the
app runs in a real terminal (tmux) and its run service, a process of its own, lists the libraries.

It reads only the model's config.json (its folder made ready in a separate interpreter when it is not yet, as the
run service does before a server starts), and its tokenizer is a word-level stand-in over the config's vocabulary.
"""

import json
import os
import sys
import time
import zlib
from collections.abc import Sequence
from pathlib import Path

import msgspec

from tuibench.backends.engine import Availability, Backend, Generated, Split, Timed
from tuibench.core.context import Context
from tuibench.core.errors import UserError
from tuibench.core.prompts import Prompt, plain_vocab_ids
from tuibench.servers.managed import ServerCommand

PREFILL_ENV = "TUIBENCH_FAKE_PREFILL_MS"
DECODE_ENV = "TUIBENCH_FAKE_DECODE_MS"
LISTED_ENV = "TUIBENCH_FAKE_LISTED"


class Script(msgspec.Struct, frozen=True, kw_only=True):
    prefill_ms: float = 20.0
    decode_ms: float = 5.0

    @classmethod
    def from_environment(cls) -> "Script":
        values = {}
        for field, variable in (("prefill_ms", PREFILL_ENV), ("decode_ms", DECODE_ENV)):
            text = os.environ.get(variable)
            if text is None:
                continue
            try:
                values[field] = float(text)
            except ValueError:
                values[field] = -1.0
            if not 0.0 <= values[field] < float("inf"):
                raise UserError(f"{variable}={text}: give the fake engine's step time in milliseconds, 0 or more")
        return cls(**values)

    def slowed(self, factor: float) -> "Script":
        """Every step `factor` times as long (exact for factor 2: a doubling of a binary float)."""
        return Script(prefill_ms=self.prefill_ms * factor, decode_ms=self.decode_ms * factor)


def token_id(request: int, k: int, plain: Sequence[int]) -> int:
    """Token k (from 0) of request i: a fixed function of both, drawn from the plain ids (no special token)."""
    return plain[(request * 7919 + k * 104729 + 1) % len(plain)]


class WordTokenizer:
    """A word-level stand-in over a config's vocabulary: id i is the word `w<i>` (models/stand_in_tokenizer.py's
    scheme, without the tokenizers library); any other word maps to a fixed id by its checksum."""

    def __init__(self, config: dict):
        self.vocab_size = int(config.get("vocab_size") or 32000)
        specials = []
        for key in ("bos_token_id", "eos_token_id", "pad_token_id"):
            value = config.get(key)
            specials += value if isinstance(value, list) else [] if value is None else [value]
        self.all_special_ids = sorted({int(i) for i in specials if 0 <= int(i) < self.vocab_size})
        eos = config.get("eos_token_id")
        self.eos_token_id = eos[0] if isinstance(eos, list) and eos else eos
        self.pad_token_id = config.get("pad_token_id")
        self.added_tokens_decoder: dict = {}

    def __len__(self) -> int:
        return self.vocab_size

    def _id(self, word: str) -> int:
        if word.startswith("w") and word[1:].isdigit() and int(word[1:]) < self.vocab_size:
            return int(word[1:])
        return zlib.crc32(word.encode()) % self.vocab_size

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        return [self._id(word) for word in text.split()]

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = False) -> str:
        skip = set(self.all_special_ids) if skip_special_tokens else set()
        return " ".join(f"w{i}" for i in ids if i not in skip)

    def __call__(self, text: str) -> dict:
        return {"input_ids": self.encode(text)}


class FakeBackend(Backend):
    name = "fake"
    scenarios = frozenset({"offline", "serving", "profile"})
    random_weight_scenarios = frozenset({"offline", "serving", "profile"})  # it never reads weights
    listed = os.environ.get(LISTED_ENV) == "1"  # for tests: not offered where users pick a library, unless asked
    slowdown = 1.0  # each step this many times the script (fake-half-speed: 2)
    batching = "static"
    # The mock server counts a prompt of ids as exactly those, and holds each output to max_tokens/min_tokens.
    serving_overrides = {"prompt_ids": True, "length_policy": "vllm"}

    @classmethod
    def availability(cls) -> Availability:
        return Availability(True)

    @classmethod
    def script(cls) -> Script:
        """The environment's script, slowed as this library is."""
        return Script.from_environment().slowed(cls.slowdown)

    @classmethod
    def server_command(cls, model_path: str, port: int, spec) -> ServerCommand:
        script = cls.script()
        return ServerCommand(
            name=f"{cls.name} (mock server)",
            argv=[sys.executable, "-m", "tuibench", "mock-server", "--host", "127.0.0.1", "--port", str(port),
                  "--ttft-ms", repr(script.prefill_ms), "--itl-ms", repr(script.decode_ms), "--model", model_path],
            port=port,
            startup_timeout_s=60.0,
        )

    _config: dict | None = None
    _plain: list[int] | None = None

    def model_config(self, ctx: Context) -> dict:
        if self._config is None:
            from tuibench.models.convert import convert_in_subprocess

            # In another interpreter: this process never imports torch (a no-op once the folder exists).
            path = Path(convert_in_subprocess(ctx.model)) / "config.json"
            self._config = json.loads(path.read_text())
        return self._config

    def tokenizer(self, ctx: Context) -> WordTokenizer:
        if self._tokenizer is None:
            self._tokenizer = WordTokenizer(self.model_config(ctx))
        return self._tokenizer

    def load(self, ctx: Context, prompts: Sequence[Prompt]) -> str:
        self._script = self.script()
        self._plain = plain_vocab_ids(self.tokenizer(ctx))
        return (f"{self.name} engine: prefill {self._script.prefill_ms:g} ms, decode {self._script.decode_ms:g} ms per step "
                "(scripted; nothing computed)")

    def generate(self, prompts: Sequence[Prompt], *, honor_eos: bool = False,
                 max_output_tokens: int | None = None) -> Generated:
        script = self._script
        counts = [min(p.output_tokens, max_output_tokens or p.output_tokens) for p in prompts]
        steps = max(counts)
        start = time.perf_counter()
        _sleep_until(start + (script.prefill_ms + (steps - 1) * script.decode_ms) / 1000.0)
        requests = [Timed(index=p.index, output_tokens=n, counted_input_tokens=len(p.ids), ttft_ms=script.prefill_ms,
                          e2el_ms=script.prefill_ms + (n - 1) * script.decode_ms, itl_ms=[script.decode_ms] * (n - 1),
                          token_ids=[token_id(p.index, k, self._plain) for k in range(n)])
                    for p, n in zip(prompts, counts, strict=True)]
        return Generated(start_s=start, requests=requests, split=Split(
            prefill_ms=script.prefill_ms, decode_ms=(steps - 1) * script.decode_ms, decode_steps=steps - 1))

    def profiler(self, ctx: Context):
        from tuibench.backends.engine import dtype_name
        from tuibench.profiling.fake_passes import FakePasses

        params, script = ctx.spec.profile, self.script()
        return FakePasses(self.model_config(ctx), prefill_ms=script.prefill_ms, decode_ms=script.decode_ms,
                          batch=params.batch_size, decode_steps=params.decode_steps,
                          dtype=dtype_name(ctx.spec.dtype, on_gpu=False))


class FakeHalfSpeedBackend(FakeBackend):
    """The fake engine at half speed: each step twice the script, so beside `fake` the answer is known."""

    name = "fake-half-speed"
    slowdown = 2.0


def _sleep_until(deadline: float) -> None:
    """Sleeps to a perf_counter deadline (a stop's SIGTERM still ends the sleep at once)."""
    while (remaining := deadline - time.perf_counter()) > 0:
        time.sleep(remaining)

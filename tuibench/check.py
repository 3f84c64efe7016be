"""`tuibench check`: the same prompts, greedy, through every available library; how far their tokens agree.

Each library runs in its own process (`python -m tuibench.check_worker`), with pinned threads, and
returns the token ids it generated. Prompts are tokenized once per worker with the model's HF tokenizer,
so every library starts from the same ids. Agreement between two libraries is, per prompt, the number
of leading generated tokens that are equal (after the first difference, greedy decoding follows another
path, so later matches mean nothing); a library that falls short of every other while those agree
fully among themselves is flagged.
"""

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from itertools import combinations

import msgspec

from tuibench.core.errors import UserError

# SmolLM2-Instruct's chat format; any model reads them as plain text.
PROMPTS = (
    "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n",
    "<|im_start|>user\nName three primary colours.<|im_end|>\n<|im_start|>assistant\n",
    "<|im_start|>user\nWrite one sentence about the sea.<|im_end|>\n<|im_start|>assistant\n",
    "The quick brown fox jumps over the lazy dog. The quick brown fox",
)
RESULT_MARK = "TUIBENCH_CHECK_RESULT "


def checkable_libraries(named: Sequence[str] | None) -> tuple[list[str], list[tuple[str, str]]]:
    """(the libraries a check runs, those left out with why). Named ones must all run here (UserError naming the
    first that cannot); none named: every listed library with an engine of its own that is available here."""
    from tuibench.backends import backend_class, backend_names

    if named is not None:
        for name in named:
            availability = backend_class(name).availability()
            if not availability.ok:
                raise UserError(f"library '{name}' is not available here: {availability.reason}")
        return list(named), []
    runnable, skipped = [], []
    for name in backend_names():
        backend = backend_class(name)
        if name == "endpoint" or not getattr(backend, "listed", True):
            continue  # a user's server has no engine here to check; the fake engine is the tests'
        availability = backend.availability()
        if availability.ok:
            runnable.append(name)
        else:
            skipped.append((name, availability.reason))
    return runnable, skipped


class Job(msgspec.Struct, frozen=True, kw_only=True):
    library: str
    model: str
    prompts: list[str]
    tokens: int
    threads: int
    device: str = "auto"
    dtype: str = "auto"


class LibraryResult(msgspec.Struct, frozen=True, kw_only=True):
    library: str
    ids: list[list[int]] = []  # generated token ids per prompt
    texts: list[str] = []
    seconds: float = 0.0
    error: str | None = None


def run_library(job: Job, timeout_s: float = 900.0) -> LibraryResult:
    """Runs one library's worker; a failure is returned, not raised: the other libraries still count."""
    env = os.environ | {var: str(job.threads) for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")} | {
        "HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error", "TOKENIZERS_PARALLELISM": "false"}
    try:
        done = subprocess.run([sys.executable, "-m", "tuibench.check_worker"], input=msgspec.json.encode(job),
                              capture_output=True, timeout=timeout_s, env=env)
    except subprocess.TimeoutExpired:
        return LibraryResult(library=job.library, error=f"no answer within {timeout_s:.0f} s")
    for line in reversed(done.stdout.decode(errors="replace").splitlines()):
        if line.startswith(RESULT_MARK):
            return msgspec.json.decode(line[len(RESULT_MARK):], type=LibraryResult)
    tail = done.stderr.decode(errors="replace").strip().splitlines()
    return LibraryResult(library=job.library, error=tail[-1] if tail else f"worker exited with {done.returncode}")


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    count = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        count += 1
    return count


class PairAgreement(msgspec.Struct, frozen=True):
    first: str
    second: str
    per_prompt: list[int]  # leading tokens that agree, per prompt

    @property
    def mean(self) -> float:
        return sum(self.per_prompt) / len(self.per_prompt) if self.per_prompt else 0.0


def agreements(results: Sequence[LibraryResult]) -> list[PairAgreement]:
    ok = [r for r in results if r.error is None]
    return [PairAgreement(a.library, b.library, [common_prefix(x, y) for x, y in zip(a.ids, b.ids, strict=True)])
            for a, b in combinations(ok, 2)]


def outliers(pairs: Sequence[PairAgreement], tokens: int) -> list[str]:
    """Libraries that disagree with every other library while at least two others agree on every token."""
    libraries = sorted({p.first for p in pairs} | {p.second for p in pairs})
    flagged = []
    for library in libraries:
        mine = [p for p in pairs if library in (p.first, p.second)]
        others = [p for p in pairs if library not in (p.first, p.second)]
        consensus = any(min(p.per_prompt) == tokens for p in others)
        if consensus and all(min(p.per_prompt) < tokens for p in mine):
            flagged.append(library)
    return flagged


def jobs_for(libraries: Sequence[str], model: str, tokens: int, threads: int) -> list[Job]:
    if tokens < 1:
        raise UserError(f"--tokens must be at least 1, got {tokens}")
    return [Job(library=name, model=model, prompts=list(PROMPTS), tokens=tokens, threads=threads) for name in libraries]


def result_line(result: LibraryResult) -> str:
    return RESULT_MARK + json.dumps(msgspec.to_builtins(result))

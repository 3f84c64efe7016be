"""Prompts a server counts at exactly the planned length.

Token ids go as they are where the server takes them (vLLM's completions API does; one short request before
the run finds out). Text is otherwise fitted to a tokenizer: decoded, counted, cut or lengthened by the
difference, counted again. The count is the server's own where it has a tokenize route (vLLM's `/tokenize`,
llama-cpp-python's `/extras/tokenize/count`), else the local tokenizer's. Random ids decoded to text do not
re-tokenize to the same length: sent unfitted, 128 planned tokens came to 134 on vLLM.
"""

from collections.abc import Awaitable, Callable, Sequence

import msgspec

from tuibench.loadgen.client import Endpoint, Prompted

Count = Callable[[str], Awaitable[int]]
FIT_TRIES = 8  # each try moves by the whole difference: 1 to 3 tries is usual


class PreparedPrompts(msgspec.Struct, frozen=True, kw_only=True):
    prompts: list[Prompted]
    mode: str  # "token ids" | "text fitted to <whose> tokenizer"
    unfitted: int  # prompts whose text no try brought to the planned length


async def _post_json(session, url: str, body: dict, headers: dict) -> dict | None:
    import aiohttp

    try:
        async with session.post(url, json=body, headers=headers) as response:
            if response.status != 200:
                return None
            return await response.json(content_type=None)
    except (aiohttp.ClientError, ValueError):
        return None


async def takes_token_ids(session, endpoint: Endpoint, probe_ids: Sequence[int], headers: dict) -> bool:
    """Whether the server reads a prompt of token ids as those tokens: it answers, and counts exactly them."""
    if endpoint.api != "completions" or not probe_ids:
        return False
    body = {"model": endpoint.model, "prompt": list(probe_ids), "max_tokens": 1, "temperature": 0.0}
    answer = await _post_json(session, endpoint.url, body, headers)
    usage = (answer or {}).get("usage") or {}
    return usage.get("prompt_tokens") == len(probe_ids)


async def server_count(session, endpoint: Endpoint, headers: dict) -> tuple[str, Count] | None:
    """The server's own token count of a text, through whichever tokenize route it has; None without one."""
    base = endpoint.base_url.rstrip("/")
    routes = (
        ("vLLM", f"{base}/tokenize", lambda text: {"model": endpoint.model, "prompt": text}),
        ("llama.cpp", f"{base}/extras/tokenize/count", lambda text: {"input": text}),
    )
    for name, url, body in routes:
        answer = await _post_json(session, url, body("tokenize"), headers)
        if isinstance((answer or {}).get("count"), int):
            async def count(text: str, url=url, body=body) -> int:
                answer = await _post_json(session, url, body(text), headers)
                if not isinstance((answer or {}).get("count"), int):
                    raise RuntimeError(f"{url} stopped answering with a token count")
                return answer["count"]

            return f"the {name} server's", count
    return None


def local_count(tokenizer) -> Count:
    async def count(text: str) -> int:
        return len(tokenizer(text)["input_ids"])  # with the special tokens a server adds to a text prompt

    return count


async def fit_text(ids: Sequence[int], target: int, tokenizer, count: Count) -> tuple[str, int]:
    """Text that `count` puts at `target` tokens, made from `ids`; the closest try, with its count, if none hits."""
    filler = list(ids) or [tokenizer.encode("a", add_special_tokens=False)[0]]
    ids = list(ids)
    best: tuple[str, int] | None = None
    for _ in range(FIT_TRIES):
        text = tokenizer.decode(ids, skip_special_tokens=True)
        counted = await count(text)
        if best is None or abs(counted - target) < abs(best[1] - target):
            best = (text, counted)
        if counted == target:
            break
        # Work from the text's own tokens, so a cut never splits what the decode merged.
        ids = tokenizer.encode(text, add_special_tokens=False)
        difference = target - counted
        if difference < 0:
            ids = ids[:max(1, len(ids) + difference)]
        else:
            ids += (filler * (difference // len(filler) + 1))[:difference]
    return best


Planned = tuple[int, list[int], int]  # a prompt as planned: (index, token ids, output tokens)


async def prepare(session, endpoint: Endpoint, measured: Sequence[Planned], warmups: Sequence[Planned], tokenizer,
                  prompt_ids: bool | None, headers: dict) -> tuple[PreparedPrompts, list[Prompted]]:
    """The measured prompts and the warm-ups, ready to send, in one form. `prompt_ids` None: ids if the server
    takes them, asked with the first 8 tokens of a warm-up (never a measured prompt's whole prefix)."""
    if prompt_ids is None:
        probe = (warmups or measured)[0][1][:8] if (warmups or measured) else []
        prompt_ids = await takes_token_ids(session, endpoint, probe, headers)
    if prompt_ids:
        def as_ids(planned: Sequence[Planned]) -> list[Prompted]:
            return [Prompted(i, ids, len(ids), out) for i, ids, out in planned]

        return PreparedPrompts(prompts=as_ids(measured), mode="token ids", unfitted=0), as_ids(warmups)
    if endpoint.api == "chat":
        # The chat template wraps the text in the server's own tokens: the text is fitted, the drift shows the rest.
        whose, count = "the local", local_count(tokenizer)
    else:
        whose, count = await server_count(session, endpoint, headers) or ("the local", local_count(tokenizer))

    async def as_text(planned: Sequence[Planned]) -> list[tuple[Prompted, bool]]:
        fitted = []
        for index, ids, output_tokens in planned:
            text, counted = await fit_text(ids, len(ids), tokenizer, count)
            server_counted = counted if whose != "the local" else None
            fitted.append((Prompted(index, text, len(ids), output_tokens, counted_input_tokens=server_counted),
                           counted == len(ids)))
        return fitted

    prompts = await as_text(measured)
    return (PreparedPrompts(prompts=[p for p, _ in prompts], mode=f"text fitted to {whose} tokenizer",
                            unfitted=sum(not hit for _, hit in prompts)),
            [p for p, _ in await as_text(warmups)])

"""The four things "ITL" means, each computed from a request's stream as it came (RequestRecord: the gap before
each chunk, and the tokens each chunk carried). On a stream of one token a chunk they agree; they part when a
chunk carries several tokens (a server's stream interval, speculative decoding accepting several at once):

- per chunk (vLLM's bench client): the gap before each chunk, one value a chunk: RequestRecord.itl_ms;
- per token (inference-perf): one value for every token after the first, the gap before its chunk for the
  chunk's first token and 0 for the others that came with it; its mean over a request is the request's TPOT;
- per accepted token (SGLang's bench_serving): the gap before each chunk spread evenly over the tokens it
  carried, one value a token;
- per request (AIPerf, GuideLLM): the mean gap of a request, which is its TPOT (RequestRecord.tpot_ms).
"""

from tuibench.core.records import RequestRecord


def chunk_sizes(record: RequestRecord) -> list[int] | None:
    """Tokens each chunk carried; None where the server did not say and its chunks were fewer than its tokens
    (llama.cpp's, holding text back: which chunk carried the extra tokens is not known)."""
    chunks = len(record.itl_ms) + 1
    if record.chunk_tokens:
        return record.chunk_tokens
    return [1] * chunks if record.output_tokens == chunks else None


def itl_per_token_ms(record: RequestRecord) -> list[float] | None:
    """inference-perf's: one value for each token after the first; 0 inside a chunk."""
    sizes = chunk_sizes(record)
    if not record.ok or sizes is None:
        return None
    if not record.chunk_tokens:
        return record.itl_ms  # one token a chunk: the gaps themselves (no copy: a run folds every request's)
    gaps = [0.0] * (sizes[0] - 1)
    for gap, size in zip(record.itl_ms, sizes[1:]):
        gaps += [gap] + [0.0] * (size - 1)
    return gaps


def itl_per_accepted_token_ms(record: RequestRecord) -> list[float] | None:
    """SGLang's: the gap before each chunk over the tokens it carried, once for each of them."""
    sizes = chunk_sizes(record)
    if not record.ok or sizes is None:
        return None
    if not record.chunk_tokens:
        return record.itl_ms
    return [gap / size for gap, size in zip(record.itl_ms, sizes[1:]) for _ in range(size)]

"""The four ITL conventions on one stream, pinned exactly (core/itl.py): a request of 8 tokens in chunks of 1, 4,
1 and 2, the gaps before the last three 8, 16 and 32 ms (powers of two: every value below is exact)."""

from tuibench.core.aggregate import compute_metrics
from tuibench.core.itl import chunk_sizes, itl_per_accepted_token_ms, itl_per_token_ms
from tuibench.core.records import RequestRecord


def _request(itl_ms=(8.0, 16.0, 32.0), chunk_tokens=(1, 4, 1, 2), output_tokens=8, **extra) -> RequestRecord:
    ttft_ms = 64.0
    return RequestRecord(index=0, input_tokens=4, output_tokens=output_tokens, target_output_tokens=output_tokens,
                         start_s=1.0, ttft_ms=ttft_ms, e2el_ms=ttft_ms + sum(itl_ms), itl_ms=list(itl_ms),
                         chunk_tokens=list(chunk_tokens), **extra)


def test_the_four_conventions_part_on_chunks_of_several_tokens():
    record = _request()
    assert record.itl_ms == [8.0, 16.0, 32.0]  # vLLM's: a value a chunk
    # inference-perf's: a value a token after the first, 0 inside a chunk; its mean is the request's TPOT.
    assert itl_per_token_ms(record) == [8.0, 0.0, 0.0, 0.0, 16.0, 32.0, 0.0]
    assert sum(itl_per_token_ms(record)) / 7 == record.tpot_ms == 56.0 / 7
    # SGLang's: each chunk's gap over its tokens, once for each.
    assert itl_per_accepted_token_ms(record) == [2.0, 2.0, 2.0, 2.0, 16.0, 16.0, 16.0]
    # AIPerf's and GuideLLM's: the request's mean, its TPOT (in the catalogue, TPOT says so).


def test_a_first_chunk_of_several_tokens_gives_zeros_per_token_and_nothing_per_accepted_token():
    record = _request(itl_ms=(16.0,), chunk_tokens=(3, 1), output_tokens=4)
    assert itl_per_token_ms(record) == [0.0, 0.0, 16.0]
    assert itl_per_accepted_token_ms(record) == [16.0]


def test_one_token_a_chunk_makes_them_agree_and_an_unsaid_split_is_unknown():
    one_each = _request(chunk_tokens=(), output_tokens=4)
    assert chunk_sizes(one_each) == [1, 1, 1, 1]
    assert itl_per_token_ms(one_each) == itl_per_accepted_token_ms(one_each) == one_each.itl_ms
    unsaid = _request(chunk_tokens=(), output_tokens=8)  # 4 chunks, 8 tokens, which carried what not said
    assert chunk_sizes(unsaid) is None and itl_per_token_ms(unsaid) is None


def test_a_run_reports_the_per_token_conventions_only_where_a_chunk_carried_several():
    chunked = compute_metrics([_request()])
    assert chunked.itl_ms.mean == 56.0 / 3 and chunked.itl_per_token_ms.mean == 8.0
    assert chunked.itl_per_accepted_token_ms.p50 == 2.0 and chunked.itl_per_accepted_token_ms.mean == 8.0
    plain = _request(chunk_tokens=(), output_tokens=4)
    metrics = compute_metrics([plain])
    assert metrics.itl_per_token_ms is None and metrics.itl_per_accepted_token_ms is None
    # One token a chunk before the first chunked request and after it: all counted, in any order.
    mixed = [compute_metrics(order).itl_per_token_ms for order in ([plain, _request(), plain],
                                                                   [_request(), plain, plain])]
    assert mixed[0] == mixed[1] and mixed[0].n == 3 + 7 + 3 and mixed[0].mean == (56.0 * 3) / 13
    # A request whose chunks carried tokens it did not count (llama.cpp): no per-token figure for the run.
    assert compute_metrics([_request(), _request(chunk_tokens=(), output_tokens=8)]).itl_per_token_ms is None


def test_latency_from_the_intended_send_counts_the_clients_delay():
    # Meant for 0.75 s, sent at 1.0 s (behind schedule, or waiting for a slot): the user waited 250 ms more.
    late = _request(scheduled_s=0.75)
    assert late.ttft_intended_ms == 64.0 + 250.0 and late.e2el_intended_ms == 64.0 + 56.0 + 250.0
    metrics = compute_metrics([late])
    assert metrics.ttft_intended_ms.p50 == 314.0 and metrics.ttft_ms.p50 == 64.0
    assert _request().ttft_intended_ms is None  # offline: no intended send

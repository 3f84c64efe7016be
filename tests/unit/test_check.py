"""`tuibench check`'s arithmetic: leading-token agreement per pair, and which library is the odd one out."""

from tuibench.check import LibraryResult, agreements, common_prefix, outliers


def _result(name, ids, error=None):
    return LibraryResult(library=name, ids=ids, error=error)


def test_common_prefix_stops_at_the_first_difference():
    assert common_prefix([1, 2, 3, 4], [1, 2, 9, 4]) == 2
    assert common_prefix([1, 2], [1, 2, 3]) == 2
    assert common_prefix([], [1]) == 0


def test_the_library_that_disagrees_with_two_agreeing_others_is_flagged():
    a = _result("transformers", [[1, 2, 3], [4, 5, 6]])
    b = _result("vllm", [[1, 2, 3], [4, 5, 6]])
    c = _result("llamacpp", [[1, 2, 7], [4, 5, 6]])
    pairs = agreements([a, b, c])
    assert [(p.first, p.second, p.per_prompt) for p in pairs] == [
        ("transformers", "vllm", [3, 3]), ("transformers", "llamacpp", [2, 3]), ("vllm", "llamacpp", [2, 3])]
    assert outliers(pairs, tokens=3) == ["llamacpp"]


def test_two_libraries_that_disagree_blame_nobody_and_failures_are_left_out():
    pairs = agreements([_result("a", [[1, 2]]), _result("b", [[1, 3]]), _result("c", [], error="boom")])
    assert [(p.first, p.second) for p in pairs] == [("a", "b")]
    assert outliers(pairs, tokens=2) == []
    assert pairs[0].mean == 1.0

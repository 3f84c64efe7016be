"""A conversation's next turn as it is sent: the turn before as it was sent, its reply, then the turn's own message,
in each form a server takes (token ids, text, chat messages)."""

from tuibench.loadgen.client import Endpoint, Prompted, request_body
from tuibench.loadgen.conversations import next_prompt


def _turn(prompt, turn: int) -> Prompted:
    return Prompted(index=turn, prompt=prompt, input_tokens=0, output_tokens=4, conversation=0, turn=turn)


def _encode(text: str) -> list[int]:
    return [ord(c) for c in text]


def test_token_ids_append_the_reply_encoded_then_the_turns_own_ids():
    first = next_prompt(_turn([1, 2], 0), None, "", _encode, chat=False)
    assert first.prompt == [1, 2]
    second = next_prompt(_turn([3], 1), first, "ab", _encode, chat=False)
    assert second.prompt == [1, 2, 97, 98, 3]
    third = next_prompt(_turn([4], 2), second, "c", _encode, chat=False)
    assert third.prompt == [1, 2, 97, 98, 3, 99, 4] and third.turn == 2


def test_text_appends_and_chat_keeps_the_roles():
    text = next_prompt(_turn(" next", 1), _turn("hello", 0), " reply", _encode, chat=False)
    assert text.prompt == "hello reply next"
    first = next_prompt(_turn("hello", 0), None, "", _encode, chat=True)
    second = next_prompt(_turn("next", 1), first, "reply", _encode, chat=True)
    body = request_body(Endpoint(base_url="http://127.0.0.1:1", model="m", api="chat"), second)
    assert body["messages"] == [{"role": "user", "content": "hello"}, {"role": "assistant", "content": "reply"},
                                {"role": "user", "content": "next"}]


def test_the_servers_own_reply_ids_win_over_the_text_encoded_again():
    first = _turn([1, 2], 0)
    assert next_prompt(_turn([3], 1), first, "ab", _encode, False, reply_ids=[50, 51, 52]).prompt == [1, 2, 50, 51, 52, 3]
    vllm = Endpoint(base_url="http://127.0.0.1:1", model="m")
    assert request_body(vllm, first, token_ids=True)["return_token_ids"] is True
    other = Endpoint(base_url="http://127.0.0.1:1", model="m", length_policy="transformers")  # rejects unknown fields
    assert "return_token_ids" not in request_body(other, first, token_ids=True)


def test_a_count_of_the_turns_own_message_is_not_kept_as_the_count_of_the_whole_prompt():
    """A text prompt fitted against the server's tokenizer comes with its count; a later turn's prompt is longer,
    and a server that reports no usage (llama.cpp's) must leave it uncounted, not counted as the message alone."""
    fitted = Prompted(index=1, prompt=" next", input_tokens=40, output_tokens=4, counted_input_tokens=2,
                      conversation=0, turn=1)
    first = Prompted(index=0, prompt="hello", input_tokens=2, output_tokens=4, counted_input_tokens=2,
                     conversation=0, turn=0)
    assert next_prompt(first, None, "", _encode, chat=False).counted_input_tokens == 2
    assert next_prompt(fitted, first, " reply", _encode, chat=False).counted_input_tokens is None

"""Multi-turn conversations: a closed loop per conversation, open arrivals across them.

Conversations start on the run's arrival schedule (the rate is of conversations starting). Within one, turn t+1
is ready only once the reply to turn t has come, plus the think time, and its prompt is the conversation so far:
every earlier prompt and reply, then its own user message. So a turn's TTFT carries its whole context, unless the
server's prefix cache holds the turns before; that is what this workload tells libraries apart on.

How the conversation so far is sent follows the prompts' form: token ids (the ids a vLLM server says it
generated, else the reply's text encoded with the model's tokenizer), text (appended), or chat messages (user
and assistant turns, the server's chat template around them).
"""

import asyncio
from collections.abc import Callable, Sequence
from itertools import groupby

import msgspec

from tuibench.core.records import RequestRecord
from tuibench.core.timing import PERF_COUNTER, Clock
from tuibench.loadgen.client import Endpoint, Prompted
from tuibench.loadgen.driver import START_LEAD_S, LoadPlan, client

Encode = Callable[[str], list[int]]


def next_prompt(turn: Prompted, history: Prompted | None, reply: str, encode: Encode, chat: bool,
                reply_ids: Sequence[int] = ()) -> Prompted:
    """Turn `turn` as sent: after the turn before as it was sent (`history`) and that turn's `reply`, its own
    message; the first turn as it is (on the chat API, as the conversation's first message). Token ids hold the
    reply's own ids where the server gave them (`reply_ids`), else its text encoded again, which may differ by a
    token or two and then shares less with what the server cached."""
    if history is None:
        return msgspec.structs.replace(turn, messages=[{"role": "user", "content": str(turn.prompt)}]) if chat else turn
    # Whatever was counted of the turn's own message alone is no count of this prompt: only the server's usage is.
    turn = msgspec.structs.replace(turn, counted_input_tokens=None)
    if chat:
        messages = [*history.messages, {"role": "assistant", "content": reply}, {"role": "user", "content": str(turn.prompt)}]
        return msgspec.structs.replace(turn, messages=messages)
    if isinstance(turn.prompt, str):
        return msgspec.structs.replace(turn, prompt=f"{history.prompt}{reply}{turn.prompt}")
    return msgspec.structs.replace(turn, prompt=[*history.prompt, *(reply_ids or encode(reply)), *turn.prompt])


async def drive_conversations(endpoint: Endpoint, turns: Sequence[Prompted], plan: LoadPlan,
                              on_record: Callable[[RequestRecord], None], clock: Callable[[float], float],
                              encode: Encode, think_time_s: float = 0.0, time_source: Clock = PERF_COUNTER,
                              session=None) -> None:
    """Sends every conversation of `turns` (grouped by `conversation`, in turn order): the first turns on the
    arrival schedule, each later turn once the reply before it has come. A failed turn ends its conversation: the
    turns left are recorded as failed, since their prompts would hold a reply that never came. `time_source` and
    `session` are drive's (loadgen/driver.py)."""
    conversations = [sorted(group, key=lambda t: t.turn or 0)
                     for _, group in groupby(sorted(turns, key=lambda t: (t.conversation, t.turn or 0)),
                                             key=lambda t: t.conversation)]
    offsets = plan.offsets_s(len(conversations))
    async with client(endpoint, plan, clock, time_source, session) as (_, in_slot):
        origin = time_source.now_s() + START_LEAD_S

        async def converse(conversation: list[Prompted], start: float) -> None:
            ready, history, reply, reply_ids = start, None, "", []
            for number, turn in enumerate(conversation):
                await time_source.sleep_until(ready)
                sent = next_prompt(turn, history, reply, encode, endpoint.api == "chat", reply_ids)
                pieces: list[str] = []
                ids: list[int] | None = [] if isinstance(turn.prompt, list) else None
                record = await in_slot(sent, ready, reply=pieces, reply_ids=ids)
                on_record(record)
                if not record.ok:
                    for left in conversation[number + 1:]:
                        on_record(_not_sent(left, clock(time_source.now_s()),
                                            f"turn {turn.turn} of this conversation failed: {record.error}"))
                    return
                history, reply, reply_ids = sent, "".join(pieces), ids or []
                ready = time_source.now_s() + think_time_s

        await asyncio.gather(*(converse(c, origin + offset) for c, offset in zip(conversations, offsets, strict=True)))


def _not_sent(turn: Prompted, now_s: float, error: str) -> RequestRecord:
    return RequestRecord(index=turn.index, input_tokens=turn.input_tokens, output_tokens=0,
                         target_output_tokens=turn.output_tokens, start_s=now_s, scheduled_s=now_s, error=error,
                         conversation=turn.conversation, turn=turn.turn)

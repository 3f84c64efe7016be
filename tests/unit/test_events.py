"""Events: every type round-trips through encode/decode and the JSONL stream."""

import io
import json
import typing

import pytest

from tuibench.core import events as ev
from tuibench.core.module_profile import ModuleNode, ModuleProfile
from tuibench.core.records import BatchRecord, RequestRecord
from tuibench.core.roofline import Cost, Roofline
from tuibench.core.spec import DatasetSpec, OfflineParams, RunSpec

SPEC = RunSpec(
    model="smollm2-135m",
    dataset=DatasetSpec(kind="random", source="random", input_len=64, output_len=32, range_ratio=0.25),
    offline=OfflineParams(batch_size=4, warmup_batches=0, honor_eos=True),
    num_requests=16,
    seed=3,
    device="cpu",
    dtype="float32",
    threads=2,
)

SAMPLES = {
    "run_started": ev.RunStarted(t_s=0.0, spec=SPEC, num_requests=16, pid=1234,
                                 environment={"python": "3.11", "gpus": [{"name": "H100", "mem_gib": 80}]}),
    "phase": ev.Phase(t_s=0.5, name="warmup", detail="1 batch"),
    "progress": ev.Progress(t_s=1.0, phase="measuring", done=3, total=16),
    "request_done": ev.RequestDone(t_s=1.25, record=RequestRecord(
        index=5, input_tokens=64, output_tokens=3, target_output_tokens=32, start_s=0.75, ttft_ms=12.5,
        e2el_ms=40.0, itl_ms=[13.75, 13.75], batch=1, error=None)),
    "request_done_failed": ev.RequestDone(t_s=1.3, record=RequestRecord(
        index=6, input_tokens=64, output_tokens=0, target_output_tokens=32, start_s=0.75, error="OOM")),
    "batch_done": ev.BatchDone(t_s=1.5, record=BatchRecord(
        batch=1, size=4, start_s=0.75, prefill_ms=12.5, decode_ms=27.5, decode_steps=2)),
    "telemetry": ev.TelemetrySample(t_s=1.75, source="gpu0", values={"util_pct": 97.0, "power_w": None}),
    "module_timings": ev.ModuleTimings(t_s=2.0, profile=ModuleProfile(
        library="transformers", phase="decode", batch=8, input_len=32, context=34.5, steps=4, dtype="float32",
        attn="sdpa", roofline=Roofline(device="cpu", dtype="float32", peak_flops_s=8e10, bandwidth_bytes_s=2.5e10),
        root=ModuleNode(name="LlamaForCausalLM", path="LlamaForCausalLM", kind="step", time_ms=1.5, children=(
            ModuleNode(name="q_proj", path="LlamaForCausalLM.q_proj", kind="module", time_ms=1.0, theory=("q_proj",),
                       cost=Cost(flops=2e6, bytes_read=1e6, bytes_written=1e5)),
        )))),
    "log": ev.Log(t_s=2.25, message="hello", level="warning"),
    "server_started": ev.ServerStarted(t_s=0.5, server="vllm", process_start_s=1.5, load_s=20.25),
    "first_request": ev.FirstRequest(t_s=21.0, ttft_ms=350.5),
    "run_finished": ev.RunFinished(t_s=3.0),
    "run_failed": ev.RunFailed(t_s=3.5, kind="crashed", error="signal 9"),
}


def test_samples_cover_every_event_type():
    assert {type(e) for e in SAMPLES.values()} == set(typing.get_args(ev.Event))


@pytest.mark.parametrize("name", list(SAMPLES))
def test_encode_decode_round_trip(name):
    event = SAMPLES[name]
    data = ev.encode(event)
    back = ev.decode(data)
    assert type(back) is type(event)
    assert back == event
    assert ev.decode(data.decode()) == event  # str input too


@pytest.mark.parametrize(
    ("name", "tag"),
    [("run_started", "run_started"), ("request_done", "request_done"), ("telemetry", "telemetry"),
     ("run_failed", "run_failed"), ("run_finished", "run_finished")],
)
def test_encoded_events_carry_their_type_tag(name, tag):
    obj = json.loads(ev.encode(SAMPLES[name]))
    assert obj["type"] == tag
    assert obj["t_s"] == SAMPLES[name].t_s


def test_jsonl_round_trip():
    events = list(SAMPLES.values())
    stream = io.BytesIO()
    for event in events:
        ev.write_jsonl(stream, event)
    raw = stream.getvalue()
    assert raw.endswith(b"\n")
    assert raw.count(b"\n") == len(events)  # one line per event, no newlines inside
    stream.seek(0)
    assert list(ev.read_jsonl(stream)) == events


def test_read_jsonl_skips_blank_lines():
    lines = ev.encode(SAMPLES["phase"]) + b"\n\n   \n" + ev.encode(SAMPLES["run_finished"]) + b"\n"
    assert list(ev.read_jsonl(io.BytesIO(lines))) == [SAMPLES["phase"], SAMPLES["run_finished"]]


def test_read_jsonl_garbage_names_line_number():
    # line 1 valid, line 2 blank (still counted), line 3 garbage
    data = ev.encode(SAMPLES["log"]) + b"\n\nthis is not json\n" + ev.encode(SAMPLES["run_finished"]) + b"\n"
    events = ev.read_jsonl(io.BytesIO(data))
    assert next(events) == SAMPLES["log"]  # lazily yields what was good before the bad line
    with pytest.raises(ValueError, match=r"^line 3: not a tuibench event"):
        next(events)


@pytest.mark.parametrize(
    "line",
    [
        b'{"type": "no_such_event", "t_s": 1.0}',
        b'{"type": "phase", "t_s": 1.0, "name": "bogus"}',  # name outside the Literal
        b'{"type": "progress", "t_s": 1.0, "phase": "x", "done": 1}',  # total missing
        b'[1, 2, 3]',
        b'\xff\xfe\x00',
    ],
)
def test_read_jsonl_rejects_non_events(line):
    with pytest.raises(ValueError, match=r"^line 2: "):
        list(ev.read_jsonl(io.BytesIO(ev.encode(SAMPLES["log"]) + b"\n" + line + b"\n")))


def test_terminal_events():
    assert isinstance(SAMPLES["run_finished"], ev.TERMINAL)
    assert isinstance(SAMPLES["run_failed"], ev.TERMINAL)
    assert not isinstance(SAMPLES["progress"], ev.TERMINAL)

"""The fake engine's passes (backends/fake.py): scripted module times on the model's modules, for the profile
scenario's tests. No torch: the model is its config alone.

Each step of a pass lasts its phase's scripted time (a prefill step, each decode step), spread evenly over the
model's leaf modules as transformers names them (so transformers' theory map reads them): whole nanoseconds each,
the LM head taking the few left over, so a step's modules sum to its time exactly and its wall is that time (nothing
outside the forward, nothing inline). Each pass sleeps as long as its steps, so a profile takes real wall time.
"""

import time

from tuibench.analysis.theory import ModelShape, Workload
from tuibench.core.module_profile import TimerMode
from tuibench.profiling.hf_profile import THEORY
from tuibench.profiling.passes import Phase, Wall
from tuibench.profiling.steps import StepTimes

ATTENTION = ("q_proj", "k_proj", "v_proj", "rope", "kv_write", "attn_core", "o_proj")
MLP = ("gate_proj", "act_fn", "up_proj", "down_proj")


def model_leaves(root: str, layers: int) -> list[str]:
    """The leaf modules of a LLaMA-family model in the order a forward runs them, as transformers' paths."""
    model = f"{root}.model"
    leaves = [f"{model}.embed_tokens"]
    for i in range(layers):
        layer = f"{model}.layers.{i}"
        leaves += [f"{layer}.input_layernorm", *(f"{layer}.self_attn.{n}" for n in ATTENTION),
                   f"{layer}.post_attention_layernorm", *(f"{layer}.mlp.{n}" for n in MLP)]
    return [*leaves, f"{model}.norm", f"{root}.lm_head"]


def scripted_step(tag: str, step_ns: int, leaves: list[str]) -> StepTimes:
    """One step of `step_ns` over `leaves`: each leaf its even share, the last the remainder too; every module above
    them the sum of its leaves."""
    share = step_ns // len(leaves)
    ns: dict[str, int] = {}
    parents: dict[str, str | None] = {}
    for number, leaf in enumerate(leaves):
        own = share + (step_ns - share * len(leaves) if number == len(leaves) - 1 else 0)
        parts = leaf.split(".")
        for depth in range(1, len(parts) + 1):  # the leaf and every module it is called from
            path = ".".join(parts[:depth])
            ns[path] = ns.get(path, 0) + own
            parents.setdefault(path, ".".join(parts[:depth - 1]) or None)
    order = list(ns)  # first entered first: a parent before its children
    return StepTimes(tag=tag, ns=ns, calls=dict.fromkeys(order, 1), order=order, parents=parents,
                     total_ns=step_ns, wall_ns=step_ns)


class FakePasses:
    library = "fake"
    device = "nowhere (scripted)"
    attn = "fake"
    theory = THEORY
    roofline = None  # nothing ran on a device: no ceiling to hold it to

    def __init__(self, config: dict, *, prefill_ms: float, decode_ms: float, batch: int, decode_steps: int,
                 dtype: str):
        self.config, self.batch, self.decode_steps, self.dtype = config, batch, decode_steps, dtype
        self.shape = ModelShape.from_config(config)
        root = (config.get("architectures") or ["FakeForCausalLM"])[0]
        self.leaves = model_leaves(root, self.shape.layers)
        self.step_ns = {"prefill": round(prefill_ms * 1e6), "decode": round(decode_ms * 1e6)}

    def workload(self, phase: Phase, length: int) -> Workload:
        if phase == "prefill":
            return Workload.prefill(self.batch, length, self.dtype)
        return Workload.decode(self.batch, length + (self.decode_steps + 1) / 2, self.dtype)

    def begin(self, length: int) -> None:
        pass

    def _pass(self) -> list[Wall]:
        walls = [("prefill", self.step_ns["prefill"])] + [("decode", self.step_ns["decode"])] * self.decode_steps
        deadline = time.perf_counter() + sum(ns for _, ns in walls) / 1e9
        while (remaining := deadline - time.perf_counter()) > 0:
            time.sleep(remaining)
        return walls

    def bare(self, length: int) -> list[Wall]:
        return self._pass()

    def timed(self, length: int, mode: TimerMode) -> tuple[list[StepTimes], list[Wall]]:
        walls = self._pass()
        return [scripted_step(tag, ns, self.leaves) for tag, ns in walls], walls

    def close(self) -> None:
        pass

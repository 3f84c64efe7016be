"""Every GPU a run samples, one line each: a sparkline of its utilisation and its latest memory and power.

Up to MAX_ROWS GPUs get a row each; more (a multi-node run) are shown in MAX_ROWS rows of consecutive GPUs, with
the mean utilisation and the summed memory and power of each group, so the screen keeps its size.
"""

import math
import re
from collections.abc import Sequence
from statistics import fmean

from tuibench.core.events import TelemetrySample
from tuibench.core.units import fmt

MAX_ROWS = 8
BLOCKS = "▁▂▃▄▅▆▇█"
# "gpu3", or on a Ray cluster "gpu3@10.0.0.2": GPU 3 of that node.
_GPU = re.compile(r"gpu(\d+)(?:@(.+))?$")


def spark_text(values: Sequence[float], low: float = 0.0, high: float = 100.0) -> str:
    """One block per value, scaled between low and high."""
    span = high - low or 1.0
    return "".join(BLOCKS[min(len(BLOCKS) - 1, max(0, int((v - low) / span * len(BLOCKS))))] for v in values)


def _by_gpu(samples: Sequence[TelemetrySample]) -> dict[tuple[str, int], list[TelemetrySample]]:
    """Samples per GPU, in (node, index) order; this machine's GPUs have the node ''."""
    found: dict[tuple[str, int], list[TelemetrySample]] = {}
    for sample in samples:
        if match := _GPU.match(sample.source):
            found.setdefault((match[2] or "", int(match[1])), []).append(sample)
    return dict(sorted(found.items()))


def _name(gpu: tuple[str, int]) -> str:
    node, index = gpu
    return f"{node}/gpu{index}" if node else f"gpu{index}"


def _group_name(group: Sequence[tuple[str, int]]) -> str:
    """'gpu3', 'gpu0–1', '10.0.0.2/gpu0–7', or across nodes both ends in full."""
    first, last = group[0], group[-1]
    if len(group) == 1:
        return _name(first)
    if first[0] == last[0]:
        return f"{_name(first)}–{last[1]}"
    return f"{_name(first)}–{_name(last)}"


def _values(samples: Sequence[TelemetrySample], key: str) -> list[float]:
    return [v for s in samples if (v := s.values.get(key)) is not None]


def gpu_rows(samples: Sequence[TelemetrySample], points: int = 24) -> list[str]:
    """The lines to show: none for one GPU or none (the screen's sparklines show it), else one per GPU or group."""
    gpus = _by_gpu(samples)
    if len(gpus) < 2:
        return []
    indices = list(gpus)
    size = math.ceil(len(indices) / MAX_ROWS)
    groups = [indices[start:start + size] for start in range(0, len(indices), size)]
    names = [_group_name(g) for g in groups]
    width = max(9, *map(len, names))
    points = max(6, points - (width - 9))  # node names take their room from the sparkline: a row keeps its width
    rows = []
    for group, name in zip(groups, names, strict=True):
        histories = [_values(gpus[i], "util_pct")[-points:] for i in group]
        # The group's utilisation over time: the mean across its GPUs at each of the latest samples.
        width = min((len(h) for h in histories), default=0)
        util = [fmean(h[len(h) - width + k] for h in histories) for k in range(width)]
        memory = [m[-1] for i in group if (m := _values(gpus[i], "mem_used_mib"))]
        power = [p[-1] for i in group if (p := _values(gpus[i], "power_w"))]
        rows.append(f"{name:<{width}} {spark_text(util):<{points}} util {fmt(util[-1] if util else None, 0, '%'):>5}"
                    f"  mem {fmt(sum(memory) / 1024 if memory else None, 1, 'GiB'):>9}"
                    f"  power {fmt(sum(power) if power else None, 0, 'W'):>6}")
    return rows

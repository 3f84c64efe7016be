"""The scenarios: offline, serving and profile, each a module with one entry, `run(engine, context)`.

These are the only scenario loops: the warm-ups, the order of batches, requests and passes, and every event a run
sends are here, the same for every library, while each engine (tuibench/backends/) only loads, generates a batch or
runs a pass when asked. The run's child (runner/child.py) picks the module by the spec's scenario. Capacity is not
here: it is a search over whole serving runs, each its own child and stored run, made by the run service in the
parent (runner/capacity_search.py).

(The top-level folder scenarios/ holds the plan files and datasets; it ships as the data package tuibench.data.)
"""

import importlib
from types import ModuleType

SCENARIOS = ("offline", "serving", "profile")


def scenario(name: str) -> ModuleType:
    """The module of a scenario, imported when a run needs it (the serving one pulls in the HTTP client)."""
    if name not in SCENARIOS:
        raise ValueError(f"unknown scenario {name!r}: one of {', '.join(SCENARIOS)}")
    return importlib.import_module(f"tuibench.scenarios.{name}")

"""NVML (nvidia-ml-py) for the whole process: one count of who holds it, and queries whose unanswerable fields are None.

NVML must be initialised while anyone reads a device (detect_gpus for a moment, a sampler's sources for a whole run,
possibly both in one process), and shut down once nobody does. Each holder takes it with `session()` (or
acquire()/release() around a longer life): nvmlInit on the first holder, nvmlShutdown when the last lets go, so that
one leaving never pulls NVML from under another, and a stray second release shuts nothing down twice. Where NVML
cannot start (no nvidia-ml-py, no driver or libnvidia-ml, a container without the device) acquire() raises
NvmlUnavailable, and callers fall back to the CPU's figures.
"""

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any


class NvmlUnavailable(Exception):
    """NVML cannot be used in this process: a CPU-only machine, as far as tuibench is concerned."""


_lock = threading.Lock()
_holders = 0
_library: ModuleType | None = None  # the pynvml that was initialised: the one shut down, whatever is imported later


def acquire() -> ModuleType:
    """Holds NVML (initialising it for the first holder) and returns the pynvml module; NvmlUnavailable without it."""
    global _holders, _library
    try:
        import pynvml
    except ImportError as exc:
        raise NvmlUnavailable("nvidia-ml-py is not installed") from exc
    with _lock:  # two threads (the app's detection and a run's sampler) must not both see 0 holders
        if _holders == 0:
            try:
                pynvml.nvmlInit()
            # Any failure, not only NVMLError: whatever keeps NVML from starting, a run goes on with the CPU's figures.
            except Exception as exc:  # noqa: BLE001
                raise NvmlUnavailable(f"NVML did not initialise: {exc}") from exc
            _library = pynvml
        _holders += 1
        return _library


def release() -> None:
    """Lets go of one hold; the last shuts NVML down. A release without a hold does nothing (never someone else's)."""
    global _holders, _library
    with _lock:
        if _holders == 0:
            return
        _holders -= 1
        if _holders > 0:
            return
        library, _library = _library, None
        try:
            library.nvmlShutdown()
        except library.NVMLError:  # a driver that went away meanwhile: there is nothing left to shut
            pass


def holders() -> int:
    """How many hold NVML now (0: not initialised by tuibench)."""
    return _holders


@contextmanager
def session() -> Iterator[ModuleType]:
    """`with nvml.session() as lib:` NVML held for the block; NvmlUnavailable (raised on entry) without it."""
    library = acquire()
    try:
        yield library
    finally:
        release()


def query(library: ModuleType, function: str, *args: Any) -> Any:
    """library.function(*args), or None (shown N/A) where the answer cannot be had.

    None for any NVMLError (NotSupported: no power sensor on some boards, no energy counter before Volta;
    NoPermission; GpuIsLost, Timeout: a field is lost, not the sample), and for a function this nvidia-ml-py lacks
    (an older library). Anything else (a TypeError: a wrong call) is a bug and propagates.
    """
    fn = getattr(library, function, None)
    if fn is None:
        return None
    try:
        return fn(*args)
    except library.NVMLError:
        return None

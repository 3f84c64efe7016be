"""The NVML wrapper: unavailable here for real (no GPU, no driver); its counting and queries through a fake pynvml."""

import os
import sys
import threading
import types

import pytest

from tuibench.telemetry import devices, nvml
from tuibench.telemetry.sampler import close_sources, gpu_sources, make_sources


@pytest.fixture(autouse=True)
def _no_holders_left():
    assert nvml.holders() == 0
    yield
    left = nvml.holders()
    nvml._holders, nvml._library = 0, None  # a failed test's holds must not fail the next ones too
    assert left == 0  # every test lets go of what it took


@pytest.mark.skipif(os.path.exists("/proc/driver/nvidia"), reason="an NVIDIA driver is present")
def test_without_a_driver_nvml_is_unavailable_and_there_are_no_gpus():
    with pytest.raises(nvml.NvmlUnavailable), nvml.session():
        pass
    assert devices.detect_gpus() == []
    assert gpu_sources() == []
    assert [s.name for s in make_sources()] == ["cpu"]
    assert not devices.cuda_visible()


def test_without_nvidia_ml_py_nvml_is_unavailable(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # `import pynvml` raises ImportError
    with pytest.raises(nvml.NvmlUnavailable, match="not installed"):
        nvml.acquire()
    assert devices.detect_gpus() == []
    assert gpu_sources() == []


class _Counting:
    def __init__(self):
        self.inits = self.shutdowns = 0


def _fake_pynvml(calls: _Counting, gpus: int = 2, init_error: type[Exception] | None = None) -> types.ModuleType:
    """Two GPUs; the second has no compute capability to give (NotSupported), a clock query fails unexpectedly."""
    lib = types.ModuleType("pynvml")

    class NVMLError(Exception):
        pass

    class NVMLError_NotSupported(NVMLError):  # noqa: N801 - pynvml's own spelling
        pass

    lib.NVMLError, lib.NVMLError_NotSupported = NVMLError, NVMLError_NotSupported
    memory = types.SimpleNamespace(total=80 * 2**30, free=60 * 2**30, used=20 * 2**30)

    def init():
        if init_error is not None:
            raise init_error("Driver Not Loaded")
        calls.inits += 1

    def shutdown():
        calls.shutdowns += 1

    def capability(handle):
        if handle == "handle1":
            raise NVMLError_NotSupported("Not Supported")
        return (9, 0)

    def clock(handle, kind):
        raise TypeError("a wrong call, not an answer the device lacks")

    lib.nvmlInit, lib.nvmlShutdown = init, shutdown
    lib.nvmlSystemGetDriverVersion = lambda: "550.54.15"
    lib.nvmlDeviceGetCount = lambda: gpus
    lib.nvmlDeviceGetHandleByIndex = lambda index: f"handle{index}"
    lib.nvmlDeviceGetName = lambda handle: "NVIDIA H100 80GB HBM3"
    lib.nvmlDeviceGetMemoryInfo = lambda handle: memory
    lib.nvmlDeviceGetCudaComputeCapability = capability
    lib.nvmlDeviceGetClockInfo = clock
    lib.nvmlDeviceGetTotalEnergyConsumption = lambda handle: 1_000_000
    return lib


def test_nested_holders_init_once_and_the_last_shuts_down_fake_nvml(monkeypatch):
    calls = _Counting()
    monkeypatch.setitem(sys.modules, "pynvml", _fake_pynvml(calls))
    with nvml.session() as outer:
        with nvml.session() as inner:
            assert inner is outer and nvml.holders() == 2
            assert (calls.inits, calls.shutdowns) == (1, 0)
        assert (calls.inits, calls.shutdowns) == (1, 0)  # the outer holder still reads
    assert (calls.inits, calls.shutdowns) == (1, 1)
    nvml.release()  # one release too many: nothing held, nothing shut down twice
    assert calls.shutdowns == 1
    with nvml.session():  # held again later: initialised again
        pass
    assert (calls.inits, calls.shutdowns) == (2, 2)


def test_holders_in_threads_init_once_fake_nvml(monkeypatch):
    calls = _Counting()
    monkeypatch.setitem(sys.modules, "pynvml", _fake_pynvml(calls))
    barrier = threading.Barrier(8)

    def hold():
        barrier.wait()
        nvml.acquire()

    threads = [threading.Thread(target=hold) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert calls.inits == 1 and nvml.holders() == 8
    for _ in threads:
        nvml.release()
    assert calls.shutdowns == 1


def test_an_init_that_fails_is_unavailable_and_holds_nothing_fake_nvml(monkeypatch):
    calls = _Counting()
    lib = _fake_pynvml(calls)
    monkeypatch.setitem(sys.modules, "pynvml", _fake_pynvml(calls, init_error=lib.NVMLError))
    with pytest.raises(nvml.NvmlUnavailable, match="Driver Not Loaded"):
        nvml.acquire()
    assert devices.detect_gpus() == [] and gpu_sources() == []
    assert calls.shutdowns == 0


def test_a_field_the_device_lacks_is_none_and_a_wrong_call_propagates_fake_nvml(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", _fake_pynvml(_Counting()))
    with nvml.session() as lib:
        assert nvml.query(lib, "nvmlDeviceGetCudaComputeCapability", "handle0") == (9, 0)
        assert nvml.query(lib, "nvmlDeviceGetCudaComputeCapability", "handle1") is None  # NotSupported
        assert nvml.query(lib, "nvmlDeviceGetPowerUsage", "handle0") is None  # not in this (older) library
        with pytest.raises(TypeError):  # not an NVMLError: a bug, not N/A
            nvml.query(lib, "nvmlDeviceGetClockInfo", "handle0", 1)


def test_detect_gpus_through_the_wrapper_fake_nvml(monkeypatch):
    calls = _Counting()
    monkeypatch.setitem(sys.modules, "pynvml", _fake_pynvml(calls))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")  # the machine's GPUs are listed all the same
    gpus = devices.detect_gpus()
    assert [(g.index, g.driver, g.memory_total_mib, g.compute_capability) for g in gpus] == [
        (0, "550.54.15", 80 * 1024, "9.0"), (1, "550.54.15", 80 * 1024, None)]
    assert (calls.inits, calls.shutdowns) == (1, 1)


def test_gpu_sources_hold_nvml_until_closed_fake_nvml(monkeypatch):
    calls = _Counting()
    monkeypatch.setitem(sys.modules, "pynvml", _fake_pynvml(calls, gpus=4))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,1")
    sources = gpu_sources()
    assert [s.name for s in sources] == ["gpu0", "gpu1"]  # cuda:0 is NVML's 3
    assert devices.detect_gpus()  # a second holder meanwhile (the app's detection): NVML stays up for the sampler
    assert (calls.inits, calls.shutdowns, nvml.holders()) == (1, 0, 1)
    close_sources(sources)
    assert (calls.inits, calls.shutdowns) == (1, 1)


def test_no_visible_gpu_holds_nothing_fake_nvml(monkeypatch):
    calls = _Counting()
    monkeypatch.setitem(sys.modules, "pynvml", _fake_pynvml(calls))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert gpu_sources() == []
    assert (calls.inits, calls.shutdowns) == (1, 1)


@pytest.mark.parametrize(("value", "count", "expected"), [
    (None, 2, [0, 1]), ("", 2, []), (" ", 2, []), ("1,0", 2, [1, 0]), (" 1 , 0 ", 2, [1, 0]),
    ("-1", 2, []), ("0,-1,1", 2, [0]), ("2", 2, []), ("0,1", 0, []),
    ("GPU-8f6a1c2e-0000-0000-0000-000000000000", 2, [0, 1]), ("0,GPU-8f6a1c2e", 2, [0, 1]), ("MIG-1/2/3", 1, [0]),
])
def test_cuda_visible_devices_parsing(monkeypatch, value, count, expected):
    if value is None:
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    else:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", value)
    assert devices.visible_gpu_indices(count) == expected


@pytest.mark.parametrize(("value", "expected"), [
    (None, True), ("0", True), ("1,0", True), ("GPU-8f6a1c2e", True), ("", False), ("-1", False), ("-1,0", False),
])
def test_cuda_visible_reads_the_same_variable_the_same_way(monkeypatch, value, expected):
    monkeypatch.setattr(devices.os.path, "exists", lambda path: path == "/proc/driver/nvidia")
    if value is None:
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    else:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", value)
    assert devices.cuda_visible() is expected

import os

import pytest

from tuibench.telemetry.devices import detect_gpus


@pytest.mark.skipif(os.path.exists("/proc/driver/nvidia"), reason="an NVIDIA driver is present")
def test_no_nvidia_driver_means_no_gpus_and_no_error():
    # nvidia-ml-py raises NVMLError (library not found) here; detection must turn that into "none".
    assert detect_gpus() == []


@pytest.mark.skipif(not os.path.exists("/proc/driver/nvidia"), reason="needs an NVIDIA driver")
def test_nvidia_gpus_are_named_with_driver_and_memory():
    gpus = detect_gpus()
    assert gpus and all(g.name and g.driver and g.memory_total_mib > 0 for g in gpus)

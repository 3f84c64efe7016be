"""Where a library that pins a torch of its own runs from: a virtual environment of its own, beside the project's.

SGLang and TensorRT-LLM each pin a torch other than the one tuibench installs, so `make install SGLANG=1` / `TRTLLM=1`
makes `.venv-sglang` / `.venv-trtllm` next to `.venv` (the project's venv, its name suffixed). Their servers are
launched from there; an environment variable points elsewhere (a conda env, a container's python), and a library
installed into tuibench's own environment is used from it.
"""

import importlib.util
import os
import shutil
import sys
from pathlib import Path


def own_venv(library: str) -> Path:
    """The environment tuibench runs in, its name suffixed with `-LIBRARY` (the Makefile's $(VENV)-LIBRARY)."""
    return Path(f"{sys.prefix}-{library}")


def launcher(library: str, variable: str, program: str, module: str) -> str | None:
    """The program that starts `library`'s server: `$variable` when set; else `program` in its own venv's bin; else
    in this environment, when `module` imports here. None when it is nowhere."""
    if chosen := os.environ.get(variable):
        return chosen
    if (found := own_venv(library) / "bin" / program).exists():
        return str(found)
    if importlib.util.find_spec(module) is not None:
        return sys.executable if program == "python" else shutil.which(program, path=str(Path(sys.executable).parent))
    return None


def gpu_server_availability(label: str, module: str, launcher_found: bool, make_flag: str, variable: str,
                            what: str):
    """A CUDA GPU first (the reason that holds even where it is installed), then the library's own environment."""
    from tuibench.backends.engine import Availability
    from tuibench.telemetry.devices import cuda_visible

    if not cuda_visible():
        return Availability(False, f"{label} runs on a CUDA GPU, and this machine has none")
    if not launcher_found:
        return Availability(False, f"{module} not installed: `make install {make_flag}` (its own venv: it pins "
                                   f"another torch), or set {variable} to {what}")
    return Availability(True)


def require_in_process(module: str, label: str, library: str) -> None:
    """Offline runs import the library into tuibench's own process: a UserError when it does not import here."""
    from tuibench.core.errors import UserError

    if importlib.util.find_spec(module) is None:
        raise UserError(f"{label}'s offline engine runs inside tuibench's process, and `{module}` does not import here "
                        f"(its own venv, {own_venv(library)}, serves it): run --scenario serving, or install {label} "
                        "into this environment")

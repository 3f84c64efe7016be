"""The child process: pins threads, runs the backend, and streams every event to the parent.

This module must stay light to import: spawn imports it before the thread settings are made, and
torch reads them when it is first imported.
"""

import os
import signal
import traceback

from tuibench.core import events as ev
from tuibench.core.errors import UserError
from tuibench.core.spec import RunSpec

_QUIET_ENV = {
    "HF_HUB_OFFLINE": "1",  # never reach for a hub
    "TRANSFORMERS_VERBOSITY": "error",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "TOKENIZERS_PARALLELISM": "false",
}


def pin_threads(threads: int) -> None:
    """Must run before torch is imported: OpenMP reads these once."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)


def child_main(spec_json: bytes, requests: list, conn, clock_origin: float | None = None) -> None:
    """Entry point of the spawned child. `conn` is the write end of a pipe to the parent."""
    spec = RunSpec.from_json(spec_json)
    # The parent owns Ctrl-C: it decides to stop us, so a terminal's SIGINT to the group is ignored here.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    pin_threads(spec.threads)
    os.environ.update(_QUIET_ENV)

    from tuibench.backends import backend_class
    from tuibench.backends.base import RunContext
    from tuibench.models.resolve import resolve_model
    from tuibench.runner.environment import capture_environment

    def emit(event: ev.Event) -> None:
        conn.send_bytes(ev.encode(event))

    ctx = None
    try:
        ctx = RunContext(spec, requests, resolve_model(spec.model), emit, clock_origin)
        emit(ev.RunStarted(t_s=ctx.clock_s(), spec=spec, num_requests=len(requests), pid=os.getpid(),
                           environment=capture_environment(spec.threads)))
        if spec.scenario == "serving":
            from tuibench.loadgen.scenario import run_serving

            run_serving(ctx)
        elif spec.scenario == "profile":
            backend_class(spec.library)().profile(ctx)
        else:
            backend_class(spec.library)().run(ctx)
        emit(ev.RunFinished(t_s=ctx.clock_s()))
    except UserError as exc:
        emit(ev.RunFailed(t_s=ctx.clock_s() if ctx else 0.0, kind="input", error=str(exc)))
    except BaseException as exc:  # noqa: BLE001 - everything the library throws is reported, then we exit
        emit(ev.Log(t_s=ctx.clock_s() if ctx else 0.0, level="error", message=traceback.format_exc()))
        emit(ev.RunFailed(t_s=ctx.clock_s() if ctx else 0.0, kind="error", error=f"{type(exc).__name__}: {exc}"))
    finally:
        conn.close()


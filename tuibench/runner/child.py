"""The child process: pins threads, runs the spec's scenario on its library's engine, and streams every event to the
parent.

This module must stay light to import: spawn imports it before the thread settings are made, and
torch reads them when it is first imported.
"""

import os
import signal
import sys
import threading
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
# How the child exits when stopped by SIGTERM (the parent's stop): the shell's 128 + the signal's number.
STOPPED_EXIT = 128 + signal.SIGTERM


class Stopped(BaseException):
    """Raised in the child's main thread by SIGTERM: a BaseException, so that no library's `except Exception` keeps
    it, and the child is not reported as having failed (the parent, which stopped it, says why the run ended)."""


def _stop(signum, frame) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # once: the stop itself is not cut short by another
    raise Stopped


def pin_threads(threads: int) -> None:
    """Must run before torch is imported: OpenMP reads these once."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)


def redirect_output(path: str) -> None:
    """Sends this process's stdout and stderr (libraries' prints, C++ warnings) to a file: under the app they
    would otherwise scribble over the screen."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


# Set by the app's run service (runner/app_server.py) to the app's pid: the app drawing the run is part of it.
FRONT_END_PID_ENV = "TUIBENCH_FRONT_END_PID"


def own_processes(spec: RunSpec) -> list[int]:
    """The roots of the run's own processes: the tuibench process that started this child (and with it a managed
    server), the app above it when the app's run service started it, and a server the user started on this
    machine, found by its port."""
    from urllib.parse import urlsplit

    from tuibench.telemetry.processes import listening_pid

    roots = [os.getppid()]
    if front_end := os.environ.get(FRONT_END_PID_ENV, "").strip():
        roots.append(int(front_end))
    if spec.scenario == "serving" and spec.serving.endpoint:
        url = urlsplit(spec.serving.endpoint)
        if url.hostname in ("127.0.0.1", "localhost", "::1") and url.port and (pid := listening_pid(url.port)):
            roots.append(pid)
    return roots


def child_main(spec_json: bytes, requests: list, conn, clock_origin: float | None = None,
               output_path: str | None = None) -> None:
    """Entry point of the spawned child. `conn` is the write end of a pipe to the parent."""
    # The parent owns Ctrl-C: it decides to stop us, so a terminal's SIGINT to the group is ignored here.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # It stops us with SIGTERM. Its default action ends the process on the spot, and then the named semaphores the
    # libraries made here stay registered with the resource tracker we share with the parent (spawn hands us its
    # tracker): tqdm's class-wide multiprocessing RLock, made when vLLM loads weights, is one. At the parent's exit
    # that tracker printed "There appear to be 1 leaked semaphore objects to clean up at shutdown". So SIGTERM
    # raises Stopped instead, and the child runs multiprocessing's exit work as a spawned process's ordinary exit
    # does: its finalizers unlink those semaphores and tell the tracker (within 0.1 s of the stop with vLLM). What
    # was measured was sent as it came; the parent says the run was interrupted. The rest of an ordinary exit
    # (vLLM's and torch's atexit handlers, the interpreter's teardown: 3 to 4 s with SmolLM2 on a CPU) is skipped,
    # as SIGTERM's default skipped it, so a stop is as quick as before. (Should we hang anyway, the parent's
    # SIGKILL after its grace period still ends us, with the semaphores already unlinked.)
    signal.signal(signal.SIGTERM, _stop)
    try:
        _run(spec_json, requests, conn, clock_origin, output_path)
    except Stopped:
        from multiprocessing import util

        try:
            conn.close()
            util._exit_function()  # what multiprocessing's Process._bootstrap calls on the way out
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(STOPPED_EXIT)


def _run(spec_json: bytes, requests: list, conn, clock_origin: float | None, output_path: str | None) -> None:
    if output_path:
        redirect_output(output_path)
    spec = RunSpec.from_json(spec_json)
    pin_threads(spec.threads)
    os.environ.update(_QUIET_ENV)

    from tuibench.backends import backend_class
    from tuibench.models.resolve import resolve_model
    from tuibench.runner.run_context import RunContext
    from tuibench.runner.environment import capture_environment
    from tuibench.scenarios import scenario

    send_lock = threading.Lock()  # the telemetry thread sends too, and a Connection is not thread-safe

    def emit(event: ev.Event) -> None:
        with send_lock:
            conn.send_bytes(ev.encode(event))

    ctx = None
    sampler = None
    cluster = None

    def finish(event: ev.Event) -> None:
        # The parent stops reading at the terminal event: the samplers' last samples must come before it.
        if sampler is not None:
            sampler.stop()
        if cluster is not None:
            cluster.stop_telemetry()
        emit(event)

    try:
        ctx = RunContext(spec, requests, resolve_model(spec.model, spec.random_weights), emit, clock_origin)
        environment = capture_environment(spec.threads)
        if spec.ray_address:
            cluster = ctx.cluster = _join_cluster(spec)
            environment["cluster"] = cluster.describe()
        emit(ev.RunStarted(t_s=ctx.clock_s(), spec=spec, num_requests=len(requests), pid=os.getpid(),
                           environment=environment))
        if cluster is not None:
            from tuibench.cluster.describe import cluster_lines

            for line in cluster_lines(environment):
                ctx.log(line.strip())
            ctx.log(backend_class(spec.library).on_cluster(spec))
        if spec.telemetry_hz > 0:
            from tuibench.telemetry.sampler import TelemetrySampler

            # On a cluster every node's agent samples its GPUs (this node's too): here only the CPU, as ours.
            sampler = TelemetrySampler(emit, ctx.clock_s, interval_s=1.0 / spec.telemetry_hz,
                                       ours=own_processes(spec), gpus=cluster is None,
                                       extra=_server_sources(ctx)).start()
            if cluster is not None:
                cluster.start_telemetry(emit, ctx.clock_s, 1.0 / spec.telemetry_hz)
        scenario(spec.scenario).run(backend_class(spec.library)(), ctx)
        finish(ev.RunFinished(t_s=ctx.clock_s()))
    except Stopped:
        raise  # no terminal event of ours: the parent, which stopped us, ends the run
    except UserError as exc:
        finish(ev.RunFailed(t_s=ctx.clock_s() if ctx else 0.0, kind="input", error=str(exc)))
    except BaseException as exc:  # noqa: BLE001 - everything the library throws is reported, then we exit
        emit(ev.Log(t_s=ctx.clock_s() if ctx else 0.0, level="error", message=traceback.format_exc()))
        finish(ev.RunFailed(t_s=ctx.clock_s() if ctx else 0.0, kind="error", error=f"{type(exc).__name__}: {exc}"))
    finally:
        if sampler is not None:
            sampler.stop()  # a no-op when finish() stopped it; here for an emit that raised
        if cluster is not None:
            cluster.close()
        conn.close()


def _server_sources(ctx) -> list:
    """Serving: the server's own metrics at the telemetry rate, when its /metrics has any tuibench keeps."""
    spec = ctx.spec
    if spec.scenario != "serving" or not spec.serving.endpoint:
        return []
    from tuibench.telemetry.server_metrics import metrics_url, server_source

    url = spec.serving.server_metrics or metrics_url(spec.serving.endpoint)
    source = server_source(url)
    ctx.server_metrics_url = source.url if source else None
    ctx.log(f"server metrics: {url}" if source else f"server metrics: N/A (nothing tuibench reads at {url})")
    return [source] if source and source.sampled else []


def _join_cluster(spec: RunSpec):
    """Connects to the run's Ray cluster; a parallel layout larger than its GPUs is one line now."""
    from tuibench.cluster.ray_session import ClusterSession

    cluster = ClusterSession(spec.ray_address)
    layout = spec.parallel
    if layout.gpus > 1 and cluster.gpus < layout.gpus:
        cluster.close()
        raise UserError(f"{layout.label} needs {layout.gpus} GPUs (tensor × pipeline × data) and the Ray cluster at "
                        f"{spec.ray_address} has {cluster.gpus} over {len(cluster.nodes)} node(s): lower the "
                        "parallel sizes, or add nodes")
    return cluster


"""The parent side of the serving scenario: the managed servers of a plan, launched, awaited and always stopped.

One server per (model, library) is started when the first serving step of that library needs it, and
reused for every later serving step of it (every rate, every dataset): its start-up is paid once. It is
restarted if it died, and stopped before a step that does not need it, so that an idle server never
competes with an offline run for the cores.
"""

import datetime as dt
import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable

import msgspec

from tuibench.core import events as ev
from tuibench.core.errors import UserError
from tuibench.core.paths import data_dir
from tuibench.core.spec import RunSpec
from tuibench.models.convert import convert_in_subprocess
from tuibench.models.resolve import resolve_model
from tuibench.runner.supervisor import Cancelled, Tick, no_tick
from tuibench.servers.managed import ManagedServer, ServerFailed, check_port_free, free_port

__all__ = ["ServerFailed", "ServerPool"]


class ServerPool:
    def __init__(self, port: int | None = None):
        self._port = port
        self._key: tuple | None = None
        self._server: ManagedServer | None = None
        self._model_path = ""  # the folder the server loaded: the model name it answers to by default

    def endpoint(self, spec: RunSpec, emit: Callable[[ev.Event], None], clock: Callable[[], float],
                 cancel: Callable[[], bool] = lambda: False) -> tuple[RunSpec, Tick]:
        """The spec with its endpoint filled in, and a tick that relays the server's log into the run.

        With an endpoint given by the user, nothing is launched. Otherwise this library's server is started
        unless it is already up; while it starts, its log lines reach the run through `emit`, and `cancel()`
        stops the wait (Cancelled). ServerFailed if it exits or never answers.
        """
        from tuibench.backends import backend_class

        if spec.serving.endpoint:
            check_served_model(spec, lambda waited_s: emit(ev.Log(
                t_s=clock(), message=f"waiting for {spec.serving.endpoint} to answer ({waited_s:.0f} s of "
                                     f"{spec.serving.endpoint_wait_s:g})")), cancel)
            return spec, no_tick
        key = _server_key(spec)
        backend = backend_class(spec.library)
        reused = self._key == key and self._server is not None and self._server.alive()
        # A cache that could not be emptied: only a fresh server is as cold as the first step's was.
        if not (reused and self._reset(backend, spec, emit, clock)):
            self.stop()
            self._start(spec, backend, emit, clock, cancel)
            self._key = key
        server = self._server
        command = server.command
        serving = msgspec.structs.replace(
            spec.serving, endpoint=command.base_url, managed=True,
            served_model=spec.serving.served_model or self._model_path,
            server_metrics=spec.serving.server_metrics or command.base_url + command.metrics_path)
        return msgspec.structs.replace(spec, serving=serving), server.tick

    def _start(self, spec: RunSpec, backend, emit, clock, cancel) -> None:
        if self._port is not None:
            check_port_free(self._port)
        emit(ev.Phase(t_s=clock(), name="loading", detail=f"starting the {spec.library} server"))
        model_path = str(convert_in_subprocess(resolve_model(spec.model, spec.random_weights)))
        command = backend.server_command(model_path, self._port or free_port(), spec)
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        server = ManagedServer(command, data_dir() / "logs" / f"{backend.name}-{stamp}-{command.port}.log")
        self._server, self._model_path = server, model_path
        server.start()
        emit(ev.Log(t_s=clock(), message=f"started {command.name} (pid {server.process.pid}) on {command.base_url}, "
                                          f"log: {server.log_path}"))

        def on_wait() -> None:
            for event in server.tick(clock):  # the server's start-up lines, as they come
                emit(event)
            if cancel():
                raise Cancelled

        server.wait_healthy(on_wait)
        process_s, load_s = server.start_up_s()
        emit(ev.ServerStarted(t_s=clock(), server=command.name, process_start_s=process_s, load_s=load_s))
        emit(ev.Log(t_s=clock(), message=f"{command.name} is up: {process_s:.1f} s to its first output, then "
                                          f"{load_s:.1f} s to answer"))

    def _reset(self, backend, spec: RunSpec, emit, clock) -> bool:
        """Empties the reused server's prefix cache, so this step starts as cold as the first did (a warm cache
        from an earlier step would flatter the next); True when done, or when the server caches nothing."""
        if backend.reset_cache_path is None:
            if not (backend.caches_prefixes and spec.prefix_caching is not False):
                return True
            emit(ev.Log(t_s=clock(), message=f"{backend.name}'s server has no route to empty its prefix cache: "
                                              "restarting it, so that this step starts as cold as the first"))
            return False
        url = self._server.command.base_url + backend.reset_cache_path
        try:
            with urllib.request.urlopen(urllib.request.Request(url, method="POST"), timeout=30):
                pass
        except (urllib.error.URLError, OSError) as exc:
            emit(ev.Log(t_s=clock(), level="warning", message=f"could not reset the prefix cache ({exc}): restarting "
                                                              "the server"))
            return False
        emit(ev.Log(t_s=clock(), message=f"prefix cache emptied before this step (POST {backend.reset_cache_path})"))
        return True

    def release_unless(self, spec: RunSpec | None) -> None:
        """Stops the server unless `spec` (the next step) is a serving step that will use it."""
        if spec is None or spec.scenario != "serving" or spec.serving.endpoint or self._key != _server_key(spec):
            self.stop()

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
        self._server, self._key = None, None

    def __enter__(self) -> "ServerPool":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _server_key(spec: RunSpec) -> tuple:
    """What a server is started with beyond the workload: steps that agree on it share one server."""
    return spec.model, spec.library, spec.prefix_caching, spec.speculative_tokens


def check_served_model(spec: RunSpec, on_wait: Callable[[float], None] = lambda waited_s: None,
                       cancel: Callable[[], bool] = lambda: False) -> None:
    """The run's look at a user's endpoint (see probe_endpoint), waiting `endpoint_wait_s` for a server still
    starting."""
    serving = spec.serving
    model = serving.served_model or resolve_model(spec.model, spec.random_weights).path
    probe_endpoint(serving.endpoint, model, serving.api_key_env, serving.endpoint_wait_s, on_wait, cancel)


def probe_endpoint(endpoint: str, model: str, api_key_env: str | None = None, wait_s: float = 0.0,
                   on_wait: Callable[[float], None] = lambda waited_s: None,
                   cancel: Callable[[], bool] = lambda: False) -> None:
    """One look at a user's endpoint before anything is measured: nothing listening, a server that is not
    OpenAI-compatible (its GET /v1/models is no model list: an HTTP error, a web page) or a model name it does not
    serve is one UserError now, not a failure on every request. A server still starting is waited for `wait_s`
    (`on_wait(seconds so far)` every few seconds; `cancel()` stops the wait)."""
    url = endpoint.rstrip("/") + "/v1/models"
    key = os.environ.get(api_key_env) if api_key_env else None
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"} if key else {})
    started = time.monotonic()
    told = 0.0
    while True:
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                listed = json.loads(response.read()).get("data")
            break
        except urllib.error.HTTPError as exc:
            raise UserError(f"{endpoint} is not an OpenAI-compatible server: GET /v1/models answered HTTP {exc.code} "
                            f"({exc.reason}); give the server's address without /v1, e.g. http://127.0.0.1:8000") \
                from None
        except (urllib.error.URLError, OSError) as exc:
            waited_s = time.monotonic() - started
            if waited_s >= wait_s:
                reason = getattr(exc, "reason", exc)
                waited = f" for {wait_s:g} s" if wait_s else ""
                raise UserError(f"nothing answers at {endpoint}{waited} ({reason}): start the server first, "
                                "check --endpoint, or give it time with --wait-for-endpoint SECONDS") from None
            if cancel():
                raise Cancelled from None
            if waited_s - told >= 5.0:
                told = waited_s
                on_wait(waited_s)
            time.sleep(0.5)
        except (ValueError, AttributeError):
            listed = None  # not JSON, or JSON that is no object
            break
    if not isinstance(listed, list):
        raise UserError(f"{endpoint} is not an OpenAI-compatible server: GET /v1/models gave no model list")
    names = [m.get("id") for m in listed if isinstance(m, dict) and m.get("id")]
    if names and model not in names:
        raise UserError(f"{endpoint} serves {', '.join(map(repr, names))}, not {model!r}: "
                        f"pass --served-model-name {names[0]}")

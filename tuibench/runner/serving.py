"""The parent side of the serving scenario: a server for the run, launched, awaited and always stopped."""

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import msgspec

from tuibench.backends.base import Backend
from tuibench.core.paths import data_dir
from tuibench.core.spec import RunSpec
from tuibench.models.convert import convert_in_subprocess
from tuibench.models.resolve import resolve_model
from tuibench.runner.supervisor import Tick, no_tick
from tuibench.servers.managed import ManagedServer, ServerFailed, check_port_free, free_port

__all__ = ["ServerFailed", "serving_endpoint"]


@contextmanager
def serving_endpoint(spec: RunSpec, backend: type[Backend], port: int | None = None,
                     say: Callable[[str], None] = lambda message: None) -> Iterator[tuple[RunSpec, Tick]]:
    """Yields the spec with its endpoint filled in, and a tick that relays the server's log.

    With --endpoint given, nothing is launched. Otherwise the backend's server runs for the duration.
    """
    serving = msgspec.structs.replace(spec.serving, **backend.serving_overrides)
    if spec.serving.endpoint:
        yield msgspec.structs.replace(spec, serving=serving), no_tick
        return
    if port is not None:
        check_port_free(port)
    model_path = str(convert_in_subprocess(resolve_model(spec.model)))
    command = backend.server_command(model_path, port or free_port(), spec)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    server = ManagedServer(command, data_dir() / "logs" / f"{backend.name}-{stamp}-{command.port}.log")
    with server:
        say(f"started {command.name} (pid {server.process.pid}) on {command.base_url}, log: {server.log_path}")
        server.wait_healthy()
        say(f"{command.name} is up")
        serving = msgspec.structs.replace(serving, endpoint=command.base_url, served_model=serving.served_model or model_path)
        yield msgspec.structs.replace(spec, serving=serving), server.tick

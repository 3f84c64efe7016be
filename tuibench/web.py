"""`tuibench web`: the terminal app in a browser, served by textual-serve (each tab an app process of its own).

What is ours: the command each tab runs, the refusal of a busy port, and the page's links taken from the request
itself. textual-serve writes into the page the URL it was started with (http://127.0.0.1:8000); a browser that
reaches the app another way (through `ssh -L 9000:127.0.0.1:8000`, at http://localhost:9000) would then open its
websocket to an address it cannot reach (textual-serve issue #42). Here each page names the host it was asked for.
"""

import shlex
import sys
from pathlib import Path

from tuibench.servers.managed import check_port_free


def app_command(db: Path, replay: Path | None, read_only: bool) -> str:
    """What each tab runs: the app, on this interpreter, over the same database."""
    argv = [sys.executable, "-m", "tuibench", "app", "--db", str(db)]
    if replay is not None:
        argv += ["--replay", str(replay)]
    if read_only:
        argv.append("--read-only")
    return shlex.join(argv)


def serve(host: str, port: int, db: Path, replay: Path | None, read_only: bool) -> None:
    # The reason as the system gives it: on a host of the user's choosing, a busy port is not the only refusal.
    check_port_free(port, host, "cannot serve on {host}:{port} ({reason}): pick another with --port")
    _server_class()(app_command(db, replay, read_only), host=host, port=port, title="tuibench").serve()


def _server_class():
    import aiohttp_jinja2
    from textual_serve.server import Server

    class RequestAddressedServer(Server):
        """textual-serve's server, whose page takes its links from the request: the address the browser used."""

        @aiohttp_jinja2.template("app_index.html")
        async def handle_index(self, request):
            scheme = request.headers.get("X-Forwarded-Proto", request.scheme)
            origin = f"{scheme}://{request.host}"
            static = origin + str(request.app.router["static"].url_for(filename="/")).rstrip("/") + "/"
            websocket = f"{'wss' if scheme == 'https' else 'ws'}://{request.host}" + \
                str(request.app.router["websocket"].url_for())
            font_size = request.query.get("fontsize", "16")
            return {"font_size": int(font_size) if font_size.isdigit() else 16, "app_websocket_url": websocket,
                    "config": {"static": {"url": static}}, "application": {"name": self.title}}

    return RequestAddressedServer

"""What both stand-ins serve: the mock server, the engine's metric names, and its cache-reset route if it has one.

The schedule comes from the environment (the engine's command line has no place for it): STAND_IN_TTFT_MS,
STAND_IN_ITL_MS, STAND_IN_MAX_CONCURRENCY.
"""

import asyncio
import json
import os
import sys


def announce(engine: str, arguments: dict) -> None:
    """One line the tests read back from the server's log: what the engine was asked for."""
    print(f"stand-in {engine} arguments: {json.dumps(arguments, sort_keys=True)}", flush=True)


def serve(model: str, host: str, port: int, metrics: str, reset_path: str | None = None) -> None:
    from aiohttp import web

    from tuibench.servers.mock import MockConfig, MockServer

    limit = os.environ.get("STAND_IN_MAX_CONCURRENCY")
    config = MockConfig(model=model, metrics=metrics, ttft_ms=float(os.environ.get("STAND_IN_TTFT_MS", "20")),
                        itl_ms=float(os.environ.get("STAND_IN_ITL_MS", "5")),
                        max_concurrency=int(limit) if limit else None)
    app = MockServer(config).app()
    if reset_path is not None:
        async def reset(request):
            print(f"stand-in: cache reset ({request.method} {reset_path})", flush=True)
            return web.Response(text="ok")

        app.router.add_route("*", reset_path, reset)

    async def main() -> None:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, host, port).start()
        print(f"stand-in serving on http://{host}:{port}", flush=True)
        await asyncio.Event().wait()

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)

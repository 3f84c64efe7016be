"""`tuibench mock-server` for a benchmark: started on a free port of 127.0.0.1 and awaited until it answers."""

import subprocess
import sys
import time
import urllib.request

START_TIMEOUT_S = 30.0


def start_mock(*flags: str, env: dict | None = None, stdout=subprocess.DEVNULL) -> tuple[subprocess.Popen, str]:
    """The server process and its URL, once GET /health answers; RuntimeError if it exits or takes too long."""
    from tuibench.servers.managed import free_port

    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "tuibench", "mock-server", "--host", "127.0.0.1", "--port",
                                str(port), *flags], env=env, stdout=stdout, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=1):
                return process, url
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise RuntimeError(f"the mock server ({' '.join(flags)}) did not start") from None
            time.sleep(0.1)

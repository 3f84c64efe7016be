"""`tuibench web` in a real browser: Debian's Chromium, driven by Playwright, against the server on 127.0.0.1.

The terminal is drawn on a canvas, so what the page shows is read from the bytes the app sends it over the
websocket (its escape sequences stripped), and looked at in the screenshots the test leaves beside it."""

import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import REPO
from tuibench.servers.managed import free_port

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(shutil.which("chromium") is None, reason="needs Debian's chromium (make install)")]

ESCAPES = re.compile(rb"\x1b\[[0-9;?<>=]*[ -/]*[@-~]|\x1b[()][0-9A-Za-z]|\x1b[=>78]")
SHOTS = Path(__file__).parent / "__screenshots__"


class Tab:
    """A browser tab on the app: what it was sent so far, as text, and keys typed into its terminal."""

    def __init__(self, browser, url: str):
        self.page = browser.new_page(viewport={"width": 1280, "height": 800})
        self.frames: list[bytes] = []
        self.page.on("websocket", lambda ws: ws.on("framereceived", lambda data: self.frames.append(
            data if isinstance(data, bytes) else data.encode())))
        self.page.goto(url, wait_until="domcontentloaded")

    def text(self, since: int = 0) -> str:
        return ESCAPES.sub(b"", b"".join(self.frames[since:])).decode("utf-8", "replace")

    def wait_for(self, text: str, since: int = 0, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while text not in self.text(since):
            assert time.monotonic() < deadline, f"{text!r} never shown; last: {self.text(since)[-500:]!r}"
            self.page.wait_for_timeout(100)

    def press(self, *keys: str) -> int:
        """Types `keys` into the terminal; returns the frame count before them (to wait for what they bring)."""
        mark = len(self.frames)
        self.page.locator(".xterm-helper-textarea").focus()
        for key in keys:
            self.page.keyboard.press(key)
            self.page.wait_for_timeout(150)
        return mark

    def shot(self, name: str) -> Path:
        SHOTS.mkdir(exist_ok=True)
        path = SHOTS / f"{name}.png"
        self.page.screenshot(path=path)
        return path


@pytest.fixture
def web(sample_db, tmp_path):
    """Starts `tuibench web` on a free port of 127.0.0.1 over the sample store; yields a function opening tabs."""
    from playwright.sync_api import sync_playwright

    servers = []

    def serve(*args: str) -> str:
        port = free_port()
        servers.append(subprocess.Popen([sys.executable, "-m", "tuibench", "web", "--port", str(port), "--db",
                                         str(sample_db), *args], cwd=REPO, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True))
        deadline = time.monotonic() + 30
        import urllib.request
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1).close()
                return f"http://127.0.0.1:{port}/"
            except OSError:
                assert time.monotonic() < deadline and servers[-1].poll() is None, "tuibench web did not start"
                time.sleep(0.2)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox"])
        try:
            yield serve, browser
        finally:
            browser.close()
            for server in servers:
                server.terminate()
                server.wait(20)


def test_the_app_in_a_browser_goes_to_history_and_opens_a_run_with_its_throughput(web):
    serve, browser = web
    tab = Tab(browser, serve())
    tab.wait_for("plan file (or the choices below)")  # Setup
    tab.shot("web-setup")
    mark = tab.press("5")
    tab.wait_for("demo: transformers vs vllm", since=mark)  # History, its plan first
    tab.shot("web-history")
    mark = tab.press("ArrowDown", "Enter")  # run 7, the newest but a profile: transformers serving short2long
    tab.wait_for("run 7", since=mark)  # on Live
    tab.wait_for("13.5", since=mark)  # its output tok/s, as History listed it
    assert tab.shot("web-run").stat().st_size > 20_000


def test_read_only_starts_nothing_and_a_second_tab_waits_for_the_first_ones_run(web, sample_db):
    from tuibench.core.store import ResultsStore

    serve, browser = web
    before = len(ResultsStore.open(sample_db, create=False).list_runs())
    shown = Tab(browser, serve("--read-only"))
    shown.wait_for("plan file (or the choices below)")
    shown.wait_for("read-only: this app shows", since=shown.press("r"))  # a toast: its lines wrap
    assert len(ResultsStore.open(sample_db, create=False).list_runs()) == before

    url = serve()
    first, second = Tab(browser, url), Tab(browser, url)
    for tab in (first, second):
        tab.wait_for("plan file (or the choices below)")
    first.wait_for(" · running · ", since=first.press("r"))  # Live: the run's engine loading
    first.shot("web-first-tab")
    second.wait_for("a run is in progress", since=second.press("r"))
    second.shot("web-second-tab")


def test_the_page_links_to_the_address_it_was_asked_at_and_a_busy_port_is_one_line(web, cli_env):
    """Through `ssh -L 9000:127.0.0.1:PORT`, the browser asks for localhost:9000: its websocket must go there too,
    not to the address the server was started with (textual-serve issue #42)."""
    import urllib.request

    from helpers import tuibench

    serve, _ = web
    url = serve()
    request = urllib.request.Request(url, headers={"Host": "localhost:9000"})
    page = urllib.request.urlopen(request, timeout=10).read().decode()
    assert 'data-session-websocket-url="ws://localhost:9000/ws"' in page
    assert 'src="http://localhost:9000/static/js/textual.js"' in page
    port = url.rsplit(":", 1)[1].strip("/")
    busy = tuibench("web", "--port", port, env=cli_env)
    assert busy.returncode == 2 and busy.stderr.strip() == (
        f"tuibench: cannot serve on 127.0.0.1:{port} (Address already in use): pick another with --port")

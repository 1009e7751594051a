"""One way to serve the app and drive a browser, for everything that does: the browser tests
(tests/e2e), the benchmark's server rows, both load tests and scripts/proxy-check.py.

A server is `streamlit run app.py` (or another module) started as a child process on a free
loopback port and always stopped when its block ends. Chromium is Debian's, driven by
Playwright, never a downloaded one.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Self

from bench import REPO

CHROMIUM = os.environ.get("BATCHSCOPE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
START_TIMEOUT_S = 120.0


def data_root(given: str | os.PathLike | None = None) -> Path:
    """The data root holding MNIST/raw: `given`, else $DATALIB_ROOT, else the workplace's
    read-only copy beside the repository (../shared/data)."""
    root = given or os.environ.get("DATALIB_ROOT") or REPO.parent / "shared" / "data"
    return Path(root).expanduser().absolute()


def add_reader_options(parser: argparse.ArgumentParser, think: tuple[float, float]) -> None:
    """The options both load tests take: the data root, and the readers' pace."""
    parser.add_argument(
        "--root", help="data root holding MNIST/raw (default: $DATALIB_ROOT, else ../shared/data)"
    )
    parser.add_argument(
        "--think",
        type=float,
        nargs=2,
        default=think,
        metavar=("MIN", "MAX"),
        help="seconds a reader waits between interactions, drawn uniformly "
        f"(default {think[0]:g} {think[1]:g})",
    )


def free_port() -> int:
    """A TCP port on loopback that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """`python -m MODULE app.py` on a free loopback port, as a child process.

    `module` is "streamlit run" for the app as users start it, or "bench.preload";
    `env` is added to this process's environment (DATALIB_ROOT is always `root`); `port`
    pins the port (a restart on the same one), else a free one is taken.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        log: Path,
        *,
        module: str = "streamlit run",
        env: Mapping[str, str] | None = None,
        port: int | None = None,
    ) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.argv = [sys.executable, "-m", *module.split(), "app.py"]
        self.argv += [f"--server.port={self.port}", "--server.address=127.0.0.1"]
        self.argv += ["--server.headless=true"]
        self.env = {**os.environ, "DATALIB_ROOT": str(root), "BROWSER_PATH": CHROMIUM}
        self.env.update(env or {})
        self.log = log
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> Self:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                self.argv, cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def pid(self) -> int:
        assert self.process is not None, "the server has not been started"
        return self.process.pid

    def stop(self) -> None:
        """SIGTERM, as a container stop sends; killed if it has not exited within 15 s."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=15)

    def wait_healthy(self, timeout: float = START_TIMEOUT_S) -> None:
        """Until /_stcore/health answers ok; fails if the server exits or takes too long."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"the server exited with {self.process.returncode}:\n{self.log.read_text()}"
                )
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2) as answer,
            ):
                if answer.read() == b"ok":
                    return
            time.sleep(0.05)
        raise RuntimeError(f"the server was not healthy after {timeout:g} s: {self.log}")

    def cpu_seconds(self) -> float:
        """User plus system CPU time the server process has used so far."""
        from bench.machine import process_cpu_seconds  # bench.machine imports torch

        return process_cpu_seconds(self.pid)

    def rss(self) -> int:
        """Resident memory of the server process in bytes (VmRSS)."""
        from bench.machine import process_rss_bytes

        return process_rss_bytes(self.pid)


@contextlib.contextmanager
def serving(
    root: str | os.PathLike,
    log: Path,
    *,
    env: Mapping[str, str] | None = None,
    port: int | None = None,
) -> Iterator[Server]:
    """`streamlit run app.py` on loopback, healthy, until the block ends."""
    with Server(root, log, env=env, port=port) as server:
        server.wait_healthy()
        yield server


@contextlib.contextmanager
def chromium(*args: str) -> Iterator:
    """Debian's headless Chromium (a Playwright Browser), with the house flags and `args`."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, *args], headless=True
        )
        try:
            yield browser
        finally:
            browser.close()


def upgrade_status(
    port: int,
    host: str,
    *,
    address: str = "127.0.0.1",
    tls_name: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> int:
    """The HTTP status of a WebSocket handshake on /_stcore/stream sent with this Host header
    (101: the session opens), over TLS to `tls_name` when given, certificate not checked."""
    key = base64.b64encode(os.urandom(16)).decode()
    extra = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
    request = (
        f"GET /_stcore/stream HTTP/1.1\r\nHost: {host}\r\n{extra}"
        "Upgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        "Sec-WebSocket-Protocol: streamlit\r\n\r\n"
    )
    sock = socket.create_connection((address, port), timeout=10)
    if tls_name:
        sock = ssl._create_unverified_context().wrap_socket(sock, server_hostname=tls_name)
    with sock:
        sock.sendall(request.encode())
        return int(sock.makefile("rb").readline().split()[1])


# The index-th Plotly chart's title and traces as the page drew them (_fullData holds the
# values decoded; data keeps Plotly's base64 typed arrays); null until it is drawn with at
# least `traces` traces.
_READ_CHART = """([index, traces]) => {
    const chart = document.querySelectorAll('.js-plotly-plot')[index];
    if (!chart || !chart._fullLayout || !chart._fullData) return null;
    if (chart._fullData.length < traces) return null;
    return {
        title: chart._fullLayout.title ? chart._fullLayout.title.text : "",
        traces: chart._fullData.map(t => ({
            name: t.name, x: Array.from(t.x || []).map(String), y: Array.from(t.y || []),
        })),
    };
}"""
ERRORS = '[data-testid="stException"], [data-testid="stAlertContentError"]'


def read_chart(page, index: int = 0, *, traces: int = 1, timeout_s: float = 120.0) -> dict:
    """The index-th chart on `page` once drawn with at least `traces` traces: its title
    (Plotly's HTML tags dropped), its traces ({name, x, y}) and the page's error boxes."""
    chart = page.wait_for_function(
        _READ_CHART, arg=[index, traces], polling=100, timeout=timeout_s * 1000
    ).json_value()
    chart["title"] = re.sub(r"<[^>]+>", "", chart["title"])  # the theme bolds titles
    chart["errors"] = page.locator(ERRORS).all_inner_texts()
    return chart


def main(argv: list[str] | None = None) -> int:
    """`python -m bench.serving chart URL SCREENSHOT`: open URL in Debian's Chromium, print the
    first chart (title, traces, error boxes) as JSON and save a screenshot. For checks of a
    server started elsewhere (scripts/docker-check.sh); needs only playwright."""
    parser = argparse.ArgumentParser(prog="python -m bench.serving", description=main.__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    chart = commands.add_parser("chart", help="print the page's first chart as JSON")
    chart.add_argument("url")
    chart.add_argument("screenshot")
    chart.add_argument("--traces", type=int, default=1, help="wait for this many traces")
    args = parser.parse_args(argv)
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(args.url, timeout=START_TIMEOUT_S * 1000)
        try:
            found = read_chart(page, traces=args.traces, timeout_s=180)
            page.wait_for_timeout(1500)  # the bars finish drawing, for the screenshot
        finally:
            page.screenshot(path=args.screenshot, full_page=True)
    print(json.dumps(found))
    return 0


if __name__ == "__main__":
    sys.exit(main())

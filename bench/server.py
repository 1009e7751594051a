"""The real server in a real browser: cold start to the balance chart, and the server's memory.

Each server is `streamlit run app.py` started here as a child process on a free loopback
port, and always stopped before its function returns. Chromium is Debian's, driven by
Playwright; only loopback addresses are ever opened.
"""

from __future__ import annotations

import resource
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import Browser, BrowserContext

from bench import REPO
from bench.report import Row, duration, megabytes
from bench.serving import Server, chromium

CHART = ".js-plotly-plot g.point"  # a bar of the Plotly chart is on screen: the chart is drawn
COLD_START_TARGET = 8.0  # seconds
MNIST_TARGET = 120 * 2**20  # bytes the two MNIST splits may add to the server
SESSION_TARGET = 5 * 2**20  # bytes each further open session may add
SESSIONS = 20
COLD_REPEATS = 3
TIMEOUT = 120  # seconds for any one server or page to come up


def _progress(message: str) -> None:
    print(f"  {message}", flush=True)


def open_chart(browser: Browser, server: Server) -> BrowserContext:
    """A new browser session (its own context) on /balance, returned once the chart is drawn."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.goto(f"{server.url}/balance", timeout=TIMEOUT * 1000)
    page.wait_for_selector(CHART, timeout=TIMEOUT * 1000)
    return context


def _import_time() -> tuple[float, float]:
    """Wall and CPU seconds of `python -c "import torch, torchvision"`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import torch, torchvision"], check=True, cwd=REPO)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def _cold_start(browser: Browser, root: str, log: Path) -> tuple[float, float, float]:
    """Seconds from process start to healthy and to the chart drawn, and server CPU seconds."""
    start = time.perf_counter()
    with Server(root, log) as server:
        server.wait_healthy()
        healthy = time.perf_counter() - start
        context = open_chart(browser, server)
        drawn = time.perf_counter() - start
        cpu = server.cpu_seconds()
        context.close()
    return healthy, drawn, cpu


def cold_start_row(browser: Browser, root: str, log: Path) -> Row:
    """Process start to the balance chart on screen, against importing torch, taking turns."""
    healthy, drawn, cpu, imports, imports_cpu = [], [], [], [], []
    for repeat in range(COLD_REPEATS):
        up, chart, server_cpu = _cold_start(browser, root, log)
        wall, import_cpu = _import_time()
        healthy.append(up)
        drawn.append(chart)
        cpu.append(server_cpu)
        imports.append(wall)
        imports_cpu.append(import_cpu)
        _progress(
            f"cold start {repeat + 1}/{COLD_REPEATS}: chart drawn after {drawn[-1]:.2f} s, "
            f"imports {imports[-1]:.2f} s"
        )
    median = statistics.median
    return Row(
        key="cold_start",
        work="cold start: `streamlit run app.py` to the balance chart drawn in Chromium",
        measured=(
            f"{duration(median(drawn))} (median of {len(drawn)}; server healthy after "
            f"{duration(median(healthy))}; server CPU {duration(median(cpu))})"
        ),
        baseline=(
            f'{duration(median(imports))}: `python -c "import torch, torchvision"` '
            f"(median of {len(imports)}; CPU {duration(median(imports_cpu))})"
        ),
        result=f"{duration(median(drawn))}, {median(drawn) / median(imports):.1f}x the imports",
        target=f"<= {COLD_START_TARGET:g} s",
        ok=median(drawn) <= COLD_START_TARGET,
        data={
            "drawn_s": drawn,
            "healthy_s": healthy,
            "server_cpu_s": cpu,
            "imports_s": imports,
            "imports_cpu_s": imports_cpu,
        },
    )


def _settled_rss(server: Server) -> int:
    """RSS once the last script runs have finished and freed what they free."""
    time.sleep(1.0)
    return server.rss()


def memory_rows(browser: Browser, root: str, log: Path) -> list[Row]:
    """Server RSS after imports, after the first session loaded MNIST, with 20 sessions."""
    contexts: list[BrowserContext] = []
    with Server(root, log, module="bench.preload") as server:
        server.wait_healthy()
        with urllib.request.urlopen(f"{server.url}/", timeout=10) as answer:  # one trivial request
            answer.read()
        imports = _settled_rss(server)
        try:
            contexts.append(open_chart(browser, server))
            mnist = _settled_rss(server)
            _progress(f"session 1/{SESSIONS}: {megabytes(mnist)}")
            while len(contexts) < SESSIONS:
                contexts.append(open_chart(browser, server))
            _progress(f"sessions 2-{SESSIONS} opened")
            sessions = _settled_rss(server)
        finally:
            for context in contexts:
                context.close()
        closed = _settled_rss(server)
    added = mnist - imports
    per_session = (sessions - mnist) / (SESSIONS - 1)
    figures = {
        "after_imports": imports,
        "after_mnist": mnist,
        "with_sessions": sessions,
        "after_sessions_closed": closed,
        "sessions": SESSIONS,
    }
    return [
        Row(
            key="rss_imports",
            work="server memory after imports (RSS; every module the pages use, no data)",
            measured=megabytes(imports),
            baseline="-",
            result=megabytes(imports),
            target="- (the baseline of the next two rows)",
            ok=None,
            data=figures,
        ),
        Row(
            key="rss_mnist",
            work="server memory added by MNIST: first session on /balance (loads train + test)",
            measured=f"+{megabytes(added)} (RSS {megabytes(mnist)})",
            baseline=f"{megabytes(imports)}: RSS after imports",
            result=f"+{megabytes(added)}",
            target=f"<= {MNIST_TARGET / 2**20:.0f} MB",
            ok=added <= MNIST_TARGET,
            data=figures,
        ),
        Row(
            key="rss_session",
            work=f"server memory per extra session, {SESSIONS} browser sessions on /balance",
            measured=(
                f"+{megabytes(per_session)} each (RSS {megabytes(sessions)} with {SESSIONS}; "
                f"{megabytes(closed)} after closing them)"
            ),
            baseline=f"{megabytes(mnist)}: RSS with 1 session",
            result=f"+{megabytes(per_session)} per session",
            target=f"<= {SESSION_TARGET / 2**20:.0f} MB each",
            ok=per_session <= SESSION_TARGET,
            data=figures,
        ),
    ]


def run(root: str, results: Path) -> list[Row]:
    """The browser figures; server logs go to `results`/server.log."""
    log = results / "server.log"
    log.unlink(missing_ok=True)
    with chromium() as browser:
        return [cold_start_row(browser, root, log), *memory_rows(browser, root, log)]

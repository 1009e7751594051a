"""Load test: 20 real Chromium sessions, 10 interactions each, against one `streamlit run`.

    python -m tests.load [--sessions 20] [--out bench/results/load.json]

Each session waits 1-3 s between interactions, as a reader does. Reports errors (target 0),
p50/p95 interaction latency (target p95 < 2 s), the server's CPU time per interaction, and its
RSS before, at the peak and after the sessions close (target: back within 10% of before).
Loopback only; it stops by itself (a deadline on the whole run) and always stops its server.
Exits 1 when a target is missed, naming it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from playwright.async_api import async_playwright

from tests.conftest import REAL_ROOT
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, serving

DEADLINE_S = 480
THINK_S = (1.0, 3.0)  # a person reads the answer before the next click
P95_TARGET_S = 2.0
RSS_GROWTH_LIMIT = 0.10


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used, seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    """Resident memory of a process, MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


async def settle(page) -> None:
    await page.wait_for_function(
        "() => !document.querySelector('[data-testid=stStatusWidget]')"
        " && !document.querySelector('[data-stale=true]')"
    )


async def session(
    browser,
    url: str,
    number: int,
    latencies: list[tuple[str, float]],
    errors: list[str],
    think: tuple[float, float] = THINK_S,
):
    """One user: ten interactions across every page, each timed until its result is drawn."""
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    page.set_default_timeout(60_000)
    steps = [
        ("open batches", lambda: page.goto(f"{url}/batches"), "text=Batch 0 of 6,000"),
        ("next batch", lambda: page.get_by_role("button", name="Next").click(), "text=Batch 1 of"),
        ("next batch", lambda: page.get_by_role("button", name="Next").click(), "text=Batch 2 of"),
        ("open images", lambda: page.goto(f"{url}/images"), "text=Showing 60 of 60,000"),
        (
            "next gallery page",
            lambda: page.get_by_role("button", name="Page 2").click(),
            "text=Page 2 of 1,000",
        ),
        ("open histograms", lambda: page.goto(f"{url}/histograms"), ".js-plotly-plot"),
        (
            "one class",
            lambda: page.get_by_role("radio", name="One class").click(),
            "[data-testid=stSelectbox]",
        ),
        ("open balance", lambda: page.goto(f"{url}/balance"), ".js-plotly-plot"),
        (
            "percent",
            lambda: page.get_by_role("radio", name="percent", exact=True).click(),
            ".js-plotly-plot .gtitle:has-text('shares')",
        ),
        ("open overview", lambda: page.goto(f"{url}/"), "text=One example of each class"),
    ]
    try:
        for name, action, done in steps:
            start = time.perf_counter()
            try:
                await action()
                await page.locator(done).first.wait_for()  # the user sees the answer
                latencies.append((name, time.perf_counter() - start))
                await settle(page)  # the rest of the page is redrawn before the next click
                await asyncio.sleep(random.uniform(*think))
                if await page.locator("[data-testid=stException]").count():
                    errors.append(f"session {number}, {name}: exception box")
            except Exception as error:  # noqa: BLE001 - every failure is a finding to report
                errors.append(f"session {number}, {name}: {type(error).__name__}: {error}")
    finally:
        await context.close()


async def run(sessions: int, url: str, pid: int) -> dict:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        warm: list[tuple[str, float]] = []
        await session(browser, url, 0, warm, [], (0, 0))  # loads MNIST and its statistics
        await asyncio.sleep(2)
        before = rss_mb(pid)
        latencies: list[tuple[str, float]] = []
        errors: list[str] = []
        peak = before

        async def watch() -> None:
            nonlocal peak
            while True:
                peak = max(peak, rss_mb(pid))
                await asyncio.sleep(0.2)

        watcher = asyncio.create_task(watch())
        started, cpu_before = time.perf_counter(), cpu_seconds(pid)
        await asyncio.gather(
            *(session(browser, url, n, latencies, errors) for n in range(1, sessions + 1))
        )
        wall, server_cpu = time.perf_counter() - started, cpu_seconds(pid) - cpu_before
        watcher.cancel()
        await browser.close()
    await asyncio.sleep(8)  # Streamlit drops closed sessions' state
    after = rss_mb(pid)
    ordered = sorted(seconds for _, seconds in latencies)
    by_step = {
        name: statistics.median(s for n, s in latencies if n == name) for name, _ in latencies
    }
    return {
        "median_s_by_interaction": by_step,
        "sessions": sessions,
        "interactions": len(latencies),
        "errors": errors,
        "p50_s": statistics.median(ordered) if ordered else None,
        "p95_s": ordered[int(0.95 * (len(ordered) - 1))] if ordered else None,
        "max_s": ordered[-1] if ordered else None,
        "wall_s": wall,
        "server_cpu_s_per_interaction": server_cpu / max(1, len(latencies)),
        "rss_before_mb": before,
        "rss_peak_mb": peak,
        "rss_after_mb": after,
        "cores": os.cpu_count(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.load", description=__doc__)
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--out", type=Path, default=Path("bench/results/load.json"))
    args = parser.parse_args()
    log = Path(tempfile.mkdtemp()) / "streamlit.log"
    with serving(REAL_ROOT, log) as (url, process):
        result = asyncio.run(asyncio.wait_for(run(args.sessions, url, process.pid), DEADLINE_S))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))

    missed = []
    if result["errors"]:
        missed.append(f"{len(result['errors'])} errors (target 0)")
    if result["p95_s"] is None or result["p95_s"] >= P95_TARGET_S:
        missed.append(f"p95 {result['p95_s']} s (target < {P95_TARGET_S} s)")
    if result["rss_after_mb"] > result["rss_before_mb"] * (1 + RSS_GROWTH_LIMIT):
        missed.append("server RSS did not come back after the sessions closed")
    print(f"| sessions x interactions | {result['sessions']} x 10 = {result['interactions']} |")
    print(f"| errors | {len(result['errors'])} |")
    print(
        f"| latency p50 / p95 / max | {result['p50_s']:.2f} / {result['p95_s']:.2f} / "
        f"{result['max_s']:.2f} s |"
    )
    print(
        f"| server RSS before / peak / after | {result['rss_before_mb']:.0f} / "
        f"{result['rss_peak_mb']:.0f} / {result['rss_after_mb']:.0f} MB |"
    )
    print(f"| wall time | {result['wall_s']:.1f} s on {result['cores']} cores |")
    print(f"| server CPU per interaction | {result['server_cpu_s_per_interaction']:.3f} s |")
    for name, seconds in result["median_s_by_interaction"].items():
        print(f"| {name} (median) | {seconds:.2f} s |")
    for error in result["errors"][:10]:
        print(f"error: {error}", file=sys.stderr)
    for miss in missed:
        print(f"missed: {miss}", file=sys.stderr)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())

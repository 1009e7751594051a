"""Every page's script run through the real app (AppTest), warm: data loaded, session open."""

from __future__ import annotations

import logging

from streamlit.testing.v1 import AppTest

from bench import REPO
from bench.report import Row, duration
from bench.timing import time_repeated

__all__ = ["pages", "run"]

PAGE_TARGET = 0.300  # seconds per warm script run
REPEATS = 7


def pages() -> list[str]:
    """The page files app.py routes to, by name."""
    return sorted(path.stem for path in (REPO / "pages").glob("*.py"))


def _failures(app: AppTest) -> list[str]:
    return [str(e.value) for e in app.exception] + [str(e.value) for e in app.error]


def run() -> list[Row]:
    # AppTest runs the script bare; Streamlit warns about that on every rerun.
    logging.getLogger("streamlit.runtime.scriptrunner_utils.script_run_context").disabled = True
    rows = []
    for page in pages():
        app = AppTest.from_file(str(REPO / "app.py"), default_timeout=120)
        app.run()
        app.switch_page(f"pages/{page}.py")
        first = time_repeated(app.run, repeats=1, warmup=0)
        # gc stays on: a collection is part of what a real rerun costs.
        warm = time_repeated(app.run, repeats=REPEATS, warmup=0, quiet_gc=False)
        failures = _failures(app)
        rows.append(
            Row(
                key=f"page_{page}",
                work=f"page script run, warm: {page} (AppTest rerun)",
                measured=f"{duration(warm.median)} (median of {warm.repeats})",
                baseline=f"- (its first run in the session: {duration(first.median)})",
                result=duration(warm.median) + (f"; FAILED: {failures[0]}" if failures else ""),
                target=f"<= {PAGE_TARGET * 1000:.0f} ms",
                ok=not failures and warm.median <= PAGE_TARGET,
                data={"warm": warm.as_dict(), "first": first.as_dict(), "failures": failures},
            )
        )
    return rows

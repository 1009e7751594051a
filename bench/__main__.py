"""`python -m bench`: time every hot path against its baseline, print the table, check targets.

Needs the real MNIST under `$DATALIB_ROOT` (or `--root`) and Debian's Chromium. Writes
bench/results/latest.md and latest.json; exits 1 naming each missed target.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from bench import REPO

RUN_TARGET = 300.0  # seconds for the whole run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--root", help="data root holding MNIST/raw (default: $DATALIB_ROOT)")
    parser.add_argument(
        "--out", type=Path, default=REPO / "bench" / "results", help="folder for the results"
    )
    args = parser.parse_args(argv)
    root = args.root or os.environ.get("DATALIB_ROOT")
    if not root:
        parser.error("set DATALIB_ROOT (or --root) to the folder that holds MNIST/raw")
    root = str(Path(root).expanduser().absolute())
    os.environ["DATALIB_ROOT"] = root  # AppTest and the servers load from the same root

    start = time.perf_counter()
    # Heavy imports after the argument check, so --help answers at once.
    import datalib
    from bench import compute, machine, pages, server
    from bench.report import Row, duration, missed, to_markdown, write

    if not Path(server.CHROMIUM).is_file():
        parser.error(f"no Chromium at {server.CHROMIUM}: apt-get install chromium")
    missing = datalib.missing_files("mnist", root)
    if missing:
        parser.error(f"MNIST is not under {root}: {', '.join(missing)} missing")

    facts = machine.describe()
    print(f"Machine: {facts['summary']}", flush=True)
    rows: list[Row] = []
    for name, section in (
        ("datalib", lambda: compute.run(root)),
        ("pages (AppTest)", pages.run),
        ("server and browser", lambda: server.run(root, args.out)),
    ):
        section_start = time.perf_counter()
        print(f"measuring {name}...", flush=True)
        rows += section()
        print(f"  {time.perf_counter() - section_start:.0f} s", flush=True)

    seconds = time.perf_counter() - start
    rows.append(
        Row(
            key="run",
            work="this whole benchmark run (`python -m bench`)",
            measured=duration(seconds),
            baseline="-",
            result=duration(seconds),
            target=f"<= {RUN_TARGET:.0f} s",
            ok=seconds <= RUN_TARGET,
        )
    )
    facts["load_average_at_end"] = machine.load_average()
    markdown, data = write(args.out, rows, facts, seconds)
    print()
    print(to_markdown(rows, facts, seconds))
    print(f"Written: {markdown}, {data}")
    failures = missed(rows)
    for row in failures:
        print(f"MISSED: {row.work}: {row.result} (target {row.target})", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

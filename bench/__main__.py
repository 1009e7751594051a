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
    parser.add_argument(
        "--data",
        type=Path,
        default=REPO / "bench" / "data",
        help="data root for the synthetic folder (written once, kept; git-ignored)",
    )
    parser.add_argument("--images", type=int, default=200_000, help="images in the folder")
    parser.add_argument("--size", type=int, default=64, help="side of each image, pixels")
    parser.add_argument(
        "--only",
        choices=["datalib", "pages", "server", "scan", "quality"],
        action="append",
        help="run only these sections (default: all)",
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
    from bench import compute, machine, pages, quality, server
    from bench import scan as scan_section
    from bench.report import Row, duration, missed, to_markdown, write
    from bench.serving import CHROMIUM

    if not Path(CHROMIUM).is_file():
        parser.error(f"no Chromium at {CHROMIUM}: apt-get install chromium")
    missing = datalib.missing_files("mnist", root)
    if missing:
        parser.error(f"MNIST is not under {root}: {', '.join(missing)} missing")

    facts = machine.describe()
    print(f"Machine: {facts['summary']}", flush=True)
    rows: list[Row] = []
    args.out.mkdir(parents=True, exist_ok=True)
    args.data.mkdir(parents=True, exist_ok=True)

    def scan_rows() -> list[Row]:
        found, figures = scan_section.run(root, args.data, args.out, args.images, args.size)
        facts["scan"] = figures
        return found

    took: dict[str, float] = {}
    for key, name, section in (
        ("datalib", "datalib", lambda: compute.run(root)),
        ("pages", "pages (AppTest)", pages.run),
        ("server", "server and browser", lambda: server.run(root, args.out)),
        ("scan", f"a {args.images:,}-image folder", scan_rows),
        ("quality", "data quality (the label jobs train for minutes)", lambda: quality.run(root)),
    ):
        if args.only and key not in args.only:
            continue
        section_start = time.perf_counter()
        print(f"measuring {name}...", flush=True)
        rows += section()
        took[key] = time.perf_counter() - section_start
        print(f"  {took[key]:.0f} s", flush=True)

    seconds = time.perf_counter() - start
    mnist = seconds - took.get("scan", 0.0) - took.get("quality", 0.0)
    rows.append(
        Row(
            key="run",
            work="this benchmark run on MNIST (`python -m bench`, all but the folder and "
            "quality sections)",
            measured=duration(mnist)
            + (f"; the folder section {duration(took['scan'])}" if "scan" in took else "")
            + (f"; the quality section {duration(took['quality'])}" if "quality" in took else ""),
            baseline="-",
            result=duration(mnist),
            target=f"<= {RUN_TARGET:.0f} s",
            ok=mnist <= RUN_TARGET,
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

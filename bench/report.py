"""Results as rows checked against their targets, written as a Markdown table and JSON."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

__all__ = ["Row", "duration", "megabytes", "missed", "to_markdown", "write"]

BUSY_LOAD = 1.0  # a 1-minute load average above this at the start: something else is running


@dataclass
class Row:
    """One line of the results table; `ok` is None for a figure that is reported, not checked."""

    key: str
    work: str
    measured: str
    baseline: str
    result: str
    target: str
    ok: bool | None
    data: dict = field(default_factory=dict)

    @property
    def verdict(self) -> str:
        return {True: "ok", False: "MISSED", None: "-"}[self.ok]


def percentile(ordered: list[float], fraction: float) -> float | None:
    """The nearest-rank percentile of sorted values: the smallest with `fraction` at or below."""
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)] if ordered else None


def duration(seconds: float) -> str:
    """A duration in the unit that keeps it readable: 0.4 µs, 35 µs, 2.10 ms, 52 ms, 10.30 s."""
    if seconds < 1e-5:
        return f"{seconds * 1e6:.1f} µs"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} µs"
    if seconds < 0.01:
        return f"{seconds * 1e3:.2f} ms"
    if seconds < 1:
        return f"{seconds * 1e3:.0f} ms"
    return f"{seconds:.2f} s"


def megabytes(n_bytes: float) -> str:
    return f"{n_bytes / 2**20:,.1f} MB"


def missed(rows: list[Row]) -> list[Row]:
    return [row for row in rows if row.ok is False]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def to_markdown(rows: list[Row], machine: dict, seconds: float) -> str:
    """The results table with the machine and the run's wall time above it."""
    loads = [machine["load_average_at_start"][0], machine.get("load_average_at_end", [0])[0]]
    header = (
        f"Machine: {machine['summary']}. Run: {machine['started']}, {seconds:.0f} s in all; "
        f"load average {loads[0]:g} at start, {loads[1]:g} at end."
    )
    lines = [header]
    if loads[0] > BUSY_LOAD:  # at the end the load counts this run's own server and browser
        lines.append(
            "Other work was running when this run started: wall-clock figures are inflated; "
            "ratios of figures timed in turns, and CPU times, hold better."
        )
    lines += [
        "",
        "| work | measured | baseline, same run | result | target | verdict |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        cells = (row.work, row.measured, row.baseline, row.result, row.target, row.verdict)
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


def write(folder: Path, rows: list[Row], machine: dict, seconds: float) -> tuple[Path, Path]:
    """Write latest.md and latest.json into `folder`; returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    markdown, data = folder / "latest.md", folder / "latest.json"
    markdown.write_text(to_markdown(rows, machine, seconds))
    record = {
        "machine": machine,
        "seconds": seconds,
        "missed": [row.key for row in missed(rows)],
        "rows": [asdict(row) | {"verdict": row.verdict} for row in rows],
    }
    data.write_text(json.dumps(record, indent=2) + "\n")
    return markdown, data

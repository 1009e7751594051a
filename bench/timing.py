"""Repeated timing: every figure is the median of several runs, with the spread kept."""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Timing", "time_interleaved", "time_once", "time_repeated"]


@dataclass(frozen=True)
class Timing:
    """Seconds per call over `repeats` runs: the median is the figure, min and max the spread."""

    median: float
    min: float
    max: float
    repeats: int

    def as_dict(self) -> dict[str, float | int]:
        return {
            "median_s": self.median,
            "min_s": self.min,
            "max_s": self.max,
            "repeats": self.repeats,
        }


def _timing(samples: list[float]) -> Timing:
    return Timing(statistics.median(samples), min(samples), max(samples), len(samples))


def _call(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def time_interleaved(
    fns: dict[str, Callable[[], object]], repeats: int, *, warmup: int = 1, quiet_gc: bool = True
) -> dict[str, Timing]:
    """Time several calls taking turns, so a burst of other work on the machine hits them alike.

    Each call runs `warmup` times untimed first. With `quiet_gc` the cyclic garbage collector
    is off while timing, so a collection owed to earlier garbage does not land on one call.
    """
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    samples: dict[str, list[float]] = {name: [] for name in fns}
    enabled = gc.isenabled()
    if quiet_gc:
        gc.disable()
    try:
        for _ in range(repeats):
            for name, fn in fns.items():
                samples[name].append(_call(fn))
    finally:
        if enabled:
            gc.enable()
    return {name: _timing(s) for name, s in samples.items()}


def time_repeated(
    fn: Callable[[], object], repeats: int, *, warmup: int = 1, quiet_gc: bool = True
) -> Timing:
    """Median of `repeats` timed calls after `warmup` untimed ones."""
    return time_interleaved({"": fn}, repeats, warmup=warmup, quiet_gc=quiet_gc)[""]


def time_once(fn: Callable[[], object]) -> Timing:
    """One timed call, for baselines that take seconds (the table says it ran once)."""
    return _timing([_call(fn)])

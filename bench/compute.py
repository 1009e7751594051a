"""datalib's hot paths against the way the tutorial does them, on the real MNIST train split."""

from __future__ import annotations

import itertools

import numpy as np
import torch
import torchvision
from torch.utils.data import DataLoader
from torchvision.transforms import ToTensor

import datalib
from bench.report import Row, duration
from bench.timing import time_interleaved, time_once, time_repeated

__all__ = ["run"]

# The train split's class counts, digits 0-9, as shared/data/README.md states them.
TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
CACHE_HIT_LIMIT = 1e-3  # seconds: a repeated call must be a look-up, not a computation
SPEEDUP_TARGET = 1000
COPY_RATIO_TARGET = 5.0
LAST_BATCH_RATIO_TARGET = 1.5
BATCH_SIZE = 10
SEED = 0


def _tutorial_dataset(root: str) -> torchvision.datasets.MNIST:
    return torchvision.datasets.MNIST(root, train=True, download=False, transform=ToTensor())


def _tutorial_class_counts(dataset: torchvision.datasets.MNIST) -> list[int]:
    """The tutorial's way: a shuffled DataLoader of 10, counting the labels one by one."""
    counts = [0] * 10
    for _images, labels in DataLoader(dataset, batch_size=BATCH_SIZE, shuffle=True):
        for label in labels:
            counts[int(label)] += 1
    return counts


def _loader_step(dataset: torchvision.datasets.MNIST, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Batch k of a real seeded DataLoader, reached by iterating it."""
    loader = DataLoader(
        dataset,
        batch_size=BATCH_SIZE,
        shuffle=True,
        generator=torch.Generator().manual_seed(SEED),
    )
    return next(itertools.islice(loader, k, None))


def cache_hit_row(key: str, work: str, fn, info) -> Row:
    """A row for a repeated call: its median time, and whether every repeat was an lru_cache
    hit (`info` is the cache's `cache_info`)."""
    fn()
    hits = info().hits
    timing = time_repeated(fn, repeats=1001, warmup=0)
    hit, all_hits = timing.median, info().hits - hits == timing.repeats
    return Row(
        key=key,
        work=work,
        measured=f"{duration(hit)} (median of {timing.repeats})",
        baseline="-",
        result=f"{duration(hit)}, {'every call a cache hit' if all_hits else 'NOT CACHED'}",
        target="cache hit, < 1 ms",
        ok=all_hits and hit < CACHE_HIT_LIMIT,
        data={"median_s": hit, "all_hits": all_hits},
    )


def load_rows(root: str) -> tuple[list[Row], datalib.SplitData]:
    """Loading the train split: the one-off cost, then the per-process cache."""
    first = time_once(lambda: datalib.load("mnist", "train", root))
    data = datalib.load("mnist", "train", root)
    repeat = time_repeated(lambda: datalib.load("mnist", "train", root), repeats=1001, warmup=0)
    row = Row(
        key="load_train",
        work="load MNIST train (`datalib.load`), then a repeated call",
        measured=f"first {duration(first.median)}, repeat {duration(repeat.median)}",
        baseline="-",
        result=f"repeat {duration(repeat.median)}",
        target="repeat < 1 ms (cached per process)",
        ok=repeat.median < CACHE_HIT_LIMIT,
        data={"first": first.as_dict(), "repeat": repeat.as_dict()},
    )
    return [row], data


def class_count_rows(data: datalib.SplitData, tutorial: torchvision.datasets.MNIST) -> list[Row]:
    baseline_counts: list[int] = []
    baseline = time_once(lambda: baseline_counts.extend(_tutorial_class_counts(tutorial)))
    counts = datalib.class_counts(data.labels, len(data.classes))
    fast = time_repeated(lambda: datalib.class_counts(data.labels, len(data.classes)), repeats=51)
    right = counts.tolist() == baseline_counts == TRAIN_COUNTS
    speedup = baseline.median / fast.median
    cached = cache_hit_row(
        "class_counts_cached",
        "class counts, repeated call (`split_class_counts`)",
        lambda: datalib.split_class_counts(data),
        datalib.split_class_counts.cache_info,
    )
    return [
        Row(
            key="class_counts",
            work="class counts, train split (`class_counts`, uncached)",
            measured=f"{duration(fast.median)} (median of {fast.repeats})",
            baseline=(
                f"{duration(baseline.median)}: tutorial loop, `DataLoader(batch_size=10, "
                "shuffle=True)` + `ToTensor`, labels counted one by one (run once)"
            ),
            result=f"{speedup:,.0f}x faster" + ("" if right else "; COUNTS DIFFER"),
            target=f">= {SPEEDUP_TARGET}x faster, same counts",
            ok=right and speedup >= SPEEDUP_TARGET,
            data={
                "fast": fast.as_dict(),
                "baseline": baseline.as_dict(),
                "speedup": speedup,
                "counts": counts.tolist(),
                "baseline_counts": baseline_counts,
            },
        ),
        cached,
    ]


def histogram_rows(data: datalib.SplitData) -> list[Row]:
    images = data.images
    out = torch.empty_like(images)
    timings = time_interleaved(
        {"histogram": lambda: datalib.pixel_histogram(images), "copy": lambda: out.copy_(images)},
        repeats=11,
    )
    hist, copy = timings["histogram"], timings["copy"]
    # The compiled loop must count exactly what torch.bincount counts.
    right = np.array_equal(
        datalib.pixel_histogram(images), torch.bincount(images.reshape(-1), minlength=256).numpy()
    )
    ratio = hist.median / copy.median
    gb_per_s = 2 * images.numel() / copy.median / 1e9  # a copy reads and writes every byte
    cached = cache_hit_row(
        "pixel_stats_cached",
        "pixel statistics, repeated call (`split_pixel_stats`)",
        lambda: datalib.split_pixel_stats(data),
        datalib.split_pixel_stats.cache_info,
    )
    return [
        Row(
            key="pixel_histogram",
            work=f"pixel histogram, whole train split, {images.numel() / 1e6:.0f}M pixels "
            "(`pixel_histogram`, uncached)",
            measured=f"{duration(hist.median)} (median of {hist.repeats})",
            baseline=(
                f"{duration(copy.median)}: copy of the same uint8 array into an allocated one "
                f"(`out.copy_(images)`, {gb_per_s:.0f} GB/s read+write, median of {copy.repeats})"
            ),
            result=f"{ratio:.1f}x the copy" + ("" if right else "; COUNTS WRONG"),
            target=f"<= {COPY_RATIO_TARGET:g}x the copy, the counts of torch.bincount",
            ok=right and ratio <= COPY_RATIO_TARGET,
            data={
                "histogram": hist.as_dict(),
                "copy": copy.as_dict(),
                "ratio": ratio,
                "copy_gb_per_s": gb_per_s,
            },
        ),
        cached,
    ]


def batch_rows(data: datalib.SplitData, tutorial: torchvision.datasets.MNIST) -> list[Row]:
    settings = datalib.LoaderSettings(batch_size=BATCH_SIZE, shuffle=True, seed=SEED)
    last = settings.num_batches(len(data)) - 1

    def first_order() -> None:
        datalib.sample_order.cache_clear()
        datalib.sample_order(len(data), settings.shuffle, settings.seed)

    order = time_repeated(first_order, repeats=5, warmup=0)
    datalib.batch(data, settings, 0)  # the permutation is cached from here on
    warm = time_interleaved(
        {
            "first": lambda: datalib.batch(data, settings, 0),
            "last": lambda: datalib.batch(data, settings, last),
        },
        repeats=201,
    )
    loader_first = time_repeated(lambda: _loader_step(tutorial, 0), repeats=5, warmup=0)
    expected: dict[int, tuple[torch.Tensor, torch.Tensor]] = {0: _loader_step(tutorial, 0)}
    loader_last = time_once(lambda: expected.__setitem__(last, _loader_step(tutorial, last)))
    same = {}
    for k in (0, last):
        got = datalib.batch(data, settings, k)
        images, labels = expected[k]
        same[k] = torch.equal(got.images, images) and torch.equal(got.labels, labels)
    ratio = warm["last"].median / warm["first"].median
    identical = "identical to the DataLoader's" if same[0] else "DIFFERS from the DataLoader's"
    identical_last = (
        "identical to the DataLoader's" if same[last] else "DIFFERS from the DataLoader's"
    )
    return [
        Row(
            key="sample_order",
            work=f"sampler order, first call (`sample_order`, {len(data):,} samples, then cached)",
            measured=f"{duration(order.median)} (median of {order.repeats}, cache cleared each)",
            baseline="-",
            result="one-off per (size, shuffle, seed)",
            target="-",
            ok=None,
            data={"order": order.as_dict()},
        ),
        Row(
            key="batch_first",
            work=f"batch 0 of a shuffled loader (`batch`, batch_size {BATCH_SIZE}, seed {SEED})",
            measured=f"{duration(warm['first'].median)} (median of {warm['first'].repeats})",
            baseline=(
                f"{duration(loader_first.median)}: real seeded `DataLoader` + `ToTensor`, "
                f"iterated to step 0 (median of {loader_first.repeats})"
            ),
            result=identical,
            target="identical tensors",
            ok=same[0],
            data={"batch": warm["first"].as_dict(), "loader": loader_first.as_dict()},
        ),
        Row(
            key="batch_last",
            work=f"batch {last:,} (the last) of the same loader",
            measured=f"{duration(warm['last'].median)} (median of {warm['last'].repeats})",
            baseline=(
                f"{duration(loader_last.median)}: the same `DataLoader` iterated to step "
                f"{last:,} (run once)"
            ),
            result=f"{ratio:.2f}x batch 0; {identical_last}",
            target=f"<= {LAST_BATCH_RATIO_TARGET:g}x batch 0, identical tensors",
            ok=same[last] and ratio <= LAST_BATCH_RATIO_TARGET,
            data={
                "batch": warm["last"].as_dict(),
                "loader": loader_last.as_dict(),
                "ratio_to_first": ratio,
                "index": last,
            },
        ),
    ]


def run(root: str) -> list[Row]:
    """Every datalib figure, the train split loaded first."""
    rows, data = load_rows(root)
    tutorial = _tutorial_dataset(root)
    rows += class_count_rows(data, tutorial)
    rows += histogram_rows(data)
    rows += batch_rows(data, tutorial)
    return rows

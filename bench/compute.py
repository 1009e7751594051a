"""datalib's hot paths against the way the tutorial does them, on the real MNIST train split."""

from __future__ import annotations

import itertools

import torch
import torchvision
from torch.utils.data import DataLoader
from torchvision.transforms import ToTensor

import datalib
from bench.report import Row, duration
from bench.timing import time_interleaved, time_once, time_repeated
from datalib.batches import epoch_indices

__all__ = ["run"]

# The train split's class counts, digits 0-9, as shared/data/README.md states them.
TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
CACHE_HIT_LIMIT = 1e-3  # seconds: a repeated open must be a look-up, not a read
SPEEDUP_TARGET = 1000
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


def open_rows(root: str) -> tuple[list[Row], datalib.SplitData]:
    """Opening the train split from its index: the first open in a process, then again."""
    from datalib import index

    datalib.load("mnist", "train", root)  # the index exists (a scan when it did not)

    def first_open() -> None:
        index._open.clear()
        datalib.opened("mnist", "train", root)

    first = time_repeated(first_open, repeats=5, warmup=0)
    repeat = time_repeated(lambda: datalib.opened("mnist", "train", root), repeats=1001)
    data = datalib.opened("mnist", "train", root)
    row = Row(
        key="open_train",
        work="open MNIST train from its index (`datalib.opened`): first in a process, again",
        measured=f"first {duration(first.median)}, again {duration(repeat.median)}",
        baseline="-",
        result=f"again {duration(repeat.median)}",
        target="again < 1 ms (kept open per process)",
        ok=repeat.median < CACHE_HIT_LIMIT,
        data={"first": first.as_dict(), "again": repeat.as_dict()},
    )
    return [row], data


def class_count_rows(data: datalib.SplitData, tutorial: torchvision.datasets.MNIST) -> list[Row]:
    baseline_counts: list[int] = []
    baseline = time_once(lambda: baseline_counts.extend(_tutorial_class_counts(tutorial)))
    counts = datalib.class_counts(data.labels, len(data.classes))
    fast = time_repeated(lambda: datalib.class_counts(data.labels, len(data.classes)), repeats=51)
    right = counts.tolist() == baseline_counts == TRAIN_COUNTS
    speedup = baseline.median / fast.median
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
    ]


def _tutorial_mean_std(dataset: torchvision.datasets.MNIST) -> tuple[float, float]:
    """The tutorial's way: every image through ToTensor, summed batch by batch."""
    total = squares = pixels = 0.0
    for images, _ in DataLoader(dataset, batch_size=1000):
        total += images.sum().item()
        squares += images.square().sum().item()
        pixels += images.numel()
    mean = total / pixels
    return mean, (squares / pixels - mean**2) ** 0.5


def pixel_stats_rows(data: datalib.SplitData, tutorial: torchvision.datasets.MNIST) -> list[Row]:
    """Mean and std of the whole split from the index's histograms, against computing them."""
    fast = time_repeated(lambda: datalib.pixel_stats(data).std, repeats=51)
    found: list[tuple[float, float]] = []
    baseline = time_once(lambda: found.append(_tutorial_mean_std(tutorial)))
    stats = datalib.pixel_stats(data)
    right = (round(stats.mean, 4), round(stats.std, 4)) == (0.1307, 0.3081) and (
        round(found[0][0], 4),
        round(found[0][1], 4),
    ) == (0.1307, 0.3081)
    speedup = baseline.median / fast.median
    return [
        Row(
            key="pixel_stats",
            work="pixel mean and std, whole train split (`pixel_stats`, from the index)",
            measured=f"{duration(fast.median)} (median of {fast.repeats})",
            baseline=(
                f"{duration(baseline.median)}: the tutorial's loop, `DataLoader(batch_size=1000)`"
                " + `ToTensor`, sums and squares batch by batch (run once)"
            ),
            result=f"{speedup:,.0f}x faster; 0.1307 / 0.3081" + ("" if right else "; WRONG"),
            target=f">= {SPEEDUP_TARGET}x faster, mean 0.1307, std 0.3081",
            ok=right and speedup >= SPEEDUP_TARGET,
            data={"fast": fast.as_dict(), "baseline": baseline.as_dict(), "speedup": speedup},
        )
    ]


def batch_rows(data: datalib.SplitData, tutorial: torchvision.datasets.MNIST) -> list[Row]:
    settings = datalib.LoaderSettings(batch_size=BATCH_SIZE, shuffle=True, seed=SEED)
    last = settings.num_batches(len(data)) - 1

    def first_order() -> None:
        epoch_indices.cache_clear()
        epoch_indices(len(data), settings.shuffle, settings.seed)

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
            work=f"sampler order, first call (`epoch_indices`, {len(data):,} samples, then kept)",
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
    """Every datalib figure, the train split opened first."""
    rows, data = open_rows(root)
    tutorial = _tutorial_dataset(root)
    rows += class_count_rows(data, tutorial)
    rows += pixel_stats_rows(data, tutorial)
    rows += batch_rows(data, tutorial)
    return rows

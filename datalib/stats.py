"""Statistics over uint8 images and labels: one counting pass each (a bincount, or the pixel
histogram's compiled loop), results as plain data."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from datalib.datasets import SplitData
from datalib.errors import InvalidRequest

__all__ = [
    "PixelStats",
    "balance_verdict",
    "channel_pixel_stats",
    "class_counts",
    "class_indices",
    "class_table",
    "imbalance_ratio",
    "pixel_histogram",
    "pixel_stats",
    "scaling_verdict",
    "split_class_counts",
    "split_pixel_stats",
    "subset_channel_stats",
    "subset_pixel_stats",
]

LEVELS = 256
BALANCED_RATIO, MILD_RATIO = 1.5, 3.0  # largest / smallest class: balanced, mildly imbalanced


@dataclass(frozen=True)
class PixelStats:
    """Pixel counts per raw value 0-255, with summary figures on the ToTensor scale (0-1)."""

    counts: np.ndarray  # 256 counts, one per raw value
    min: float
    max: float
    mean: float
    std: float

    @property
    def total(self) -> int:
        return int(self.counts.sum())

    def as_dict(self) -> dict[str, float]:
        return {"min": self.min, "max": self.max, "mean": self.mean, "std": self.std}


def class_counts(labels: torch.Tensor, num_classes: int) -> np.ndarray:
    """How many samples each class has, classes 0..num_classes-1."""
    return torch.bincount(labels, minlength=num_classes).numpy()


def pixel_histogram(images: torch.Tensor) -> np.ndarray:
    """How many pixels take each raw value 0-255: one pass over the uint8 data, in place when
    it is contiguous (a channel of colour images is copied first)."""
    if images.dtype != torch.uint8:
        raise TypeError(f"pixel_histogram needs uint8 images, got {images.dtype}")
    from datalib.histogram import byte_histogram  # numba takes ~0.4 s to import: lazily

    return byte_histogram(images.contiguous().reshape(-1).numpy())


def pixel_stats(images: torch.Tensor) -> PixelStats:
    """Histogram of raw values plus min/max/mean/std after ToTensor, all from one count."""
    counts = pixel_histogram(images)
    total = counts.sum()
    if total == 0:
        raise InvalidRequest("No pixels to summarise: the selection is empty.")
    values = np.arange(LEVELS, dtype=np.float64) / 255
    weights = counts.astype(np.float64) / total
    mean = float(weights @ values)
    std = float(np.sqrt(weights @ (values - mean) ** 2))
    present = np.flatnonzero(counts)
    return PixelStats(
        counts=counts,
        min=float(values[present[0]]),
        max=float(values[present[-1]]),
        mean=mean,
        std=std,
    )


def channel_pixel_stats(images: torch.Tensor) -> tuple[PixelStats, ...]:
    """Pixel statistics of each channel of N x C x H x W uint8 images (one count each)."""
    return tuple(pixel_stats(images[:, c]) for c in range(images.shape[1]))


def subset_channel_stats(
    data: SplitData, indices: list[int] | np.ndarray | torch.Tensor | None = None
) -> tuple[PixelStats, ...]:
    """Per-channel pixel statistics of some images of a split (all of them when None)."""
    if indices is None:
        return _split_channel_stats(data)
    return channel_pixel_stats(data.images[data.index(indices)])


@functools.lru_cache(maxsize=64)
def _split_channel_stats(data: SplitData) -> tuple[PixelStats, ...]:
    return channel_pixel_stats(data.images)


def subset_pixel_stats(data: SplitData, indices: list[int] | np.ndarray) -> PixelStats:
    """Pixel statistics of some images of a split (one image, one batch)."""
    return pixel_stats(data.images[data.index(indices)])


def scaling_verdict(stats: PixelStats) -> str:
    """A plain answer to "is the data the model sees scaled?" from the ToTensor-scale range."""
    low, high = stats.min, stats.max
    seen = f"after `ToTensor()` the model sees float32 values from {low:.4g} to {high:.4g}"
    raw = f"on disk they are uint8 from {round(low * 255)} to {round(high * 255)}"
    if 0 <= low and high <= 1:
        return f"Scaled to [0, 1]: {seen}; {raw}, so without ToTensor they would not be."
    return f"Not scaled to [0, 1]: {seen}; {raw}."


def class_indices(data: SplitData, label: int | None) -> np.ndarray:
    """Indices of the samples of class `label`, or of all samples when it is None."""
    if label is None:
        return np.arange(len(data))
    if not 0 <= label < len(data.classes):
        raise InvalidRequest(
            f"Class {label} does not exist: {data.spec.title} has classes 0 to "
            f"{len(data.classes) - 1}."
        )
    return _class_indices(data, label)


def imbalance_ratio(counts: np.ndarray) -> float:
    """Largest class count over smallest (inf when a class is empty)."""
    smallest = counts.min()
    return float("inf") if smallest == 0 else float(counts.max() / smallest)


def balance_verdict(counts: np.ndarray, classes: tuple[str, ...]) -> str:
    """A plain sentence on class balance: the ratio, the extreme classes, what to do."""
    ratio = imbalance_ratio(counts)
    largest, smallest = classes[int(counts.argmax())], classes[int(counts.argmin())]
    if counts.min() == 0:
        empty = ", ".join(c for c, n in zip(classes, counts, strict=True) if n == 0)
        return (
            f"Imbalanced: no images at all of {empty}. A model cannot learn a class it never sees."
        )
    detail = (
        f"largest class {largest} ({int(counts.max()):,}) / smallest {smallest} "
        f"({int(counts.min()):,}) = {ratio:.2f}"
    )
    if ratio <= BALANCED_RATIO:
        return f"Balanced: {detail}. Plain cross-entropy and uniform sampling are fine."
    if ratio <= MILD_RATIO:
        return f"Mildly imbalanced: {detail}. Watch per-class accuracy; consider class weights."
    return (
        f"Imbalanced: {detail}. Use class weights in the loss or a WeightedRandomSampler, "
        "and report per-class metrics."
    )


def class_table(splits: list[SplitData]) -> pd.DataFrame:
    """Long table of class counts and percents: one row per split and class."""
    rows = []
    for data in splits:
        counts = split_class_counts(data)
        for label, (name, count) in enumerate(zip(data.classes, counts, strict=True)):
            rows.append(
                {
                    "split": data.split,
                    "label": label,
                    "class": name,
                    "count": int(count),
                    "percent": round(100.0 * count / counts.sum(), 3),
                }
            )
    return pd.DataFrame(rows)


# Whole-split results are cached per split object: a split is loaded once per process and
# hashes by identity (SplitData has eq=False), so a repeated call is a dictionary look-up and
# no array is ever hashed.


@functools.lru_cache(maxsize=64)
def split_class_counts(data: SplitData) -> np.ndarray:
    """Class counts of a whole split (computed once per split)."""
    return class_counts(data.labels, len(data.classes))


@functools.lru_cache(maxsize=256)
def split_pixel_stats(data: SplitData, label: int | None = None) -> PixelStats:
    """Pixel statistics of a whole split, or of one class in it (computed once each)."""
    if label is None:
        return pixel_stats(data.images)
    return pixel_stats(data.images[torch.as_tensor(class_indices(data, label))])


@functools.lru_cache(maxsize=256)
def _class_indices(data: SplitData, label: int) -> np.ndarray:
    return torch.nonzero(data.labels == label).flatten().numpy()

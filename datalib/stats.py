"""Statistics over a split, read from its index: class counts, and pixel statistics of the
whole split, one class (both from the index's histograms) or some images (decoded). Results
are plain data."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np

from datalib.errors import InvalidRequest
from datalib.index import SplitData

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "BALANCED_RATIO",
    "LEVELS",
    "MILD_RATIO",
    "PixelStats",
    "balance_verdict",
    "class_counts",
    "class_indices",
    "class_table",
    "imbalance_ratio",
    "pixel_stats",
]

LEVELS = 256
BALANCED_RATIO, MILD_RATIO = 1.5, 3.0  # largest / smallest class: balanced, mildly imbalanced
_VALUES = np.arange(LEVELS, dtype=np.float64) / 255


@dataclass(frozen=True)
class PixelStats:
    """Pixel counts per raw value 0-255, per channel (C x 256), and what they say on the
    ToTensor scale (0-1): over all channels, or per channel with `channels`."""

    counts: np.ndarray

    @property
    def total(self) -> int:
        return int(self.counts.sum())

    @cached_property
    def _all(self) -> np.ndarray:
        counts = self.counts.sum(axis=0)
        if counts.sum() == 0:
            raise InvalidRequest("No pixels to summarise: the selection is empty.")
        return counts

    @property
    def min(self) -> float:
        return float(_VALUES[np.flatnonzero(self._all)[0]])

    @property
    def max(self) -> float:
        return float(_VALUES[np.flatnonzero(self._all)[-1]])

    @property
    def mean(self) -> float:
        return float(self._all @ _VALUES / self._all.sum())

    @property
    def std(self) -> float:
        weights = self._all / self._all.sum()
        return float(np.sqrt(weights @ (_VALUES - self.mean) ** 2))

    @property
    def channels(self) -> tuple[PixelStats, ...]:
        """One PixelStats per channel (one for grey images)."""
        return tuple(PixelStats(self.counts[c : c + 1]) for c in range(self.counts.shape[0]))

    def as_dict(self) -> dict[str, float]:
        return {"min": self.min, "max": self.max, "mean": self.mean, "std": self.std}


def pixel_stats(
    data: SplitData,
    indices: Sequence[int] | np.ndarray | None = None,
    *,
    label: int | None = None,
) -> PixelStats:
    """Pixel statistics after ToTensor of the whole split, of one class of it (`label`), or of
    some images (`indices`, decoded and brought to the loader's shape)."""
    if indices is None:
        if label is not None and not 0 <= label < len(data.classes):
            raise InvalidRequest(
                f"Class {label} does not exist: {data.spec.title} has classes 0 to "
                f"{len(data.classes) - 1}."
            )
        return PixelStats(data.histogram(label))
    images = data.images(indices)
    counts = np.stack(
        [np.bincount(images[:, c].ravel(), minlength=LEVELS) for c in range(images.shape[1])]
    )
    return PixelStats(counts)


def class_counts(labels: np.ndarray | Sequence[int], num_classes: int) -> np.ndarray:
    """How many samples each class has, classes 0..num_classes-1."""
    return np.bincount(np.asarray(labels, dtype=np.int64), minlength=num_classes)


def class_indices(data: SplitData, label: int | None) -> np.ndarray:
    """Indices of the samples of class `label`, or of all samples when it is None."""
    if label is None:
        return np.arange(len(data))
    if not 0 <= label < len(data.classes):
        raise InvalidRequest(
            f"Class {label} does not exist: {data.spec.title} has classes 0 to "
            f"{len(data.classes) - 1}."
        )
    return np.flatnonzero(data.labels == label)


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


def class_table(splits: Sequence[SplitData]) -> pd.DataFrame:
    """Long table of class counts and percents: one row per split and class."""
    import pandas as pd  # the pages have it already; `info` and the scan need not load it

    rows = []
    for data in splits:
        counts = class_counts(data.labels, len(data.classes))
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

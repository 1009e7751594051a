"""Exact duplicates from the index's content hashes: groups within a split, and the images two
splits share (the train/test leak). Results are kept with the split (SplitData.remember)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from datalib.index import SplitData

__all__ = [
    "CrossDuplicates",
    "PixelKeys",
    "conflicting_groups",
    "cross_duplicates",
    "duplicate_groups",
    "pixel_keys",
]


@dataclass(frozen=True, eq=False)
class PixelKeys:
    """The split's images grouped by identical pixels (the index's 64-bit content hash)."""

    keys: np.ndarray  # one item per distinct image (its content hash), sorted
    first: np.ndarray  # index of the first image with each key
    inverse: np.ndarray  # key number of every image
    counts: np.ndarray  # images per key

    @property
    def duplicates(self) -> int:
        """Images that repeat an earlier image of the split exactly."""
        return int(self.inverse.size - self.keys.size)


def pixel_keys(data: SplitData) -> PixelKeys:
    """Group a split's images by identical pixels: one sort of the index's content hashes
    (kept with the split)."""

    def group() -> PixelKeys:
        keys, first, inverse, counts = np.unique(
            data.column("content_hash"),
            return_index=True,
            return_inverse=True,
            return_counts=True,
        )
        return PixelKeys(keys=keys, first=first, inverse=inverse.ravel(), counts=counts)

    return data.remember("pixel_keys", group)


def duplicate_groups(data: SplitData) -> list[np.ndarray]:
    """Indices of the images with an exact copy in the same split, one array per group, groups
    in order of first appearance."""
    keys = pixel_keys(data)
    members = np.flatnonzero(keys.counts[keys.inverse] > 1)
    groups = keys.inverse[members]
    order = np.lexsort((members, keys.first[groups]))
    members, groups = members[order], groups[order]
    return np.split(members, np.flatnonzero(np.diff(groups)) + 1) if members.size else []


def conflicting_groups(data: SplitData) -> int:
    """Duplicate groups whose images carry more than one label."""
    keys = pixel_keys(data)
    members = np.flatnonzero(keys.counts[keys.inverse] > 1)
    pairs = np.unique(keys.inverse[members] * len(data.classes) + data.labels[members])
    return int((np.bincount(pairs // len(data.classes)) > 1).sum()) if pairs.size else 0


@dataclass(frozen=True)
class CrossDuplicates:
    """Images of one split whose exact pixels also appear in another split."""

    shared: int  # distinct images present in both
    images_a: int  # images of the first split that have a copy in the second
    images_b: int  # images of the second split that have a copy in the first
    first_a: np.ndarray  # per shared image: its first index in the first split
    first_b: np.ndarray  # ... and in the second


def cross_duplicates(a: SplitData, b: SplitData) -> CrossDuplicates:
    """The images two splits share exactly (one sorted intersection of their pixel keys),
    kept with the first split."""
    return a.remember(("cross_duplicates", b.split), lambda: _cross_duplicates(a, b))


def _cross_duplicates(a: SplitData, b: SplitData) -> CrossDuplicates:
    keys_a, keys_b = pixel_keys(a), pixel_keys(b)
    _, in_a, in_b = np.intersect1d(
        keys_a.keys, keys_b.keys, assume_unique=True, return_indices=True
    )
    order = np.argsort(keys_b.first[in_b], kind="stable")
    in_a, in_b = in_a[order], in_b[order]
    return CrossDuplicates(
        shared=int(in_a.size),
        images_a=int(keys_a.counts[in_a].sum()),
        images_b=int(keys_b.counts[in_b].sum()),
        first_a=keys_a.first[in_a],
        first_b=keys_b.first[in_b],
    )

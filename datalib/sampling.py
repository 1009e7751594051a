"""The order a DataLoader visits samples in: the plain loader's (shuffled or not), a
WeightedRandomSampler's draws bit for bit, the class weights behind them, and how mixed the
labels are along an epoch next to a random order."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from datalib.batches import LoaderSettings, epoch_indices
from datalib.errors import InvalidRequest
from datalib.index import SplitData
from datalib.stats import class_counts

__all__ = [
    "SAMPLERS",
    "Mixing",
    "class_weights",
    "epoch_order",
    "label_mixing",
    "sample_weights",
    "sampler_name",
    "sampler_shares",
    "targets",
    "weighted_order",
]

SAMPLERS = ("weighted",)


def sampler_name(sampler: str | None) -> str | None:
    """`sampler` checked: None (or "none") for the plain loader, else one of `SAMPLERS`."""
    if sampler is None or str(sampler).strip().lower() in ("", "none"):
        return None
    name = str(sampler).strip().lower()
    if name not in SAMPLERS:
        raise InvalidRequest(
            f"Unknown sampler {sampler!r}. Choose one of: none, {', '.join(SAMPLERS)}."
        )
    return name


def targets(data: SplitData) -> torch.Tensor:
    """The split's labels as the int64 tensor a dataset's `targets` gives (a copy: the
    index's own array is read-only, and torch wants to be able to write)."""
    return torch.from_numpy(data.labels.copy())


def class_weights(data: SplitData) -> torch.Tensor:
    """Per-class weights n / (C * count), float64; an empty class counts as one image.

    The same torch operations as the code the checklist prints, so the weights (and hence the
    sampler's draws) are bit for bit those of the user's own loader.
    """
    counts = torch.bincount(targets(data), minlength=len(data.classes))
    return len(data) / (len(data.classes) * counts.clamp(min=1).double())


def sample_weights(data: SplitData) -> torch.Tensor:
    """Per-sample weights for `WeightedRandomSampler`: each sample gets its class's weight."""
    return class_weights(data)[targets(data)]


def weighted_order(data: SplitData, seed: int) -> torch.Tensor:
    """The indices `WeightedRandomSampler(sample_weights(data), len(data), replacement=True,
    generator=torch.Generator().manual_seed(seed))` yields in its first epoch.

    The sampler draws them all when its iterator starts, as
    `torch.multinomial(weights.double(), num_samples, replacement, generator=generator)`;
    a DataLoader built with the sampler (and no generator of its own) does not touch the
    sampler's generator first, so the same call gives the same indices. Kept with the split.
    """

    def draw() -> torch.Tensor:
        generator = torch.Generator().manual_seed(seed)
        return torch.multinomial(sample_weights(data), len(data), True, generator=generator)

    return data.remember(("weighted_order", seed), draw)


def epoch_order(data: SplitData, settings: LoaderSettings, sampler: str | None) -> np.ndarray:
    """The sample indices one epoch of this loader visits, in order (after drop_last)."""
    if sampler_name(sampler):
        order = weighted_order(data, settings.seed).numpy()
    else:
        order = epoch_indices(len(data), settings.shuffle, settings.seed)
    return order[: settings.num_batches(len(data)) * settings.batch_size]


@dataclass(frozen=True)
class Mixing:
    """How mixed the labels are along one epoch, next to a random order of the same labels."""

    samples: int
    batches: int
    runs: int  # stretches of consecutive samples with the same label
    expected_runs: float
    longest_run: int
    classes_per_batch: float  # distinct classes in a batch, on average
    expected_classes_per_batch: float
    single_class_batches: int

    @property
    def score(self) -> float:
        """The lower of runs and classes per batch over what random order gives (1 = random)."""
        return min(
            self.runs / self.expected_runs,
            self.classes_per_batch / self.expected_classes_per_batch,
        )


def label_mixing(labels: np.ndarray, batch_size: int, num_classes: int) -> Mixing:
    """Label runs and classes per batch of labels in epoch order, and their expected values
    under a uniformly random order of the same labels."""
    labels = np.asarray(labels, dtype=np.int64)
    n = labels.size
    if n == 0:
        raise InvalidRequest("No samples in the epoch: lower the batch size or unset drop_last.")
    num_classes = max(num_classes, int(labels.max()) + 1)
    changes = labels[1:] != labels[:-1]
    starts = np.flatnonzero(np.concatenate(([True], changes, [True])))
    batches = math.ceil(n / batch_size)
    batch_of = np.arange(n) // batch_size
    per_batch = np.bincount(batch_of * num_classes + labels, minlength=batches * num_classes)
    coverage = (per_batch.reshape(batches, num_classes) > 0).sum(axis=1)
    counts = np.bincount(labels, minlength=num_classes)
    full, rest = divmod(n, batch_size)
    expected = full * _expected_classes(counts, batch_size)
    if rest:
        expected += _expected_classes(counts, rest)
    return Mixing(
        samples=n,
        batches=batches,
        runs=int(starts.size - 1),
        expected_runs=float(1 + (n - 1) - (counts * (counts - 1)).sum() / n),
        longest_run=int(np.diff(starts).max()),
        classes_per_batch=float(coverage.mean()),
        expected_classes_per_batch=float(expected / batches),
        single_class_batches=int((coverage == 1).sum()),
    )


def _expected_classes(counts: np.ndarray, size: int) -> float:
    """Mean number of distinct classes in `size` labels drawn without replacement."""
    n = int(counts.sum())
    expected = 0.0
    for m in counts[counts > 0].tolist():  # a loop over classes, not samples
        if n - m < size:
            expected += 1.0
            continue
        # P(class absent) = C(n - m, size) / C(n, size)
        log_absent = (
            math.lgamma(n - m + 1)
            - math.lgamma(n - m - size + 1)
            - math.lgamma(n + 1)
            + math.lgamma(n - size + 1)
        )
        expected += 1.0 - math.exp(log_absent)
    return expected


def sampler_shares(data: SplitData) -> np.ndarray:
    """Each class's expected share of a WeightedRandomSampler's draws: its weight times its
    count, over the total (uniform with the class weights, for every class that has images)."""
    mass = class_weights(data).numpy() * class_counts(data.labels, len(data.classes))
    return mass / mass.sum()

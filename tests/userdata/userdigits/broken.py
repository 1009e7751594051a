"""Factories that cannot work, each in its own way, for tests/test_config.py."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from userdigits.data import PilDigits


def raises(split: str) -> Dataset:
    raise FileNotFoundError(f"no data for split {split!r} in /nowhere")


def not_a_dataset() -> object:
    return (i for i in range(3))


class _Items(Dataset):
    def __init__(self, items: list, length: int | None = None) -> None:
        self.items = items
        self.length = len(items) if length is None else length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int):
        return self.items[index]


def strings() -> Dataset:
    """Samples whose images are file names, not images."""
    return _Items([(f"img{i}.png", i % 2) for i in range(6)])


def normalized() -> Dataset:
    """Float tensors after Normalize((0.5,), (0.5,)): values in [-1, 1]."""
    rng = np.random.default_rng(0)
    images = torch.from_numpy(rng.uniform(-1, 1, (6, 1, 8, 8)).astype(np.float32))
    return _Items([(images[i], i % 2) for i in range(6)])


def float_labels() -> Dataset:
    return _Items([(torch.zeros(1, 8, 8), float(i % 2)) for i in range(6)])


def overstated() -> Dataset:
    """len() says 10; there are 8 samples (the last two raise IndexError)."""
    return _Items([(torch.zeros(1, 8, 8, dtype=torch.uint8), i % 2) for i in range(8)], 10)


def short_targets(split: str) -> Dataset:
    """PilDigits whose `targets` misses its last label."""
    dataset = PilDigits(split)
    dataset.targets = [i % 3 for i in range(len(dataset) - 1)]
    return dataset


def flaky(split: str) -> Dataset:
    """PilDigits whose sample 5 cannot be read (a damaged file, say)."""

    class Flaky(PilDigits):
        def __getitem__(self, index: int):
            if index == 5:
                raise OSError("image file is truncated")
            return super().__getitem__(index)

    return Flaky(split)


def augmented(split: str) -> Dataset:
    """PilDigits through a random crop: other pixels at every read."""
    from torchvision import transforms

    class Augmented(PilDigits):
        crop = transforms.RandomCrop(12)

        def __getitem__(self, index: int):
            image, label = super().__getitem__(index)
            return self.crop(image), label

    return Augmented(split)


class _LazyTargets(_Items):
    @property
    def targets(self):
        raise RuntimeError("targets are computed lazily and failed")


def lazy_targets() -> Dataset:
    """A `targets` property that raises."""
    return _LazyTargets([(np.zeros((4, 4), np.uint8), 0)] * 4)


def empty_images() -> Dataset:
    """Float tensors of no pixels."""
    return _Items([(torch.zeros(1, 0, 4), 0)] * 3)


def chatty(split: str) -> Dataset:
    """Prints as it makes the dataset, as many loaders do."""
    print("loading my dataset...")
    return PilDigits(split)

"""Small datasets made in memory, the same every time: one of PIL images, one of tensors.

Image i of a split draws its noise from a generator seeded by (split, i), so a sample is the
same whenever and in whichever process it is read.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

SIDE = 16
PIL_SIZES = {"train": 48, "test": 12}  # three classes, in turn: 0, 1, 2, 0, ...
RGBA_INDEX, ODD_SIZE_INDEX = 7, 11  # in train: an RGBA image, and one of 20 x 18
TENSOR_SIZES = {True: 40, False: 16}
SHAPES = ["circle", "square", "cross", "dot"]


def _pattern(label: int, seed: tuple[int, ...], side: int = SIDE) -> np.ndarray:
    """A grey image of its class's pattern (bands at the class's angle) with noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:side, :side]
    on = ((x + label * y) // 3) % 2 == 0
    noise = rng.integers(-30, 31, (side, side))
    return np.clip(np.where(on, 190, 50) + noise, 0, 255).astype(np.uint8)


class PilDigits(Dataset):
    """PIL images, mode L (and an RGBA one, and one of another size, in train)."""

    def __init__(self, split: str) -> None:
        if split not in PIL_SIZES:
            raise ValueError(f"no split {split!r}: train or test")
        self.split = split

    def __len__(self) -> int:
        return PIL_SIZES[self.split]

    def __getitem__(self, index: int):
        if not 0 <= index < len(self):
            raise IndexError(index)
        label = index % 3
        seed = (0 if self.split == "train" else 1, index)
        if self.split == "train" and index == ODD_SIZE_INDEX:
            return Image.fromarray(_pattern(label, seed, 20)[:18]), label
        grey = _pattern(label, seed)
        if self.split == "train" and index == RGBA_INDEX:
            alpha = np.full_like(grey, 128)
            return Image.fromarray(np.dstack([grey, grey // 2, 255 - grey, alpha])), label
        return Image.fromarray(grey), label


def pil_digits(split: str) -> PilDigits:
    """The factory the config names: a split of PilDigits."""
    return PilDigits(split)


class TensorDigits(Dataset):
    """Colour C x H x W tensors (uint8, or float in [0, 1]), with `targets` and `classes`,
    as torchvision's own datasets have them."""

    classes = SHAPES

    def __init__(self, train: bool = True, dtype: str = "uint8") -> None:
        n = TENSOR_SIZES[train]
        self.targets = torch.tensor([i % len(SHAPES) for i in range(n)])
        greys = [
            _pattern(int(label), (2 if train else 3, i), 12) for i, label in enumerate(self.targets)
        ]
        self.images = torch.from_numpy(np.stack([np.stack([g, g // 3, 255 - g]) for g in greys]))
        self.dtype = dtype

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int):
        image = self.images[index]
        if self.dtype != "uint8":
            image = image.to(getattr(torch, self.dtype)) / 255
        return image, self.targets[index]

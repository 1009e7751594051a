"""Every kind of sample Batchscope reads, six of each: `samples(kind)`, a kind as
tests/test_config.py names it (`"pil RGBA"`, `"tensor uint8 HWC"`, `"array float32 HWC"`...).

The pixels are the same noise in every kind (made per index), given as the kind says."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

LABELS = [0, 1, 2, 1, 0, 1]
SIDE = 10


def _noise(index: int, channels: int) -> np.ndarray:
    rng = np.random.default_rng(index)
    return rng.integers(0, 256, (SIDE, SIDE + 2, channels), dtype=np.uint8)  # H x W x C


def sample(kind: str, index: int):
    """Sample `index` of `kind`, labels given as ints, numpy ints and 0-d tensors in turn."""
    container, *rest = kind.split()
    label = LABELS[index]
    label = [label, np.int64(label), torch.tensor(label)][index % 3]
    if container == "pil":
        mode = rest[0]
        if mode == "P":
            image = Image.fromarray(_noise(index, 3)).convert("P")
        elif mode == "I;16":
            image = Image.fromarray(_noise(index, 1)[:, :, 0].astype(np.uint16) * 300)
        elif mode == "L":
            image = Image.fromarray(_noise(index, 1)[:, :, 0])
        else:
            image = Image.fromarray(_noise(index, 4))  # RGBA
        return image, label
    dtype, layout = rest
    channels = int(layout[0]) if layout[0].isdigit() else 3
    pixels = _noise(index, 1 if layout == "HW" else channels)
    if layout == "HW":
        pixels = pixels[:, :, 0]
    elif layout.endswith("HW"):  # C x H x W
        pixels = pixels.transpose(2, 0, 1)
    if dtype != "uint8":
        pixels = pixels.astype(dtype) / 255
    if container == "tensor":
        return torch.from_numpy(np.ascontiguousarray(pixels)), label
    return pixels, label


class Samples(torch.utils.data.Dataset):
    def __init__(self, kind: str) -> None:
        self.kind = kind

    def __len__(self) -> int:
        return len(LABELS)

    def __getitem__(self, index: int):
        if index >= len(self):
            raise IndexError(index)
        return sample(self.kind, index)


def samples(kind: str) -> Samples:
    """The factory: six samples of `kind`."""
    return Samples(kind)

"""The label model: a small CNN trained on a split's pictures, streamed from disk in batches.
Imported only by the quality job (it imports torch); the app never imports it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from datalib.quality.labels import BATCH  # one batch size: the job plans its epochs with it

__all__ = ["FEATURES", "Pictures", "device", "fit", "predict"]

CHUNK = 8192  # rows read from disk at a time: memory stays flat whatever the split's size
WIDTH = 16  # channels of the first convolution
FEATURES = 128  # the penultimate layer: what the map of the data is drawn from
LEARNING_RATE = 3e-3


def device() -> torch.device:
    """The GPU when torch sees one, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@dataclass(frozen=True)
class Pictures:
    """A split's pictures on disk (uint8 N x C x S x S in a .npy file), read in chunks."""

    path: Path
    shape: tuple[int, int, int, int]
    offset: int  # where the array starts in the file
    mean: tuple[float, ...]  # per channel, 0-1: the input is standardised with these
    std: tuple[float, ...]

    @classmethod
    def open(cls, path: Path, mean, std) -> Pictures:
        with open(path, "rb") as stream:
            major, _ = np.lib.format.read_magic(stream)
            read = (
                np.lib.format.read_array_header_1_0
                if major == 1
                else np.lib.format.read_array_header_2_0
            )
            shape, _, _ = read(stream)
            return cls(path, tuple(shape), stream.tell(), tuple(mean), tuple(std))

    def chunks(self, rows: np.ndarray, seed: int | None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(rows, pictures) of the chosen rows, a chunk at a time: in order, or with `seed`
        shuffled (chunks in a random order, rows shuffled within each)."""
        n = self.shape[0]
        item = int(np.prod(self.shape[1:]))
        wanted = np.zeros(n, dtype=bool)
        wanted[rows] = True
        starts = np.arange(0, n, CHUNK)
        generator = np.random.default_rng(seed) if seed is not None else None
        if generator is not None:
            starts = generator.permutation(starts)
        with open(self.path, "rb") as stream:
            for start in starts.tolist():
                stop = min(start + CHUNK, n)
                stream.seek(self.offset + start * item)
                block = np.fromfile(stream, dtype=np.uint8, count=(stop - start) * item)
                block = block.reshape(stop - start, *self.shape[1:])
                chosen = np.flatnonzero(wanted[start:stop])
                if generator is not None:
                    chosen = generator.permutation(chosen)
                if chosen.size:
                    yield chosen + start, block[chosen]

    def tensor(self, pictures: np.ndarray, where: torch.device) -> torch.Tensor:
        x = torch.from_numpy(pictures).to(where).float().div_(255)
        mean = torch.tensor(self.mean, device=where).view(1, -1, 1, 1)
        std = torch.tensor(self.std, device=where).view(1, -1, 1, 1).clamp_min(1e-3)
        return (x - mean) / std


def network(channels: int, classes: int) -> nn.Module:
    """Two blocks of two 3 x 3 convolutions (batch norm, ReLU) and a max pooling, then 128
    features and the classes. Measured on MNIST (bench/): 99.2% on 20,000 train images held
    out of 40,000 after three epochs; one convolution a block stays under 99%."""

    def block(inputs: int, outputs: int) -> list[nn.Module]:
        return [
            nn.Conv2d(inputs, outputs, 3, padding=1),
            nn.BatchNorm2d(outputs),
            nn.ReLU(),
            nn.Conv2d(outputs, outputs, 3, padding=1),
            nn.BatchNorm2d(outputs),
            nn.ReLU(),
            nn.MaxPool2d(2),
        ]

    return nn.Sequential(
        *block(channels, WIDTH),
        *block(WIDTH, 2 * WIDTH),
        nn.AdaptiveAvgPool2d(7),
        nn.Flatten(),
        nn.Linear(2 * WIDTH * 49, FEATURES),
        nn.ReLU(),
        nn.Linear(FEATURES, classes),
    )


def fit(
    pictures: Pictures,
    rows: np.ndarray,
    labels: np.ndarray,
    classes: int,
    *,
    epochs: int,
    seed: int,
    tick: Callable[[int], None],
) -> nn.Module:
    """A network trained on `rows` of the pictures (`labels`: the whole split's), AdamW with
    a one-cycle learning rate; `tick(images)` hears of each batch done."""
    torch.manual_seed(seed)
    where = device()
    net = network(pictures.shape[1], classes).to(where)
    optimiser = torch.optim.AdamW(net.parameters(), lr=LEARNING_RATE, weight_decay=1e-4)
    steps = epochs * sum(-(-n // BATCH) for n in _chunk_sizes(pictures, rows))
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimiser, max_lr=LEARNING_RATE, total_steps=max(steps, 1)
    )
    targets = torch.from_numpy(labels.astype(np.int64))
    net.train()
    for epoch in range(epochs):
        for chunk_rows, chunk in pictures.chunks(rows, seed * 1000 + epoch):
            for start in range(0, len(chunk_rows), BATCH):
                x = pictures.tensor(chunk[start : start + BATCH], where)
                y = targets[chunk_rows[start : start + BATCH]].to(where)
                loss = F.cross_entropy(net(x), y)
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
                if schedule.last_epoch < steps:
                    schedule.step()
                tick(len(y))
    return net


def _chunk_sizes(pictures: Pictures, rows: np.ndarray) -> list[int]:
    edges = np.arange(0, pictures.shape[0] + CHUNK, CHUNK)
    return np.histogram(rows, bins=edges)[0].tolist()


@torch.no_grad()
def predict(
    net: nn.Module, pictures: Pictures, rows: np.ndarray, tick: Callable[[int], None]
) -> tuple[np.ndarray, np.ndarray]:
    """Class probabilities (len(rows) x K, float32) and penultimate features (x 128, float16)
    of `rows`, in their order."""
    where = device()
    net.eval()
    head = net[:-1]
    order = {row: k for k, row in enumerate(rows.tolist())}
    probs = np.zeros((len(rows), net[-1].out_features), dtype=np.float32)
    features = np.zeros((len(rows), FEATURES), dtype=np.float16)
    for chunk_rows, chunk in pictures.chunks(rows, None):
        for start in range(0, len(chunk_rows), 1024):
            x = pictures.tensor(chunk[start : start + 1024], where)
            hidden = head(x)
            out = F.softmax(net[-1](hidden), dim=1)
            place = [order[r] for r in chunk_rows[start : start + 1024].tolist()]
            probs[place] = out.cpu().numpy()
            features[place] = hidden.cpu().numpy().astype(np.float16)
            tick(len(place))
    return probs, features

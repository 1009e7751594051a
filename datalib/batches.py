"""Rebuilds any batch a `torch.utils.data.DataLoader` yields, without iterating the loader."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from datalib.errors import InvalidRequest
from datalib.transforms import EMPTY, Pipeline, apply, plan

if TYPE_CHECKING:  # torch is imported where a replay needs it: `scan` and `info` never do
    import torch

    from datalib.index import SplitData

__all__ = [
    "MAX_BATCH_SIZE",
    "Batch",
    "LoaderSettings",
    "batch",
    "epoch_indices",
    "sample_order",
    "tensor_text",
    "to_tensor",
]

MAX_BATCH_SIZE = 1024
MAX_BATCH_BYTES = 256 << 20  # pixels of one batch (x5 with the float32 copy), at most
MAX_BATCH_WORK = 2_000_000_000  # a batch's work in the pipeline (transforms.Plan), at most
MAX_SEED = 2**63 - 1


@dataclass(frozen=True)
class LoaderSettings:
    """The DataLoader arguments that decide which samples land in which batch."""

    batch_size: int = 10
    shuffle: bool = True
    seed: int = 0
    drop_last: bool = False

    def __post_init__(self) -> None:
        if not 1 <= self.batch_size <= MAX_BATCH_SIZE:
            raise InvalidRequest(
                f"Batch size {self.batch_size} is out of range: choose 1 to {MAX_BATCH_SIZE}."
            )
        if not 0 <= self.seed <= MAX_SEED:
            raise InvalidRequest(f"Seed {self.seed} is out of range: choose 0 to {MAX_SEED}.")

    def num_batches(self, n: int) -> int:
        """How many batches one epoch over `n` samples has."""
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)


@dataclass(frozen=True)
class Batch:
    """Batch `index` of an epoch: which samples, and the tensors the model receives."""

    index: int
    indices: torch.Tensor
    images: torch.Tensor
    labels: torch.Tensor
    pixels: np.ndarray  # the same images before ToTensor: uint8 N x C x H x W

    def shown(self, limit: int | None = None) -> list[np.ndarray]:
        """The first `limit` images for display: uint8 H x W (grey) or H x W x 3."""
        return [p[0] if p.shape[0] == 1 else p.transpose(1, 2, 0) for p in self.pixels[:limit]]

    def describe(self) -> dict[str, str]:
        """The facts `print(images, labels)` would show, one readable line each."""
        return {
            "images.shape": str(tuple(self.images.shape)),
            "images.dtype": str(self.images.dtype),
            "images.min()": f"{self.images.min().item():.4f}",
            "images.max()": f"{self.images.max().item():.4f}",
            "labels.shape": str(tuple(self.labels.shape)),
            "labels.dtype": str(self.labels.dtype),
        }


ORDERS_KEPT = 8  # epoch orders kept per process: n int64 each (10 MB for ImageNet-1k)


@functools.lru_cache(maxsize=ORDERS_KEPT)
def epoch_indices(n: int, shuffle: bool, seed: int) -> np.ndarray:
    """The order in which a DataLoader over `n` samples visits them in its first epoch, as a
    read-only int64 array (kept: any batch then costs O(batch_size), not the loader's walk).

    With shuffle, this is the loader's own `RandomSampler` driven by
    `torch.Generator().manual_seed(seed)`.
    """
    import torch
    from torch.utils.data import RandomSampler

    if not shuffle:
        order = np.arange(n, dtype=np.int64)
    else:
        generator = torch.Generator().manual_seed(seed)
        # Starting an epoch, the DataLoader's iterator draws its workers' base seed from the
        # same generator before the sampler's first randperm; skip that draw the same way.
        torch.empty((), dtype=torch.int64).random_(generator=generator)
        order = np.fromiter(RandomSampler(range(n), generator=generator), np.int64, count=n)
    order.flags.writeable = False
    return order


def sample_order(n: int, shuffle: bool, seed: int) -> torch.Tensor:
    """`epoch_indices` as a tensor of the caller's own."""
    import torch

    return torch.from_numpy(epoch_indices(n, shuffle, seed).copy())


def tensor_text(values: torch.Tensor, width: int = 44) -> str:
    """`repr` of a 1-d integer tensor as torch prints it (values right-aligned to one width,
    continuation lines indented under the first value), with lines at most `width` long."""
    items = [str(v) for v in values.tolist()]
    pad = max((len(item) for item in items), default=0)
    per_line = max(1, (width - len("tensor([")) // (pad + 2))
    lines = [
        ", ".join(item.rjust(pad) for item in items[i : i + per_line])
        for i in range(0, len(items), per_line)
    ]
    return "tensor([" + (",\n" + " " * len("tensor([")).join(lines) + "])"


def to_tensor(images: torch.Tensor) -> torch.Tensor:
    """What `transforms.ToTensor()` makes of uint8 images: float32 in [0, 1], same ops."""
    import torch

    return images.to(torch.float32).div(255)


def batch(
    data: SplitData, settings: LoaderSettings, index: int, pipeline: Pipeline = EMPTY
) -> Batch:
    """Batch `index` (0-based) exactly as `DataLoader(dataset, **settings)` yields it, its
    images through ToTensor and then `pipeline`."""
    count = settings.num_batches(len(data))
    if not 0 <= index < count:
        raise InvalidRequest(
            f"Batch {index} does not exist: with batch size {settings.batch_size} "
            f"{data.spec.title} {data.split} has batches 0 to {count - 1}."
        )
    import torch

    order = epoch_indices(len(data), settings.shuffle, settings.seed)
    indices = order[index * settings.batch_size : (index + 1) * settings.batch_size]
    c, h, w = data.image_shape
    size = len(indices) * c * h * w
    if size > MAX_BATCH_BYTES:
        raise InvalidRequest(
            f"Batch {index} would take {size * 5 / 2**30:.1f} GB ({len(indices):,} images of "
            f"{c} x {h} x {w}, as bytes and as float32): lower the batch size."
        )
    if pipeline:
        cost = plan(pipeline, data.image_shape)
        size = len(indices) * cost.peak * 4
        if size > MAX_BATCH_BYTES:
            raise InvalidRequest(
                f"Batch {index} would take {size / 2**30:.1f} GB in the pipeline "
                f"({len(indices):,} images of up to {cost.peak:,} float32 values between "
                "its steps): lower the batch size or the pipeline's sizes."
            )
        if len(indices) * cost.work > MAX_BATCH_WORK:
            raise InvalidRequest(
                f"Batch {index} would cost about {len(indices) * cost.work:.2g} operations "
                f"in the pipeline (at most {MAX_BATCH_WORK:.0e}): lower the batch size, or "
                "use a smaller blur kernel or smaller sizes."
            )
    pixels = data.images(indices)
    images = to_tensor(torch.from_numpy(pixels))
    if pipeline:
        images = _through(pipeline, images, indices, index)
    return Batch(
        index=index,
        indices=torch.from_numpy(indices.copy()),
        images=images,
        labels=torch.from_numpy(data.labels[indices]),
        pixels=pixels,
    )


def _through(
    pipeline: Pipeline, images: torch.Tensor, indices: np.ndarray, index: int
) -> torch.Tensor:
    """Batch `index`'s images through the pipeline, stacked as the DataLoader's collate
    stacks them (refused, with the fix, when they come out in several shapes)."""
    import torch

    h, w = images.shape[-2:]  # what the loader batched before the pipeline
    out = apply(pipeline, images, indices.tolist())
    shapes = sorted({tuple(image.shape) for image in out})
    if len(shapes) > 1:
        raise InvalidRequest(
            f"The pipeline gives the images of batch {index} different shapes "
            f"({', '.join(' x '.join(map(str, s)) for s in shapes[:4])}), and the DataLoader "
            "cannot stack them into one tensor. End the pipeline with a fixed size, e.g. "
            f"v2.Resize(size=[{h}, {w}]) or v2.CenterCrop(size=[{h}, {w}]) (or set expand "
            "to false in RandomRotation)."
        )
    return torch.stack(out)

"""On-disk formats: one object per format says where a dataset's files are, which splits and
samples it has, how to read one image, how to download it, and the code a user writes to load
it. Nothing outside this package asks which format a dataset has.

Images are handed around as they are on disk after one conversion, ImageFolder's: grey
images as uint8 H x W, everything else as RGB uint8 H x W x 3 (alpha dropped). `Conform`
then brings a split's images to the one shape its DataLoader batches.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from datalib.errors import InvalidRequest

__all__ = ["Conform", "Decoded", "Format", "Listing", "Unreadable", "open_regular"]


@dataclass(frozen=True)
class Decoded:
    """One image as read: its pixels (grey H x W or RGB H x W x 3, uint8), its mode and size
    in bytes on disk."""

    pixels: np.ndarray
    mode: str
    file_bytes: int


@dataclass(frozen=True)
class Unreadable:
    """An image that could not be read, and why, in words a user can act on."""

    reason: str


@dataclass
class Listing:
    """What one split holds before any image is decoded, in its loader's order.

    `labels` index `classes` (a damaged labels file may hold others: the scan reports them).
    `sizes` and `mtimes` are each sample file's, or the shared file's for formats that keep
    every image in one file; with `base` (the format's own state) they key the scan's shards.
    """

    split: str
    classes: tuple[str, ...]
    sources: list[str]
    labels: np.ndarray
    sizes: np.ndarray
    mtimes: np.ndarray
    base: str = ""
    skipped: list[tuple[str, str]] = field(default_factory=list)
    # An image folder's class folders (paths under the root) and how many files each holds:
    # a class folder without a readable image is dropped, as ImageFolder cannot use it.
    class_paths: list[str] = field(default_factory=list)
    files_per_class: list[int] = field(default_factory=list)
    cut_by_content: bool = False  # shards cut where a source's hash says (folders), else fixed

    def __len__(self) -> int:
        return len(self.sources)


class Format:
    """The interface every format implements (see the module docstring)."""

    name = ""
    source = "on disk"  # where the images come from, in a page's words ("sizes on disk")

    def folder(self, spec) -> str:
        """The dataset's folder under the data root."""
        raise NotImplementedError

    def splits(self, spec, root: Path) -> tuple[str, ...]:
        """The splits the dataset has."""
        raise NotImplementedError

    def identity(self, spec) -> str:
        """What the dataset is beyond its files, cheap to know (a config entry): an index
        made under another identity is not this dataset's, and is scanned again."""
        return ""

    def missing(self, spec, root: Path) -> list[str]:
        """The dataset's files that are not on disk (empty when it is complete)."""
        return []

    def download(self, spec, root: Path) -> Path:
        """Put the dataset's files under `root`; returns their folder."""
        raise InvalidRequest(f"{spec.title} cannot be downloaded: its files are your own.")

    def listing(self, spec, root: Path, split: str, each_class=None) -> Listing:
        """What `split` holds, in the order its DataLoader visits it. A format that lists
        class by class may call `each_class(part)` with each class's rows as it goes (a
        Listing of just those rows), so that they can be read while it lists the rest."""
        raise NotImplementedError

    def read(self, spec, root: Path, sources: Sequence[str]) -> list[Decoded | Unreadable]:
        """Decode these samples (as listed), in order."""
        raise NotImplementedError

    def dataset_code(
        self, spec, root: Path, split: str, shape: tuple[int, int, int], name: str = "dataset"
    ) -> list[str]:
        """Python lines that build this split as a torchvision dataset named `name`, with
        `transform` (defined before them) applied."""
        raise NotImplementedError

    def transform_steps(self, shape: tuple[int, int, int]) -> list[str]:
        """The transforms (code lines, each ending in a comma) that bring this format's images
        to `shape` before ToTensor: none where the dataset class already gives that shape."""
        return []


@dataclass(frozen=True)
class Conform:
    """The one shape a split's DataLoader batches: C x H x W. Grey images are repeated over
    three channels in a colour split (what PIL's L -> RGB does); other sizes are resized,
    bilinear, as `transforms.Resize((H, W))` does a PIL image."""

    channels: int
    height: int
    width: int

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.channels, self.height, self.width

    def image(self, pixels: np.ndarray) -> np.ndarray:
        """One image as uint8 C x H x W."""
        if pixels.shape[:2] != (self.height, self.width):
            from PIL import Image

            pixels = np.asarray(
                Image.fromarray(pixels).resize((self.width, self.height), Image.Resampling.BILINEAR)
            )
        if pixels.ndim == 2:
            return np.broadcast_to(pixels, (self.channels, self.height, self.width))
        if self.channels == 1:  # a colour image in a grey split: as PIL's RGB -> L
            from PIL import Image

            return np.asarray(Image.fromarray(pixels).convert("L"))[None]
        return pixels.transpose(2, 0, 1)

    def stack(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """Images as one uint8 N x C x H x W array."""
        out = np.empty((len(images), *self.shape), dtype=np.uint8)
        for i, pixels in enumerate(images):
            out[i] = self.image(pixels)
        return out


def open_regular(path: Path | str, root: Path | str) -> tuple[int, int]:
    """A file descriptor for reading `path`, which must be a regular file inside `root`, and
    the file's size.

    Checked on the opened descriptor, not the path: a file swapped for a link (out of the
    root) or for a FIFO between listing and reading is refused, never followed or waited on.
    A link inside the root is followed once, by its resolved path. Raises OSError (with
    errno) or InvalidRequest (with the reason).
    """
    base = _real_root(str(root))
    try:
        fd = os.open(path, _READ_FLAGS)
    except OSError as e:
        if e.errno != errno.ELOOP:
            raise
        real = os.path.realpath(path)  # a link: allowed where it stays inside the root
        if not real.startswith(base + os.sep):
            raise InvalidRequest("link leads outside the data root") from None
        fd = os.open(real, _READ_FLAGS)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise InvalidRequest("not a regular file (a FIFO, a device or a folder)")
        with contextlib.suppress(FileNotFoundError):  # where /proc is: what was really opened
            if not os.readlink(f"/proc/self/fd/{fd}").startswith(base + os.sep):
                raise InvalidRequest("link leads outside the data root")
        os.set_blocking(fd, True)
        return fd, info.st_size
    except BaseException:
        os.close(fd)
        raise


_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


@functools.lru_cache(maxsize=64)
def _real_root(root: str) -> str:
    return os.path.realpath(root).rstrip(os.sep) or os.sep

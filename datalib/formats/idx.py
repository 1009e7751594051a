"""The MNIST family (MNIST, FashionMNIST, KMNIST): four IDX files per dataset, read with numpy.

torchvision trusts an IDX header and fails with an assert or a reshape error on a bad file;
here every header is checked against its file's size first, so each such case becomes a
sentence that says what is wrong. Images are read a byte range at a time, so a page decodes
only the images it shows.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from datalib.errors import CorruptFile, DatasetMissing
from datalib.formats import Decoded, Format, Listing, Unreadable, open_regular
from datalib.formats.download import check_root, fetch

__all__ = ["IDX_FILES", "IdxFormat", "idx_shape", "read_idx"]

# Every member of the family names its four files alike.
IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_UBYTE = 0x08


def idx_shape(path: Path, ndim: int) -> tuple[int, ...]:
    """The shape an unsigned-byte IDX file declares, after checking it matches the file's size."""
    size = os.path.getsize(path)
    fix = f"Delete {path} and download it again (python -m datalib download ...)."
    if size == 0:
        raise CorruptFile(f"{path.name} is empty. {fix}")
    with open(path, "rb") as f:
        head = f.read(4 + 4 * ndim)
    if head[:1] == b"<" or head.lstrip()[:1] == b"<":
        raise CorruptFile(f"{path.name} is an HTML page, not data (a failed download?). {fix}")
    if len(head) < 4 + 4 * ndim:
        raise CorruptFile(
            f"{path.name} is truncated: {size} bytes is shorter than its header. {fix}"
        )
    if head[0:2] != b"\x00\x00" or head[2] != _UBYTE or head[3] != ndim:
        raise CorruptFile(
            f"{path.name} has magic number 0x{head[:4].hex()}, expected "
            f"0x0000{_UBYTE:02x}{ndim:02x} (unsigned bytes, {ndim} dimensions). {fix}"
        )
    shape = tuple(int.from_bytes(head[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = len(head) + math.prod(shape)
    if size != expected:
        kind = "truncated" if size < expected else "longer than its header says"
        raise CorruptFile(
            f"{path.name} is {kind}: its header declares shape {list(shape)} "
            f"({expected} bytes) but the file has {size} bytes. {fix}"
        )
    return shape


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """An unsigned-byte IDX file's data, in the shape its header declares (checked first)."""
    shape = idx_shape(path, ndim)
    return np.fromfile(path, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


class IdxFormat(Format):
    """torchvision's MNIST-family layout: `<root>/<Class>/raw/` with the four IDX files."""

    name = "idx"

    def folder(self, spec) -> str:
        return f"{spec.torchvision_class}/raw"

    def files(self) -> list[str]:
        return [file for pair in IDX_FILES.values() for file in pair]

    def splits(self, spec, root: Path) -> tuple[str, ...]:
        return tuple(IDX_FILES)

    def missing(self, spec, root: Path) -> list[str]:
        folder = root / self.folder(spec)
        return [f for f in self.files() if not (folder / f).is_file()]

    def missing_message(self, spec, root: Path) -> str:
        folder = root / self.folder(spec)
        return (
            f"{spec.title} is not on disk: {', '.join(self.missing(spec, root))} missing from "
            f"{folder}. If the files are on this machine already, set DATALIB_ROOT to the "
            f"folder that holds {self.folder(spec)}/ (the data root is now {root}). Otherwise "
            f"run `python -m datalib download {spec.name} --root {root}` on a machine with "
            f"internet, or copy the files ({', '.join(self.files())}) into {folder}."
        )

    def download(self, spec, root: Path) -> Path:
        def check(fetched: Path) -> None:
            for images, labels in IDX_FILES.values():
                idx_shape(fetched / images, 3)
                idx_shape(fetched / labels, 1)

        return fetch(spec, root, self.files(), check, lambda: self.missing_message(spec, root))

    def listing(self, spec, root: Path, split: str, each_class=None) -> Listing:
        folder = root / self.folder(spec)
        if self.missing(spec, root):
            check_root(root, create=False)
            raise DatasetMissing(self.missing_message(spec, root))
        images_file, labels_file = IDX_FILES[split]
        n = idx_shape(folder / images_file, 3)[0]
        labels = read_idx(folder / labels_file, 1)
        if len(labels) != n:
            raise CorruptFile(
                f"{images_file} holds {n} images but {labels_file} holds {len(labels)} "
                f"labels. Delete both from {folder} and download them again."
            )
        stamps = [os.stat(folder / f) for f in (images_file, labels_file)]
        return Listing(
            split=split,
            classes=spec.classes,
            sources=[f"{images_file}:{i}" for i in range(n)],
            labels=labels.astype(np.int64),
            sizes=np.zeros(n, dtype=np.int64),
            mtimes=np.zeros(n, dtype=np.int64),
            base=repr([(s.st_size, s.st_mtime_ns) for s in stamps]),
        )

    def read(self, spec, root: Path, sources: Sequence[str]) -> list[Decoded | Unreadable]:
        folder = root / self.folder(spec)
        out: list[Decoded | Unreadable | None] = [None] * len(sources)
        by_file: dict[str, list[tuple[int, int]]] = {}
        for position, source in enumerate(sources):
            file, index = source.rsplit(":", 1)
            if file not in self.files():  # an index says where to read: only our files
                raise CorruptFile(f"{source!r} is not an image of {spec.title}: scan again.")
            by_file.setdefault(file, []).append((int(index), position))
        for file, wanted in by_file.items():
            n, height, width = idx_shape(folder / file, 3)
            size = height * width
            fd, _ = open_regular(folder / file, root)
            try:
                for run in _runs(sorted(wanted)):
                    first, last = run[0][0], run[-1][0]
                    if last >= n:
                        raise CorruptFile(f"{file} has no image {last}: it holds {n}.")
                    data = os.pread(fd, (last - first + 1) * size, 16 + first * size)
                    block = np.frombuffer(data, np.uint8).reshape(-1, height, width)
                    for index, position in run:
                        out[position] = Decoded(block[index - first], "L", size)
            finally:
                os.close(fd)
        return out  # type: ignore[return-value]

    def dataset_code(
        self, spec, root: Path, split: str, shape: tuple[int, int, int], name: str = "dataset"
    ) -> list[str]:
        return [
            f"{name} = datasets.{spec.torchvision_class}(",
            f"    {str(root)!r}, train={split == 'train'}, transform=transform",
            ")",
        ]


def _runs(pairs: list[tuple[int, int]]) -> list[list[tuple[int, int]]]:
    """(index, position) pairs sorted by index, cut into runs of consecutive indices."""
    runs: list[list[tuple[int, int]]] = []
    for pair in pairs:
        if runs and pair[0] - runs[-1][-1][0] <= 1:
            runs[-1].append(pair)
        else:
            runs.append([pair])
    return runs

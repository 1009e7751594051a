"""Reads an IDX file (the format MNIST-like datasets ship in), checking it first.

torchvision trusts the header and fails with an assert or a reshape error on a bad file;
these checks turn every such case into a sentence that says what is wrong. The data is then
read with numpy, as torchvision's MNIST does, without importing torchvision (slow to import).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from datalib.errors import CorruptFile

__all__ = ["idx_shape", "read_idx"]

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

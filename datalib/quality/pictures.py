"""A split's images as small pictures, streamed from the index's thumbnails a shard at a time:
what the quality checks read (near-duplicate fingerprints, class means, the label model's
inputs), without decoding the source again and without holding the split in memory."""

from __future__ import annotations

import struct
from collections.abc import Iterator

import numpy as np
from PIL import Image

from datalib.index import LUMA, RAW_GREY, THUMB, SplitData, raw_grey

__all__ = ["picture_batches", "picture_side"]


def picture_side(data: SplitData) -> int:
    """The side of the square pictures of this split: its images' own side when they are
    square and no bigger than a thumbnail (MNIST's 28, CIFAR's 32: exact), else THUMB."""
    _, height, width = data.image_shape
    return height if height == width and height <= THUMB else THUMB


def picture_batches(
    data: SplitData, side: int | None = None, *, grey: bool = False
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(indices, pictures) a shard at a time, every image of the split once: uint8
    K x C x side x side, C the split's channels (1 with `grey`). A thumbnail of another size
    (not square, or bigger images) is resized to the square: the pictures are for
    comparing images, not for showing them."""
    side = side or picture_side(data)
    channels = 1 if grey else data.image_shape[0]
    shard_of = data.column("shard")
    row_of = data.column("shard_row")
    order = np.argsort(shard_of, kind="stable")
    bounds = np.flatnonzero(np.diff(shard_of[order])) + 1
    for members in np.split(order, bounds) if order.size else []:
        blobs = data.shard_thumbnails(int(shard_of[members[0]])).to_pylist()
        rows = row_of[members]
        pictures = _raw_grey(blobs, rows, side, channels)
        yield members, _pictures(blobs, rows, side, channels) if pictures is None else pictures


def _raw_grey(blobs: list, rows: np.ndarray, side: int, channels: int) -> np.ndarray | None:
    """A shard's raw grey thumbnails of side x side (MNIST's: all alike), read at once; None
    when they are not all such."""
    size = 8 + side * side
    header = RAW_GREY + struct.pack("<HH", side, side)
    if any(len(b or b"") != size or b[:8] != header for b in blobs):
        return None
    pixels = np.frombuffer(b"".join(blobs), np.uint8).reshape(len(blobs), size)[:, 8:]
    chosen = pixels[rows].reshape(len(rows), 1, side, side)
    return np.ascontiguousarray(np.broadcast_to(chosen, (len(rows), channels, side, side)))


def _pictures(blobs: list, rows: np.ndarray, side: int, channels: int) -> np.ndarray:
    out = np.empty((len(rows), channels, side, side), dtype=np.uint8)
    for k, row in enumerate(rows.tolist()):
        out[k] = _picture(blobs[row] or b"", side, channels)
    return out


def _picture(blob: bytes, side: int, channels: int) -> np.ndarray:
    """One stored thumbnail as channels x side x side."""
    pixels = raw_grey(blob)
    if pixels is None:
        import simplejpeg

        pixels = simplejpeg.decode_jpeg(blob, colorspace="RGB")
    if pixels.shape[0] != side or pixels.shape[1] != side:
        pixels = np.asarray(Image.fromarray(pixels).resize((side, side), Image.Resampling.BOX))
    if pixels.ndim == 2:
        return np.broadcast_to(pixels, (channels, side, side))
    if channels == 1:
        return np.rint(pixels @ LUMA).astype(np.uint8)[None]
    return pixels.transpose(2, 0, 1)

"""The scan: every image of a dataset read once, summarised into the per-sample index.

The unit of work is `describe_samples`, a pure function from a shard of rows (where each
image is, its class) to a shard of rows (its size, mode, per-channel pixel sums, hashes, a
thumbnail) plus the shard's pixel histograms: the local process pool here and the Ray engine
run the same function. Shards are cut from the listing so that a changed file changes only
its own shard's key: a rescan, or a scan resumed after a kill, reads only what is missing.
Finishing writes the index folder whole and renames it into place (datalib.index).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import itertools
import json
import multiprocessing
import os
import shutil
import signal
import struct
import sys
import tempfile
import threading
import time
import types
import zlib
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Self

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from datalib.errors import CorruptFile, DatalibError, DataRootError, DatasetMissing, ScanFailed
from datalib.formats import Decoded, Listing
from datalib.formats.download import check_root, file_lock
from datalib.formats.folder import IMG_EXTENSIONS
from datalib.index import (
    LUMA,
    RAW_GREY,
    SCAN_VERSION,
    THUMB,
    as_numpy,
    current_index,
    dataset_dir,
    scan_job,
    trusted,
)
from datalib.jobs import TEMP_PREFIX
from datalib.paths import data_root, environment
from datalib.registry import DatasetSpec, dataset_spec

__all__ = [
    "SHARD_COLUMNS",
    "Progress",
    "Shard",
    "describe_samples",
    "plan_shards",
    "scan",
]

FIXED_SHARD = 4096  # samples per shard of a format that keeps its images in big files
SHARD_MIN, SHARD_MAX = 256, 4096  # a folder's shards: cut where a file name's hash says
CUT_MASK = 1023  # ... which it says once in 1024 files on average
ROW_GROUP = 8192  # rows per row group of an index table: a look-up reads one
JPEG_QUALITY = 85
PHASH_SIDE = 32
CHUNK_PIXELS, CHUNK_MAX = 1 << 21, 512  # images described at once: pixels, count
IN_PROCESS_BELOW = 4096  # images to read, below which no worker processes start ...
IN_PROCESS_BYTES = 64 << 20  # ... unless their files hold this much
STATUS_EVERY = 0.5  # seconds between status writes
LOG_EVERY = 5.0  # seconds between progress lines in a log (not a terminal)

SHARD_COLUMNS = {
    "ok": pa.bool_(),
    "reason": pa.string(),
    "width": pa.int32(),
    "height": pa.int32(),
    "mode": pa.string(),
    "channels": pa.int8(),
    "file_bytes": pa.int64(),
    **{f"{stat}_c{c}": pa.int64() for stat in ("sum", "sumsq") for c in range(3)},
    **{f"{stat}_c{c}": pa.uint8() for stat in ("min", "max") for c in range(3)},
    "ink": pa.float32(),
    "content_hash": pa.uint64(),
    "phash": pa.uint64(),
    "thumbnail": pa.binary(),
}
_NUMPY_TYPES = {  # the numeric columns as numpy builds them (pyarrow's own map imports pandas)
    name: {pa.bool_(): np.dtype(bool), pa.float32(): np.dtype(np.float32)}.get(
        kind, np.dtype(str(kind))
    )
    for name, kind in SHARD_COLUMNS.items()
    if name not in ("reason", "mode", "thumbnail")
}
INDEX_COLUMNS = {
    "index": pa.int64(),
    "label": pa.int64(),
    "source": pa.string(),
    "shard": pa.int32(),
    "shard_row": pa.int32(),
    **{
        name: kind
        for name, kind in SHARD_COLUMNS.items()
        if name not in ("ok", "reason", "thumbnail")
    },
}


# The shard function ----------------------------------------------------------------------


def describe_samples(
    spec: DatasetSpec, root: Path, sources: Sequence[str], classes: Sequence[str]
) -> tuple[pa.Table, dict[str, dict[str, list[int]]]]:
    """Rows in (where each image is, its class name), rows out: one row per image, in order,
    with its size, mode, per-channel pixel sum, sum of squares, min and max, ink fraction,
    content hash, perceptual hash and thumbnail, or why it could not be read; and the shard's
    pixel-value histograms by class name and channel kind (grey, r, g, b)."""
    decoded = spec.format.read(spec, root, sources)
    n = len(sources)
    cols: dict[str, np.ndarray | list] = {
        name: np.zeros(n, dtype=_NUMPY_TYPES[name]) for name in _NUMPY_TYPES
    }
    reasons: list[str | None] = [None] * n
    modes: list[str | None] = [None] * n
    thumbs: list[bytes | None] = [None] * n
    histograms: dict[str, dict[str, np.ndarray]] = {}
    by_shape: dict[tuple[int, ...], list[int]] = {}
    for i, item in enumerate(decoded):
        if isinstance(item, Decoded):
            by_shape.setdefault(item.pixels.shape, []).append(i)
            modes[i] = item.mode
            cols["file_bytes"][i] = item.file_bytes
        else:
            reasons[i] = item.reason
    for shape, rows in by_shape.items():
        # As many images at a time as make a few million pixels: numpy's fixed costs spread
        # thin, memory bounded for big images.
        step = max(1, min(CHUNK_MAX, CHUNK_PIXELS // (shape[0] * shape[1])))
        for start in range(0, len(rows), step):
            chunk = rows[start : start + step]
            stack = np.stack([decoded[i].pixels for i in chunk])
            _describe(
                stack, np.asarray(chunk), cols, thumbs, histograms, [classes[i] for i in chunk]
            )
    table = pa.table(
        {
            name: pa.array(
                reasons
                if name == "reason"
                else modes
                if name == "mode"
                else thumbs
                if name == "thumbnail"
                else cols[name],
                type=kind,
            )
            for name, kind in SHARD_COLUMNS.items()
        }
    )
    hist = {c: {k: v.tolist() for k, v in kinds.items()} for c, kinds in histograms.items()}
    return table, hist


def _describe(
    stack: np.ndarray,
    rows: np.ndarray,
    cols: dict,
    thumbs: list,
    histograms: dict[str, dict[str, np.ndarray]],
    classes: list[str],
) -> None:
    """Fill the columns for same-shaped images `stack` (K x H x W, or K x H x W x 3).

    Small images are counted by numpy a contiguous channel plane at a time (its reductions
    over an interleaved RGB axis are ten times slower); a big image's values are counted by
    PIL (one pass in C), its sums, squares, min and max taken from those counts, and it is
    box-reduced by PIL before the 32 x 32 picture the hash and thumbnail start from. Both
    ways give the same exact figures.
    """
    k, height, width = stack.shape[:3]
    colour = stack.ndim == 4
    channels = 3 if colour else 1
    kinds = ("r", "g", "b") if colour else ("grey",)
    names = np.asarray(classes)
    if height * width >= BIG_IMAGE:
        images = [Image.fromarray(pixels) for pixels in stack]
        counts = np.array([image.histogram() for image in images], dtype=np.int64)
        counts = counts.reshape(k, channels, LEVELS)
        sums, squares = (counts @ VALUES).T, (counts @ VALUES**2).T
        seen = counts > 0
        lows = seen.argmax(axis=2).T
        highs = (LEVELS - 1 - seen[:, :, ::-1].argmax(axis=2)).T
        for name in sorted(set(classes)):
            _add(histograms, name, kinds, counts[names == name].sum(axis=0))
        factor = min(height, width) // (2 * PHASH_SIDE)
        if factor >= 2:
            reduced = np.stack([np.asarray(image.reduce(factor)) for image in images])
        else:
            reduced = stack
    else:
        reduced = stack
    planes = np.ascontiguousarray(np.moveaxis(reduced, -1, 0)) if colour else reduced[None]
    if height * width < BIG_IMAGE:
        flat = planes.reshape(channels, k, height * width)
        # Narrow accumulators where they cannot overflow: half the memory traffic.
        sums = flat.sum(axis=2, dtype=np.uint32)
        squares = np.square(flat, dtype=np.uint16).sum(axis=2, dtype=np.uint64)
        lows, highs = flat.min(axis=2), flat.max(axis=2)
        for name in sorted(set(classes)):
            members = np.flatnonzero(names == name)
            chosen = flat if members.size == k else flat[:, members]
            _add(histograms, name, kinds, [_byte_counts(plane) for plane in chosen])
    cols["ok"][rows] = True
    cols["width"][rows], cols["height"][rows] = width, height
    cols["channels"][rows] = channels
    for c in range(3):  # grey: the same value on all three, as L -> RGB gives
        plane = c if colour else 0
        cols[f"sum_c{c}"][rows] = sums[plane]
        cols[f"sumsq_c{c}"][rows] = squares[plane]
        cols[f"min_c{c}"][rows] = lows[plane]
        cols[f"max_c{c}"][rows] = highs[plane]
    # Every image at 32 x 32 (area-averaged): the perceptual hash's input, the ink measure's,
    # and a square image's thumbnail.
    small = _area_resize(planes, PHASH_SIDE)
    grey = np.tensordot(LUMA, small, axes=1) if colour else small[0]
    cols["ink"][rows] = _ink(grey)
    cols["phash"][rows] = _phash(grey)
    thumbnails = _thumbnails(reduced, small)
    for j, row in enumerate(rows.tolist()):
        # SHA-1 (the processor has instructions for it) of the shape and the pixels' buffer
        # (not a copy), its first 64 bits: a content hash, not a secret.
        digest = hashlib.sha1(np.asarray(stack[j].shape, np.int64).tobytes(), usedforsecurity=False)
        digest.update(stack[j])
        cols["content_hash"][row] = int.from_bytes(digest.digest()[:8], "little")
        thumbs[row] = thumbnails[j]


def _add(histograms: dict, name: str, kinds: tuple[str, ...], counts) -> None:
    target = histograms.setdefault(name, {})
    for kind, values in zip(kinds, counts, strict=True):
        target[kind] = target.get(kind, 0) + values


LEVELS = 256
VALUES = np.arange(LEVELS, dtype=np.int64)
BIG_IMAGE = 128 * 128  # pixels from which PIL counts an image's values (faster in C there)


def _byte_counts(values: np.ndarray) -> np.ndarray:
    """How many of these bytes take each value 0-255. Counted in pairs (one bincount over
    uint16, half as many items as bytes), which is twice as fast as counting bytes."""
    data = np.ascontiguousarray(values).reshape(-1)
    odd = data[-1:] if data.size % 2 else data[:0]
    pairs = data[: data.size - odd.size].view(np.uint16)
    table = np.bincount(pairs, minlength=65536).reshape(256, 256)
    return table.sum(axis=0) + table.sum(axis=1) + np.bincount(odd, minlength=256)


def _ink(grey: np.ndarray) -> np.ndarray:
    """The fraction of each image (at 32 x 32) that differs from its border, its background,
    by more than a quarter of the range: the ink of a digit, the object of a photo."""
    border = np.concatenate(
        [grey[:, 0, :], grey[:, -1, :], grey[:, :, 0], grey[:, :, -1]], axis=1
    ).mean(axis=1)
    return (np.abs(grey - border[:, None, None]) > 64).mean(axis=(1, 2)).astype(np.float32)


_matrices: dict[tuple[int, int], np.ndarray] = {}


def _area_matrix(n_in: int, n_out: int) -> np.ndarray:
    """n_out x n_in weights that average each output cell's share of the input (area resize)."""
    key = (n_in, n_out)
    if key not in _matrices:
        edges = np.linspace(0, n_in, n_out + 1)
        weights = np.zeros((n_out, n_in), dtype=np.float32)
        for o in range(n_out):
            lo, hi = edges[o], edges[o + 1]
            for i in range(int(lo), min(int(np.ceil(hi)), n_in)):
                weights[o, i] = min(hi, i + 1) - max(lo, i)
        _matrices[key] = weights / weights.sum(axis=1, keepdims=True)
    return _matrices[key]


def _area_resize(planes: np.ndarray, side: int) -> np.ndarray:
    """C x K x H x W uint8 planes, area-resized to C x K x side x side (float32).

    Where H and W are whole multiples of `side`, the area mean is a sum of strided views
    (three times faster); otherwise two matrix products over every row and column at once.
    """
    channels, k, height, width = planes.shape
    fy, fx = height // side, width // side
    if fy * side == height and fx * side == width and fy * fx <= 64:
        total = np.zeros((channels, k, side, side), dtype=np.uint32 if fy * fx > 257 else np.uint16)
        for dy in range(fy):
            for dx in range(fx):
                total += planes[:, :, dy::fy, dx::fx]
        return total / np.float32(fy * fx)
    columns = planes.reshape(-1, width).astype(np.float32) @ _area_matrix(width, side).T
    rows = columns.reshape(channels * k, height, side).transpose(0, 2, 1).reshape(-1, height)
    both = rows @ _area_matrix(height, side).T
    return both.reshape(channels, k, side, side).transpose(0, 1, 3, 2)


def _dct_matrix(n: int) -> np.ndarray:
    key = (n, -1)
    if key not in _matrices:
        i = np.arange(n)
        m = np.cos(np.pi * (2 * i[None, :] + 1) * i[:, None] / (2 * n)) * np.sqrt(2 / n)
        m[0] /= np.sqrt(2)
        _matrices[key] = m.astype(np.float32)
    return _matrices[key]


def _phash(small: np.ndarray) -> np.ndarray:
    """64-bit perceptual hashes of K x 32 x 32 grey images: their 8 x 8 lowest DCT
    frequencies, one bit each for above or below their median. Near-identical images differ
    in few bits."""
    dct = _dct_matrix(PHASH_SIDE)
    low = (dct @ small @ dct.T)[:, :8, :8].reshape(-1, 64)
    median = np.median(low[:, 1:], axis=1, keepdims=True)  # the DC term is left out
    bits = (low > median).astype(np.uint64)
    return (bits << np.arange(64, dtype=np.uint64)).sum(axis=1, dtype=np.uint64)


def _thumbnails(stack: np.ndarray, small: np.ndarray) -> list[bytes]:
    """Small pictures for grids, longer side at most THUMB: grey ones raw (exact, and small
    enough), colour ones JPEG."""
    height, width = stack.shape[1:3]
    if max(height, width) <= THUMB:
        pictures = stack
    elif height == width and THUMB == PHASH_SIDE:
        pictures = np.moveaxis(small, 0, -1) if stack.ndim == 4 else small[0]
        pictures = np.clip(np.rint(pictures), 0, 255).astype(np.uint8)
    else:  # not square: PIL keeps the aspect ratio
        pictures = []
        for pixels in stack:
            image = Image.fromarray(pixels)
            image.thumbnail((THUMB, THUMB), Image.Resampling.BOX)
            pictures.append(np.asarray(image))
    return [encode_thumbnail(np.ascontiguousarray(p)) for p in pictures]


def encode_thumbnail(pixels: np.ndarray) -> bytes:
    """One thumbnail as stored: grey raw, colour JPEG (simplejpeg: PIL's encoder costs 70 us
    a call in Python overhead, more than the scan's whole budget for it)."""
    if pixels.ndim == 2:
        height, width = pixels.shape
        return RAW_GREY + struct.pack("<HH", width, height) + pixels.tobytes()
    import simplejpeg

    return simplejpeg.encode_jpeg(pixels, quality=JPEG_QUALITY, colorspace="RGB")


# Shards -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Shard:
    """Rows start:stop of one split's listing, and the key its result is stored under."""

    split: str
    start: int
    stop: int
    key: str

    @property
    def file(self) -> str:
        return f"{self.key}.parquet"


def _class_names(listing: Listing) -> list[str]:
    """Each sample's class name; a label outside the classes gets a name that says so."""
    names = np.asarray(listing.classes + ("",), dtype=object)
    labels = listing.labels
    inside = (labels >= 0) & (labels < len(listing.classes))
    out = names[np.where(inside, labels, len(listing.classes))]
    for i in np.flatnonzero(~inside).tolist():
        out[i] = f"<label {int(labels[i])}>"
    return out.tolist()


def plan_shards(listing: Listing) -> list[Shard]:
    """Cut a listing into shards. A folder's shards end at class boundaries and where a file
    name's hash says (so adding a file changes one shard); others are fixed-size runs."""
    classes = _class_names(listing)
    cuts = [0]
    if listing.cut_by_content:
        for i in range(1, len(listing)):
            size = i - cuts[-1]
            if (
                classes[i] != classes[i - 1]
                or size >= SHARD_MAX
                or (size >= SHARD_MIN and zlib.crc32(listing.sources[i].encode()) & CUT_MASK == 0)
            ):
                cuts.append(i)
    else:
        cuts = list(range(0, len(listing), FIXED_SHARD)) or [0]
    cuts.append(len(listing))
    shards = []
    for start, stop in itertools.pairwise(cuts):
        if stop <= start:
            continue
        key = hashlib.sha256(
            json.dumps(
                [
                    SCAN_VERSION,
                    listing.base,
                    listing.sources[start:stop],
                    classes[start:stop],
                    listing.sizes[start:stop].tolist(),
                    listing.mtimes[start:stop].tolist(),
                ]
            ).encode()
        ).hexdigest()[:32]
        shards.append(Shard(listing.split, start, stop, key))
    return shards


def scan_shard(
    name: str, root: str, sources: list[str], classes: list[str], path: str
) -> tuple[int, pa.Table, dict]:
    """Describe one shard and store it at `path` (a temp file renamed into place); the
    worker processes' job. Returns how many images it read, and the table (less its
    thumbnails) and histograms, so that finishing the index need not read them back."""
    spec = dataset_spec(name)
    table, histograms = describe_samples(spec, Path(root), sources, classes)
    stored = table.replace_schema_metadata({"histograms": json.dumps(histograms)})
    target = Path(path)
    handle, temp = tempfile.mkstemp(dir=target.parent, prefix=TEMP_PREFIX, suffix=".part")
    try:
        with os.fdopen(handle, "wb") as stream:
            # zstd halves even the JPEG thumbnails: their headers are alike, row after row.
            pq.write_table(stored, stream, compression="zstd")
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    return len(sources), table.drop_columns(["thumbnail"]), histograms


# The local runner ---------------------------------------------------------------------------


@dataclass
class Progress:
    """How a scan is going, as its status file and the terminal show it."""

    state: str = "starting"
    done: int = 0
    total: int = 0
    started: float = 0.0
    skipped_rows: int = 0  # rows already in finished shards, not read again

    @property
    def rate(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.done / elapsed if elapsed > 0 and self.done else 0.0

    @property
    def eta(self) -> float | None:
        return (self.total - self.done) / self.rate if self.rate else None

    def line(self) -> str:
        if self.state == "done" and not self.total:
            return f"up to date: {self.skipped_rows:,} images indexed, none changed"
        eta = f", ETA {self.eta:.0f} s" if self.eta is not None else ""
        reused = f" ({self.skipped_rows:,} from earlier scans)" if self.skipped_rows else ""
        return (
            f"{self.state}: {self.done:,} of {self.total:,} images{reused}, "
            f"{self.rate:,.0f} images/s{eta}"
        )


def _write_status(folder: Path, progress: Progress, **extra) -> None:
    scan_job(folder).write_status(
        state=progress.state,
        done=progress.done,
        total=progress.total,
        images_per_s=round(progress.rate, 1),
        eta_s=None if progress.eta is None else round(progress.eta, 1),
        **extra,
    )


def scan(
    name: str,
    root: str | os.PathLike | None = None,
    *,
    workers: int | None = None,
    download: bool = False,
    report: Callable[[Progress], None] | None = None,
    runner: Callable | None = None,
) -> Path:
    """Bring the dataset's index up to date; returns the complete index folder.

    Lists every split, reuses every finished shard whose key still matches, reads the rest
    on `workers` processes (default: every core), and writes the index. Another scan of the
    same dataset (another server, the CLI) holds a lock: this one waits for it, then finds
    the work done. `runner(tasks, advance)` replaces the process pool (the Ray engine); its
    `start()`, if it has one, runs while the files are listed.
    """
    spec = dataset_spec(name)
    root_path = data_root(root)
    check_root(root_path, create=download and root is None)
    if download and spec.format.missing(spec, root_path):  # before any folder is made
        spec.format.download(spec, root_path)
    folder = dataset_dir(spec, root_path)
    shard_dir = folder / "shards"
    try:
        shard_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataRootError(
            f"Cannot write the index of {spec.title} to {folder} ({e.strerror}). Set "
            "BATCHSCOPE_CACHE to a folder this user can write."
        ) from None
    progress = Progress(started=time.monotonic())
    report = report or (lambda p: None)
    with file_lock(folder / "scan.lock"):
        try:
            return _scan_locked(
                spec, root_path, folder, shard_dir, workers, progress, report, runner
            )
        except KeyboardInterrupt:
            progress.state = "stopped"
            _write_status(folder, progress, error="stopped (Ctrl-C); the next scan resumes")
            raise
        except DatalibError as e:
            progress.state = "failed"
            _write_status(folder, progress, error=str(e))
            raise
        except OSError as e:
            progress.state = "failed"
            message = _disk_message(e, folder)
            _write_status(folder, progress, error=message)
            raise ScanFailed(message) from None
        finally:
            _clear_temp(folder)


def _disk_message(error: OSError, folder: Path) -> str:
    if error.errno == 28:  # ENOSPC
        return (
            f"The disk holding {folder} is full (no space left on device): the scan stopped "
            "and wrote no index. Free some space, or set BATCHSCOPE_CACHE to a folder on "
            "another disk; the next scan resumes from the finished shards."
        )
    return f"The scan stopped: {error.strerror or error} ({getattr(error, 'filename', '')}). "


def _clear_temp(folder: Path) -> None:
    """Remove temp files: under the scan lock, no writer of ours is alive but this one."""
    for path in [*folder.glob(f"{TEMP_PREFIX}*"), *(folder / "shards").glob(f"{TEMP_PREFIX}*")]:
        with contextlib.suppress(OSError):
            shutil.rmtree(path) if path.is_dir() else path.unlink()


def _scan_locked(spec, root, folder, shard_dir, workers, progress, report, runner) -> Path:
    _clear_temp(folder)
    progress.state = "listing"
    _write_status(folder, progress)
    last = [0.0]
    described: dict[str, tuple[pa.Table, dict]] = {}  # what workers sent back: no re-reading

    def advance(result: tuple[int, pa.Table | None, dict | None], path: str) -> None:
        rows, table, histograms = result
        if table is not None:
            described[Path(path).name] = (table, histograms)
        progress.done += rows
        if time.monotonic() - last[0] >= STATUS_EVERY or progress.done == progress.total:
            last[0] = time.monotonic()
            _write_status(folder, progress)
            report(progress)

    with _Shards(spec, root, shard_dir, workers, advance, runner, progress) as work:
        listings = _list_splits(spec, root, work, alongside=getattr(runner, "start", None))
        good = {s: v for s, v in listings.items() if isinstance(v, Listing)}
        if not good:
            raise next(iter(listings.values()))  # type: ignore[misc]
        shards = {split: plan_shards(listing) for split, listing in good.items()}
        key = _index_key(listings, shards, spec.format.identity(spec))
        current = current_index(spec, root)
        if current is not None and trusted(spec, root, current) is None:
            current = None  # damaged or forged: built again below, never read
        if not work.submitted and current is not None and current.name == f"index-{key}":
            progress.state = "done"
            progress.skipped_rows = sum(len(v) for v in good.values())
            _write_status(folder, progress, finished=time.time(), index=current.name)
            report(progress)
            return current
        for listing in good.values():
            work.add(listing)  # what was not listed class by class (arrays), or is missing
        progress.skipped_rows = sum(len(v) for v in good.values()) - progress.total
        progress.state = "scanning"
        _write_status(folder, progress)
        work.finish()
    progress.state = "finishing"
    _write_status(folder, progress)
    report(progress)
    path = _finish(spec, root, folder, listings, shards, key, described)
    progress.state = "done"
    _write_status(folder, progress, finished=time.time(), index=path.name)
    report(progress)
    _collect(folder, path, shards)
    return path


def _list_splits(spec, root: Path, work: _Shards, alongside: Callable | None = None) -> dict:
    """Every split's listing (or why it failed). A folder is listed class by class, and each
    class's shards start at once: the workers read images while the listing goes on. A
    runner's `start` (the Ray engine's: Ray starts in the main thread only) runs in this
    thread meanwhile, the listing in another."""

    def list_all(stop: threading.Event) -> dict[str, Listing | DatalibError]:
        def each_class(listing: Listing) -> None:
            if stop.is_set():
                raise _Stopped
            work.add(listing)

        listings: dict[str, Listing | DatalibError] = {}
        for split in spec.format.splits(spec, root):
            try:
                listings[split] = spec.format.listing(spec, root, split, each_class=each_class)
            except DatalibError as e:  # a damaged split: the others are still indexed
                listings[split] = e
        return listings

    stop = threading.Event()
    if alongside is None:
        return list_all(stop)
    with ThreadPoolExecutor(1, thread_name_prefix="listing") as pool:
        listed = pool.submit(list_all, stop)
        try:
            alongside()
            return listed.result()
        except BaseException:
            stop.set()  # the listing ends at its next class; the error (or Ctrl-C) goes on
            raise


class _Stopped(Exception):
    """The listing was stopped: its runner failed to start."""


def _finished(path: Path, shard: Shard) -> bool:
    """Is the shard's file there, with a row for each of its samples? One that is not (cut
    short, or not ours) is removed, and the shard read again."""
    if not path.is_file():
        return False
    try:
        rows = pq.ParquetFile(path).metadata.num_rows
    except Exception:  # noqa: BLE001 - whatever it is, it is no shard of ours
        rows = -1
    if rows == shard.stop - shard.start:
        return True
    with contextlib.suppress(OSError):
        path.unlink()
    return False


def _index_key(listings: dict, shards: dict[str, list[Shard]], identity: str = "") -> str:
    """What the index's content depends on: every shard's key, each split's classes and what
    was skipped (or why a split failed), and the format's identity of the dataset where it
    has one (an index's meta.json holds it; the pages open none made under another)."""
    return hashlib.sha256(
        json.dumps(
            [
                SCAN_VERSION,
                *([identity] if identity else []),
                {
                    split: (
                        [s.key for s in shards[split]],
                        listing.classes,
                        listing.skipped,
                        listing.files_per_class,
                    )
                    if isinstance(listing, Listing)
                    else str(listing)
                    for split, listing in listings.items()
                },
            ]
        ).encode()
    ).hexdigest()[:24]


class _Shards:
    """The shards still to read, run as they are found: in this process while there is
    little to do, on a pool of worker processes from IN_PROCESS_BELOW images (or
    IN_PROCESS_BYTES of files) on; or handed whole to `runner` (the Ray engine) at the end."""

    def __init__(self, spec, root, shard_dir, workers, advance, runner, progress) -> None:
        self.spec, self.root, self.shard_dir = spec, root, shard_dir
        self.workers = workers or os.cpu_count() or 1
        self.advance, self.runner, self.progress = advance, runner, progress
        self.submitted: set[str] = set()
        self.buffered: list[tuple] = []
        self.buffered_bytes = 0
        self.pool: ProcessPoolExecutor | None = None
        self.pending: dict = {}

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *error) -> None:
        if self.pool is not None:
            for future in self.pending:
                future.cancel()
            self.pool.shutdown(wait=True, cancel_futures=True)

    def add(self, listing: Listing) -> None:
        """Queue the shards of `listing` (a split, or the part of it listed so far) that were
        not read before."""
        names = _class_names(listing)
        for shard in plan_shards(listing):
            if shard.key in self.submitted or _finished(self.shard_dir / shard.file, shard):
                continue
            self.submitted.add(shard.key)
            self.progress.total += shard.stop - shard.start
            task = (
                self.spec.name,
                str(self.root),
                listing.sources[shard.start : shard.stop],
                names[shard.start : shard.stop],
                str(self.shard_dir / shard.file),
            )
            if self.pool is not None:
                self._submit(task)
                continue
            self.buffered.append(task)
            self.buffered_bytes += int(listing.sizes[shard.start : shard.stop].sum())
            rows = sum(len(t[2]) for t in self.buffered)
            enough = rows >= IN_PROCESS_BELOW or self.buffered_bytes >= IN_PROCESS_BYTES
            if self.runner is None and self.workers > 1 and enough:
                self._start()
        self._collect(block=False)

    def _start(self) -> None:
        # spawn: workers start from a clean interpreter (numpy, PIL, pyarrow), never a copy
        # of a server that holds torch and threads.
        self.pool = ProcessPoolExecutor(
            self.workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_worker_init,
        )
        for task in self.buffered:
            self._submit(task)
        self.buffered = []

    def _submit(self, task: tuple) -> None:
        with _workers_skip_main():  # workers start as tasks are submitted
            self.pending[self.pool.submit(scan_shard, *task)] = task[-1]

    def _collect(self, *, block: bool) -> None:
        if not self.pending:
            return
        finished, _ = wait(self.pending, timeout=None if block else 0, return_when=FIRST_COMPLETED)
        for future in finished:
            self.advance(future.result(), self.pending.pop(future))

    def finish(self) -> None:
        """Every queued shard read and stored."""
        if self.runner is not None:
            self.runner(self.buffered, self.advance)
        elif self.pool is None:
            for task in self.buffered:
                self.advance(scan_shard(*task), task[-1])
        self.buffered = []
        while self.pending:
            self._collect(block=True)


@contextlib.contextmanager
def _workers_skip_main():
    """While workers start: show them this module as the main one, and one BLAS thread each.

    A spawned worker imports its parent's main module first: a user's script (run again, from
    the top), a notebook or `<stdin>` (which fails). This module is all a worker needs. And
    numpy's BLAS would start a thread per core in every worker: its small matrix products
    then cost twice the CPU, spinning against the other workers.
    """
    real = sys.modules["__main__"]
    stand_in = types.ModuleType("__main__")
    stand_in.__spec__ = importlib.util.find_spec(__name__)
    sys.modules["__main__"] = stand_in
    try:
        with environment(dict.fromkeys(BLAS_THREADS, "1")):
            yield
    finally:
        sys.modules["__main__"] = real


BLAS_THREADS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def _worker_init() -> None:
    # Ctrl-C goes to the whole process group: the parent stops the pool; workers just end.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # A worker never writes to stdout (`--json` holds the answer alone): what a user's
    # dataset prints goes to stderr.
    sys.stdout = sys.stderr


# Finishing ----------------------------------------------------------------------------------


def _read_shard(path: Path) -> tuple[pa.Table, dict]:
    # ParquetFile, not read_table: that imports pyarrow.dataset, a third of a second.
    shard = pq.ParquetFile(path)
    table = shard.read(columns=[c for c in SHARD_COLUMNS if c != "thumbnail"])
    metadata = shard.schema_arrow.metadata or {}
    return table, json.loads(metadata.get(b"histograms", b"{}"))


def _finish(
    spec, root: Path, folder: Path, listings: dict, shards: dict, key: str, described: dict
) -> Path:
    """Write the index folder from the shards, and name it in CURRENT: whole or not at all."""
    target = folder / f"index-{key}"
    temp = Path(tempfile.mkdtemp(dir=folder, prefix=TEMP_PREFIX))
    shard_files: list[str] = []
    meta_splits: dict[str, dict] = {}
    hist_rows: dict[str, list] = {"split": [], "label": [], "kind": [], "counts": []}
    failures: dict[str, DatalibError] = {}
    for split, listing in listings.items():
        if not isinstance(listing, Listing):
            failures[split] = listing
            continue
        try:
            meta_splits[split] = _finish_split(
                listing, shards[split], folder / "shards", temp, shard_files, hist_rows, described
            )
        except DatalibError as e:  # no readable image in this split: the others still count
            failures[split] = e
    if len(failures) == len(listings):
        shutil.rmtree(temp, ignore_errors=True)
        raise next(iter(failures.values()))
    meta_splits.update({split: {"error": str(e)} for split, e in failures.items()})
    meta_splits = {split: meta_splits[split] for split in listings}  # in the format's order
    pq.write_table(
        pa.table(
            {
                "split": pa.array(hist_rows["split"], pa.string()),
                "label": pa.array(hist_rows["label"], pa.int64()),
                "kind": pa.array(hist_rows["kind"], pa.string()),
                "counts": pa.array(hist_rows["counts"], pa.list_(pa.int64())),
            }
        ),
        temp / "histograms.parquet",
    )
    meta = {
        "version": SCAN_VERSION,
        "name": spec.name,
        "root": str(root),
        "key": key,
        "created": time.time(),
        "identity": spec.format.identity(spec),
        "shards": shard_files,
        "splits": meta_splits,
    }
    (temp / "meta.json").write_text(json.dumps(meta))
    if target.exists():  # the same listing indexed before (CURRENT was lost): replace it
        shutil.rmtree(target)
    os.replace(temp, target)
    handle, pointer = tempfile.mkstemp(dir=folder, prefix=TEMP_PREFIX)
    with os.fdopen(handle, "w") as stream:
        stream.write(target.name)
    os.replace(pointer, folder / "CURRENT")
    return target


def _finish_split(
    listing: Listing,
    shards: list[Shard],
    shard_dir: Path,
    out: Path,
    shard_files: list[str],
    hist_rows: dict[str, list],
    described: dict[str, tuple[pa.Table, dict]],
) -> dict:
    """One split's table and facts: unreadable images dropped, classes without a readable
    image dropped and the rest renumbered (ImageFolder would refuse or crash on them)."""
    tables, histograms = [], []
    for shard in shards:
        table, hist = described.pop(shard.file, None) or _read_shard(shard_dir / shard.file)
        tables.append(table)
        histograms.append(hist)
    ok = np.concatenate([np.zeros(0, dtype=bool)] + [as_numpy(t.column("ok")) for t in tables])
    labels = listing.labels
    inside = (labels >= 0) & (labels < len(listing.classes))
    if listing.class_paths:  # an image folder: a class without a readable image is no class
        present = np.bincount(labels[ok & inside], minlength=len(listing.classes)) > 0
    else:
        present = np.ones(len(listing.classes), dtype=bool)
    renumber = np.cumsum(present) - 1
    classes = [c for c, keep in zip(listing.classes, present, strict=True) if keep]
    outside = int((ok & ~inside).sum())
    skipped = list(listing.skipped)
    for index in np.flatnonzero(~present).tolist():
        empty = listing.files_per_class[index] == 0
        reason = "empty class folder" if empty else "class folder without a loadable image"
        skipped.append((listing.class_paths[index], reason))
    writer = pq.ParquetWriter(
        out / f"samples-{listing.split}.parquet", pa.schema(INDEX_COLUMNS), compression="zstd"
    )
    buffered: list[pa.Table] = []
    rows_buffered = 0
    written = 0
    sizes: Counter = Counter()
    modes: Counter = Counter()
    channels_seen = 1
    for shard, table in zip(shards, tables, strict=True):
        number = len(shard_files)
        shard_files.append(shard.file)
        keep = as_numpy(table.column("ok"))
        for row in np.flatnonzero(~keep).tolist():
            skipped.append(
                (listing.sources[shard.start + row], table.column("reason")[row].as_py())
            )
        rows = np.flatnonzero(keep)
        if rows.size == 0:
            continue
        chosen = table.take(pa.array(rows))
        positions = shard.start + rows
        lab = labels[positions]
        lab_inside = (lab >= 0) & (lab < len(listing.classes))
        final = np.where(lab_inside, renumber[np.clip(lab, 0, len(listing.classes) - 1)], lab)
        columns = {
            "index": pa.array(np.arange(written, written + rows.size), pa.int64()),
            "label": pa.array(final, pa.int64()),
            "source": pa.array([listing.sources[p] for p in positions.tolist()], pa.string()),
            "shard": pa.array(np.full(rows.size, number), pa.int32()),
            "shard_row": pa.array(rows, pa.int32()),
        }
        for name in INDEX_COLUMNS:
            if name not in columns:
                columns[name] = chosen.column(name)
        written += rows.size
        part = pa.table(columns, schema=pa.schema(INDEX_COLUMNS))
        widths = as_numpy(part.column("width"))
        heights = as_numpy(part.column("height"))
        sizes.update(zip(widths.tolist(), heights.tolist(), strict=True))
        modes.update(part.column("mode").to_pylist())
        channels_seen = max(channels_seen, int(as_numpy(part.column("channels")).max()))
        buffered.append(part)
        rows_buffered += rows.size
        while rows_buffered >= ROW_GROUP:
            merged = pa.concat_tables(buffered)
            writer.write_table(merged.slice(0, ROW_GROUP), row_group_size=ROW_GROUP)
            buffered, rows_buffered = [merged.slice(ROW_GROUP)], rows_buffered - ROW_GROUP
    if rows_buffered:
        writer.write_table(pa.concat_tables(buffered), row_group_size=ROW_GROUP)
    writer.close()
    totals: dict[tuple[int, str], np.ndarray] = {}
    for hist in histograms:
        for class_name, kinds in hist.items():
            if class_name in listing.classes:
                label = int(renumber[listing.classes.index(class_name)])
            else:
                label = int(class_name.strip("<>").split()[-1])  # "<label 12>": kept as is
            for kind, counts in kinds.items():
                totals[label, kind] = totals.get((label, kind), 0) + np.asarray(counts)
    for (label, kind), counts in sorted(totals.items()):
        hist_rows["split"].append(listing.split)
        hist_rows["label"].append(label)
        hist_rows["kind"].append(kind)
        hist_rows["counts"].append(counts.tolist())
    if written == 0:
        _nothing_loaded(listing, skipped)
    shape, sentence = _conform(sizes, modes, channels_seen, written)
    return {
        "size": written,
        "classes": classes,
        "shape": list(shape),
        "skipped": [{"path": p, "reason": r} for p, r in sorted(skipped)],
        "sizes": [{"width": w, "height": h, "count": n} for (w, h), n in sizes.most_common()],
        "modes": dict(modes.most_common()),
        "conformed": sentence,
        "labels_outside_classes": outside,
    }


def _nothing_loaded(listing: Listing, skipped: list[tuple[str, str]]) -> None:
    """Raise the error for a split without one readable image, naming its folder."""
    where = str(Path(listing.class_paths[0]).parent) if listing.class_paths else listing.split
    examples = "; ".join(f"{p}: {r}" for p, r in sorted(skipped)[:3])
    if listing.sources:
        raise CorruptFile(
            f"None of the {len(listing):,} image files in {where} could be decoded "
            f"({examples}). Replace them with images PIL can open."
        )
    raise DatasetMissing(
        f"{where} holds no image files ({len(skipped):,} entries skipped: {examples}). "
        f"Put images ({', '.join(IMG_EXTENSIONS)}) in {where}/<class>/."
    )


_MODE_WORDS = {"L": "greyscale", "P": "palette", "PA": "palette", "1": "1-bit"}
_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})
_WIDE_MODES = frozenset({"I", "I;16", "I;16L", "I;16B", "I;16N", "F"})


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}" if n == 1 else f"{n:,} {word}s"


def _conform(
    sizes: Counter, modes: Counter, channels: int, n: int
) -> tuple[tuple[int, int, int], str]:
    """The shape every image is brought to, and a sentence saying what that changes.

    C is 3 if any image is colour, else 1; H x W is the most common size (ties: the larger,
    then the first met), others resized bilinear.
    """
    width, height = max(sizes, key=lambda size: (sizes[size], size[0] * size[1]))
    target = "RGB" if channels == 3 else "greyscale"
    done = []
    resized = n - sizes[(width, height)]
    if resized:
        done.append(
            f"{resized:,} of {_plural(n, 'image')} resized from other sizes to "
            f"{width}x{height} (bilinear)"
        )
    for mode, count in sorted(modes.items()):
        if mode == ("RGB" if channels == 3 else "L"):
            continue
        note = ""
        if mode in _ALPHA_MODES:
            note = " (alpha dropped)"
        elif mode in _WIDE_MODES:
            note = " (values above 255 clipped)"
        word = _MODE_WORDS.get(mode, mode)
        done.append(f"{_plural(count, word + ' image')} converted to {target}{note}")
    if not done:
        done.append(f"All {_plural(n, 'image')} are {width}x{height} {target}: nothing was changed")
    return (channels, height, width), "; ".join(done) + "."


def _collect(folder: Path, keep: Path, shards: dict[str, list[Shard]], grace: float = 3600) -> None:
    """Delete older indexes (and what was derived from them) and shards no index uses, once
    an hour old: a page may still be reading one it opened before this scan finished."""
    used = {s.file for split_shards in shards.values() for s in split_shards}
    used.add(keep.name.replace("index-", "quality-", 1))
    now = time.time()
    for path in [
        *folder.glob("index-*"),
        *folder.glob("quality-*"),
        *(folder / "shards").glob("*.parquet"),
    ]:
        if path == keep or path.name in used:
            continue
        with contextlib.suppress(OSError):
            if now - path.stat().st_mtime > grace:
                shutil.rmtree(path) if path.is_dir() else path.unlink()


_last_line = [0.0]


def print_progress(progress: Progress) -> None:
    """The terminal's progress line: redrawn in place on a terminal; elsewhere (a log) a
    line every few seconds, and the last."""
    final = progress.state in ("done", "finishing")
    if sys.stderr.isatty():
        print(f"\r{progress.line()}", end="\n" if final else "", file=sys.stderr, flush=True)
    elif final or time.monotonic() - _last_line[0] >= LOG_EVERY:
        _last_line[0] = time.monotonic()
        print(progress.line(), file=sys.stderr, flush=True)

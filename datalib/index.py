"""The per-sample index: where a dataset's index lives, which one is complete, and reading it.

A scan (datalib.scan) writes, per dataset, shard files of per-sample rows, then one index
folder (`index-<listing key>/`: a table per split, the pixel histograms, meta.json), renamed
into place whole, and names it in `CURRENT`. Everything here only reads: a page opens the
index CURRENT names, and decodes from the source only the images it shows.

    <cache>/datasets/<dataset>-<hash>/
        shards/<key>.parquet     per-sample rows and thumbnails of one shard
        index-<key>/             samples-<split>.parquet, histograms.parquet, meta.json
        quality-<key>/           the quality checks' pictures, model, findings (datalib.quality)
        CURRENT                  the complete index to read
        scan.lock, status.json   the scan running now, and how far it is
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import struct
import threading
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import cached_property
from pathlib import Path

import numpy as np
import pyarrow as pa

from datalib.errors import CorruptFile, InvalidRequest, ReadTimeout, UnknownDataset
from datalib.formats import Conform
from datalib.jobs import Job
from datalib.paths import cache_folder
from datalib.registry import DatasetSpec

__all__ = [
    "CHANNEL_KINDS",
    "SCAN_VERSION",
    "Index",
    "SplitData",
    "current_index",
    "dataset_dir",
    "open_index",
    "read_status",
    "scan_job",
]

SCAN_VERSION = 1  # bump when what a shard or an index holds changes: older ones are rescanned
THUMB = 32  # thumbnails: longer side at most this many pixels
CHANNEL_KINDS = ("grey", "r", "g", "b")
OPEN_DATASETS = int(os.environ.get("BATCHSCOPE_OPEN_DATASETS", "8"))  # indexes kept open
ROW_GROUPS_KEPT = 16  # per split: 16 x 8,192 rows of a column read on demand, at most
REMEMBERED = 8  # per split: results derived from it (duplicate groups, sampler draws)


def dataset_dir(spec: DatasetSpec, root: Path) -> Path:
    """The cache folder of one dataset under one data root."""
    slug = re.sub(r"[^a-z0-9]+", "-", spec.name.lower()).strip("-")[:40] or "dataset"
    digest = hashlib.sha256(f"{spec.name}\0{root}".encode()).hexdigest()[:12]
    return cache_folder(root).path / "datasets" / f"{slug}-{digest}"


def current_index(spec: DatasetSpec, root: Path) -> Path | None:
    """The complete index folder CURRENT names, or None when there is none yet."""
    folder = dataset_dir(spec, root)
    try:
        name = (folder / "CURRENT").read_text().strip()
    except OSError:
        return None
    path = folder / name
    if not re.fullmatch(r"index-[0-9a-f]{24}", name) or not (path / "meta.json").is_file():
        return None
    return path


def scan_job(folder: Path) -> Job:
    """The scan of the dataset whose cache folder this is: scan.lock, status.json, scan.log."""
    return Job(folder, "scan", status_file="status.json")


def read_status(spec: DatasetSpec, root: Path) -> dict:
    """What the scan of this dataset last said about itself (state, done, total, ...)."""
    return scan_job(dataset_dir(spec, root)).read_status()


MAX_SIDE = 1 << 15  # what an index may claim of an image, at most (the scan skips bigger)
MAX_IMAGE_PIXELS = 1 << 26


def _check_meta(meta: dict, path: Path) -> None:
    """Refuse an index whose meta.json does not hold together: its key is not its folder's,
    a shard's name is no shard file's, a split's size, classes or shape are out of bounds,
    or its table's rows are not its size. A damaged or forged index is scanned again, never
    trusted (nor allowed to make a page allocate what it claims)."""
    damaged = f"The index in {path} is damaged"
    try:
        if f"index-{meta['key']}" != path.name:
            raise ValueError("its key is not its folder's")
        if not all(re.fullmatch(r"[0-9a-f]{32}\.parquet", name) for name in meta["shards"]):
            raise ValueError("it names files that are no shards")
        for split, facts in meta["splits"].items():
            if "error" in facts:
                continue
            channels, height, width = (int(v) for v in facts["shape"])
            if channels not in (1, 3) or not (0 < height <= MAX_SIDE and 0 < width <= MAX_SIDE):
                raise ValueError(f"{split} claims images of {channels} x {height} x {width}")
            if height * width > MAX_IMAGE_PIXELS:
                raise ValueError(f"{split} claims images of {height} x {width}")
            if not all(isinstance(name, str) for name in facts["classes"]):
                raise ValueError(f"{split}'s classes are not names")
            rows = _rows(path / f"samples-{split}.parquet")
            if rows != int(facts["size"]):
                raise ValueError(f"{split} claims {facts['size']} images but holds {rows}")
    except (KeyError, TypeError, ValueError, OSError) as e:
        raise CorruptFile(f"{damaged} ({e}): scan the dataset again.") from None


def _rows(path: Path) -> int:
    import pyarrow.parquet as pq

    return pq.ParquetFile(path).metadata.num_rows


class Index:
    """A dataset's complete index, as read from disk."""

    def __init__(self, spec: DatasetSpec, root: Path, path: Path) -> None:
        self.spec = spec
        self.root = root
        self.path = path
        try:
            self.meta = json.loads((path / "meta.json").read_text())
        except (OSError, ValueError) as e:
            raise CorruptFile(f"The index in {path} cannot be read ({e}): scan again.") from None
        if self.meta.get("version") != SCAN_VERSION:
            raise CorruptFile(f"The index in {path} is from another version: scan again.")
        _check_meta(self.meta, path)
        self.shard_dir = path.parent / "shards"
        self._splits: dict[str, SplitData] = {}
        self._lock = threading.Lock()

    @property
    def splits(self) -> tuple[str, ...]:
        return tuple(self.meta["splits"])

    @property
    def results(self) -> Path:
        """Where what is derived from this index is kept (the quality checks' model and
        findings): beside it, and gone with it when the dataset is scanned anew."""
        return self.path.parent / f"quality-{self.meta['key']}"

    def split(self, name: str) -> SplitData:
        if name not in self.meta["splits"]:
            raise UnknownDataset(
                f"{self.spec.title} has no split {name!r}. Choose one of: "
                f"{', '.join(self.meta['splits'])}."
            )
        with self._lock:
            if name not in self._splits:
                self._splits[name] = SplitData(self, name)
            return self._splits[name]

    @cached_property
    def histograms(self) -> dict[tuple[str, int, str], np.ndarray]:
        """Pixel-value counts, 256 each, by (split, label, kind): kind is grey, r, g or b."""
        import pyarrow.parquet as pq

        table = pq.ParquetFile(self.path / "histograms.parquet").read().to_pydict()
        return {
            (split, label, kind): np.asarray(counts, dtype=np.int64)
            for split, label, kind, counts in zip(
                table["split"], table["label"], table["kind"], table["counts"], strict=True
            )
        }


class SplitData:
    """One split of a dataset as its DataLoader sees it, read from the index.

    Labels are held in memory (8 bytes a sample); every other column is read when first asked
    for; images are decoded from the source, and only those asked for.
    """

    def __init__(self, index: Index, split: str) -> None:
        import pyarrow.parquet as pq

        self._index = index
        self.spec = index.spec
        self.split = split
        facts = index.meta["splits"][split]
        self.details: dict = facts
        self.classes: tuple[str, ...] = tuple(facts["classes"])
        self.conform = Conform(*facts["shape"])
        self._file = pq.ParquetFile(index.path / f"samples-{split}.parquet")
        self._columns: dict[str, np.ndarray] = {}
        self._groups: OrderedDict[tuple[int, str], list] = OrderedDict()
        self._derived: OrderedDict[object, object] = OrderedDict()
        self._lock = threading.Lock()
        labels = self.column("label").astype(np.int64)
        labels.flags.writeable = False
        self.labels = labels
        low, high = (int(labels.min()), int(labels.max())) if labels.size else (0, 0)
        if not facts.get("labels_outside_classes") and (low < 0 or high >= len(self.classes)):
            raise CorruptFile(
                f"The index of {self.spec.title} {split} is damaged (labels {low} to {high} "
                f"for {len(self.classes)} classes): scan the dataset again."
            )

    def __len__(self) -> int:
        return int(self.details["size"])

    @property
    def root(self) -> Path:
        return self._index.root

    @property
    def dataset(self) -> Index:
        """The index this split is part of (its other splits, its results folder)."""
        return self._index

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """C, H, W of every image as the DataLoader batches it."""
        return self.conform.shape

    def remember(self, key: object, compute):
        """`compute()`, kept with this split (the last REMEMBERED results): what is derived from
        a split lives and goes with it, bounded by the open indexes."""
        with self._lock:
            if key in self._derived:
                self._derived.move_to_end(key)
                return self._derived[key]
        value = compute()
        with self._lock:
            self._derived[key] = value
            while len(self._derived) > REMEMBERED:
                self._derived.popitem(last=False)
        return value

    def recall(self, key: object):
        """What `remember` keeps under `key`, or None: computes nothing."""
        with self._lock:
            return self._derived.get(key)

    def column(self, name: str) -> np.ndarray:
        """A per-sample column of this split as a read-only numpy array (read once)."""
        with self._lock:
            if name not in self._columns:
                column = self._file.read(columns=[name]).column(0)
                if pa.types.is_string(column.type) or pa.types.is_binary(column.type):
                    values = np.asarray(column.to_pylist(), dtype=object)
                else:
                    values = as_numpy(column)
                values.flags.writeable = False
                self._columns[name] = values
            return self._columns[name]

    def histogram(self, label: int | None = None) -> np.ndarray:
        """Pixel-value counts per channel, C x 256, of the split or of one class in it.

        A grey image of a colour split counts on every channel, as PIL's L -> RGB repeats it.
        """
        labels = range(len(self.classes)) if label is None else [label]
        found = self._index.histograms
        zero = np.zeros(256, dtype=np.int64)

        def kind(name: str) -> np.ndarray:
            return sum((found.get((self.split, int(lab), name), zero) for lab in labels), zero)

        grey = kind("grey")
        if self.conform.channels == 1:
            return grey[None]
        return np.stack([kind(name) + grey for name in ("r", "g", "b")])

    def index(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """`indices` as int64, after checking each is a sample of this split."""
        index = np.asarray(indices, dtype=np.int64).reshape(-1)
        if index.size and (int(index.min()) < 0 or int(index.max()) >= len(self)):
            raise InvalidRequest(
                f"Image index out of range: {self.spec.title} {self.split} has images "
                f"0 to {len(self) - 1}."
            )
        return index

    def labels_of(self, indices: Sequence[int] | np.ndarray) -> list[int]:
        """The labels of these samples as plain ints."""
        return self.labels[self.index(indices)].tolist()

    def rows(self, indices: Sequence[int] | np.ndarray, columns: Sequence[str]) -> dict:
        """Some columns of some samples, read from only the row groups that hold them."""
        index = self.index(indices)
        out = {name: [None] * index.size for name in columns}
        group_rows = self._file.metadata.row_group(0).num_rows if index.size else 1
        by_group: dict[int, list[tuple[int, int]]] = {}
        for position, row in enumerate(index.tolist()):
            by_group.setdefault(row // group_rows, []).append((row % group_rows, position))
        for group, wanted in by_group.items():
            for name in columns:
                values = self._row_group(group, name)
                for row, position in wanted:
                    out[name][position] = values[row]
        return out

    def _row_group(self, group: int, name: str) -> list:
        """One column of one row group, as Python values; the last ROW_GROUPS_KEPT read are
        kept (a batch of MNIST touches its few row groups again at every step)."""
        key = (group, name)
        with self._lock:
            if key in self._groups:
                self._groups.move_to_end(key)
                return self._groups[key]
        values = self._file.read_row_group(group, columns=[name]).column(0).to_pylist()
        with self._lock:
            self._groups[key] = values
            while len(self._groups) > ROW_GROUPS_KEPT:
                self._groups.popitem(last=False)
        return values

    def sources(self, indices: Sequence[int] | np.ndarray) -> list[str]:
        """Where these samples are read from (a file under the root, or file:position)."""
        return self.rows(indices, ["source"])["source"]

    def decode(self, indices: Sequence[int] | np.ndarray) -> list[np.ndarray]:
        """These images as read (grey H x W or RGB H x W x 3), decoded from the source."""
        from datalib.formats import Unreadable

        sources = self.sources(indices)
        decoded = _read_in_time(self.spec, self.root, sources)
        for source, item in zip(sources, decoded, strict=True):
            if isinstance(item, Unreadable):
                raise CorruptFile(
                    f"{source} can no longer be read ({item.reason}): it changed since the "
                    "scan. Scan the dataset again."
                )
        return [item.pixels for item in decoded]

    def images(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """These images as the DataLoader batches them: uint8 N x C x H x W."""
        return self.conform.stack(self.decode(indices))

    def pixels(self, indices: Sequence[int] | np.ndarray) -> list[np.ndarray]:
        """These images for display, in the shape the loader gives them: H x W (grey) or
        H x W x 3."""
        images = self.images(indices)
        return [img[0] if img.shape[0] == 1 else img.transpose(1, 2, 0) for img in images]

    def thumbnails(self, indices: Sequence[int] | np.ndarray) -> list[tuple[bytes, str]]:
        """Small encoded pictures of these images, from the index: (bytes, MIME type)."""
        where = self.rows(indices, ["shard", "shard_row"])
        out: list[tuple[bytes, str] | None] = [None] * len(where["shard"])
        by_shard: dict[int, list[tuple[int, int]]] = {}
        for position, (shard, row) in enumerate(
            zip(where["shard"], where["shard_row"], strict=True)
        ):
            by_shard.setdefault(shard, []).append((row, position))
        for shard, wanted in by_shard.items():
            column = self.shard_thumbnails(shard)
            for row, position in wanted:
                out[position] = _viewable(column[row].as_py() or b"")
        return out  # type: ignore[return-value]

    def shard_thumbnails(self, shard: int) -> pa.ChunkedArray:
        """The stored thumbnails of one of the index's shards, in the shard's row order."""
        import pyarrow.parquet as pq

        path = self._index.shard_dir / self._index.meta["shards"][shard]
        try:
            return pq.ParquetFile(path).read(columns=["thumbnail"]).column(0)
        except OSError:
            raise CorruptFile(
                f"The index's shard {path.name} is gone: scan {self.spec.title} again."
            ) from None


def as_numpy(values: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """A numeric or boolean Arrow column without nulls as a numpy array. pyarrow's own
    `to_numpy` imports pandas (a fifth of a second, 40 MB) in processes that need none."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if values.null_count:
        raise ValueError("a column with missing values")
    buffer = values.buffers()[1]
    if pa.types.is_boolean(values.type):
        bits = np.frombuffer(buffer, dtype=np.uint8)
        return np.unpackbits(bits, bitorder="little")[
            values.offset : values.offset + len(values)
        ].astype(bool)
    return np.frombuffer(buffer, dtype=_NUMPY[str(values.type)])[
        values.offset : values.offset + len(values)
    ].copy()


_NUMPY = {
    "int8": np.int8, "int16": np.int16, "int32": np.int32, "int64": np.int64,
    "uint8": np.uint8, "uint16": np.uint16, "uint32": np.uint32, "uint64": np.uint64,
    "float": np.float32, "double": np.float64,
}  # fmt: skip


# Images a page shows are read on a few threads of their own, each read given READ_SECONDS:
# a hung disk (or a file that never answers) then costs the page that asked an error
# message, not the server a thread it never gets back.
READ_SECONDS = float(os.environ.get("BATCHSCOPE_READ_SECONDS", "20"))
_readers = ThreadPoolExecutor(4, thread_name_prefix="batchscope-read")


def _read_in_time(spec: DatasetSpec, root: Path, sources: list[str]) -> list:
    future = _readers.submit(spec.format.read, spec, root, sources)
    try:
        return future.result(timeout=READ_SECONDS)
    except TimeoutError:
        future.cancel()
        raise ReadTimeout(
            f"Reading {len(sources)} image(s) of {spec.title} took longer than "
            f"{READ_SECONDS:g} s (the first is {sources[0] if sources else '-'}): the disk "
            "may be hung or overloaded. Try again; if it stays, check the storage."
        ) from None


RAW_GREY = b"RAWL"  # a raw grey thumbnail: this, width and height (uint16 each), the pixels
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # PIL's convert("L") weights


def raw_grey(blob: bytes) -> np.ndarray | None:
    """A stored raw grey thumbnail's pixels (H x W), or None for a JPEG one."""
    if blob[:4] != RAW_GREY:
        return None
    width, height = struct.unpack("<HH", blob[4:8])
    return np.frombuffer(blob, np.uint8, offset=8, count=width * height).reshape(height, width)


def _viewable(blob: bytes) -> tuple[bytes, str]:
    """A stored thumbnail as a browser shows it: JPEG as it is, raw grey pixels as PNG."""
    pixels = raw_grey(blob)
    if pixels is None:
        return blob, "image/jpeg"
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue(), "image/png"


def trusted(spec: DatasetSpec, root: Path, path: Path) -> Index | None:
    """The index at `path` with every split opened (so checked), or None when any part of it
    does not hold together."""
    try:
        index = Index(spec, root, path)
        for split, facts in index.meta["splits"].items():
            if "error" not in facts:
                index.split(split)
    except CorruptFile:
        return None
    return index


_open: OrderedDict[tuple, Index] = OrderedDict()
_open_lock = threading.Lock()


def open_index(spec: DatasetSpec, root: Path) -> Index | None:
    """The dataset's complete index, or None when there is none yet, or only a damaged one
    (the next scan replaces it).

    Indexes stay open in this process, the most recently used `OPEN_DATASETS` of them; a
    rescan's new index replaces the old one at the next call.
    """
    path = current_index(spec, root)
    if path is None:
        return None
    key = (spec.name, str(root), str(path))
    with _open_lock:
        if key in _open:
            _open.move_to_end(key)
            return _open[key]
    index = trusted(spec, root, path)
    if index is None:
        return None
    with _open_lock:
        _open[key] = index
        stale = [k for k in _open if k[:2] == key[:2] and k != key]
        for k in stale:  # an older index of the same dataset
            del _open[k]
        while len(_open) > OPEN_DATASETS:
            _open.popitem(last=False)
    return index

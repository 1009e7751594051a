"""CIFAR-10: torchvision's pickled batches, `<root>/cifar-10-batches-py/`.

The pickles are read by datalib with an unpickler that builds only numpy arrays, lists and
dicts (a pickle can run code; one that tries is refused), after checking the md5 sums
torchvision publishes. Decoded batches are kept in a cache bounded in bytes.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from datalib.errors import CorruptFile, DatasetMissing
from datalib.formats import Decoded, Format, Listing, Unreadable, open_regular
from datalib.formats.download import check_root, fetch

__all__ = ["CifarFormat"]

FOLDER = "cifar-10-batches-py"
# torchvision's CIFAR10 file lists and md5 sums (train_list, test_list, meta).
SPLIT_FILES = {
    "train": {
        "data_batch_1": "c99cafc152244af753f735de768cd75f",
        "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
        "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
        "data_batch_4": "634d18415352ddfa80567beed471001a",
        "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
    },
    "test": {"test_batch": "40351d587109b95175f43aff81a1287e"},
}
META = ("batches.meta", "5ff9c542aee3614f3951f8cda6e48888")
SIDE = 32
# What a CIFAR pickle may build: numpy arrays and their dtypes. Anything else is refused.
_ALLOWED = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("_codecs", "encode"),
}


class _ArraysOnly(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refused to build {module}.{name}")


def _unpickle(data: bytes) -> dict:
    entry = _ArraysOnly(io.BytesIO(data), encoding="latin1").load()
    if not isinstance(entry, dict):
        raise pickle.UnpicklingError("not a dict of arrays")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in entry.items()}


class _Batches:
    """Decoded batch files, most recently used kept, at most `limit` bytes in all."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._entries: OrderedDict[tuple, tuple[np.ndarray, list[int]]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, path: Path, root: Path) -> tuple[np.ndarray, list[int]]:
        info = os.stat(path)
        key = (str(path), info.st_size, info.st_mtime_ns)
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                return self._entries[key]
        value = _read_batch(path, root)
        with self._lock:
            self._entries[key] = value
            while sum(v[0].nbytes for v in self._entries.values()) > self.limit:
                if len(self._entries) == 1:
                    break
                self._entries.popitem(last=False)
        return value


def _read_batch(path: Path, root: Path) -> tuple[np.ndarray, list[int]]:
    """A batch file's images as N x 32 x 32 x 3 uint8 (read-only) and its labels."""
    fd, _ = open_regular(path, root)
    with os.fdopen(fd, "rb") as handle:
        data = handle.read()
    try:
        entry = _unpickle(data)
        images = np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, SIDE, SIDE)
        labels = [int(label) for label in entry.get("labels", entry.get("fine_labels", []))]
    except Exception as e:  # noqa: BLE001 - a damaged pickle raises anything
        raise CorruptFile(
            f"{path.name} is not a CIFAR batch ({e}). Delete {path.parent} and run "
            "`python -m datalib download cifar10`."
        ) from None
    if len(labels) != len(images):
        raise CorruptFile(f"{path.name} holds {len(images)} images but {len(labels)} labels.")
    images = np.ascontiguousarray(images.transpose(0, 2, 3, 1))
    images.flags.writeable = False
    return images, labels


class CifarFormat(Format):
    """CIFAR-10 as torchvision ships it."""

    name = "cifar"

    def __init__(self, cache_bytes: int = 256 << 20) -> None:
        self.split_files = SPLIT_FILES
        self.meta = META
        self.batches = _Batches(cache_bytes)

    def folder(self, spec) -> str:
        return FOLDER

    def files(self) -> list[str]:
        return [f for files in self.split_files.values() for f in files] + [self.meta[0]]

    def splits(self, spec, root: Path) -> tuple[str, ...]:
        return tuple(self.split_files)

    def missing(self, spec, root: Path) -> list[str]:
        folder = root / FOLDER
        return [f for f in self.files() if not (folder / f).is_file()]

    def missing_message(self, spec, root: Path) -> str:
        folder = root / FOLDER
        return (
            f"{spec.title} is not on disk: {', '.join(self.missing(spec, root))} missing from "
            f"{folder}. If the files are on this machine already, set DATALIB_ROOT to the "
            f"folder that holds {FOLDER}/ (the data root is now {root}). Otherwise run "
            f"`python -m datalib download {spec.name} --root {root}` on a machine with "
            f"internet, or copy the files ({', '.join(self.files())}) into {folder}."
        )

    def _check(self, folder: Path, spec) -> None:
        sums = {**{f: m for files in self.split_files.values() for f, m in files.items()}}
        sums[self.meta[0]] = self.meta[1]
        for file, expected in sums.items():
            digest = hashlib.md5((folder / file).read_bytes(), usedforsecurity=False).hexdigest()
            if digest != expected:
                raise CorruptFile(
                    f"{spec.title}'s file {file} in {folder} fails its checksum (md5 {digest}, "
                    f"expected {expected}). Delete the folder and download it again "
                    f"(python -m datalib download {spec.name})."
                )

    def download(self, spec, root: Path) -> Path:
        return fetch(
            spec,
            root,
            self.files(),
            lambda fetched: self._check(fetched, spec),
            lambda: self.missing_message(spec, root),
        )

    def classes(self, spec, root: Path) -> tuple[str, ...]:
        fd, _ = open_regular(root / FOLDER / self.meta[0], root)
        with os.fdopen(fd, "rb") as handle:
            names = _unpickle(handle.read()).get("label_names", [])
        return tuple(n.decode() if isinstance(n, bytes) else str(n) for n in names)

    def listing(self, spec, root: Path, split: str, each_class=None) -> Listing:
        folder = root / FOLDER
        if self.missing(spec, root):
            check_root(root, create=False)
            raise DatasetMissing(self.missing_message(spec, root))
        self._check(folder, spec)
        sources, labels, stamps = [], [], []
        for file in self.split_files[split]:
            _, batch_labels = _read_batch(folder / file, root)
            sources += [f"{file}:{i}" for i in range(len(batch_labels))]
            labels += batch_labels
            info = os.stat(folder / file)
            stamps.append((file, info.st_size, info.st_mtime_ns))
        n = len(sources)
        return Listing(
            split=split,
            classes=self.classes(spec, root),
            sources=sources,
            labels=np.asarray(labels, dtype=np.int64),
            sizes=np.zeros(n, dtype=np.int64),
            mtimes=np.zeros(n, dtype=np.int64),
            base=repr(stamps),
        )

    def read(self, spec, root: Path, sources: Sequence[str]) -> list[Decoded | Unreadable]:
        out = []
        known = {f for files in self.split_files.values() for f in files}
        for source in sources:
            file, index = source.rsplit(":", 1)
            if file not in known:  # an index says where to read: only our files
                raise CorruptFile(f"{source!r} is not an image of {spec.title}: scan again.")
            images, _ = self.batches.get(root / FOLDER / file, root)
            out.append(Decoded(images[int(index)], "RGB", SIDE * SIDE * 3))
        return out

    def dataset_code(
        self, spec, root: Path, split: str, shape: tuple[int, int, int], name: str = "dataset"
    ) -> list[str]:
        return [
            f"{name} = datasets.{spec.torchvision_class}(",
            f"    {str(root)!r}, train={split == 'train'}, transform=transform",
            ")",
        ]

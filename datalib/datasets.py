"""Finding, downloading and loading datasets: one uint8 copy per split per process."""

from __future__ import annotations

import contextlib
import fcntl
import io
import os
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from datalib.errors import (
    CorruptFile,
    DataRootError,
    DatasetMissing,
    DownloadFailed,
    InvalidRequest,
)
from datalib.folders import FolderSplit, folder_splits, load_folder
from datalib.idx import idx_shape, read_idx
from datalib.registry import SPLITS, DatasetSpec, check_split, dataset_spec

__all__ = [
    "SplitData",
    "data_root",
    "download",
    "load",
    "missing_files",
    "raw_folder",
    "splits_of",
]

DEFAULT_ROOT = "./data"


@dataclass(frozen=True, eq=False)
class SplitData:
    """One split of a dataset as the loader sees it before any transform.

    `images` is uint8, N x C x H x W; `labels` is int64, N. Shared by every session:
    never modify them in place.
    """

    spec: DatasetSpec
    split: str
    images: torch.Tensor
    labels: torch.Tensor
    classes: tuple[str, ...]
    details: dict | None = None  # a folder's skipped files, sizes, modes, what was conformed

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """C, H, W of one image."""
        c, h, w = self.images.shape[1:]
        return int(c), int(h), int(w)

    def index(self, indices: list[int] | np.ndarray | torch.Tensor) -> torch.Tensor:
        """`indices` as an int64 tensor, after checking each is a sample of this split."""
        index = torch.as_tensor(np.asarray(indices, dtype=np.int64))
        if index.numel() and (int(index.min()) < 0 or int(index.max()) >= len(self)):
            raise InvalidRequest(
                f"Image index out of range: {self.spec.title} {self.split} has images "
                f"0 to {len(self) - 1}."
            )
        return index

    def labels_of(self, indices: list[int] | np.ndarray) -> list[int]:
        """The labels of these samples as plain ints."""
        return self.labels[self.index(indices)].tolist()

    def pixels(self, indices: list[int] | np.ndarray | torch.Tensor) -> np.ndarray:
        """Raw uint8 pixels of these images for display: K x H x W (grey) or K x H x W x 3."""
        picked = self.images[self.index(indices)]
        if picked.shape[1] == 1:
            return picked[:, 0].numpy()
        return picked.permute(0, 2, 3, 1).numpy()


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The data root: `root`, else `$DATALIB_ROOT`, else `./data`, made absolute."""
    chosen = root if root is not None else os.environ.get("DATALIB_ROOT") or DEFAULT_ROOT
    return Path(chosen).expanduser().absolute()


def raw_folder(name: str, root: str | os.PathLike | None = None) -> Path:
    """Where torchvision looks for the dataset's files (`<root>/MNIST/raw`)."""
    return data_root(root) / dataset_spec(name).folder


def missing_files(name: str, root: str | os.PathLike | None = None) -> list[str]:
    """The dataset's raw files that are not on disk (empty when it is complete)."""
    folder = raw_folder(name, root)
    return [f for f in dataset_spec(name).raw_files() if not (folder / f).is_file()]


def _check_root(root: Path, *, create: bool) -> None:
    if root.exists() and not root.is_dir():
        raise DataRootError(
            f"The data root {root} is a file, not a folder. Set DATALIB_ROOT to a folder."
        )
    if not root.exists():
        if not create:
            raise DataRootError(
                f"The data root {root} does not exist. Create it, or set DATALIB_ROOT to the "
                "folder that holds your datasets."
            )
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise DataRootError(
                f"Cannot create the data root {root}: {e.strerror}. "
                "Set DATALIB_ROOT to a folder you can write to."
            ) from None
    if not os.access(root, os.R_OK | os.X_OK):
        raise DataRootError(
            f"The data root {root} is not readable by this user. Fix its permissions, or set "
            "DATALIB_ROOT to a readable folder."
        )


def _missing_message(spec: DatasetSpec, root: Path, missing: list[str]) -> str:
    folder = root / spec.folder
    return (
        f"{spec.title} is not on disk: {', '.join(missing)} missing from {folder}. "
        f"If the files are on this machine already, set DATALIB_ROOT to the folder that holds "
        f"{spec.folder}/ (the data root is now {root}). Otherwise run `python -m datalib "
        f"download {spec.name} --root {root}` on a machine with internet, or copy the files "
        f"({', '.join(spec.raw_files())}) into {folder}."
    )


@contextlib.contextmanager
def _file_lock(path: Path):
    """An exclusive lock between processes (and threads: each call opens its own file)."""
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def download(name: str, root: str | os.PathLike | None = None) -> Path:
    """Put the dataset's raw files on disk if they are not there; returns their folder.

    Files are fetched by torchvision into a temporary folder beside the target, checked
    (torchvision verifies each archive's md5, then we check each file's header), and only
    then renamed into place, so an interrupted download leaves nothing a later run trusts.
    A file lock makes concurrent callers download once.
    """
    spec = dataset_spec(name)
    if spec.file_format == "folder":
        raise InvalidRequest(
            f"{name} is a folder of your own images: there is nothing to download."
        )
    root_path = data_root(root)
    folder = raw_folder(name, root_path)
    if not missing_files(name, root_path):
        return folder
    # Only the default root is created on first use; a root someone named that does not exist
    # is more likely a typo than a wish for a new folder.
    _check_root(root_path, create=root_path == data_root(DEFAULT_ROOT))
    lock_path = folder.parent / ".download.lock"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        lock_path.touch()
    except OSError as e:
        raise DownloadFailed(
            f"Cannot write to {folder.parent} ({e.strerror}), so {spec.title} cannot be "
            f"downloaded there. {_missing_message(spec, root_path, missing_files(name, root_path))}"
        ) from None
    with _file_lock(lock_path):
        if not missing_files(name, root_path):  # another process finished it meanwhile
            return folder
        with tempfile.TemporaryDirectory(dir=folder.parent, prefix=".download-") as tmp:
            try:
                with contextlib.redirect_stdout(io.StringIO()):
                    spec.dataset_class()(tmp, train=True, download=True)
            # torchvision raises RuntimeError, URLError, OSError... for a failed fetch.
            except Exception as e:  # noqa: BLE001
                lines = str(e).strip().splitlines() or [type(e).__name__]
                reason = lines[0] if len(lines) == 1 else f"{lines[0]} last error: {lines[-1]}"
                raise DownloadFailed(
                    f"Downloading {spec.title} failed: {reason}. "
                    + _missing_message(spec, root_path, missing_files(name, root_path))
                ) from None
            fetched = Path(tmp) / spec.folder
            if spec.file_format == "idx":  # torchvision checked pickles' md5s itself
                for file in spec.raw_files():
                    idx_shape(fetched / file, _ndim(file))
            for file in spec.raw_files():
                os.replace(fetched / file, folder / file)
    return folder


def _ndim(file: str) -> int:
    return 1 if "labels" in file else 3


_cache: dict[tuple[str, str, Path], SplitData] = {}
_cache_lock = threading.Lock()


def splits_of(name: str, root: str | os.PathLike | None = None) -> tuple[str, ...]:
    """The splits a dataset has: train and test, or those of an image folder ("all" if none)."""
    spec = dataset_spec(name)
    if spec.file_format == "folder":
        _check_root(data_root(root), create=False)
        return tuple(folder_splits(data_root(root), spec.folder))
    return SPLITS


def load(
    name: str,
    split: str = "train",
    root: str | os.PathLike | None = None,
    *,
    download_missing: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> SplitData:
    """One split of a dataset, loaded once per process and shared by every caller.

    Missing files are downloaded when `download_missing` is set; a failure raises an error
    of datalib's own that names the files and the folder to put them in. `progress(done,
    total)` hears how a folder's decoding goes.
    """
    spec = dataset_spec(name)
    if spec.file_format != "folder":
        check_split(split)
    root_path = data_root(root)
    key = (spec.name, split, root_path)
    with _cache_lock:
        if key not in _cache:
            if spec.file_format == "folder":
                _check_root(root_path, create=False)
                _cache[key] = _from_folder(
                    spec, load_folder(root_path, spec.folder, split, progress)
                )
            else:
                _cache[key] = _load_uncached(spec, split, root_path, download_missing)
        return _cache[key]


def _from_folder(spec: DatasetSpec, folder: FolderSplit) -> SplitData:
    return SplitData(
        spec=spec,
        split=folder.split,
        images=folder.images,
        labels=folder.labels,
        classes=folder.classes,
        details=folder.info(),
    )


def _load_uncached(spec: DatasetSpec, split: str, root: Path, download_missing: bool) -> SplitData:
    folder = raw_folder(spec.name, root)
    missing = missing_files(spec.name, root)
    if missing:
        if not download_missing:
            _check_root(root, create=False)
            raise DatasetMissing(_missing_message(spec, root, missing))
        download(spec.name, root)
    _check_root(root, create=False)
    if spec.file_format == "idx":
        return _load_idx(spec, split, folder)
    try:
        dataset = spec.dataset_class()(str(root), train=split == "train", download=False)
    except RuntimeError as e:  # CIFAR: a file whose md5 does not match ("... corrupted")
        raise CorruptFile(
            f"{spec.title}'s files in {folder} fail torchvision's checksum check ({e}). "
            f"Delete them and download them again (python -m datalib download {spec.name})."
        ) from None
    # CIFAR's colour arrives as N x H x W x C, as PIL would show it: lay it out as the model sees
    images = torch.as_tensor(dataset.data).permute(0, 3, 1, 2).contiguous()
    return SplitData(
        spec=spec,
        split=split,
        images=images,
        labels=torch.as_tensor(dataset.targets, dtype=torch.int64),
        classes=tuple(dataset.classes),
    )


def _load_idx(spec: DatasetSpec, split: str, folder: Path) -> SplitData:
    """An MNIST-family split read from its IDX files, each checked against its size and both
    against each other: the tensors torchvision's MNIST class gives, without importing it."""
    images_file, labels_file = _split_files(spec, split)
    images = read_idx(folder / images_file, 3)
    labels = read_idx(folder / labels_file, 1)
    if len(images) != len(labels):
        raise CorruptFile(
            f"{images_file} holds {len(images)} images but {labels_file} holds {len(labels)} "
            f"labels. Delete both from {folder} and download them again."
        )
    return SplitData(
        spec=spec,
        split=split,
        images=torch.from_numpy(images).unsqueeze(1),  # grey: the channel axis, as a view
        labels=torch.from_numpy(labels).to(torch.int64),
        classes=spec.classes,
    )


def _split_files(spec: DatasetSpec, split: str) -> tuple[str, str]:
    prefix = "train" if split == "train" else "t10k"
    files = [f for f in spec.raw_files() if f.startswith(prefix)]
    images = next(f for f in files if "images" in f)
    labels = next(f for f in files if "labels" in f)
    return images, labels

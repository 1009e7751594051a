"""Downloading a torchvision dataset's files: fetched into a temporary folder, checked, then
renamed into place, under a lock, so the data root is left as it was by a failed, killed or
concurrent download."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from datalib.errors import DataRootError, DownloadFailed
from datalib.paths import DEFAULT_ROOT, data_root, writable

__all__ = ["check_root", "fetch", "file_lock"]

TEMP_PREFIX = ".download-"


@contextlib.contextmanager
def file_lock(path: Path, *, blocking: bool = True) -> Iterator[bool]:
    """An exclusive lock between processes (and threads: each call opens its own file).
    Yields False at once, without the lock, when `blocking` is off and someone holds it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def check_root(root: Path, *, create: bool) -> None:
    """The data root must be a readable folder; only the default `./data` is created."""
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


def fetch(
    spec,
    root: Path,
    files: list[str],
    check: Callable[[Path], None],
    missing_message: Callable[[], str],
) -> Path:
    """Download `spec` with its torchvision class and move `files` into its folder.

    `check(folder)` vets the fetched files before any is moved. The lock that makes
    concurrent callers download once lives in the temp folder, never in the data root; the
    dataset's folder is made only once the files are good, so a failure leaves the root
    exactly as it was.
    """
    folder = root / spec.format.folder(spec)
    if all((folder / f).is_file() for f in files):
        return folder
    # Only the default root is created on first use; a root someone named that does not exist
    # is more likely a typo than a wish for a new folder.
    check_root(root, create=root == data_root(DEFAULT_ROOT))
    if not writable(root):
        raise DownloadFailed(
            f"Cannot write to the data root {root}, so {spec.title} cannot be downloaded "
            f"there. {missing_message()}"
        )
    # The lock lives outside the data root, so a failed download leaves the root as it was.
    digest = hashlib.sha256(str(root).encode()).hexdigest()[:16]
    lock = (
        Path(tempfile.gettempdir()) / f"batchscope-locks-{os.geteuid()}" / f"{digest}-{spec.name}"
    )
    with file_lock(lock):
        if all((folder / f).is_file() for f in files):  # another process finished it
            return folder
        _clear_dead_downloads(root, spec.name)
        with tempfile.TemporaryDirectory(dir=root, prefix=f"{TEMP_PREFIX}{spec.name}-") as tmp:
            try:
                with contextlib.redirect_stdout(io.StringIO()):
                    spec.dataset_class()(tmp, train=True, download=True)
            # torchvision raises RuntimeError, URLError, OSError... for a failed fetch.
            except Exception as e:  # noqa: BLE001
                lines = str(e).strip().splitlines() or [type(e).__name__]
                reason = lines[0] if len(lines) == 1 else f"{lines[0]} last error: {lines[-1]}"
                raise DownloadFailed(
                    f"Downloading {spec.title} failed: {reason}. {missing_message()}"
                ) from None
            fetched = Path(tmp) / spec.format.folder(spec)
            check(fetched)
            folder.mkdir(parents=True, exist_ok=True)
            for file in files:
                os.replace(fetched / file, folder / file)
    return folder


def _clear_dead_downloads(root: Path, name: str) -> None:
    """Remove what a download killed mid-way left: under the lock, no live one is running."""
    for entry in root.glob(f"{TEMP_PREFIX}{name}-*"):
        shutil.rmtree(entry, ignore_errors=True)

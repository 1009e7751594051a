"""Where things live: the data root, the cache folder beside it, and paths a user can
influence, kept inside the data root."""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from datalib.errors import DataRootError, InvalidRequest

__all__ = [
    "CONFIG_ENV",
    "DEFAULT_ROOT",
    "CacheFolder",
    "cache_folder",
    "config_env",
    "config_path",
    "data_root",
    "inside_root",
    "writable",
]

DEFAULT_ROOT = "./data"
CACHE_NAME = ".batchscope-cache"
CONFIG_ENV = "BATCHSCOPE_CONFIG"
DEFAULT_CONFIG = "./batchscope.toml"


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The data root: `root`, else `$DATALIB_ROOT`, else `./data`, made absolute."""
    chosen = root if root is not None else os.environ.get("DATALIB_ROOT") or DEFAULT_ROOT
    return Path(os.path.abspath(Path(chosen).expanduser()))


def config_path() -> Path:
    """The config file naming the user's own datasets: `$BATCHSCOPE_CONFIG`, else
    `./batchscope.toml`, made absolute (from the current folder)."""
    chosen = os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG
    return Path(os.path.abspath(Path(chosen).expanduser()))


def config_env() -> dict[str, str]:
    """The environment a process started elsewhere (a job, a Ray worker) needs to read the
    same config file: its absolute path, when one is named or the default exists."""
    path = config_path()
    return {CONFIG_ENV: str(path)} if CONFIG_ENV in os.environ or path.exists() else {}


@contextlib.contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """These environment variables set in this process until the block ends (for the
    processes it starts meanwhile), then put back as they were."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def writable(folder: Path) -> bool:
    """Can we write into `folder`? Its mode bits are respected even when running as root, so
    a data root mounted or marked read-only is never written into."""
    try:
        mode = os.stat(folder).st_mode
    except OSError:
        return False
    if not stat.S_ISDIR(mode) or not os.access(folder, os.W_OK | os.X_OK):
        return False
    return os.geteuid() != 0 or bool(mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


@dataclass(frozen=True)
class CacheFolder:
    """The cache folder for one data root, and a notice when it is not the one asked for."""

    path: Path
    notice: str | None = None


def cache_folder(root: Path) -> CacheFolder:
    """Where the index, locks and job status of datasets under `root` live.

    `$BATCHSCOPE_CACHE` when set; else `<root>/.batchscope-cache`; a read-only root without
    `$BATCHSCOPE_CACHE` gets a private folder under the system's temp folder, with a notice
    saying where to point the cache so that the index outlives a restart.
    """
    named = os.environ.get("BATCHSCOPE_CACHE")
    if named:
        path = Path(os.path.abspath(Path(named).expanduser()))
        _make(path, f"BATCHSCOPE_CACHE={named}")
        return CacheFolder(path)
    default = root / CACHE_NAME
    if writable(default) or (not default.exists() and writable(root)):
        return CacheFolder(default)
    digest = hashlib.sha256(str(root).encode()).hexdigest()[:16]
    fallback = Path(tempfile.gettempdir()) / f"batchscope-cache-{os.geteuid()}" / digest
    _make(fallback, "the temporary cache folder")
    return CacheFolder(
        fallback,
        f"The data root {root} is read-only, so Batchscope keeps its index in {fallback}, "
        "which a restart of this machine may clear. Set BATCHSCOPE_CACHE to a folder that "
        "lasts (a volume, in Docker) to keep it.",
    )


def _make(path: Path, what: str) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as e:
        raise DataRootError(
            f"Cannot create {what} ({path}): {e.strerror}. Set BATCHSCOPE_CACHE to a folder "
            "this user can write."
        ) from None
    if not writable(path):
        raise DataRootError(
            f"{what} ({path}) cannot be written by this user. Set BATCHSCOPE_CACHE to a "
            "folder this user can write."
        )


def inside_root(root: Path, relative: str) -> Path:
    """`root / relative`, resolved (symlinks followed), refused unless it stays inside `root`.

    Refuses NUL bytes, absolute paths, `..` parts and links that lead out of the root, each
    with a message that says what was wrong.
    """
    if "\x00" in relative:
        raise InvalidRequest("The path contains a NUL byte. Use a plain folder name.")
    if not relative.strip():
        raise InvalidRequest("The path is empty. Name a folder inside the data root.")
    if os.path.isabs(relative) or relative.startswith("~"):
        raise InvalidRequest(
            f"{relative!r} is an absolute path. Name a folder relative to the data root {root}."
        )
    if ".." in Path(relative).parts:
        raise InvalidRequest(f"{relative!r} climbs out with '..'. Name a folder inside {root}.")
    base = root.resolve()
    resolved = (base / relative).resolve()
    if not resolved.is_relative_to(base):
        raise InvalidRequest(
            f"{relative!r} leads outside the data root {root} (through a symbolic link). "
            "Copy the data into the data root instead of linking to it."
        )
    return resolved

"""Opening a dataset: its index when one is complete, a scan when it is not.

The command line scans in the foreground (`load`). The app never does long work in a page:
it opens the index when there is one (`opened`), and otherwise starts one background scan
for the whole server (`start_scan`) whose progress every session reads (`scan_state`).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from datalib.errors import CorruptFile
from datalib.formats.download import check_root
from datalib.index import Index, SplitData, dataset_dir, open_index, read_status
from datalib.paths import cache_folder, data_root
from datalib.registry import dataset_spec

__all__ = [
    "ScanState",
    "cache_notice",
    "download",
    "load",
    "missing_files",
    "opened",
    "scan_state",
    "splits_of",
    "start_scan",
]

# A dataset whose index was last checked longer ago than this is listed again in the
# background when a page opens it (BATCHSCOPE_RECHECK_SECONDS; 0 turns it off).
RECHECK_SECONDS = float(os.environ.get("BATCHSCOPE_RECHECK_SECONDS", "300"))
# A background scan yields the cores to the server's sessions (nice 10): it only waits longer.
SCAN_NICENESS = 10


def missing_files(name: str, root: str | os.PathLike | None = None) -> list[str]:
    """The dataset's files that are not on disk (empty when it is complete)."""
    spec = dataset_spec(name)
    return spec.format.missing(spec, data_root(root))


def download(name: str, root: str | os.PathLike | None = None) -> Path:
    """Put the dataset's files on disk if they are not there; returns their folder."""
    spec = dataset_spec(name)
    return spec.format.download(spec, data_root(root))


def splits_of(name: str, root: str | os.PathLike | None = None) -> tuple[str, ...]:
    """The splits a dataset has (from its index when there is one)."""
    spec = dataset_spec(name)
    root_path = data_root(root)
    index = open_index(spec, root_path)
    if index is not None:
        return index.splits
    check_root(root_path, create=False)
    return spec.format.splits(spec, root_path)


def cache_notice(root: str | os.PathLike | None = None) -> str | None:
    """A sentence for the user when the index cannot live where it should (read-only root)."""
    return cache_folder(data_root(root)).notice


def load(
    name: str,
    split: str = "train",
    root: str | os.PathLike | None = None,
    *,
    scan_first: bool = True,
    download_missing: bool = False,
    workers: int | None = None,
    report: Callable | None = None,
) -> SplitData:
    """One split of a dataset, its index brought up to date first (a scan, when the files
    changed or there is no index yet; `scan_first=False` reads the index as it is). For the
    command line and scripts: it may take a while.
    """
    spec = dataset_spec(name)
    root_path = data_root(root)
    if scan_first:
        from datalib.scan import scan

        scan(spec.name, root_path, workers=workers, download=download_missing, report=report)
    index = open_index(spec, root_path)
    if index is None:
        raise CorruptFile(
            f"{spec.title} has no index yet: run `python -m datalib scan {spec.name}`."
        )
    return _split(index, split)


def opened(name: str, split: str, root: str | os.PathLike | None = None) -> SplitData | None:
    """The split from the dataset's complete index, or None when no scan has finished yet.
    Never scans; starts a background check when the index is due one."""
    spec = dataset_spec(name)
    root_path = data_root(root)
    index = open_index(spec, root_path)
    if index is None:
        return None
    finished = read_status(spec, root_path).get("finished", index.meta["created"])
    if RECHECK_SECONDS and time.time() - finished > RECHECK_SECONDS:
        start_scan(spec.name, root_path)
    return _split(index, split)


def _split(index: Index, split: str) -> SplitData:
    facts = index.meta["splits"].get(split, {})
    if "error" in facts:
        raise CorruptFile(facts["error"])
    data = index.split(split)
    if facts.get("labels_outside_classes"):
        low, high = int(data.labels.min()), int(data.labels.max())
        raise CorruptFile(
            f"The {data.spec.title} {split} labels run from {low} to {high}, outside the "
            f"classes 0 to {len(data.classes) - 1}: the labels file is damaged. Delete it and "
            f"run `python -m datalib download {data.spec.name}`."
        )
    return data


@dataclass(frozen=True)
class ScanState:
    """What a page shows while a dataset has no index: is a scan running, how far it is."""

    running: bool
    state: str
    done: int
    total: int
    images_per_s: float
    eta_s: float | None
    error: str | None

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 0.0


_jobs: dict[str, subprocess.Popen] = {}
_jobs_lock = threading.Lock()


def _running(folder: Path) -> bool:
    """Does some process (any server, the CLI) hold this dataset's scan lock?"""
    lock = folder / "scan.lock"
    if not lock.exists():
        return False
    with open(lock, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
    return False


def start_scan(name: str, root: str | os.PathLike | None = None, *, download: bool = False) -> None:
    """Start the dataset's scan in a background process, unless one is running (started by
    this server or any other process): one scan per dataset, whoever asks."""
    spec = dataset_spec(name)
    root_path = data_root(root)
    folder = dataset_dir(spec, root_path)
    key = str(folder)
    with _jobs_lock:
        job = _jobs.get(key)
        if job is not None and job.poll() is None:
            return
        if _running(folder):
            return
        folder.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "datalib", "scan", spec.name, "--root", str(root_path)]
        command += ["--nice", str(SCAN_NICENESS)]
        if download:
            command.append("--download")
        with open(folder / "scan.log", "ab") as log:
            _jobs[key] = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                cwd=Path(__file__).resolve().parents[1],
                start_new_session=True,  # a page's rerun or a Ctrl-C to the server does not stop it
            )


def scan_state(name: str, root: str | os.PathLike | None = None) -> ScanState:
    """How the dataset's scan is going, as its status file says."""
    spec = dataset_spec(name)
    root_path = data_root(root)
    folder = dataset_dir(spec, root_path)
    status = read_status(spec, root_path)
    with _jobs_lock:
        job = _jobs.get(str(folder))
        ours = job is not None and job.poll() is None
    running = ours or _running(folder)
    error = status.get("error") if status.get("state") in ("failed", "stopped") else None
    if not running and error is None and job is not None and job.returncode not in (0, None):
        with contextlib.suppress(OSError):
            tail = (folder / "scan.log").read_text().strip().splitlines()[-1:]
            error = tail[0].removeprefix("error: ") if tail else None
        error = error or f"The scan stopped (exit code {job.returncode})."
    return ScanState(
        running=running,
        state=status.get("state", "starting"),
        done=int(status.get("done", 0)),
        total=int(status.get("total", 0)),
        images_per_s=float(status.get("images_per_s", 0.0)),
        eta_s=status.get("eta_s"),
        error=error,
    )

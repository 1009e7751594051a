"""Opening a dataset: its index when one is complete, a scan when it is not.

The command line scans in the foreground (`load`). The app never does long work in a page:
it opens the index when there is one (`opened`), and otherwise starts one background scan
for the whole server (`start_scan`) whose progress every session reads (`scan_state`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from datalib.errors import CorruptFile
from datalib.formats.download import check_root
from datalib.index import Index, SplitData, dataset_dir, open_index, read_status, scan_job
from datalib.jobs import JobState
from datalib.paths import cache_folder, data_root
from datalib.registry import dataset_spec

__all__ = [
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
    if index.meta.get("identity", "") != spec.format.identity(spec):
        start_scan(spec.name, root_path)  # its config entry changed: not this dataset's index
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


def start_scan(name: str, root: str | os.PathLike | None = None, *, download: bool = False) -> None:
    """Start the dataset's scan in a background process, unless one is running (started by
    this server or any other process): one scan per dataset, whoever asks."""
    spec = dataset_spec(name)
    root_path = data_root(root)
    command = ["scan", spec.name, "--root", str(root_path), "--nice", str(SCAN_NICENESS)]
    scan_job(dataset_dir(spec, root_path)).start(command + (["--download"] if download else []))


def scan_state(name: str, root: str | os.PathLike | None = None) -> JobState:
    """How the dataset's scan is going, as its status file says."""
    spec = dataset_spec(name)
    return scan_job(dataset_dir(spec, data_root(root))).state()

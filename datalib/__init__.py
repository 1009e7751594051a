"""Batchscope's data library: datasets, their per-sample index, DataLoader batches and
statistics. No Streamlit here.

Names are imported on first use: the scan's worker processes and `python -m datalib scan`
or `info` never import torch, which only the DataLoader replay (batches, checks) needs.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "datalib.batches": (
        "MAX_BATCH_SIZE",
        "Batch",
        "LoaderSettings",
        "batch",
        "epoch_indices",
        "sample_order",
        "tensor_text",
        "to_tensor",
    ),
    "datalib.datasets": (
        "cache_notice",
        "download",
        "load",
        "missing_files",
        "opened",
        "scan_state",
        "splits_of",
        "start_scan",
    ),
    "datalib.errors": (
        "ConfigError",
        "CorruptFile",
        "DataRootError",
        "DatalibError",
        "DatasetMissing",
        "DownloadFailed",
        "InvalidRequest",
        "ReadTimeout",
        "ScanFailed",
        "UnknownDataset",
    ),
    "datalib.formats.folder": ("find_folders",),
    "datalib.jobs": ("JobState",),
    "datalib.index": ("SplitData",),
    "datalib.paths": ("data_root",),
    "datalib.registry": (
        "DATASETS",
        "FOLDER_PREFIX",
        "DatasetSpec",
        "config_problem",
        "dataset_names",
        "dataset_spec",
    ),
    "datalib.stats": (
        "PixelStats",
        "balance_verdict",
        "class_counts",
        "class_indices",
        "class_table",
        "imbalance_ratio",
        "pixel_stats",
    ),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(_WHERE)  # noqa: PLE0605 - built from _EXPORTS, one list to keep


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'datalib' has no attribute {name!r}")
    value = getattr(importlib.import_module(_WHERE[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__

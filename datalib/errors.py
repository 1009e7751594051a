"""Errors a user can cause, each with a message that says how to fix it."""

__all__ = [
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
]


class DatalibError(Exception):
    """Base class: the message is meant to be shown to the user as it is."""


class UnknownDataset(DatalibError):
    """A dataset name that is not in the registry."""


class DataRootError(DatalibError):
    """The data root does not exist, is not a folder, or cannot be read."""


class DatasetMissing(DatalibError):
    """The dataset's files are not on disk and no download was asked for."""


class DownloadFailed(DatalibError):
    """The dataset could not be fetched (offline, mirror down, checksum mismatch)."""


class ConfigError(DatalibError):
    """The config file (batchscope.toml) or one of its datasets is wrong: the message names
    the dataset, the file and the line."""


class CorruptFile(DatalibError):
    """A dataset file is on disk but is not what its format promises."""


class InvalidRequest(DatalibError):
    """An out-of-range input: a batch past the end, a class that does not exist."""


class ScanFailed(DatalibError):
    """A scan could not finish (a full disk, no readable image); no index was written."""


class ReadTimeout(DatalibError):
    """Reading images took longer than allowed: the disk may be hung."""

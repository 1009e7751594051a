"""Finding, downloading and loading: tiny real-format files, no network."""

import functools
import gzip
import hashlib
import http.server
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
import torch
import torchvision

import datalib
from datalib import index as index_module
from tests.conftest import TEST_LABELS, TRAIN_LABELS, snapshot, write_idx, write_tiny_mnist

FILES = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
]


def test_load_gives_uint8_images_and_labels(tiny_root):
    data = datalib.load("mnist", "train", tiny_root)
    images = data.images(range(len(data)))
    assert images.dtype == np.uint8 and images.shape == (12, 1, 28, 28)
    assert data.labels.tolist() == TRAIN_LABELS
    assert data.classes[3] == "3 - three"
    assert data.image_shape == (1, 28, 28)
    assert [p.shape for p in data.pixels([2, 3])] == [(28, 28), (28, 28)]
    assert int(data.pixels([2])[0][5, 5]) == 40


def test_a_second_load_decodes_no_image_and_reads_no_index_again(tiny_root, monkeypatch):
    """However the name and root are spelled, a split loaded before is served from memory:
    the files found unchanged, no image decoded again, its index not read again from disk."""
    first = datalib.load("mnist", "test", tiny_root)
    decoded, indexes_read = [], []
    real_read, real_trusted = first.spec.format.read, index_module.trusted
    monkeypatch.setattr(first.spec.format, "read", lambda *a: decoded.append(a[2]) or real_read(*a))
    monkeypatch.setattr(
        index_module, "trusted", lambda *a: indexes_read.append(a[2]) or real_trusted(*a)
    )
    again = datalib.load("MNIST", "test", str(tiny_root))
    assert again.labels.tolist() == TEST_LABELS
    assert again.details == first.details
    train = datalib.load("mnist", "train", tiny_root)  # the other split: its own data
    assert train.labels.tolist() == TRAIN_LABELS
    assert decoded == [] and indexes_read == []


def test_data_root_comes_from_the_environment(tiny_root, monkeypatch):
    monkeypatch.setenv("DATALIB_ROOT", str(tiny_root))
    assert datalib.data_root() == tiny_root
    assert len(datalib.load("mnist", "test")) == 5
    monkeypatch.delenv("DATALIB_ROOT")
    assert datalib.data_root() == Path("data").absolute()


def test_unknown_dataset_and_split_name_the_choices(tiny_root):
    with pytest.raises(
        datalib.UnknownDataset,
        match="Choose one of: cifar10, fashionmnist, kmnist, mnist, or folder:<path> for a folder of images under the data root.",
    ):
        datalib.load("cifar99", "train", tiny_root)
    with pytest.raises(datalib.UnknownDataset, match="train, test"):
        datalib.load("mnist", "validation", tiny_root)


def test_missing_files_are_named_with_their_folder_and_the_fix(tmp_path):
    raw = write_tiny_mnist(tmp_path)
    (raw / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(datalib.DatasetMissing) as error:
        datalib.load("mnist", "test", tmp_path, download_missing=False)
    message = str(error.value)
    assert "t10k-labels-idx1-ubyte" in message and str(raw) in message
    assert "python -m datalib download mnist" in message


def test_root_that_is_a_file_is_refused(tmp_path):
    root = tmp_path / "a-file"
    root.write_text("not a folder")
    with pytest.raises(datalib.DataRootError, match="is a file, not a folder"):
        datalib.load("mnist", "train", root, download_missing=False)


def test_root_that_does_not_exist_is_refused_without_download(tmp_path):
    with pytest.raises(datalib.DataRootError, match="does not exist"):
        datalib.load("mnist", "train", tmp_path / "nowhere", download_missing=False)


def test_images_and_labels_of_different_lengths_are_refused(tmp_path):
    raw = write_tiny_mnist(tmp_path)
    write_idx(raw / "train-labels-idx1-ubyte", torch.zeros(11, dtype=torch.uint8).numpy())
    with pytest.raises(datalib.CorruptFile, match="12 images but .* 11 labels"):
        datalib.load("mnist", "train", tmp_path)


@pytest.fixture
def offline_mirror(monkeypatch, tmp_path):
    """A mirror served from a folder on loopback; torchvision's MNIST mirrors point only at it."""
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    handler = functools.partial(QuietHandler, directory=str(mirror))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setattr(
        torchvision.datasets.MNIST, "mirrors", [f"http://127.0.0.1:{server.server_port}/"]
    )
    QuietHandler.requests = []
    yield mirror
    server.shutdown()
    server.server_close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    requests: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        QuietHandler.requests.append(self.path)
        time.sleep(0.05)  # a slow mirror, so concurrent callers overlap
        super().do_GET()

    def log_message(self, *args) -> None:
        pass


def publish(mirror: Path, source: Path, monkeypatch) -> None:
    """Gzip the tiny files into the mirror and tell torchvision their md5s."""
    resources = []
    for name in FILES:
        data = gzip.compress((source / name).read_bytes(), mtime=0)
        (mirror / f"{name}.gz").write_bytes(data)
        resources.append((f"{name}.gz", hashlib.md5(data).hexdigest()))
    monkeypatch.setattr(torchvision.datasets.MNIST, "resources", resources)


def test_download_fetches_checks_and_renames_into_place(tmp_path, offline_mirror, monkeypatch):
    publish(offline_mirror, write_tiny_mnist(tmp_path / "source"), monkeypatch)
    root = tmp_path / "fresh"
    root.mkdir()
    folder = datalib.download("mnist", root)
    assert folder == root / "MNIST" / "raw"
    assert sorted(os.listdir(folder)) == sorted(FILES)
    assert sorted(p.name for p in root.iterdir()) == ["MNIST"]  # no temp folder, no lock
    assert datalib.load("mnist", "train", root).labels.tolist() == TRAIN_LABELS


def test_failed_download_says_what_to_do_and_leaves_nothing_trusted(offline_mirror, tmp_path):
    root = tmp_path / "fresh"  # the mirror is empty: every fetch fails
    root.mkdir()
    (root / "notes.txt").write_text("mine")
    before = sorted(str(p.relative_to(root)) for p in root.rglob("*"))
    with pytest.raises(datalib.DownloadFailed) as error:
        datalib.load("mnist", "train", root, download_missing=True)
    message = str(error.value)
    assert "Downloading MNIST failed" in message
    assert str(root / "MNIST" / "raw") in message and "train-images-idx3-ubyte" in message
    assert "DATALIB_ROOT" in message
    assert "\n" not in message
    assert datalib.missing_files("mnist", root) == FILES
    # the data root is as it was: no lock, no empty MNIST/raw, no temporary folder
    assert sorted(str(p.relative_to(root)) for p in root.rglob("*")) == before


def test_corrupt_download_is_not_moved_into_place(tmp_path, offline_mirror, monkeypatch):
    source = write_tiny_mnist(tmp_path / "source")
    (source / "t10k-images-idx3-ubyte").write_bytes(b"<html>mirror error</html>")
    publish(offline_mirror, source, monkeypatch)
    root = tmp_path / "fresh"
    root.mkdir()
    with pytest.raises(datalib.CorruptFile, match="HTML page"):
        datalib.download("mnist", root)
    assert datalib.missing_files("mnist", root) == FILES


def test_read_only_data_is_loaded_without_writing(tiny_root):
    before = snapshot(tiny_root)
    for path in [tiny_root, *tiny_root.rglob("*")]:
        path.chmod(0o555 if path.is_dir() else 0o444)
    try:
        datalib.load("mnist", "train", tiny_root)
        datalib.download("mnist", tiny_root)  # present: nothing to do, nothing written
    finally:
        for path in [tiny_root, *tiny_root.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
    assert snapshot(tiny_root) == before


def test_concurrent_downloads_fetch_each_file_once(tmp_path, offline_mirror, monkeypatch):
    publish(offline_mirror, write_tiny_mnist(tmp_path / "source"), monkeypatch)
    alone, shared = tmp_path / "alone", tmp_path / "shared"
    alone.mkdir()
    shared.mkdir()
    datalib.download("mnist", alone)
    one_download = sorted(QuietHandler.requests)  # torchvision asks twice per file
    assert set(one_download) == {f"/{name}.gz" for name in FILES}
    QuietHandler.requests.clear()
    with ThreadPoolExecutor(4) as pool:  # four sessions open the app at once
        folders = list(pool.map(lambda _: datalib.download("mnist", shared), range(4)))
    assert set(folders) == {shared / "MNIST" / "raw"}
    assert sorted(QuietHandler.requests) == one_download
    assert datalib.load("mnist", "test", shared).labels.tolist() == [1, 1, 2, 3, 4]


def test_the_default_root_is_created_on_first_download(tmp_path, offline_mirror, monkeypatch):
    publish(offline_mirror, write_tiny_mnist(tmp_path / "source"), monkeypatch)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DATALIB_ROOT", raising=False)
    assert datalib.download("mnist") == tmp_path / "data" / "MNIST" / "raw"
    with pytest.raises(datalib.DataRootError, match="does not exist"):
        datalib.download("mnist", tmp_path / "named-but-missing")

"""Fixtures: tiny MNIST-format data written by hand, and the real MNIST in ../shared/data."""

from __future__ import annotations

import contextlib
import os
import shutil
import struct
import tempfile
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[1] / "app.py")
REAL_ROOT = Path(
    os.environ.get("BATCHSCOPE_REAL_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)


def pytest_configure(config) -> None:
    """Every index the tests build goes to one temporary cache, never into a data root (the
    real MNIST's is read-only); pages wait for a scan to finish instead of showing progress,
    and no background recheck starts on its own."""
    cache = tempfile.mkdtemp(prefix="batchscope-test-cache-")
    config._batchscope_cache = cache
    os.environ["BATCHSCOPE_CACHE"] = cache
    os.environ["BATCHSCOPE_SCAN_WAIT"] = "60"
    os.environ["BATCHSCOPE_RECHECK_SECONDS"] = "0"


def pytest_unconfigure(config) -> None:
    shutil.rmtree(getattr(config, "_batchscope_cache", ""), ignore_errors=True)


# Tiny train split: 12 images, image i filled with the value 20 * i; labels 0-9 then 0, 0,
# so class 0 has 3 images and every other class 1. Test split: 5 images of value 255,
# labels 1, 1, 2, 3, 4.
TRAIN_LABELS = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 0]
TEST_LABELS = [1, 1, 2, 3, 4]
SIDE = 28


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write `array` (uint8) as an IDX file, the format MNIST ships in."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim)
    header += b"".join(struct.pack(">I", d) for d in array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def tiny_train_images() -> np.ndarray:
    return np.stack([np.full((SIDE, SIDE), 20 * i, dtype=np.uint8) for i in range(12)])


def write_tiny_mnist(root: Path, folder: str = "MNIST") -> Path:
    """Write the tiny dataset under `root/<folder>/raw` and return that folder.

    FashionMNIST and KMNIST ship the same four IDX files in their own folders.
    """
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    test_images = np.full((len(TEST_LABELS), SIDE, SIDE), 255, dtype=np.uint8)
    test_images[:, :, :14] = 0  # left half black, so test mean is 0.5
    write_idx(raw / "train-images-idx3-ubyte", tiny_train_images())
    write_idx(raw / "train-labels-idx1-ubyte", np.array(TRAIN_LABELS, dtype=np.uint8))
    write_idx(raw / "t10k-images-idx3-ubyte", test_images)
    write_idx(raw / "t10k-labels-idx1-ubyte", np.array(TEST_LABELS, dtype=np.uint8))
    return raw


@pytest.fixture
def tiny_root(tmp_path: Path) -> Path:
    """A data root holding the tiny MNIST-format dataset."""
    write_tiny_mnist(tmp_path / "root")
    return tmp_path / "root"


@pytest.fixture
def shuffled_root(tmp_path: Path) -> Path:
    """A data root with 103 random images (a size no batch size divides) for batch replay."""
    rng = np.random.default_rng(0)
    raw = tmp_path / "root" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for prefix, n in (("train", 103), ("t10k", 17)):
        write_idx(raw / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, SIDE, SIDE)))
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", rng.integers(0, 10, n))
    return tmp_path / "root"


@pytest.fixture(scope="session")
def real_root() -> Path:
    """The real MNIST; skipped where it is absent, but never in CI (CI must run these)."""
    if not (REAL_ROOT / "MNIST" / "raw" / "train-images-idx3-ubyte").is_file():
        message = f"real MNIST not found under {REAL_ROOT} (set BATCHSCOPE_REAL_DATA)"
        if os.environ.get("CI"):
            pytest.fail(f"{message}: CI must run the real-data tests")
        pytest.skip(message)
    return REAL_ROOT


CIFAR_TRAIN_LABELS = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9]
CIFAR_TEST_LABELS = [3, 3, 5]


def write_tiny_cifar(root: Path, monkeypatch) -> Path:
    """Write CIFAR-10's pickled batches (5 train batches, a test batch, the meta file) under
    `root/cifar-10-batches-py`, and tell torchvision their md5s, as its own tests do.

    Train image i is red 10*i, green 100, blue 255 - 10*i in every pixel.
    """
    import hashlib
    import pickle

    import torchvision

    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    cls = torchvision.datasets.CIFAR10

    def image(i: int) -> np.ndarray:  # CIFAR rows: 1024 red, 1024 green, 1024 blue
        return np.concatenate([np.full(1024, v, np.uint8) for v in (10 * i, 100, 255 - 10 * i)])

    def write(name: str, entry: dict) -> str:
        data = pickle.dumps(entry)
        (folder / name).write_bytes(data)
        return hashlib.md5(data).hexdigest()

    train_list = []
    for batch in range(5):  # the 12 images spread over the 5 files, as torchvision reads them
        indices = [i for i in range(12) if i % 5 == batch]
        entry = {
            "data": np.stack([image(i) for i in indices]),
            "labels": [CIFAR_TRAIN_LABELS[i] for i in indices],
        }
        train_list.append([f"data_batch_{batch + 1}", write(f"data_batch_{batch + 1}", entry)])
    test = {"data": np.stack([image(20 + i) for i in range(3)]), "labels": CIFAR_TEST_LABELS}
    test_list = [["test_batch", write("test_batch", test)]]
    names = [
        "airplane",
        "automobile",
        "bird",
        "cat",
        "deer",
        "dog",
        "frog",
        "horse",
        "ship",
        "truck",
    ]
    meta = {"filename": "batches.meta", "key": "label_names"}
    meta["md5"] = write("batches.meta", {"label_names": names})
    monkeypatch.setattr(cls, "train_list", train_list)
    monkeypatch.setattr(cls, "test_list", test_list)
    monkeypatch.setattr(cls, "meta", meta)
    from datalib.registry import CIFAR  # datalib checks the same sums itself

    monkeypatch.setattr(CIFAR, "split_files", {"train": dict(train_list), "test": dict(test_list)})
    monkeypatch.setattr(CIFAR, "meta", (meta["filename"], meta["md5"]))
    return folder


@pytest.fixture
def cifar_root(tmp_path: Path, monkeypatch) -> Path:
    """A data root holding tiny CIFAR-10 files that torchvision accepts."""
    write_tiny_cifar(tmp_path / "root", monkeypatch)
    return tmp_path / "root"


def scan_first(name: str, root: Path) -> None:
    """Index the dataset in this process, as the app's background scan would, but at once;
    a dataset that cannot be scanned is left for the page to report."""
    import datalib

    by_title = {spec.title: spec.name for spec in datalib.DATASETS.values()}  # the URL's form
    with contextlib.suppress(datalib.DatalibError):
        name = by_title.get(name, name)
        datalib.load(name, datalib.splits_of(name, root)[0], root)


def open_page(root: Path, monkeypatch, page_file: str = "overview", **params: str) -> AppTest:
    """Run app.py on `page_file` (opened directly, as a link would) with DATALIB_ROOT=root and
    these URL query params; fail on an exception box."""
    monkeypatch.setenv("DATALIB_ROOT", str(root))
    scan_first(params.get("dataset", "mnist"), root)
    app = AppTest.from_file(APP, default_timeout=60)
    for key, value in params.items():
        app.query_params[key] = value
    app.switch_page(f"pages/{page_file}.py").run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def image_grids(app: AppTest) -> dict[str, list[dict]]:
    """The image grids a page drew (ui.pixel_grid), by key: each tile's caption and index."""
    import json

    grids = {}
    for node in app.get("bidi_component"):
        if node.proto.component_name == "batchscope_image_grid":
            grids[node.key] = json.loads(node.proto.json)["tiles"]
    return grids


def grid_captions(app: AppTest, key: str | None = None) -> list[str]:
    """The captions of one grid (or of every grid, in page order) as a user reads them."""
    grids = image_grids(app)
    chosen = [grids[key]] if key else list(grids.values())
    return [tile["caption"] for tiles in chosen for tile in tiles]


def plain(markdown: str) -> str:
    """What a reader sees of Markdown the app escaped (ui.md): the backslashes and the
    invisible word joiners dropped."""
    import re

    return re.sub(r"\\(.)", r"\1", str(markdown)).replace("\u2060", "")

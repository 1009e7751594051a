"""What the tests share, in one place: data written by hand in every format (MNIST-format IDX
files, CIFAR-10 pickles, image folders), the real MNIST in ../shared/data and its known facts,
the command line run in this process or as a command, and the app run through AppTest.

Test modules import helpers from here, never from one another."""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

REPO = Path(__file__).resolve().parents[1]
APP = str(REPO / "app.py")
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


# MNIST-format IDX files -------------------------------------------------------------------

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


# The real MNIST ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def real_root() -> Path:
    """The real MNIST; skipped where it is absent, but never in CI (CI must run these)."""
    if not (REAL_ROOT / "MNIST" / "raw" / "train-images-idx3-ubyte").is_file():
        message = f"real MNIST not found under {REAL_ROOT} (set BATCHSCOPE_REAL_DATA)"
        if os.environ.get("CI"):
            pytest.fail(f"{message}: CI must run the real-data tests")
        pytest.skip(message)
    return REAL_ROOT


# The real MNIST's class counts, train and test (../shared/data/README.md).
REAL_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
REAL_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]

# More MNIST-format datasets ---------------------------------------------------------------

# FashionMNIST and KMNIST: the dataset's name, its folder (and title), and its last class.
FAMILY = {
    "fashionmnist": ("FashionMNIST", "Ankle boot"),
    "kmnist": ("KMNIST", "wo"),
}


@pytest.fixture
def family_root(tmp_path: Path) -> Path:
    """A data root holding the tiny dataset as FashionMNIST and as KMNIST."""
    for folder, _ in FAMILY.values():
        write_tiny_mnist(tmp_path, folder)
    return tmp_path


# Class-sorted: 40 train images, 4 per class in label order (0, 0, 0, 0, 1, ...), each image
# distinct noise. Test: 10 images, one per class, where test #0 is a copy of train #5 and
# test #1 a copy of train #21: two leaks.
SORTED_LABELS = np.repeat(np.arange(10), 4)
LEAKS = {0: 5, 1: 21}  # test index: train index

# Imbalanced 10:1: 2,000 images of class 0 and 200 of each other class (3,800), in a random
# order; test has 10 per class. Every image is distinct noise.
IMBALANCED_COUNTS = [2000] + [200] * 9


def write_split(raw: Path, prefix: str, images: np.ndarray, labels: np.ndarray) -> None:
    write_idx(raw / f"{prefix}-images-idx3-ubyte", images)
    write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels)


def write_sorted_mnist(root: Path) -> Path:
    """The class-sorted dataset with two test images leaked from train, under `root`."""
    rng = np.random.default_rng(1)
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    train = rng.integers(0, 256, (40, SIDE, SIDE), dtype=np.uint8)
    test = rng.integers(0, 256, (10, SIDE, SIDE), dtype=np.uint8)
    for test_index, train_index in LEAKS.items():
        test[test_index] = train[train_index]
    write_split(raw, "train", train, SORTED_LABELS)
    write_split(raw, "t10k", test, np.arange(10))
    return root


def write_imbalanced_mnist(root: Path) -> Path:
    """The 10:1 imbalanced dataset under `root`."""
    rng = np.random.default_rng(2)
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    labels = rng.permutation(np.repeat(np.arange(10), IMBALANCED_COUNTS))
    write_split(raw, "train", rng.integers(0, 256, (labels.size, SIDE, SIDE)), labels)
    write_split(raw, "t10k", rng.integers(0, 256, (100, SIDE, SIDE)), np.repeat(np.arange(10), 10))
    return root


@pytest.fixture
def sorted_root(tmp_path: Path) -> Path:
    return write_sorted_mnist(tmp_path / "sorted")


@pytest.fixture
def imbalanced_root(tmp_path: Path) -> Path:
    return write_imbalanced_mnist(tmp_path / "imbalanced")


# CIFAR-10 ---------------------------------------------------------------------------------

CIFAR_TRAIN_LABELS = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9]
CIFAR_TEST_LABELS = [3, 3, 5]


def write_tiny_cifar(root: Path, monkeypatch) -> Path:
    """Write CIFAR-10's pickled batches (5 train batches, a test batch, the meta file) under
    `root/cifar-10-batches-py`, and tell torchvision their md5s, as its own tests do.

    Train image i is red 10*i, green 100, blue 255 - 10*i in every pixel.
    """

    def image(i: int) -> np.ndarray:  # CIFAR rows: 1024 red, 1024 green, 1024 blue
        return np.concatenate([np.full(1024, v, np.uint8) for v in (10 * i, 100, 255 - 10 * i)])

    return write_cifar(
        root,
        monkeypatch,
        np.stack([image(i) for i in range(12)]),
        CIFAR_TRAIN_LABELS,
        np.stack([image(20 + i) for i in range(3)]),
        CIFAR_TEST_LABELS,
    )


def write_cifar(root: Path, monkeypatch, train, train_labels, test, test_labels) -> Path:
    """CIFAR-10's files holding these images (N x 3072 rows, as CIFAR stores them), with the
    md5s torchvision and datalib check patched to theirs."""
    import hashlib
    import pickle

    import torchvision

    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    cls = torchvision.datasets.CIFAR10

    def write(name: str, entry: dict) -> str:
        data = pickle.dumps(entry)
        (folder / name).write_bytes(data)
        return hashlib.md5(data).hexdigest()

    train_list = []
    for batch in range(5):  # image i in file i % 5: torchvision reads file 1 first
        indices = [i for i in range(len(train)) if i % 5 == batch]
        entry = {"data": train[indices], "labels": [int(train_labels[i]) for i in indices]}
        train_list.append([f"data_batch_{batch + 1}", write(f"data_batch_{batch + 1}", entry)])
    test_entry = {"data": test, "labels": [int(label) for label in test_labels]}
    test_list = [["test_batch", write("test_batch", test_entry)]]
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
def learnable_cifar_root(tmp_path: Path, monkeypatch) -> Path:
    """CIFAR-10's format holding the learnable patterns in colour: classes airplane,
    automobile and bird (0-2), 30 train and 8 test images each; see LEARNABLE_WRONG."""
    rng = np.random.default_rng(0)
    kinds = LEARNABLE_CLASSES

    def rows(count: int, split: str) -> tuple[np.ndarray, list[int]]:
        images, labels = [], []
        for label, kind in enumerate(kinds):
            for i in range(count):
                wrong = split == "train" and (kind, i) in LEARNABLE_WRONG
                grey = np.kron(pattern("horizontal" if wrong else kind, rng), np.ones((2, 2)))
                grey = grey.astype(np.uint8)  # 32 x 32
                images.append(
                    np.concatenate([grey.ravel(), (grey // 4).ravel(), (255 - grey).ravel()])
                )
                labels.append(label)
        return np.stack(images), labels

    train, train_labels = rows(LEARNABLE_PER_CLASS, "train")
    test, test_labels = rows(8, "test")
    root = tmp_path / "root"
    write_cifar(root, monkeypatch, train, train_labels, test, test_labels)
    return root


@pytest.fixture
def cifar_root(tmp_path: Path, monkeypatch) -> Path:
    """A data root holding tiny CIFAR-10 files that torchvision accepts."""
    write_tiny_cifar(tmp_path / "root", monkeypatch)
    return tmp_path / "root"


# Image folders ----------------------------------------------------------------------------


# Known pixels, so a test can check values through every conversion.
RGB = np.arange(8 * 8 * 3, dtype=np.uint8).reshape(8, 8, 3)
GREY = np.full((8, 8), 77, dtype=np.uint8)
RGBA = np.dstack([RGB, np.full((8, 8), 10, dtype=np.uint8)])  # nearly transparent
PALETTE = [255, 0, 0, 0, 0, 255]  # index 0 red, 1 blue
PALETTE_INDEX = np.tile(np.array([0, 1], dtype=np.uint8), (8, 4))  # red, blue, red, ...
WIDE = np.full((10, 12, 3), 200, dtype=np.uint8)  # 12 wide, 10 high: the odd size out


def save(path: Path, pixels: np.ndarray, **options) -> Path:
    """Write `pixels` as a real image file (format from the suffix) and return its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, **options)
    return path


def save_palette(path: Path, index: np.ndarray, palette: list[int]) -> Path:
    """Write a palette (mode P) PNG: `index` picks colours from `palette` (flat RGB)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.frombytes("P", (index.shape[1], index.shape[0]), index.tobytes())
    image.putpalette(palette)
    image.save(path)
    return path


def truncated_png(path: Path) -> Path:
    """A PNG cut off inside its pixel data: PIL opens it, but decoding fails."""
    noise = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    save(path, noise)
    path.write_bytes(path.read_bytes()[:500])
    return path


@pytest.fixture
def folder_root(tmp_path: Path) -> Path:
    """A data root with a split layout (`pets`), a flat one (`digits`) and things to ignore.

    pets/train: cat holds RGB PNG, RGB JPEG, grey PNG and a nested RGB PNG, plus a hidden
    file, a text file, a link out of the root and a link back to itself; dog holds RGBA,
    palette and a 12x10 RGB, plus a truncated PNG and an HTML page named .png; fox is empty;
    a hidden folder and a class folder that links out of the root are ignored.
    pets/test: two grey 8x8 images. digits: grey images in a flat layout, for ImageFolder.
    """
    data, outside = tmp_path / "root", tmp_path / "outside"
    train = data / "pets" / "train"
    save(train / "cat" / "c0.png", RGB)
    save(train / "cat" / "c1.jpg", RGB, quality=95)
    save(train / "cat" / "c2.png", GREY)
    save(train / "cat" / "more" / "c9.png", RGB)
    save(train / "cat" / ".c3.png", RGB)
    (train / "cat" / "notes.txt").write_text("photos from the shelter")
    save(outside / "secret.png", RGB)
    save(outside / "wolves" / "w0.png", RGB)
    (train / "cat" / "escape.png").symlink_to(outside / "secret.png")
    (train / "cat" / "again").symlink_to(train / "cat")
    save(train / "dog" / "d0.png", RGBA)
    save_palette(train / "dog" / "d1.png", PALETTE_INDEX, PALETTE)
    save(train / "dog" / "d2.png", WIDE)
    truncated_png(train / "dog" / "d3.png")
    (train / "dog" / "d4.png").write_text("<!DOCTYPE html><html><body>Not found</body></html>")
    (train / "fox").mkdir()
    save(train / ".ipynb_checkpoints" / "c0.png", RGB)
    (train / "wolf").symlink_to(outside / "wolves")
    save(data / "pets" / "test" / "cat" / "t0.png", GREY)
    save(data / "pets" / "test" / "dog" / "t1.png", GREY + 1)

    digits = data / "digits"
    grey_palette = [v for level in (0, 85, 170, 255) for v in (level, level, level)]
    save(digits / "one" / "o0.png", GREY)
    save(digits / "one" / "o1.png", PALETTE_INDEX.astype(bool))  # mode 1: black and white
    save(digits / "one" / "a" / "x" / "o2.png", GREY)
    save(digits / "one" / "a-b" / "o3.png", GREY)  # sorts before a/x, as in sorted(os.walk)
    save(digits / "zero" / "z0.png", GREY)
    save_palette(digits / "zero" / "z1.png", PALETTE_INDEX, grey_palette)
    (data / "linked").symlink_to(outside)
    return data


# folder_root's pets/train: the images read, in order, and what is skipped, and why.
PETS_TRAIN_FILES = (
    "pets/train/cat/c0.png",
    "pets/train/cat/c1.jpg",
    "pets/train/cat/c2.png",
    "pets/train/cat/more/c9.png",
    "pets/train/dog/d0.png",
    "pets/train/dog/d1.png",
    "pets/train/dog/d2.png",
)
PETS_TRAIN_SKIPPED = (
    ("pets/train/.ipynb_checkpoints", "hidden folder"),
    ("pets/train/cat/.c3.png", "hidden file"),
    ("pets/train/cat/again", "link to a folder already read"),
    ("pets/train/cat/escape.png", "link leads outside the data root"),
    ("pets/train/cat/notes.txt", "not an image file (.txt)"),
    ("pets/train/dog/d3.png", "cannot be decoded: image file is truncated"),
    ("pets/train/dog/d4.png", "cannot be decoded: an HTML page, not an image (a failed download?)"),
    ("pets/train/fox", "empty class folder"),
    ("pets/train/wolf", "link leads outside the data root"),
)


def write_folder(root: Path, classes: int, per_class: int, side: int = 16, seed: int = 0) -> Path:
    """`root/shapes/<class>/<i>.png`: distinct random grey images, in class folders."""
    rng = np.random.default_rng(seed)
    for c in range(classes):
        folder = root / "shapes" / f"class{c}"
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = rng.integers(0, 256, (side, side), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / f"{i:04}.png")
    return root


# Image folders to learn from ----------------------------------------------------------

LEARNABLE_SIDE = 16
LEARNABLE_PER_CLASS = 30
LEARNABLE_CLASSES = ("horizontal", "vertical", "dots")


def pattern(kind: str, rng: np.random.Generator) -> np.ndarray:
    """A grey 16 x 16 image of its class's pattern, with a random phase and noise."""
    y, x = np.mgrid[:LEARNABLE_SIDE, :LEARNABLE_SIDE]
    phase = int(rng.integers(0, 4))
    if kind == "horizontal":
        on = (y + phase) % 4 < 2
    elif kind == "vertical":
        on = (x + phase) % 4 < 2
    else:
        on = ((x + phase) % 4 < 2) & ((y + phase) % 4 < 2)
    pixels = np.where(on, 200, 40) + rng.integers(-25, 26, (LEARNABLE_SIDE, LEARNABLE_SIDE))
    return np.clip(pixels, 0, 255).astype(np.uint8)


# What the `learnable` folder holds on purpose: train images 5 and 6 of "vertical" are
# horizontal stripes (wrong labels); test's "horizontal/leak.png" is train's
# horizontal/0003.png with a few pixels changed (a near duplicate across splits), and test's
# "dots/clash.png" is the same as train's vertical/0010.png (a near duplicate whose labels
# disagree); train's "dots/0007.png" is all white (an outlier).
LEARNABLE_WRONG = [("vertical", 5), ("vertical", 6)]


def write_learnable(root: Path, *, colour: bool = False) -> Path:
    """`root/learnable/{train,test}/<pattern>/*.png`: see LEARNABLE_WRONG above; with `colour`,
    RGB images (the pattern in red on a blue ground); returns root."""
    rng = np.random.default_rng(0)
    for split, count in (("train", LEARNABLE_PER_CLASS), ("test", 8)):
        for kind in LEARNABLE_CLASSES:
            folder = root / "learnable" / split / kind
            folder.mkdir(parents=True)
            for i in range(count):
                wrong = split == "train" and (kind, i) in LEARNABLE_WRONG
                pixels = pattern("horizontal" if wrong else kind, rng)
                if split == "train" and kind == "dots" and i == 7:
                    pixels = np.full((LEARNABLE_SIDE, LEARNABLE_SIDE), 255, np.uint8)
                if colour:
                    pixels = np.dstack([pixels, pixels // 4, 255 - pixels])
                Image.fromarray(pixels).save(folder / f"{i:04}.png")
    train = root / "learnable" / "train"
    leak = np.array(Image.open(train / "horizontal" / "0003.png"))
    leak[0, :3] = np.clip(leak[0, :3].astype(int) + 6, 0, 255)  # a few values a little off
    Image.fromarray(leak).save(root / "learnable" / "test" / "horizontal" / "leak.png")
    clash = Image.open(train / "vertical" / "0010.png")
    clash.save(root / "learnable" / "test" / "dots" / "clash.png")
    return root


@pytest.fixture
def learnable_root(tmp_path: Path) -> Path:
    """A folder a small CNN learns in seconds, with wrong labels, a leak and an outlier."""
    return write_learnable(tmp_path / "root")


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every file, folder and link under root with its size and modification time: equal
    snapshots mean nothing under root was written, added or removed."""
    return {
        p.relative_to(root).as_posix(): (p.lstat().st_size, p.lstat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
    }


# Datasets of one's own, named in a config file ---------------------------------------------

# tests/userdata: batchscope.toml naming `pildigits` (PIL images, labels only in the samples,
# classes in the config; train 48 images, one RGBA and one 20 x 18 among them, so its shape
# is 3 x 16 x 16; test 12 grey ones) and `tensordigits` (float C x H x W tensors with
# `targets` and `classes`, 40 and 16 of them, 3 x 12 x 12), and the package `userdigits`
# beside it (also `kinds.py`, every kind of sample, and `broken.py`, factories that fail).
USERDATA = Path(__file__).resolve().parent / "userdata"
USER_CONFIG = USERDATA / "batchscope.toml"


@pytest.fixture
def user_config(monkeypatch) -> Path:
    """BATCHSCOPE_CONFIG naming tests/userdata/batchscope.toml."""
    monkeypatch.setenv("BATCHSCOPE_CONFIG", str(USER_CONFIG))
    return USER_CONFIG


@pytest.fixture
def write_config(tmp_path: Path, monkeypatch):
    """`write(text)`: a config file of that text in a folder of tmp_path, named by
    BATCHSCOPE_CONFIG; returns its path. Its factories come from tests/userdata's package,
    on the import path here and in the processes the app starts (PYTHONPATH)."""
    monkeypatch.syspath_prepend(str(USERDATA))
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [str(USERDATA), os.environ.get("PYTHONPATH")]))
    )

    def write(text: str) -> Path:
        path = tmp_path / "config" / "batchscope.toml"
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
        monkeypatch.setenv("BATCHSCOPE_CONFIG", str(path))
        return path

    return write


def line_of(path: Path, text: str) -> int:
    """The number of the first line of the file at `path` that holds `text`."""
    lines = path.read_text().splitlines()
    return next(number for number, line in enumerate(lines, 1) if text in line)


# The command line -------------------------------------------------------------------------


def run_cli(*args: str) -> subprocess.CompletedProcess:
    """`python -m datalib ARGS` run in this process (`datalib.__main__.main`): its exit code
    (main's return value, or argparse's SystemExit code), stdout and stderr."""
    from datalib.__main__ import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(arg) for arg in args])
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else int(e.code is not None)
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


def run_cli_process(*args: str) -> subprocess.CompletedProcess:
    """`python -m datalib ARGS` as a command in a new process, as scripts and the Docker build
    run it: for what only a real process shows (its exit status, a traceback on stderr)."""
    return subprocess.run(
        [sys.executable, "-m", "datalib", *map(str, args)],
        check=False,
        capture_output=True,
        text=True,
        cwd=REPO,
    )


# The app ----------------------------------------------------------------------------------


def scan_first(name: str, root: Path) -> None:
    """Index the dataset in this process, as the app's background scan would, but at once;
    a dataset that cannot be scanned is left for the page to report."""
    import datalib

    with contextlib.suppress(datalib.DatalibError):
        # The URL names a dataset by its title (built-in, or the config file's).
        by_title = {datalib.dataset_spec(n).title: n for n in datalib.dataset_names()}
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
    return re.sub(r"\\(.)", r"\1", str(markdown)).replace("\u2060", "")


def texts(app: AppTest) -> str:
    """Every text on the page as a reader sees it (escaped Markdown unescaped; code as is)."""
    parts = [
        plain(e.value) for kind in ("markdown", "caption", "subheader") for e in app.get(kind)
    ] + [e.value for e in app.get("code")]
    return "\n".join(str(p) for p in parts)


def verdicts(app: AppTest) -> dict[str, str]:
    """Each check's verdict as the checklist page's badge row says it, by the check's title."""
    markdown = [m.value for m in app.markdown]
    found = {}
    for place, value in enumerate(markdown):
        if value.startswith("**") and value.endswith("**") and place:
            badge = markdown[place - 1]
            verdict = next((v for v in ("pass", "warn", "fail") if f" {v}]" in badge), None)
            if verdict:
                found[value.strip("*")] = verdict
    return found


def charts(app: AppTest) -> list[dict]:
    """The Plotly figures a page drew, as JSON."""
    return [json.loads(chart.proto.spec) for chart in app.get("plotly_chart")]


def plotly_array(value) -> np.ndarray:
    """A Plotly array from a figure's JSON: a plain list, or typed ({"bdata", "dtype"})."""
    if isinstance(value, dict):
        array = np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
        shape = value.get("shape")
        return array.reshape([int(d) for d in str(shape).split(",")]) if shape else array
    return np.asarray(value)

"""Fixtures: tiny MNIST-format data written by hand, and the real MNIST in ../shared/data."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np
import pytest

REAL_ROOT = Path(
    os.environ.get("BATCHSCOPE_REAL_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)

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

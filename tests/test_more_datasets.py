"""FashionMNIST and KMNIST: one registry entry each, the same IDX files in their own folders
(every page on each: test_app.py's page matrix)."""

import json
import os

import numpy as np
import pytest
import torch

import datalib
from tests.conftest import (
    FAMILY,
    TRAIN_LABELS,
    open_page,
    plain,
    run_cli,
    write_idx,
    write_tiny_mnist,
)


@pytest.mark.parametrize("name", list(FAMILY))
def test_loads_with_its_own_classes(family_root, name):
    folder, last_class = FAMILY[name]
    data = datalib.load(name, "train", family_root)
    assert data.spec.format.folder(data.spec) == f"{folder}/raw"
    assert data.classes[-1] == last_class
    assert data.labels.tolist() == TRAIN_LABELS
    assert datalib.class_counts(data.labels, 10).tolist() == [3, 1, 1, 1, 1, 1, 1, 1, 1, 1]


@pytest.mark.parametrize("name", ["mnist", *FAMILY])
@pytest.mark.parametrize("split", ["train", "test"])
def test_same_tensors_files_and_classes_as_torchvision(family_root, name, split):
    """datalib reads the IDX files itself (no torchvision import); it must see what it sees."""
    write_tiny_mnist(family_root, "MNIST")
    spec = datalib.dataset_spec(name)
    # Each family's files get their own pixels, so reading another family's folder fails.
    prefix = "train" if split == "train" else "t10k"
    own = np.random.default_rng(len(name)).integers(0, 256, (12 if split == "train" else 5, 28, 28))
    folder = family_root / spec.format.folder(spec)
    write_idx(folder / f"{prefix}-images-idx3-ubyte", own)
    reference = spec.dataset_class()(str(family_root), train=split == "train")
    data = datalib.load(name, split, family_root)
    images = torch.from_numpy(data.images(range(len(data))))
    labels = torch.from_numpy(data.labels.copy())
    assert images.dtype == reference.data.dtype == torch.uint8
    assert labels.dtype == reference.targets.dtype == torch.int64
    assert torch.equal(images[:, 0], reference.data)
    assert torch.equal(images[:, 0], torch.as_tensor(own, dtype=torch.uint8))
    assert torch.equal(labels, reference.targets)
    assert data.classes == tuple(reference.classes)
    assert spec.format.files() == [
        os.path.basename(url).removesuffix(".gz") for url, _ in reference.resources
    ]


@pytest.mark.parametrize("name", list(FAMILY))
def test_cli_info(family_root, name):
    result = run_cli("info", name, "--root", family_root, "--json")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["classes"][-1] == FAMILY[name][1]
    assert info["splits"]["test"]["class_counts"] == [0, 2, 1, 1, 1, 0, 0, 0, 0, 0]


def test_missing_files_name_the_dataset_folder(tmp_path):
    with pytest.raises(datalib.DatasetMissing, match="FashionMNIST/raw"):
        datalib.load("fashionmnist", "train", tmp_path, download_missing=False)


def test_overview_names_classes_a_split_lacks(family_root, monkeypatch):
    app = open_page(family_root, monkeypatch, split="test", dataset="FashionMNIST")
    assert plain(app.warning[0].value) == (
        "No image at all in FashionMNIST test of: T-shirt/top, Sandal, Shirt, Sneaker, Bag, "
        "Ankle boot."
    )

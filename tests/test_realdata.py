"""Facts about the real MNIST that a correct build reproduces (../shared/data/README.md)."""

import json

import numpy as np
import pytest
import torch
import torchvision
from torchvision import transforms

import datalib
from tests.conftest import REAL_TEST_COUNTS, REAL_TRAIN_COUNTS, run_cli


def test_class_counts_match_the_table(real_root):
    for split, counts in (("train", REAL_TRAIN_COUNTS), ("test", REAL_TEST_COUNTS)):
        data = datalib.load("mnist", split, real_root)
        assert datalib.class_counts(data.labels, 10).tolist() == counts


def test_images_are_28x28_uint8_and_scaled_by_to_tensor(real_root):
    data = datalib.load("mnist", "train", real_root)
    assert data.images([0]).dtype == np.uint8 and data.image_shape == (1, 28, 28)
    assert len(data) == 60_000
    stats = datalib.pixel_stats(data)
    assert (stats.min, stats.max) == (0.0, 1.0)
    assert round(stats.mean, 4) == 0.1307
    assert round(stats.std, 4) == 0.3081


@pytest.mark.parametrize("split", ["train", "test"])
def test_tensors_equal_torchvisions(real_root, split):
    reference = torchvision.datasets.MNIST(real_root, train=split == "train")
    data = datalib.load("mnist", split, real_root)
    images = torch.from_numpy(data.images(range(len(data))))
    labels = torch.from_numpy(data.labels.copy())
    assert images.dtype == reference.data.dtype == torch.uint8
    assert labels.dtype == reference.targets.dtype == torch.int64
    assert torch.equal(images[:, 0], reference.data)
    assert torch.equal(labels, reference.targets)


def test_cli_info_json_reproduces_the_table(real_root):
    result = run_cli("info", "mnist", "--root", real_root, "--json")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["splits"]["train"]["class_counts"] == REAL_TRAIN_COUNTS
    assert info["splits"]["test"]["class_counts"] == REAL_TEST_COUNTS
    assert info["splits"]["train"]["size"] == 60_000
    assert info["splits"]["test"]["image_shape"] == [1, 28, 28]
    assert round(info["splits"]["train"]["pixel"]["std"], 4) == 0.3081


@pytest.mark.parametrize("seed", [0, 2024])
def test_batches_equal_the_dataloaders_on_real_data(real_root, seed):
    dataset = torchvision.datasets.MNIST(real_root, train=True, transform=transforms.ToTensor())
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=10, shuffle=True, generator=torch.Generator().manual_seed(seed)
    )
    data = datalib.load("mnist", "train", real_root)
    settings = datalib.LoaderSettings(batch_size=10, seed=seed)
    for k, (images, labels) in zip(range(3), loader, strict=False):
        batch = datalib.batch(data, settings, k)
        assert torch.equal(batch.images, images) and torch.equal(batch.labels, labels)

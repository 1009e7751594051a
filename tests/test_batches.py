"""Batch k is exactly what a real DataLoader yields at step k."""

import itertools

import pytest
import torch
import torchvision
from torchvision import transforms

import datalib


def loader_batches(root, settings: datalib.LoaderSettings):
    """A real DataLoader over torchvision's MNIST with ToTensor, as the tutorial builds it."""
    dataset = torchvision.datasets.MNIST(root, train=True, transform=transforms.ToTensor())
    return torch.utils.data.DataLoader(
        dataset,
        batch_size=settings.batch_size,
        shuffle=settings.shuffle,
        drop_last=settings.drop_last,
        generator=torch.Generator().manual_seed(settings.seed),
    )


@pytest.mark.parametrize(
    ("batch_size", "shuffle", "seed", "drop_last"),
    [
        (10, True, 0, False),
        (10, True, 1234, True),
        (7, True, 42, False),
        (1, True, 3, False),
        (64, True, 2**40, False),
        (16, False, 0, False),
        (103, True, 5, False),
        (200, True, 5, False),
    ],
)
def test_every_batch_equals_the_dataloaders(shuffled_root, batch_size, shuffle, seed, drop_last):
    settings = datalib.LoaderSettings(batch_size, shuffle, seed, drop_last)
    data = datalib.load("mnist", "train", shuffled_root)
    expected = list(loader_batches(shuffled_root, settings))
    assert settings.num_batches(len(data)) == len(expected)
    for k, (images, labels) in enumerate(expected):
        batch = datalib.batch(data, settings, k)
        assert batch.images.dtype == torch.float32
        assert torch.equal(batch.images, images), f"images differ at batch {k}"
        assert torch.equal(batch.labels, labels), f"labels differ at batch {k}"


def test_jumping_ahead_needs_no_earlier_batch(shuffled_root):
    settings = datalib.LoaderSettings(batch_size=10, seed=9)
    data = datalib.load("mnist", "train", shuffled_root)
    last = settings.num_batches(len(data)) - 1
    images, labels = next(itertools.islice(loader_batches(shuffled_root, settings), last, None))
    jumped = datalib.batch(data, settings, last)
    assert torch.equal(jumped.labels, labels) and torch.equal(jumped.images, images)
    assert len(jumped.indices) == 3  # 103 samples: the last batch holds the remainder


def test_batch_describes_its_tensors(tiny_root):
    data = datalib.load("mnist", "train", tiny_root)
    facts = datalib.batch(data, datalib.LoaderSettings(batch_size=4, shuffle=False), 1).describe()
    assert facts["images.shape"] == "(4, 1, 28, 28)"
    assert facts["images.dtype"] == "torch.float32"
    assert facts["images.min()"] == f"{80 / 255:.4f}"  # images 4-7 hold 80, 100, 120, 140
    assert facts["images.max()"] == f"{140 / 255:.4f}"
    assert facts["labels.dtype"] == "torch.int64"


def test_out_of_range_batches_and_settings_are_refused(tiny_root):
    data = datalib.load("mnist", "train", tiny_root)
    settings = datalib.LoaderSettings(batch_size=5, drop_last=True)
    assert settings.num_batches(len(data)) == 2
    with pytest.raises(datalib.InvalidRequest, match="batches 0 to 1"):
        datalib.batch(data, settings, 2)
    with pytest.raises(datalib.InvalidRequest, match="does not exist"):
        datalib.batch(data, settings, -1)
    with pytest.raises(datalib.InvalidRequest, match="Batch size 0"):
        datalib.LoaderSettings(batch_size=0)
    with pytest.raises(datalib.InvalidRequest, match="Batch size 100000"):
        datalib.LoaderSettings(batch_size=100_000)
    with pytest.raises(datalib.InvalidRequest, match="Seed -1"):
        datalib.LoaderSettings(seed=-1)

"""CIFAR-10: colour images in torchvision's pickled batches, written tiny by a fixture
(every page on it: test_app.py's page matrix)."""

import json
import os

import numpy as np
import pytest
import torch
import torchvision
from torchvision import transforms

import datalib
from tests.conftest import CIFAR_TRAIN_LABELS, run_cli


def test_loads_colour_images_as_the_model_sees_them(cifar_root):
    data = datalib.load("cifar10", "train", cifar_root)
    images = data.images(range(len(data)))
    assert images.shape == (12, 3, 32, 32) and images.dtype == np.uint8
    assert data.classes[9] == "truck"
    assert sorted(data.labels.tolist()) == sorted(CIFAR_TRAIN_LABELS)
    assert datalib.class_counts(data.labels, 10).tolist() == [1] * 9 + [3]
    assert data.pixels([0])[0].shape == (32, 32, 3)  # for display: H x W x RGB


def test_batches_equal_the_dataloaders(cifar_root):
    dataset = torchvision.datasets.CIFAR10(cifar_root, train=True, transform=transforms.ToTensor())
    data = datalib.load("cifar10", "train", cifar_root)
    settings = datalib.LoaderSettings(batch_size=5, seed=3)
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=5, shuffle=True, generator=torch.Generator().manual_seed(3)
    )
    for k, (images, labels) in enumerate(loader):
        batch = datalib.batch(data, settings, k)
        assert torch.equal(batch.images, images) and torch.equal(batch.labels, labels)


def test_per_channel_statistics(cifar_root):
    data = datalib.load("cifar10", "train", cifar_root)
    red, green, blue = datalib.pixel_stats(data).channels
    assert red.mean == pytest.approx(sum(10 * i for i in range(12)) / 12 / 255)
    assert green.mean == pytest.approx(100 / 255) and green.std == pytest.approx(0)
    assert blue.max == pytest.approx(1.0)


def test_a_corrupt_file_fails_the_checksum_with_a_fix(cifar_root):
    (cifar_root / "cifar-10-batches-py" / "test_batch").write_bytes(b"<html>oops</html>")
    with pytest.raises(datalib.CorruptFile, match="test_batch .* fails its checksum"):
        datalib.load("cifar10", "test", cifar_root)


def test_cli_info_json(cifar_root):
    result = run_cli("info", "cifar10", "--root", cifar_root, "--json")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["splits"]["train"]["image_shape"] == [3, 32, 32]
    assert info["splits"]["test"]["class_counts"] == [0, 0, 0, 2, 0, 1, 0, 0, 0, 0]


def test_cli_refuses_a_corrupt_batch_in_one_line(cifar_root):
    (cifar_root / "cifar-10-batches-py" / "test_batch").write_bytes(b"<html>oops</html>")
    result = run_cli("info", "cifar10", "--root", cifar_root)
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "test_batch" in errors[0] and "fails its checksum" in errors[0]
    assert "python -m datalib download cifar10" in errors[0]  # the fix


def test_a_pickle_that_would_run_code_is_refused(cifar_root, monkeypatch):
    """CIFAR's batches are pickles: datalib's unpickler builds arrays and nothing else."""
    import hashlib
    import pickle

    from datalib.registry import CIFAR

    class Payload:
        def __reduce__(self):
            return (os.system, ("touch " + str(cifar_root / "pwned"),))

    data = pickle.dumps({"data": Payload(), "labels": [0]})
    (cifar_root / "cifar-10-batches-py" / "test_batch").write_bytes(data)
    sums = {**CIFAR.split_files, "test": {"test_batch": hashlib.md5(data).hexdigest()}}
    monkeypatch.setattr(CIFAR, "split_files", sums)
    with pytest.raises(datalib.CorruptFile, match=r"refused to build (posix|os)\.system"):
        datalib.load("cifar10", "test", cifar_root)
    assert not (cifar_root / "pwned").exists()

"""Statistics on the tiny dataset, whose answers are known by hand."""

import numpy as np
import pytest

import datalib

PIXELS = 28 * 28


@pytest.fixture
def train(tiny_root):
    return datalib.load("mnist", "train", tiny_root)


def test_class_counts(train):
    assert datalib.split_class_counts(train).tolist() == [3, 1, 1, 1, 1, 1, 1, 1, 1, 1]
    assert datalib.class_indices(train, 0).tolist() == [0, 10, 11]
    assert datalib.class_indices(train, None).tolist() == list(range(12))


def test_pixel_histogram_and_stats_of_the_split(train):
    stats = datalib.split_pixel_stats(train)
    expected = np.zeros(256, dtype=np.int64)
    expected[[20 * i for i in range(12)]] = PIXELS
    assert stats.counts.tolist() == expected.tolist()
    assert stats.total == 12 * PIXELS
    values = np.array([20 * i for i in range(12)]) / 255
    assert stats.min == 0.0 and stats.max == pytest.approx(220 / 255)
    assert stats.mean == pytest.approx(values.mean())
    assert stats.std == pytest.approx(values.std())


def test_pixel_stats_of_a_class_and_of_some_images(train):
    zeros = datalib.split_pixel_stats(train, 0)  # images 0, 10, 11: values 0, 200, 220
    assert zeros.mean == pytest.approx((0 + 200 + 220) / 3 / 255)
    some = datalib.subset_pixel_stats(train, [1, 2])
    assert some.counts[20] == PIXELS and some.counts[40] == PIXELS and some.total == 2 * PIXELS
    with pytest.raises(datalib.InvalidRequest, match="0 to 11"):
        datalib.subset_pixel_stats(train, [12])
    with pytest.raises(datalib.InvalidRequest, match="Class 10 does not exist"):
        datalib.split_pixel_stats(train, 10)


def test_whole_split_results_are_computed_once(train):
    assert datalib.split_pixel_stats(train) is datalib.split_pixel_stats(train)
    assert datalib.split_class_counts(train) is datalib.split_class_counts(train)


def test_scaling_verdict_reads_the_range(train):
    assert datalib.scaling_verdict(datalib.split_pixel_stats(train)).startswith("Scaled to [0, 1]")
    unscaled = datalib.PixelStats(counts=np.ones(256), min=0.0, max=255.0, mean=1.0, std=1.0)
    assert datalib.scaling_verdict(unscaled).startswith("Not scaled")


def test_balance(train, tiny_root):
    counts = datalib.split_class_counts(train)
    assert datalib.imbalance_ratio(counts) == 3.0
    assert datalib.balance_verdict(counts, train.classes).startswith("Mildly imbalanced")
    assert datalib.balance_verdict(np.array([40, 10]), ("a", "b")).startswith("Imbalanced: ")
    assert datalib.imbalance_ratio(np.array([5, 0])) == float("inf")
    assert "no images at all of b" in datalib.balance_verdict(np.array([5, 0]), ("a", "b"))
    assert datalib.balance_verdict(np.array([10, 9]), ("a", "b")).startswith("Balanced")
    table = datalib.class_table([train, datalib.load("mnist", "test", tiny_root)])
    test_rows = table[table["split"] == "test"]
    assert test_rows["count"].tolist() == [0, 2, 1, 1, 1, 0, 0, 0, 0, 0]
    assert test_rows["percent"].tolist()[1] == pytest.approx(40.0)


@pytest.mark.parametrize("size", [0, 1, 7, 8, 9, 1000, 3 * (1 << 20) + 5])
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_byte_histogram_counts_every_byte(monkeypatch, size, threads):
    """The compiled loop against numpy's bincount: words, zero words, tails, several pieces."""
    from datalib import histogram

    monkeypatch.setattr(histogram.torch, "get_num_threads", lambda: threads)
    rng = np.random.default_rng(size)
    pixels = rng.integers(0, 256, size, dtype=np.uint8)
    pixels[: size // 2] = 0  # long runs of zeros, as in MNIST's background
    pixels[size // 2 : size // 2 + 64] = 255
    assert np.array_equal(histogram.byte_histogram(pixels), np.bincount(pixels, minlength=256))


def test_byte_histogram_refuses_what_it_cannot_read():
    from datalib import histogram

    with pytest.raises(TypeError, match="flat, contiguous uint8"):
        histogram.byte_histogram(np.zeros((4, 4), np.uint8)[:, 1])
    with pytest.raises(TypeError, match="flat, contiguous uint8"):
        histogram.byte_histogram(np.zeros(4, np.int16))


def test_byte_histogram_compiles_without_a_writable_cache(monkeypatch):
    """A read-only install with no writable NUMBA_CACHE_DIR or home: compiled per process."""
    import importlib

    from numba.core import caching

    from datalib import histogram

    monkeypatch.setattr(caching.CacheImpl, "_locator_classes", [])  # no folder will do
    with pytest.raises(RuntimeError, match="cannot cache function"):
        histogram.numba.njit(cache=True)(lambda x: x)
    try:
        uncached = importlib.reload(histogram)
        assert uncached._count._cache.__class__.__name__ == "NullCache"
        pixels = np.arange(1000, dtype=np.uint8)
        assert np.array_equal(uncached.byte_histogram(pixels), np.bincount(pixels, minlength=256))
    finally:
        monkeypatch.undo()
        importlib.reload(histogram)

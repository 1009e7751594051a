"""Statistics on the tiny dataset, whose answers are known by hand."""

import numpy as np
import pytest

import datalib
from datalib.checks import check_scaled

PIXELS = 28 * 28


@pytest.fixture
def train(tiny_root):
    return datalib.load("mnist", "train", tiny_root)


def test_class_counts(train):
    assert datalib.class_counts(train.labels, 10).tolist() == [3, 1, 1, 1, 1, 1, 1, 1, 1, 1]
    assert datalib.class_indices(train, 0).tolist() == [0, 10, 11]
    assert datalib.class_indices(train, None).tolist() == list(range(12))


def test_pixel_histogram_and_stats_of_the_split(train):
    stats = datalib.pixel_stats(train)
    expected = np.zeros(256, dtype=np.int64)
    expected[[20 * i for i in range(12)]] = PIXELS
    assert stats.counts.tolist() == [expected.tolist()]  # one channel
    assert stats.total == 12 * PIXELS
    values = np.array([20 * i for i in range(12)]) / 255
    assert stats.min == 0.0 and stats.max == pytest.approx(220 / 255)
    assert stats.mean == pytest.approx(values.mean())
    assert stats.std == pytest.approx(values.std())
    assert [c.mean for c in stats.channels] == [pytest.approx(values.mean())]


def test_pixel_stats_of_a_class_and_of_some_images(train):
    zeros = datalib.pixel_stats(train, label=0)  # images 0, 10, 11: values 0, 200, 220
    assert zeros.mean == pytest.approx((0 + 200 + 220) / 3 / 255)
    some = datalib.pixel_stats(train, [1, 2])
    assert some.counts[0, 20] == PIXELS and some.counts[0, 40] == PIXELS
    assert some.total == 2 * PIXELS
    with pytest.raises(datalib.InvalidRequest, match="0 to 11"):
        datalib.pixel_stats(train, [12])
    with pytest.raises(datalib.InvalidRequest, match="Class 10 does not exist"):
        datalib.pixel_stats(train, label=10)
    with pytest.raises(datalib.InvalidRequest, match="selection is empty"):
        _ = datalib.pixel_stats(train, []).mean


def test_one_verdict_says_whether_values_are_scaled(train):
    stats = datalib.pixel_stats(train)
    scaled = check_scaled(stats.min, stats.max, round(stats.min * 255), round(stats.max * 255))
    assert scaled.verdict == "pass" and scaled.summary.startswith("Scaled: ")
    assert check_scaled(0.0, 255.0, 0, 255).verdict == "fail"


def test_balance(train, tiny_root):
    counts = datalib.class_counts(train.labels, 10)
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

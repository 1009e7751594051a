"""The readiness checklist (datalib.checks): hand-known answers on tiny IDX files, the sampler
against torch's own, the printed code run as shown, and the real MNIST's facts."""

from __future__ import annotations

import contextlib
import io
import json
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torchvision
from torch.utils.data import DataLoader, WeightedRandomSampler
from torchvision import transforms

import datalib
from datalib import checks, duplicates, sampling, snippets
from tests.conftest import REAL_TRAIN_COUNTS as TRAIN_COUNTS
from tests.conftest import SORTED_LABELS, run_cli, write_idx


def run_code(code: str) -> str:
    """Run printed code as a user would paste it; returns what it printed."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code, "<checklist code>", "exec"), {})  # noqa: S102 - running it is the test
    return printed.getvalue()


def cli(*args: str):
    """`python -m datalib check ARGS`, run in this process (tests/conftest.py: run_cli)."""
    return run_cli("check", *args)


# Tiny fixture (conftest): train image i is filled with 20 * i, labels 0-9, 0, 0; test is
# 5 identical half-black images labelled 1, 1, 2, 3, 4.


def test_numerical_passes_and_warns_on_a_last_batch_of_one(tiny_root):
    result = checks.checklist("mnist", settings=datalib.LoaderSettings(4), root=tiny_root)
    numerical = result["numerical"]
    assert numerical.verdict == "pass"
    assert numerical.facts["non_finite_values_after_ToTensor"] == 0
    assert numerical.facts["labels_outside_classes"] == 0
    assert numerical.facts["batch_shape"] == [4, 1, 28, 28]
    assert numerical.facts["batches"] == 3 and numerical.facts["last_batch_size"] == 4
    # 12 images in batches of 11: the last batch holds one image, which BatchNorm refuses.
    odd = checks.checklist("mnist", settings=datalib.LoaderSettings(11), root=tiny_root)
    assert odd["numerical"].verdict == "warn"
    assert odd["numerical"].facts["last_batch_size"] == 1
    assert "drop_last=True" in odd["numerical"].fix


def test_scaled_on_tiny_data_and_the_raw_range_fails():
    assert checks.check_scaled(0.0, 220 / 255, 0, 220).verdict == "pass"
    assert "[-1, 1]" in checks.check_scaled(-1.0, 1.0, 0, 255).summary
    raw = checks.check_scaled(0.0, 255.0, 0, 255)
    assert raw.verdict == "fail"
    assert raw.fix.startswith("transforms.ToTensor()")


def test_scaled_check_reads_the_split(tiny_root):
    scaled = checks.checklist("mnist", root=tiny_root)["scaled"]
    assert scaled.verdict == "pass"
    assert scaled.facts["max_after_transform"] == 220 / 255  # the brightest image is 20 * 11
    assert scaled.facts["raw_on_disk"] == "0 to 220"


def test_normalized_gives_the_train_mean_std_and_line(tiny_root):
    # Train pixels take the values 0, 20, ..., 220 equally often.
    mean = 110 / 255
    std = 20 * math.sqrt((12**2 - 1) / 12) / 255
    for split in ("train", "test"):  # always the train split's statistics
        normalized = checks.checklist("mnist", split, root=tiny_root)["normalized"]
        assert normalized.verdict == "warn"
        assert normalized.facts["mean"] == [pytest.approx(mean)]
        assert normalized.facts["std"] == [pytest.approx(std)]
        assert f"transforms.Normalize(({mean:.4f},), ({std:.4f},))" in normalized.fix


def test_channel_statistics_work_for_three_channels():
    counts = np.zeros((3, 256), dtype=np.int64)
    counts[0, 0] = 4  # channel 0: all 0
    counts[1, [0, 255]] = 2  # channel 1: half 0, half 1
    counts[2, 51] = 4  # channel 2: constant 0.2
    stats = datalib.PixelStats(counts).channels
    assert [s.mean for s in stats] == pytest.approx([0.0, 0.5, 0.2])
    assert [s.std for s in stats] == pytest.approx([0.0, 0.5, 0.0])
    assert snippets.normalize_line(stats) == (
        "transforms.Normalize((0.0000, 0.5000, 0.2000), (0.0000, 0.5000, 0.0000))"
    )
    constant = checks.check_normalized(stats)
    assert constant.verdict == "fail" and "Channel 0, 2" in constant.summary


def test_normalized_passes_for_mean_0_std_1():
    centred = SimpleNamespace(mean=0.02, std=0.97)  # a channel after Normalize
    assert checks.check_normalized([centred, centred]).verdict == "pass"


def test_label_mixing_by_hand():
    mixing = sampling.label_mixing(np.array([0, 0, 1, 1, 2, 2]), batch_size=2, num_classes=3)
    assert mixing.runs == 3 and mixing.longest_run == 2
    assert mixing.classes_per_batch == 1.0 and mixing.single_class_batches == 3
    # Random order: 1 + 5 - (2 + 2 + 2) / 6 = 5 runs; a class misses a batch of 2 with
    # probability C(4, 2) / C(6, 2) = 6 / 15, so a batch holds 3 * 9 / 15 = 1.8 classes.
    assert mixing.expected_runs == pytest.approx(5.0)
    assert mixing.expected_classes_per_batch == pytest.approx(1.8)
    assert mixing.score == pytest.approx(1 / 1.8)
    # A partial last batch: 5 labels in batches of 2 and 2 and 1.
    partial = sampling.label_mixing(np.array([0, 1, 0, 1, 0]), batch_size=2, num_classes=2)
    assert partial.batches == 3 and partial.runs == 5
    # batches of 2 from (3 zeros, 2 ones): P(no 0) = 1/10, P(no 1) = 3/10; a batch of 1 holds 1.
    assert partial.expected_classes_per_batch == pytest.approx((2 * (2 - 0.4) + 1) / 3)


def test_class_sorted_data_without_shuffle_fails(sorted_root):
    settings = datalib.LoaderSettings(batch_size=4, shuffle=False)
    shuffled = checks.checklist("mnist", settings=settings, root=sorted_root)["shuffled"]
    assert shuffled.verdict == "fail"
    facts = shuffled.facts
    assert facts["label_runs"] == 10 and facts["longest_run"] == 4
    assert facts["label_runs_in_random_order"] == 37.0  # 1 + 39 - 10 * 4 * 3 / 40
    assert facts["classes_per_batch"] == 1.0 and facts["single_class_batches"] == 10
    # 1 - C(36, 4) / C(40, 4) = 1 - 58905 / 91390 per class, 10 classes
    assert facts["classes_per_batch_in_random_order"] == round(10 * (1 - 58905 / 91390), 3)
    assert facts["labels_of_batch_0"] == [0, 0, 0, 0]
    assert "shuffle=True" in shuffled.fix
    assert shuffled.table["label"].tolist() == SORTED_LABELS.tolist()  # all 10 batches shown


def test_class_sorted_data_with_shuffle_is_not_sorted(sorted_root):
    settings = datalib.LoaderSettings(batch_size=4, shuffle=True, seed=0)
    shuffled = checks.checklist("mnist", settings=settings, root=sorted_root)["shuffled"]
    assert shuffled.verdict != "fail"
    data = datalib.load("mnist", "train", sorted_root)
    order = datalib.sample_order(40, True, 0).numpy()
    expected = sampling.label_mixing(data.labels[order], 4, 10)
    assert shuffled.facts["label_runs"] == expected.runs
    # Order of the test split does not change test metrics: never a fail there.
    test = checks.checklist(
        "mnist", "test", datalib.LoaderSettings(1, shuffle=False), root=sorted_root
    )
    assert test["shuffled"].verdict == "pass"


def test_tiny_order_without_shuffle_warns(tiny_root):
    result = checks.checklist("mnist", settings=datalib.LoaderSettings(4, False), root=tiny_root)
    assert result["shuffled"].verdict == "warn"
    assert "shuffle=False" in result["shuffled"].summary


def test_split_counts_leaks_with_examples(sorted_root):
    split = checks.checklist("mnist", root=sorted_root)["split"]
    assert split.verdict == "fail"
    assert split.facts["images_in_both_train_and_test"] == 2
    assert split.facts["test_images_also_in_train"] == 2
    assert split.facts["duplicates_within_split"] == {"train": 0, "test": 0}
    rows = split.table[["example", "split", "index", "label"]].values.tolist()
    assert rows == [[0, "train", 5, 1], [0, "test", 0, 0], [1, "train", 21, 5], [1, "test", 1, 1]]


def test_split_counts_duplicates_within_a_split(tiny_root):
    split = checks.checklist("mnist", root=tiny_root)["split"]
    assert split.verdict == "warn"  # the 5 test images are identical; train's 12 all differ
    assert split.facts["distinct_images"] == {"train": 12, "test": 1}
    assert split.facts["duplicates_within_split"] == {"train": 0, "test": 4}
    assert split.facts["duplicate_groups_within_split"] == {"train": 0, "test": 1}
    assert split.facts["duplicate_groups_with_conflicting_labels"] == {"train": 0, "test": 1}
    assert split.facts["images_in_both_train_and_test"] == 0
    assert split.table["index"].tolist() == [0, 1, 2, 3, 4]
    assert set(split.table["kind"]) == {"within test"}


@pytest.mark.parametrize(("root", "train", "test"), [("sorted", 40, 8), ("tiny", 12, 1)])
def test_split_fix_runs_and_drops_what_it_found(root, train, test, sorted_root, tiny_root):
    folder = {"sorted": sorted_root, "tiny": tiny_root}[root]
    fix = checks.checklist("mnist", root=folder)["split"].fix
    namespace: dict = {}
    exec(compile(fix, "<split fix>", "exec"), namespace)  # noqa: S102 - running it is the test
    assert (len(namespace["train_set"]), len(namespace["test_set"])) == (train, test)


def test_duplicate_groups_by_hand(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    values = np.array([1, 2, 1, 3, 2, 1], dtype=np.uint8)
    for prefix in ("train", "t10k"):
        write_idx(raw / f"{prefix}-images-idx3-ubyte", np.repeat(values, 4).reshape(6, 2, 2))
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", np.zeros(6, dtype=np.uint8))
    data = datalib.load("mnist", "train", tmp_path)
    groups = [g.tolist() for g in duplicates.duplicate_groups(data)]
    assert groups == [[0, 2, 5], [1, 4]]
    assert duplicates.pixel_keys(data).duplicates == 3


def test_balance_on_tiny_data(tiny_root):
    balanced = checks.checklist("mnist", root=tiny_root)["balanced"]
    assert balanced.verdict == "warn"  # 3 / 1: mildly imbalanced
    assert balanced.facts["imbalance_ratio"] == 3.0
    assert balanced.facts["class_weights"] == [0.4] + [1.2] * 9  # 12 / (10 * count)
    assert balanced.table["epoch_without_sampler"].tolist() == [3] + [1] * 9
    assert "CrossEntropyLoss(weight=class_weights.float())" in balanced.fix
    # classes 5-9 have no test image: no sampler can fix that
    assert checks.checklist("mnist", "test", root=tiny_root)["balanced"].verdict == "fail"


def test_imbalanced_data_fails_and_the_sampler_balances_it(imbalanced_root):
    settings = datalib.LoaderSettings(batch_size=32, seed=7)
    plain = checks.checklist("mnist", settings=settings, root=imbalanced_root)["balanced"]
    assert plain.verdict == "fail"
    assert plain.facts["imbalance_ratio"] == 10.0
    assert plain.facts["class_weights"] == pytest.approx([0.19] + [1.9] * 9)  # 3800 / (10 n)
    weighted = checks.checklist(
        "mnist", settings=settings, sampler="weighted", root=imbalanced_root
    )
    balanced = weighted["balanced"]
    assert balanced.verdict == "pass"
    shares = np.array(balanced.facts["epoch_class_share_percent"])
    assert np.abs(shares - 10).max() < 1.5  # every class 10% +- 1.5 points of the epoch
    assert sum(balanced.facts["epoch_class_counts"]) == 3800
    assert weighted.tally()["fail"] == 0


@pytest.mark.parametrize("seed", [0, 1, 7, 2**40])
def test_weighted_order_is_what_the_sampler_draws(imbalanced_root, seed):
    data = datalib.load("mnist", "train", imbalanced_root)
    sampler = WeightedRandomSampler(
        sampling.sample_weights(data),
        num_samples=len(data),
        replacement=True,
        generator=torch.Generator().manual_seed(seed),
    )
    assert sampling.weighted_order(data, seed).tolist() == list(sampler)


def test_weighted_order_is_what_a_dataloader_with_the_sampler_yields(imbalanced_root):
    data = datalib.load("mnist", "train", imbalanced_root)
    dataset = torchvision.datasets.MNIST(imbalanced_root, transform=transforms.ToTensor())
    targets = torch.as_tensor(dataset.targets)
    counts = torch.bincount(targets, minlength=len(dataset.classes))
    weights = len(dataset) / (len(dataset.classes) * counts.clamp(min=1).double())
    sampler = WeightedRandomSampler(
        weights[targets], len(dataset), generator=torch.Generator().manual_seed(3)
    )
    loader = DataLoader(dataset, batch_size=64, sampler=sampler, drop_last=True)
    labels = torch.cat([batch_labels for _, batch_labels in loader])
    settings = datalib.LoaderSettings(batch_size=64, seed=3, drop_last=True)
    order = sampling.epoch_order(data, settings, "weighted")
    assert labels.tolist() == data.labels[order].tolist()
    assert len(order) == 3800 // 64 * 64


@pytest.mark.parametrize(
    ("settings", "sampler"),
    [
        (datalib.LoaderSettings(batch_size=32, seed=7), "weighted"),
        (datalib.LoaderSettings(batch_size=100, seed=1, drop_last=True), "weighted"),
        (datalib.LoaderSettings(batch_size=64, shuffle=False, drop_last=True), None),
        (datalib.LoaderSettings(batch_size=10, seed=5), None),
    ],
)
def test_reproduce_code_runs_and_prints_the_shown_counts(imbalanced_root, settings, sampler):
    result = checks.checklist("mnist", settings=settings, sampler=sampler, root=imbalanced_root)
    assert repr(str(imbalanced_root)) in result.code
    printed = json.loads(run_code(result.code))
    assert printed == result["balanced"].facts["epoch_class_counts"]
    column = "epoch_with_sampler" if sampler else "epoch_without_sampler"
    assert printed == result["balanced"].table[column].tolist()


def test_balance_fix_runs_after_the_code_and_draws_the_shown_counts(imbalanced_root):
    settings = datalib.LoaderSettings(batch_size=32, seed=9)
    result = checks.checklist("mnist", settings=settings, root=imbalanced_root)
    namespace: dict = {}
    with contextlib.redirect_stdout(io.StringIO()):
        exec(compile(result.code, "<code>", "exec"), namespace)  # noqa: S102 - it is the test
    exec(compile(result["balanced"].fix, "<fix>", "exec"), namespace)  # noqa: S102
    labels = torch.cat([batch_labels for _, batch_labels in namespace["loader"]])
    shown = result["balanced"].table["epoch_with_sampler"].tolist()
    assert torch.bincount(labels, minlength=10).tolist() == shown
    assert namespace["criterion"].weight.tolist() == pytest.approx([0.19] + [1.9] * 9)


def test_bad_sampler_and_empty_epoch_say_how_to_fix(tiny_root):
    with pytest.raises(datalib.InvalidRequest, match="Choose one of: none, weighted"):
        checks.checklist("mnist", sampler="balanced", root=tiny_root)
    settings = datalib.LoaderSettings(batch_size=13, drop_last=True)
    with pytest.raises(datalib.InvalidRequest, match="yields no batch: lower the batch size"):
        checks.checklist("mnist", settings=settings, root=tiny_root)
    with pytest.raises(datalib.UnknownDataset):
        checks.checklist("mnist", "validation", root=tiny_root)


def test_labels_outside_the_classes_say_the_file_is_damaged(tiny_root):
    labels = np.array([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 12], dtype=np.uint8)
    write_idx(tiny_root / "MNIST" / "raw" / "train-labels-idx1-ubyte", labels)
    with pytest.raises(datalib.CorruptFile, match="labels run from 0 to 12, outside the classes"):
        checks.checklist("mnist", root=tiny_root)


def test_a_second_checklist_on_a_split_groups_and_draws_nothing_again(tiny_root, monkeypatch):
    """Duplicate groups and the sampler's draws are kept with the split, per seed."""
    settings = datalib.LoaderSettings(4, seed=3)
    first = checks.checklist("mnist", settings=settings, sampler="weighted", root=tiny_root)
    data = datalib.load("mnist", "train", tiny_root)
    hashes = data.column("content_hash")
    grouped, drawn = [], []
    real_unique, real_multinomial = np.unique, torch.multinomial

    def unique(values, *args, **kwargs):
        grouped.append(values is hashes)
        return real_unique(values, *args, **kwargs)

    def multinomial(*args, **kwargs):
        drawn.append(1)
        return real_multinomial(*args, **kwargs)

    monkeypatch.setattr(duplicates.np, "unique", unique)
    monkeypatch.setattr(sampling.torch, "multinomial", multinomial)
    again = checks.checklist("mnist", settings=settings, sampler="weighted", root=tiny_root)
    assert again.as_dict() == first.as_dict()
    assert True not in grouped and drawn == []
    sampling.weighted_order(data, 4)  # another seed: a new draw
    assert drawn == [1]


def test_cli_check_json_on_tiny_data(tiny_root):
    result = cli("mnist", "--root", str(tiny_root), "--json", "--batch-size", "4", "--no-shuffle")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["loader"] == {
        "batch_size": 4,
        "shuffle": False,
        "seed": 0,
        "drop_last": False,
        "sampler": None,
    }
    verdicts = {name: check["verdict"] for name, check in report["checks"].items()}
    assert verdicts == {
        "loadable": "pass",
        "numerical": "pass",
        "scaled": "pass",
        "normalized": "warn",
        "shuffled": "warn",
        "split": "warn",
        "balanced": "warn",
    }
    assert report["tally"] == {"pass": 3, "warn": 4, "fail": 0}
    assert "shuffle=False" in report["code"]


def test_cli_check_sampler_seed_and_plain_text(imbalanced_root):
    result = cli("mnist", "--root", str(imbalanced_root), "--sampler", "weighted", "--seed", "4")
    assert result.returncode == 0, result.stderr
    assert "through DataLoader(batch_size=10, sampler=WeightedRandomSampler(seed 4)" in (
        result.stdout
    )
    assert (
        "PASS  Balanced classes: The WeightedRandomSampler expects every class at" in result.stdout
    )
    assert "generator=torch.Generator().manual_seed(4)" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["nope"],
            "error: Unknown dataset 'nope'. Choose one of: cifar10, fashionmnist, kmnist, mnist, or folder:<path> for a folder of images under the data root.",
        ),
        (["mnist", "--sampler", "x"], "error: Unknown sampler 'x'. Choose one of: none, weighted."),
        (["mnist", "--batch-size", "0"], "error: Batch size 0 is out of range: choose 1 to 1024."),
    ],
)
def test_cli_check_bad_input_exits_1_with_one_line(tiny_root, args, message):
    result = cli(*args, "--root", str(tiny_root), "--json")
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == [message]


def test_real_mnist_check_json(real_root):
    result = cli("mnist", "--root", str(real_root), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    facts = {name: check["facts"] for name, check in report["checks"].items()}
    assert [round(m, 4) for m in facts["normalized"]["mean"]] == [0.1307]
    assert [round(s, 4) for s in facts["normalized"]["std"]] == [0.3081]
    assert facts["normalized"]["normalize"] == "transforms.Normalize((0.1307,), (0.3081,))"
    assert facts["split"]["images_in_both_train_and_test"] == 0
    assert facts["split"]["test_images_also_in_train"] == 0
    assert facts["split"]["duplicates_within_split"] == {"train": 0, "test": 0}
    assert facts["balanced"]["class_counts"] == TRAIN_COUNTS
    assert facts["numerical"]["non_finite_values_after_ToTensor"] == 0
    verdicts = {name: check["verdict"] for name, check in report["checks"].items()}
    assert verdicts == {
        "loadable": "pass",
        "numerical": "pass",
        "scaled": "pass",
        "normalized": "warn",
        "shuffled": "pass",
        "split": "pass",
        "balanced": "pass",
    }


def test_real_mnist_file_order_is_mixed_but_unshuffled_warns(real_root):
    settings = datalib.LoaderSettings(batch_size=10, shuffle=False)
    shuffled = checks.checklist("mnist", settings=settings, root=real_root)["shuffled"]
    # MNIST's own order is not class-sorted: about as many label runs as a random order.
    assert shuffled.facts["label_runs"] == 54150
    assert shuffled.facts["label_runs"] / shuffled.facts["label_runs_in_random_order"] > 0.99
    assert shuffled.verdict == "warn"
    assert "every epoch repeats the same batches" in shuffled.summary


def test_real_mnist_reproduce_code_with_sampler(real_root):
    settings = datalib.LoaderSettings(batch_size=500, seed=11)
    result = checks.checklist("mnist", settings=settings, sampler="weighted", root=real_root)
    shown = result["balanced"].facts["epoch_class_counts"]
    assert json.loads(run_code(result.code)) == shown
    assert sum(shown) == 60_000 and max(shown) / min(shown) < 1.1

"""Image folders under the data root as datasets: the sidebar, every page and the CLI."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

import datalib
from tests.conftest import open_page
from tests.test_folders import TRAIN_SKIPPED
from tests.test_folders import root as folder_root  # noqa: F401 - a fixture

REPO = Path(__file__).resolve().parents[1]
PAGES = ["overview", "batches", "images", "histograms", "balance", "checklist"]


def test_a_folder_loads_through_datalib(folder_root):  # noqa: F811
    data = datalib.load("folder:pets", "train", folder_root)
    assert data.classes == ("cat", "dog")
    assert tuple(data.images.shape) == (7, 3, 8, 8)
    assert datalib.splits_of("folder:pets", folder_root) == ("train", "test")
    assert datalib.splits_of("folder:digits", folder_root) == ("all",)
    assert [tuple(s.values()) for s in data.details["skipped"]] == list(TRAIN_SKIPPED)
    with pytest.raises(datalib.InvalidRequest, match="climbs out"):
        datalib.load("folder:../outside", "all", folder_root)


def test_the_sidebar_lists_folders_and_their_splits(folder_root, monkeypatch):  # noqa: F811
    app = open_page(folder_root, monkeypatch, "overview", dataset="folder:pets")
    assert app.selectbox(key="dataset").options == [
        "MNIST",
        "FashionMNIST",
        "KMNIST",
        "CIFAR-10",
        "folder:digits",
        "folder:pets",
    ]
    assert app.segmented_control(key="split").options == ["train", "test"]
    assert app.sidebar.caption[0].value.startswith("folder:pets train: 7 images")
    shown = "\n".join(str(e.value) for e in app.info)
    assert "resized from other sizes to 8x8 (bilinear)" in shown
    skipped = app.dataframe[-1].value
    assert ("pets/train/dog/d3.png", "cannot be decoded: image file is truncated") in set(
        skipped.itertuples(index=False, name=None)
    )


@pytest.mark.parametrize("page", PAGES)
def test_every_page_works_on_a_folder(folder_root, monkeypatch, page):  # noqa: F811
    app = open_page(folder_root, monkeypatch, page, dataset="folder:pets")
    assert not app.error, [e.value for e in app.error]


def test_a_one_split_folder(folder_root, monkeypatch):  # noqa: F811
    app = open_page(folder_root, monkeypatch, "batches", dataset="folder:digits")
    assert app.sidebar.caption[0].value.startswith("folder:digits all: 6 images")
    checklist = open_page(folder_root, monkeypatch, "checklist", dataset="folder:digits")
    assert "compares a train and a test split" in checklist.info[0].value


def test_cli_info_lists_what_was_skipped(folder_root):  # noqa: F811
    result = subprocess.run(
        [sys.executable, "-m", "datalib", "info", "folder:pets", "--root", str(folder_root)]
        + ["--json"],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=True,
    )
    info = json.loads(result.stdout)
    train = info["splits"]["train"]
    assert train["class_counts"] == [4, 3]
    assert [(s["path"], s["reason"]) for s in train["skipped"]] == list(TRAIN_SKIPPED)
    assert info["splits"]["test"]["size"] == 2

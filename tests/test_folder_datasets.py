"""Image folders under the data root as datasets: the sidebar, the checklist and the CLI
(every page on a folder: test_app.py's page matrix)."""

import contextlib
import io
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import datalib
from datalib.checks import checklist
from tests.conftest import PETS_TRAIN_SKIPPED, open_page, plain, run_cli


def test_a_folder_loads_through_datalib(folder_root):
    data = datalib.load("folder:pets", "train", folder_root)
    assert data.classes == ("cat", "dog")
    assert data.images(range(len(data))).shape == (7, 3, 8, 8)
    assert datalib.splits_of("folder:pets", folder_root) == ("train", "test")
    assert datalib.splits_of("folder:digits", folder_root) == ("all",)
    assert [tuple(s.values()) for s in data.details["skipped"]] == list(PETS_TRAIN_SKIPPED)
    with pytest.raises(datalib.InvalidRequest, match="climbs out"):
        datalib.load("folder:../outside", "all", folder_root)


def test_the_sidebar_lists_folders_and_their_splits(folder_root, monkeypatch):
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
    assert plain(app.sidebar.caption[0].value).startswith("folder:pets train: 7 images")
    shown = "\n".join(str(e.value) for e in app.info)
    assert "resized from other sizes to 8x8 (bilinear)" in shown
    skipped = app.dataframe[-1].value
    assert ("pets/train/dog/d3.png", "cannot be decoded: image file is truncated") in set(
        skipped.itertuples(index=False, name=None)
    )


def test_a_one_split_folder(folder_root, monkeypatch):
    app = open_page(folder_root, monkeypatch, "batches", dataset="folder:digits")
    assert plain(app.sidebar.caption[0].value).startswith("folder:digits all: 6 images")
    checklist = open_page(folder_root, monkeypatch, "checklist", dataset="folder:digits")
    assert "compares a train and a test split" in plain(checklist.info[0].value)


def test_cli_info_lists_what_was_skipped(folder_root):
    result = run_cli("info", "folder:pets", "--root", folder_root, "--json")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    train = info["splits"]["train"]
    assert train["class_counts"] == [4, 3]
    assert [(s["path"], s["reason"]) for s in train["skipped"]] == list(PETS_TRAIN_SKIPPED)
    assert info["splits"]["test"]["size"] == 2


@pytest.fixture
def imbalanced_folder(tmp_path) -> Path:
    """A clean folder of PNGs, 10:1 imbalanced: train has 200 'common' and 20 'rare' images,
    test 20 and 5; each image differs, so there are no duplicates."""
    rng = np.random.default_rng(0)
    for split, counts in (
        ("train", {"common": 200, "rare": 20}),
        ("test", {"common": 20, "rare": 5}),
    ):
        for name, n in counts.items():
            folder = tmp_path / "imbalanced" / split / name
            folder.mkdir(parents=True)
            for i in range(n):
                pixels = rng.integers(0, 256, (12, 12), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"{i}.png")
    return tmp_path


def test_an_imbalanced_folder_gets_weights_that_balance_its_batches(imbalanced_folder):
    settings = datalib.LoaderSettings(batch_size=16, seed=5)
    plain = checklist("folder:imbalanced", "train", settings, None, imbalanced_folder)
    assert plain["balanced"].verdict == "fail"
    weighted = checklist("folder:imbalanced", "train", settings, "weighted", imbalanced_folder)
    shares = weighted["balanced"].table["percent_with_sampler"].tolist()
    assert all(abs(share - 50) <= 5 for share in shares), shares
    # The code box builds the same loader with ImageFolder and counts one epoch's labels.
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(weighted.code, {})  # noqa: S102 - running the shown code is the point
    counts = json.loads(printed.getvalue())
    assert counts == weighted["balanced"].table["epoch_with_sampler"].tolist()


def test_the_checklist_fails_on_files_imagefolder_cannot_read(folder_root, monkeypatch):
    """pets/train has an empty class folder, undecodable files, a hidden folder and a hidden
    image: torchvision's ImageFolder (or its DataLoader) fails on them, so the check does, and
    its fix, run as shown, leaves a folder ImageFolder reads end to end."""
    from torch.utils.data import DataLoader
    from torchvision import datasets, transforms

    train = folder_root / "pets" / "train"
    with pytest.raises(FileNotFoundError, match="fox"):  # what a user's script would hit
        datasets.ImageFolder(str(train))

    app = open_page(folder_root, monkeypatch, "checklist", dataset="folder:pets")
    summary = "\n".join(m.value for m in app.markdown)
    assert "**Every file loads**" in summary
    check = checklist("folder:pets", "train", root=folder_root)["loadable"]
    assert check.verdict == "fail"
    listed = set(check.table["path"])
    failing = set(check.table["path"][check.table["outcome"] == "fail"])
    assert failing == {
        "pets/train/.ipynb_checkpoints",
        "pets/train/cat/.c3.png",
        "pets/train/cat/again",
        "pets/train/dog/d3.png",
        "pets/train/dog/d4.png",
        "pets/train/fox",
    }
    # Links out of the root: ImageFolder reads them, Batchscope does not; listed, not failing.
    assert listed - failing == {"pets/train/cat/escape.png", "pets/train/wolf"}
    assert "pets/train/cat/notes.txt" not in listed  # ImageFolder ignores it too
    shown = [f.value for f in app.dataframe]
    assert any("pets/train/dog/d4.png" in set(frame["path"]) for frame in shown if "path" in frame)
    fixes = [c.value for c in app.code if c.language == "bash"]
    assert fixes and "mv " in fixes[0]

    subprocess.run(["bash", "-c", check.fix], check=True)
    dataset = datasets.ImageFolder(
        str(train), transform=transforms.Compose([transforms.Resize((8, 8)), transforms.ToTensor()])
    )
    assert dataset.classes == ["cat", "dog"]
    assert sum(len(labels) for _, labels in DataLoader(dataset, batch_size=4)) == 7

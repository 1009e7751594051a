"""Bad data on disk and bad inputs: a message that says what to do, in the UI and from the
CLI, no traceback, other splits still served, and nothing in the data root changed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import datalib
from datalib.formats import download
from tests.conftest import REPO, open_page, plain, run_cli, snapshot, write_idx, write_tiny_mnist


def wrong_magic(raw: Path) -> None:
    data = bytearray((raw / "train-images-idx3-ubyte").read_bytes())
    data[3] = 0x02
    (raw / "train-images-idx3-ubyte").write_bytes(bytes(data))


def truncated(raw: Path) -> None:
    data = (raw / "train-images-idx3-ubyte").read_bytes()
    (raw / "train-images-idx3-ubyte").write_bytes(data[: len(data) // 2])


def header_disagrees(raw: Path) -> None:
    data = bytearray((raw / "train-images-idx3-ubyte").read_bytes())
    data[4:8] = (13).to_bytes(4, "big")  # says 13 images, holds 12
    (raw / "train-images-idx3-ubyte").write_bytes(bytes(data))


def lengths_differ(raw: Path) -> None:
    write_idx(raw / "train-labels-idx1-ubyte", np.zeros(11, dtype=np.uint8))


def empty(raw: Path) -> None:
    (raw / "train-images-idx3-ubyte").write_bytes(b"")


def html_page(raw: Path) -> None:
    (raw / "train-labels-idx1-ubyte").write_text(
        "<!DOCTYPE html>\n<html><head><title>404 Not Found</title></head></html>\n"
    )


CORRUPTIONS = {
    wrong_magic: "has magic number 0x00000802, expected 0x00000803",
    truncated: "train-images-idx3-ubyte is truncated",
    header_disagrees: "declares shape [13, 28, 28]",
    lengths_differ: "holds 12 images but train-labels-idx1-ubyte holds 11 labels",
    empty: "train-images-idx3-ubyte is empty",
    html_page: "train-labels-idx1-ubyte is an HTML page, not data",
}


@pytest.fixture(params=list(CORRUPTIONS), ids=lambda f: f.__name__)
def corrupt_root(request, tmp_path) -> tuple[Path, str]:
    raw = write_tiny_mnist(tmp_path / "root")
    request.param(raw)
    return tmp_path / "root", CORRUPTIONS[request.param]


def test_corrupt_file_in_the_ui(corrupt_root, monkeypatch):
    root, message = corrupt_root
    before = snapshot(root)
    app = open_page(root, monkeypatch)
    assert message in plain(app.error[0].value)
    assert "download it again" in plain(app.error[0].value) or "download them again" in plain(
        app.error[0].value
    )
    other_split = open_page(root, monkeypatch, "batches", split="test")
    assert not other_split.error and "Batch 0 of 1" in other_split.subheader[0].value
    assert snapshot(root) == before


def test_corrupt_file_from_the_cli(corrupt_root):
    root, message = corrupt_root
    before = snapshot(root)
    result = run_cli("info", "mnist", "--root", root)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert message in lines[-1] and lines[-1].startswith("error: ")  # after the scan's progress
    assert sum(line.startswith("error: ") for line in lines) == 1
    assert snapshot(root) == before


def test_named_root_that_does_not_exist_is_not_created(tmp_path, monkeypatch):
    app = open_page(tmp_path / "typo", monkeypatch)
    assert "The data root" in plain(app.error[0].value) and "does not exist" in plain(
        app.error[0].value
    )
    assert not (tmp_path / "typo").exists()


def test_root_that_is_a_file(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("x")
    app = open_page(tmp_path / "file", monkeypatch)
    assert "is a file, not a folder" in plain(app.error[0].value)


def test_root_that_is_not_readable(tiny_root, monkeypatch):
    # Tests run as root, for whom every folder is readable: pretend this one is not.
    real_access = download.os.access
    monkeypatch.setattr(
        download.os,
        "access",
        lambda path, mode: False if Path(path) == tiny_root else real_access(path, mode),
    )
    with pytest.raises(datalib.DataRootError, match="is not readable by this user"):
        datalib.load("mnist", "test", tiny_root)


@pytest.mark.parametrize(
    ("page", "params", "shown"),
    [
        ("batches", {"batch": "99999"}, "Batch 0 of 2"),
        ("batches", {"batch": "abc"}, "Batch 0 of 2"),
        ("batches", {"batch_size": "0"}, "Batch 0 of 2"),
        ("batches", {"batch_size": "100000"}, "Batch 0 of 2"),
        ("batches", {"seed": "-4"}, "Batch 0 of 2"),
        ("batches", {"dataset": "cifar99"}, "Batch 0 of 2"),
        ("batches", {"split": "validation"}, "Batch 0 of 2"),
        ("images", {"cls": "eleven"}, "Showing 12 of 12 images in MNIST train."),
        ("images", {"page": "-1", "image": "1e9"}, "Showing 12 of 12 images in MNIST train."),
    ],
)
def test_bad_link_values_fall_back_to_defaults(tiny_root, monkeypatch, page, params, shown):
    app = open_page(tiny_root, monkeypatch, page, **params)
    assert not app.error
    rendered = [e.value for kind in ("subheader", "caption") for e in app.get(kind)]
    assert any(shown in text for text in rendered), rendered
    for key in params:
        assert key not in app.query_params  # refused values leave the URL


def test_no_html_from_data_reaches_the_page():
    for path in [REPO / "ui.py", REPO / "app.py", *(REPO / "pages").glob("*.py")]:
        assert "unsafe_allow_html" not in path.read_text(), path

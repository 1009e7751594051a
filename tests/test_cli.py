"""The command line: `python -m datalib info|download`, as scripts and the Docker build use it."""

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import TEST_LABELS

REPO = Path(__file__).resolve().parents[1]


def run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "datalib", *args],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
    )


def test_info_json_on_tiny_data(tiny_root):
    result = run("info", "mnist", "--root", str(tiny_root), "--json")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["name"] == "mnist"
    assert len(info["classes"]) == 10
    train, test = info["splits"]["train"], info["splits"]["test"]
    assert train["size"] == 12 and test["size"] == len(TEST_LABELS)
    assert train["image_shape"] == [1, 28, 28]
    assert train["class_counts"] == [3, 1, 1, 1, 1, 1, 1, 1, 1, 1]
    assert test["class_counts"] == [0, 2, 1, 1, 1, 0, 0, 0, 0, 0]
    assert test["pixel"] == {"min": 0.0, "max": 1.0, "mean": 0.5, "std": 0.5}


def test_info_plain_text_reads_well(tiny_root):
    result = run("info", "mnist", "--root", str(tiny_root))
    assert result.returncode == 0
    assert "train: 12 images of shape 1x28x28" in result.stdout


def test_bad_name_exits_non_zero_with_one_line(tiny_root):
    result = run("info", "nope", "--root", str(tiny_root), "--json")
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        "error: Unknown dataset 'nope'. Choose one of: cifar10, fashionmnist, kmnist, mnist, or folder:<path> for a folder of images under the data root."
    ]


def test_missing_dataset_exits_non_zero_without_traceback(tmp_path):
    (tmp_path / "empty").mkdir()
    result = run("info", "mnist", "--root", str(tmp_path / "empty"))
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr
    assert "python -m datalib download mnist" in result.stderr


def test_failed_download_exits_non_zero_without_traceback(tmp_path):
    # No route to the mirrors here (and a proxy that does not exist makes sure of it).
    env = {
        "PATH": "/usr/bin:/bin",
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "HTTP_PROXY": "http://127.0.0.1:9",
    }
    (tmp_path / "new").mkdir()
    result = run("download", "mnist", "--root", str(tmp_path / "new"), env=env)
    assert result.returncode == 1
    assert result.stderr.startswith("error: Downloading MNIST failed")
    assert len(result.stderr.strip().splitlines()) == 1
    assert not list((tmp_path / "new").iterdir())  # no empty MNIST/raw, no lock

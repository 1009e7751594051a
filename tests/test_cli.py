"""The command line: `python -m datalib info|download`, as scripts and the Docker build use it.

The commands run in this process (`run_cli`, datalib.__main__.main); two run as real commands,
for what only a process shows: its exit status, and no traceback on stderr."""

import json

from tests.conftest import TEST_LABELS, run_cli, run_cli_process

NOPE = (
    "error: Unknown dataset 'nope'. Choose one of: cifar10, fashionmnist, kmnist, mnist, "
    "or folder:<path> for a folder of images under the data root."
)


def test_info_json_on_tiny_data(tiny_root):
    result = run_cli("info", "mnist", "--root", tiny_root, "--json")
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
    result = run_cli("info", "mnist", "--root", tiny_root)
    assert result.returncode == 0, result.stderr
    assert "train: 12 images of shape 1x28x28" in result.stdout


def test_bad_name_exits_non_zero_with_one_line(tiny_root):
    result = run_cli("info", "nope", "--root", tiny_root, "--json")
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == [NOPE]


def test_a_command_without_its_dataset_exits_2_with_the_usage():
    result = run_cli("info")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("usage: python -m datalib info")
    assert "the following arguments are required: name" in result.stderr


def test_failed_download_exits_non_zero_and_leaves_nothing(tmp_path, monkeypatch):
    # No route to a mirror: the only one is a closed port. (Not a proxy setting: urllib keeps
    # the proxies it first saw for the rest of the process.)
    monkeypatch.setattr("torchvision.datasets.MNIST.mirrors", ["http://127.0.0.1:9/"])
    (tmp_path / "new").mkdir()
    result = run_cli("download", "mnist", "--root", tmp_path / "new")
    assert result.returncode == 1
    assert result.stderr.startswith("error: Downloading MNIST failed")
    assert len(result.stderr.strip().splitlines()) == 1
    assert not list((tmp_path / "new").iterdir())  # no empty MNIST/raw, no lock


# As a real command ------------------------------------------------------------------------


def test_the_command_prints_json_and_exits_0(tiny_root):
    result = run_cli_process("info", "mnist", "--root", tiny_root, "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["splits"]["train"]["size"] == 12


def test_a_missing_dataset_fails_with_one_line_and_no_traceback(tmp_path):
    (tmp_path / "empty").mkdir()
    result = run_cli_process("info", "mnist", "--root", tmp_path / "empty")
    assert result.returncode == 1
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr
    assert "python -m datalib download mnist" in result.stderr

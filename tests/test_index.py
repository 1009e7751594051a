"""The per-sample index: one scan per dataset, read by every page; resumable, incremental,
done once however many ask, and never read half-written."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

import datalib
import datalib.formats.folder as folder_format
from datalib import scan as scan_module
from datalib.index import current_index, dataset_dir
from tests.conftest import (
    REAL_TEST_COUNTS,
    REAL_TRAIN_COUNTS,
    REPO,
    run_cli,
    snapshot,
    write_folder,
)


@pytest.fixture
def counted_reads(monkeypatch) -> list[str]:
    """Every image file the scan decodes, in this process."""
    reads: list[str] = []
    real = folder_format.read_image

    def counting(root, source):
        reads.append(source)
        return real(root, source)

    monkeypatch.setattr(folder_format, "read_image", counting)
    return reads


def test_mnist_index_reproduces_the_known_facts(real_root):
    train = datalib.load("mnist", "train", real_root)
    test = datalib.load("mnist", "test", real_root, scan_first=False)
    assert datalib.class_counts(train.labels, 10).tolist() == REAL_TRAIN_COUNTS
    assert datalib.class_counts(test.labels, 10).tolist() == REAL_TEST_COUNTS
    stats = datalib.pixel_stats(train)
    assert (round(stats.mean, 4), round(stats.std, 4)) == (0.1307, 0.3081)
    assert stats.total == 60000 * 28 * 28
    folder = current_index(train.spec, Path(real_root))
    shards = dataset_dir(train.spec, Path(real_root)) / "shards"
    used = [shards / name for name in json.loads((folder / "meta.json").read_text())["shards"]]
    stored = sum(p.stat().st_size for p in [*folder.iterdir(), *used])
    assert stored / 70000 <= 2048, f"{stored / 70000:.0f} bytes per sample"


def test_thumbnails_and_decoded_images_are_the_images(real_root):
    from datalib.formats.idx import read_idx

    data = datalib.load("mnist", "train", real_root, scan_first=False)
    truth = read_idx(Path(real_root) / "MNIST/raw/train-images-idx3-ubyte", 3)
    picked = [0, 59999, 12345]
    np.testing.assert_array_equal(data.images(picked)[:, 0], truth[picked])
    for (blob, mime), index in zip(data.thumbnails(picked), picked, strict=True):
        assert mime == "image/png"
        import io

        np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(blob))), truth[index])


def test_a_second_open_decodes_nothing(tmp_path, counted_reads):
    root = write_folder(tmp_path, classes=3, per_class=20)
    datalib.load("folder:shapes", "all", root)
    assert len(counted_reads) == 60
    counted_reads.clear()
    data = datalib.load("folder:shapes", "all", root)
    assert counted_reads == []  # listed, found unchanged, read from the index
    data.thumbnails(range(10))
    assert counted_reads == []  # grids show thumbnails from the index
    data.pixels([5])
    assert counted_reads == ["shapes/class0/0005.png"]  # one image shown, one decoded


@pytest.mark.parametrize(
    ("change", "added"),
    [
        pytest.param(
            lambda f: Image.fromarray(np.zeros((16, 16), np.uint8)).save(f), 0, id="pixels"
        ),
        pytest.param(lambda f: os.utime(f, ns=(1, 1)), 0, id="mtime only"),
        pytest.param(lambda f: f.unlink(), -1, id="one file less"),
        pytest.param(
            lambda f: (f.parent / "0100.png").write_bytes(f.read_bytes()), 1, id="one more"
        ),
    ],
)
def test_a_change_rescans_only_its_shard(tmp_path, counted_reads, change, added):
    root = write_folder(tmp_path, classes=3, per_class=40)
    before = datalib.load("folder:shapes", "all", root)
    old_index = current_index(before.spec, root)
    counted_reads.clear()
    change(root / "shapes" / "class1" / "0007.png")
    after = datalib.load("folder:shapes", "all", root)
    assert {Path(s).parent.name for s in counted_reads} == {"class1"}  # one shard of three
    assert current_index(after.spec, root) != old_index
    assert len(after) == 120 + added


def test_new_pixels_are_seen_after_a_change(tmp_path):
    root = write_folder(tmp_path, classes=2, per_class=5)
    datalib.load("folder:shapes", "all", root)
    Image.fromarray(np.full((16, 16), 200, np.uint8)).save(root / "shapes/class0/0002.png")
    data = datalib.load("folder:shapes", "all", root)
    assert data.images([2])[0, 0, 0, 0] == 200
    assert datalib.pixel_stats(data, [2]).mean == pytest.approx(200 / 255)


def test_a_new_empty_class_folder_is_listed_as_skipped(tmp_path):
    root = write_folder(tmp_path, classes=2, per_class=5)
    datalib.load("folder:shapes", "all", root)
    (root / "shapes" / "class9").mkdir()
    data = datalib.load("folder:shapes", "all", root)
    assert {"path": "shapes/class9", "reason": "empty class folder"} in data.details["skipped"]


def test_nothing_is_written_into_the_data_root(tmp_path, monkeypatch):
    root = write_folder(tmp_path / "data", classes=2, per_class=5)
    monkeypatch.setenv("BATCHSCOPE_CACHE", str(tmp_path / "cache"))
    before = snapshot(root)
    datalib.load("folder:shapes", "all", root)
    assert snapshot(root) == before
    assert list((tmp_path / "cache" / "datasets").iterdir())


def test_without_a_cache_setting_the_index_lives_beside_the_data(tmp_path, monkeypatch):
    root = write_folder(tmp_path / "data", classes=2, per_class=5)
    monkeypatch.delenv("BATCHSCOPE_CACHE")
    datalib.load("folder:shapes", "all", root)
    assert (root / ".batchscope-cache" / "datasets").is_dir()
    assert datalib.cache_notice(root) is None
    assert datalib.find_folders(root) == ["shapes"]  # the cache is no dataset


def test_a_read_only_root_works_with_a_notice_and_is_not_written(tmp_path, monkeypatch):
    root = write_folder(tmp_path / "data", classes=2, per_class=5)
    monkeypatch.delenv("BATCHSCOPE_CACHE")
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    for folder in [root, *(p for p in root.rglob("*") if p.is_dir())]:
        folder.chmod(0o555)  # root (as the tests may run) is held to the mode bits too
    try:
        before = snapshot(root)
        data = datalib.load("folder:shapes", "all", root)
        assert len(data) == 10
        assert snapshot(root) == before
        notice = datalib.cache_notice(root)
        assert "is read-only" in notice and "BATCHSCOPE_CACHE" in notice
        assert str(tmp_path / "tmp") in notice
    finally:
        for folder in [root, *(p for p in root.rglob("*") if p.is_dir())]:
            folder.chmod(0o755)


def test_a_full_disk_gives_one_error_and_no_index(tmp_path, monkeypatch):
    root = write_folder(tmp_path, classes=2, per_class=5)

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(scan_module.pq, "write_table", disk_full)
    with pytest.raises(datalib.ScanFailed, match="is full.*BATCHSCOPE_CACHE"):
        datalib.load("folder:shapes", "all", root)
    spec = datalib.dataset_spec("folder:shapes")
    folder = dataset_dir(spec, root)
    assert current_index(spec, root) is None
    leftovers = [p.name for p in folder.rglob("*") if p.name.startswith(".tmp-")]
    assert leftovers == []
    assert json.loads((folder / "status.json").read_text())["state"] == "failed"


def scan_command(root: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "datalib", "scan", "folder:shapes", "--root", str(root), *extra]


def test_a_killed_scan_leaves_no_index_and_the_next_resumes(tmp_path):
    root = write_folder(tmp_path, classes=12, per_class=300, side=48)
    spec = datalib.dataset_spec("folder:shapes")
    shards = dataset_dir(spec, root) / "shards"
    process = subprocess.Popen(
        scan_command(root, "--workers", "1"), cwd=REPO, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(list(shards.glob("*.parquet"))) < 2:
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait()
    finished = {p.name: p.stat().st_mtime_ns for p in shards.glob("*.parquet")}
    assert 2 <= len(finished) < 12, "the scan was not killed mid-way"
    assert current_index(spec, root) is None  # nothing reads as complete
    assert not list(dataset_dir(spec, root).glob("index-*"))

    resumed = run_cli("scan", "folder:shapes", "--root", root)  # in this process
    assert resumed.returncode == 0, resumed.stderr
    assert "from earlier scans" in resumed.stderr
    for name, mtime in finished.items():  # finished shards were kept, not read again
        assert (shards / name).stat().st_mtime_ns == mtime
    data = datalib.load("folder:shapes", "all", root, scan_first=False)
    assert len(data) == 3600
    assert not [p for p in dataset_dir(spec, root).rglob(".tmp-*")]
    # row for row what an uninterrupted scan gives
    whole = index_rows(data)
    os.environ["BATCHSCOPE_CACHE"], kept = str(tmp_path / "fresh"), os.environ["BATCHSCOPE_CACHE"]
    try:
        assert index_rows(datalib.load("folder:shapes", "all", root)) == whole
    finally:
        os.environ["BATCHSCOPE_CACHE"] = kept


def index_rows(data: datalib.SplitData) -> list[dict]:
    folder = current_index(data.spec, data.root)
    table = pq.read_table(folder / f"samples-{data.split}.parquet")
    return table.drop_columns(["shard", "shard_row"]).to_pylist()


def test_two_scans_at_once_do_the_work_once(tmp_path):
    root = write_folder(tmp_path, classes=4, per_class=300, side=32)
    first = subprocess.Popen(scan_command(root), cwd=REPO, stderr=subprocess.PIPE, text=True)
    second = subprocess.Popen(scan_command(root), cwd=REPO, stderr=subprocess.PIPE, text=True)
    outputs = [process.communicate(timeout=120)[1] for process in (first, second)]
    assert first.returncode == second.returncode == 0, outputs
    scanned = [out for out in outputs if "scanning:" in out]
    waited = [out for out in outputs if "up to date" in out]
    assert len(scanned) == 1 and len(waited) == 1, outputs

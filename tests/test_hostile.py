"""What a hostile link, a forged cache, a hung or swapped file and a busy server do: each
case found against a running server, each answered with a message, never a crash."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

import datalib
import ui
from datalib import index as index_module
from datalib.formats import open_regular
from datalib.index import current_index, dataset_dir
from tests.conftest import open_page, plain, plotly_array, scan_first, write_folder


@pytest.mark.parametrize(
    "params",
    [
        {"batch_size": "inf"},
        {"batch_size": "-inf"},
        {"seed": "inf"},
        {"batch_size": "nan"},
        {"batch": "9" * 400},
        {"image": "1e999", "page": "inf"},
    ],
)
def test_numbers_no_widget_can_read_fall_back_with_a_notice(tiny_root, monkeypatch, params):
    page = "images" if "image" in params else "batches"
    app = open_page(tiny_root, monkeypatch, page, **params)
    assert not app.exception and not app.error
    shown = [s.value for s in app.subheader] + [plain(c.value) for c in app.caption]
    assert "Batch 0 of 2" in shown or any("Page 1 of 1" in text for text in shown)
    notice = plain(app.toast[0].value)
    assert "cannot be used here" in notice and len(notice) < 400  # a long value is cut
    for key in params:
        assert key not in app.query_params


def test_markdown_in_a_link_is_shown_as_text(tiny_root, monkeypatch):
    phishing = "[Your session expired: sign in here](https://evil.example/login)"
    app = open_page(tiny_root, monkeypatch, "batches", batch_size=phishing)
    notice = app.toast[0].value
    assert "](https" not in notice and "\\[Your session expired" in notice
    assert phishing in plain(notice)


def test_markdown_in_folder_and_class_names_is_escaped(tmp_path, monkeypatch):
    name = "**bold** $x$"
    hostile = "[link](https:--evil.example) ![img](x.png) :red[red] <b>b<-b>"
    grey = np.full((8, 8), 90, np.uint8)
    for cls in ("plain", hostile):
        (tmp_path / name / cls).mkdir(parents=True)
        Image.fromarray(grey).save(tmp_path / name / cls / "a.png")
    views = [(page, {}) for page in ("overview", "images", "balance", "checklist", "histograms")]
    views += [("quality", {"section": section}) for section in ("Near duplicates", "Outliers")]
    views += [("quality", {"section": section}) for section in ("Class means", "Map")]
    for page, params in views:
        app = open_page(tmp_path, monkeypatch, page, dataset=f"folder:{name}", **params)
        assert not app.exception and not app.error, page
        rendered = [
            e.value
            for kind in ("title", "markdown", "caption", "subheader", "warning", "info")
            for e in app.get(kind)
        ]
        rendered += [m.label for m in app.get("metric")] + [m.help or "" for m in app.get("metric")]
        for text in rendered:  # only escaped forms of the names reach Markdown
            assert "**bold**" not in text and "](https" not in text and ":red[" not in text
            assert "<b>" not in text
    figure = json.loads(open_page(tmp_path, monkeypatch, "balance", dataset=f"folder:{name}")
                        .get("plotly_chart")[0].proto.spec)  # fmt: skip
    assert "&lt;b&gt;" in json.dumps(figure) and "<b>b" not in json.dumps(figure["data"])


def test_the_batch_renumbering_notice_shows_a_folder_name_as_text():
    import ui

    hostile = "folder:[Sign in](https://evil.example) train"
    for size in (10, 20):  # same batch_size, and another one
        _, note = ui._renumbered((("MNIST train", 10, True), 3), (hostile, size, True), 2, 30)
        assert "](https" not in note and "folder\\:\\[Sign in\\]" in note


def test_a_fifo_swapped_in_is_refused_at_once(tmp_path):
    root = write_folder(tmp_path, classes=1, per_class=3)
    path = root / "shapes" / "class0" / "0001.png"
    data = datalib.load("folder:shapes", "all", root)
    path.unlink()
    os.mkfifo(path)  # nobody will ever write to it: opening it for reading would wait forever
    started = time.monotonic()
    with pytest.raises(datalib.CorruptFile, match="not a regular file"):
        data.pixels([1])
    assert time.monotonic() - started < 2


def test_a_file_swapped_for_a_link_out_of_the_root_is_not_read(tmp_path):
    root = write_folder(tmp_path / "data", classes=1, per_class=3)
    secret = tmp_path / "secret.png"
    Image.fromarray(np.full((16, 16), 255, np.uint8)).save(secret)
    data = datalib.load("folder:shapes", "all", root)
    target = root / "shapes" / "class0" / "0002.png"
    target.unlink()
    target.symlink_to(secret)
    with pytest.raises(datalib.CorruptFile, match="link leads outside the data root"):
        data.pixels([2])
    folder = root / "shapes" / "class0"
    folder.rename(root / "shapes" / "moved")  # a folder on the way swapped for a link out
    (tmp_path / "outside" / "class0").mkdir(parents=True)
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(tmp_path / "outside/class0/0000.png")
    folder.symlink_to(tmp_path / "outside" / "class0")
    with pytest.raises(datalib.InvalidRequest, match="outside the data root"):
        open_regular(root / "shapes" / "class0" / "0000.png", root)


def test_a_hung_read_costs_the_page_an_error_not_the_server(tiny_root, monkeypatch):
    data = datalib.load("mnist", "train", tiny_root)
    release = threading.Event()
    real = data.spec.format.read

    def hung(*args):
        release.wait(10)
        return real(*args)

    monkeypatch.setattr(data.spec.format, "read", hung)
    monkeypatch.setattr(index_module, "READ_SECONDS", 0.3)
    started = time.monotonic()
    with pytest.raises(datalib.ReadTimeout, match="took longer than 0.3 s"):
        data.pixels([0])
    assert time.monotonic() - started < 2
    release.set()


def test_huge_images_are_skipped_with_the_reason(tmp_path, monkeypatch):
    root = write_folder(tmp_path, classes=1, per_class=2)
    Image.new("L", (7000, 6000), 128).save(root / "shapes" / "class0" / "huge.png")
    data = datalib.load("folder:shapes", "all", root)
    assert len(data) == 2
    assert {
        "path": "shapes/class0/huge.png",
        "reason": "too large: 7000x6000 is over 40 megapixels (BATCHSCOPE_MAX_PIXELS)",
    } in data.details["skipped"]


def test_big_images_are_never_sent_larger_than_shown(tmp_path, monkeypatch):
    (tmp_path / "big" / "cls").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(2):
        pixels = rng.integers(0, 256, (600, 800), dtype=np.uint8)
        Image.fromarray(pixels).save(tmp_path / "big" / "cls" / f"{i}.png")
    app = open_page(tmp_path, monkeypatch, "images", dataset="folder:big")
    heatmap = json.loads(app.get("plotly_chart")[0].proto.spec)["data"][0]
    assert plotly_array(heatmap["z"]).shape == (72, 96)  # 800 x 600 shown at 96 x 72
    assert any("reduced to 96x72" in c.value for c in app.caption)
    assert ui.upscale(np.zeros((600, 800), np.uint8), 280).shape == (210, 280)
    assert ui.upscale(np.zeros((28, 28), np.uint8), 280).shape == (280, 280)


def test_a_batch_too_big_for_memory_is_refused(tmp_path):
    (tmp_path / "wide" / "cls").mkdir(parents=True)
    for i in range(3):
        Image.new("RGB", (6000, 6000), (i, 0, 0)).save(tmp_path / "wide" / "cls" / f"{i}.png")
    data = datalib.load("folder:wide", "all", tmp_path)
    settings = datalib.LoaderSettings(batch_size=3, shuffle=False)
    with pytest.raises(datalib.InvalidRequest, match="lower the batch size"):
        datalib.batch(data, settings, 0)


def test_server_side_pngs_are_drawn_one_at_a_time_and_kept(monkeypatch):
    import plotly.graph_objects as go

    drawn = []

    def slow(self, **kwargs):
        drawn.append(self.layout.title.text)
        time.sleep(0.5)
        return b"png of " + self.layout.title.text.encode()

    monkeypatch.setattr(go.Figure, "to_image", slow)
    monkeypatch.setattr(ui, "PNG_WAIT", 0.1)
    monkeypatch.setattr(ui, "_pngs", ui.OrderedDict())
    figures = [go.Figure(layout={"title": {"text": f"chart {i}"}}) for i in range(3)]
    results: list[object] = []

    def ask(figure) -> None:
        try:
            results.append(ui.chart_png(figure))
        except ui.PngBusy as e:
            results.append(e)

    threads = [threading.Thread(target=ask, args=(f,)) for f in figures]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(isinstance(r, bytes) for r in results) == 1
    assert all("camera icon" in str(r) for r in results if isinstance(r, ui.PngBusy))
    drawn.clear()
    first = ui.chart_png(figures[1])
    again = ui.chart_png(go.Figure(layout={"title": {"text": "chart 1"}}))
    assert first == again and drawn == ["chart 1"]  # the same chart again: not drawn again


def forge(tmp_path: Path, change) -> tuple[Path, datalib.SplitData]:
    root = write_folder(tmp_path, classes=2, per_class=5)
    good = datalib.load("folder:shapes", "all", root)
    change(current_index(good.spec, root))
    index_module._open.clear()
    return root, good


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(
            lambda p: (p / "meta.json").write_text(
                (p / "meta.json").read_text().replace('"size": 10', '"size": 2000')
            ),
            id="size",
        ),
        pytest.param(
            lambda p: (p / "meta.json").write_text(
                (p / "meta.json").read_text().replace('"shape": [1, 16, 16]', '"shape": [3, 100000, 100000]')
            ),
            id="shape",
        ),
        pytest.param(
            lambda p: (p / "meta.json").write_text(
                json.dumps({**json.loads((p / "meta.json").read_text()), "shards": ["../../etc/passwd"]})
            ),
            id="shard path",
        ),
        pytest.param(
            lambda p: pq.write_table(
                pq.read_table(p / "samples-all.parquet").set_column(
                    1, "label", pa.array(np.full(10, 9, np.int64))
                ),
                p / "samples-all.parquet",
            ),
            id="labels out of range",
        ),
    ],
)  # fmt: skip
def test_a_forged_index_is_not_trusted_but_scanned_again(tmp_path, monkeypatch, change):
    root, good = forge(tmp_path, change)
    assert datalib.opened("folder:shapes", "all", root) is None  # the app scans it again
    rebuilt = datalib.load("folder:shapes", "all", root)
    assert len(rebuilt) == 10 and rebuilt.labels.tolist() == good.labels.tolist()
    assert rebuilt.image_shape == (1, 16, 16)
    app = open_page(root, monkeypatch, "balance", dataset="folder:shapes")
    assert not app.exception and not app.error


def test_a_symlink_loop_in_a_class_folder_is_skipped_with_the_reason(tmp_path):
    root = write_folder(tmp_path, classes=2, per_class=3)
    (root / "shapes" / "class1" / "loop").symlink_to(root / "shapes" / "class1" / "loop")
    data = datalib.load("folder:shapes", "all", root)
    assert len(data) == 6
    reasons = {s["path"]: s["reason"] for s in data.details["skipped"]}
    assert "shapes/class1/loop" in reasons


def test_what_a_killed_writer_left_is_cleared_by_the_next(tmp_path):
    root = write_folder(tmp_path, classes=1, per_class=3)
    spec = datalib.dataset_spec("folder:shapes")
    folder = dataset_dir(spec, root)
    (folder / "shards").mkdir(parents=True)
    (folder / ".tmp-dead").write_bytes(b"half")
    (folder / "shards" / ".tmp-dead.part").write_bytes(b"half")
    datalib.load("folder:shapes", "all", root)
    assert not [p for p in folder.rglob(".tmp-*")]


def test_a_download_killed_midway_is_cleared_by_the_next(tmp_path, monkeypatch):
    monkeypatch.setattr("torchvision.datasets.MNIST.mirrors", ["http://127.0.0.1:9/"])
    dead = tmp_path / ".download-mnist-abc123"
    (dead / "MNIST" / "raw").mkdir(parents=True)
    (dead / "MNIST" / "raw" / "train-images-idx3-ubyte.gz").write_bytes(b"half")
    with pytest.raises(datalib.DownloadFailed):
        datalib.download("mnist", tmp_path)
    assert list(tmp_path.iterdir()) == []  # the dead folder gone, nothing new left


def test_open_indexes_are_bounded_and_the_oldest_dropped(tmp_path, monkeypatch):
    monkeypatch.setattr(index_module, "OPEN_DATASETS", 2)
    index_module._open.clear()
    roots = []
    for i in range(3):
        root = write_folder(tmp_path / f"r{i}", classes=1, per_class=2)
        scan_first("folder:shapes", root)
        datalib.opened("folder:shapes", "all", root)
        roots.append(str(root))
    assert [key[1] for key in index_module._open] == roots[1:]


def test_memory_stops_growing_once_the_open_dataset_limit_is_reached(tmp_path, monkeypatch):
    """Datasets opened one after another, each read in full (every column, every row group,
    derived results): once OPEN_DATASETS are open, the next one costs what the oldest
    gave back, so what the process holds stays below the limit's worth, however many."""
    import gc
    import shutil
    import tracemalloc

    from datalib.scan import INDEX_COLUMNS

    monkeypatch.setattr(index_module, "OPEN_DATASETS", 2)
    index_module._open.clear()
    first = write_folder(tmp_path / "r0", classes=4, per_class=100)
    roots = [first] + [
        Path(shutil.copytree(first, tmp_path / f"r{i}", symlinks=True)) for i in range(1, 9)
    ]

    def use(root: Path) -> None:
        scan_first("folder:shapes", root)
        data = datalib.opened("folder:shapes", "all", root)
        for name in INDEX_COLUMNS:
            data.column(name)
        data.rows(np.arange(len(data)), ["source", "mode"])
        for key in range(index_module.REMEMBERED):
            data.remember(key, lambda: np.ones(len(data) * 64))

    use(roots[0])  # imports, caches of code: not what is measured
    gc.collect()
    tracemalloc.start()
    try:
        held = []
        for root in roots[1:]:
            use(root)
            gc.collect()
            held.append(tracemalloc.get_traced_memory()[0])
    finally:
        tracemalloc.stop()
    one = held[0]  # the first measured one, with the warm-up one still open
    assert one > 1_000_000  # each really holds something (8 x 400 x 64 float64 and more)
    assert max(held) < 2.5 * one, [f"{h / 1e6:.1f} MB" for h in held]
    assert [key[1] for key in index_module._open] == [str(r) for r in roots[-2:]]


def test_kept_arrays_are_read_only(tiny_root):
    data = datalib.load("mnist", "train", tiny_root)
    for array in (data.labels, data.column("content_hash"), datalib.epoch_indices(12, True, 0)):
        with pytest.raises(ValueError, match="read-only"):
            array[0] = 1

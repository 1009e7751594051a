"""The app and the scan: a dataset without an index starts one background scan for the
whole server, every session sees its progress, and no session waits on another's dataset."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from streamlit.testing.v1 import AppTest

import datalib
from datalib.formats.download import file_lock
from datalib.index import dataset_dir
from tests.conftest import APP, plain, scan_first, write_folder


def open_without_waiting(root: Path, monkeypatch, **params: str) -> AppTest:
    """A session on the Overview whose page shows the scan's progress instead of waiting."""
    monkeypatch.setenv("DATALIB_ROOT", str(root))
    monkeypatch.setattr("ui.SCAN_WAIT", 0.0)
    app = AppTest.from_file(APP, default_timeout=60)
    for key, value in params.items():
        app.query_params[key] = value
    app.switch_page("pages/overview.py").run()
    return app


def test_a_new_dataset_is_scanned_once_for_every_session(tmp_path, monkeypatch):
    root = write_folder(tmp_path, classes=3, per_class=30)
    spec = datalib.dataset_spec("folder:shapes")
    with file_lock(dataset_dir(spec, root) / "scan.lock"):  # a scan is running: hold it
        first = open_without_waiting(root, monkeypatch, dataset="folder:shapes")
        second = open_without_waiting(root, monkeypatch, dataset="folder:shapes")
        for app in (first, second):
            assert not app.exception
            assert [plain(s.value) for s in app.main.subheader] == ["Scanning folder:shapes"]
            assert "once for the whole server" in plain(app.caption[0].value)
        assert not (dataset_dir(spec, root) / "scan.log").exists()  # no second scan started
    datalib.start_scan("folder:shapes", root)  # what the page does once the lock is free
    deadline = time.monotonic() + 60
    while datalib.opened("folder:shapes", "all", root) is None:
        assert time.monotonic() < deadline, datalib.scan_state("folder:shapes", root)
        time.sleep(0.1)
    first.run()
    assert plain(first.title[0].value) == "folder:shapes"
    captions = [plain(caption.value) for caption in first.sidebar.caption]
    assert any(text.startswith("folder:shapes all: 90 images") for text in captions)


def test_a_failed_scan_says_why_and_offers_to_try_again(tmp_path, monkeypatch):
    (tmp_path / "broken" / "cls").mkdir(parents=True)
    (tmp_path / "broken" / "cls" / "a.png").write_text("<html>Forbidden</html>")
    app = open_without_waiting(tmp_path, monkeypatch, dataset="folder:broken")
    deadline = time.monotonic() + 60
    while not app.error:
        assert time.monotonic() < deadline
        time.sleep(0.3)
        app.run()
    assert "None of the 1 image files in broken could be decoded" in plain(app.error[0].value)
    assert [b.label for b in app.main.button] == ["Try again"]


def test_no_session_waits_on_another_datasets_scan(tiny_root, tmp_path, monkeypatch):
    """A scan holds its dataset's lock; opening any index never takes a lock."""
    scan_first("mnist", tiny_root)
    root = write_folder(tmp_path / "other", classes=2, per_class=5)
    spec = datalib.dataset_spec("folder:shapes")
    opened = []
    with file_lock(dataset_dir(spec, root) / "scan.lock"):
        reader = threading.Thread(
            target=lambda: opened.extend(
                [
                    datalib.opened("mnist", "train", tiny_root),
                    datalib.opened("folder:shapes", "all", root),  # none yet: no waiting either
                ]
            )
        )
        reader.start()
        reader.join(timeout=10)
        assert not reader.is_alive()
    assert len(opened[0]) == 12 and opened[1] is None

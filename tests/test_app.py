"""Every page through the real app (AppTest): renders, and its inputs change what it shows."""

import base64
import json

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import open_page

PAGES = ["overview", "batches", "images", "histograms", "balance", "checklist"]


def charts(app: AppTest) -> list[dict]:
    return [json.loads(chart.proto.spec) for chart in app.get("plotly_chart")]


def plotly_array(value) -> np.ndarray:
    """A Plotly array from a figure's JSON: a plain list, or typed ({"bdata", "dtype"})."""
    if isinstance(value, dict):
        array = np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
        shape = value.get("shape")
        return array.reshape([int(d) for d in str(shape).split(",")]) if shape else array
    return np.asarray(value)


def texts(app: AppTest) -> str:
    parts = [
        e.value for kind in ("markdown", "caption", "subheader", "code") for e in app.get(kind)
    ]
    return "\n".join(str(p) for p in parts)


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_on_tiny_data(page, tiny_root, monkeypatch):
    app = open_page(tiny_root, monkeypatch, page)
    assert not app.error
    assert app.title


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_on_real_mnist(page, real_root, monkeypatch):
    app = open_page(real_root, monkeypatch, page)
    assert not app.error
    assert app.sidebar.caption[0].value.startswith("MNIST train: 60,000 images")


def test_sidebar_reports_the_split_and_its_batches(real_root, monkeypatch):
    app = open_page(real_root, monkeypatch, "overview", batch_size="64")
    assert app.sidebar.caption[0].value == "MNIST train: 60,000 images, 938 batches of 64"
    app.segmented_control(key="split").set_value("test").run()
    assert app.sidebar.caption[0].value == "MNIST test: 10,000 images, 157 batches of 64"


def test_missing_dataset_shows_the_fix_not_a_traceback(tmp_path, monkeypatch):
    (tmp_path / "MNIST" / "raw").mkdir(parents=True)
    monkeypatch.setattr("torchvision.datasets.MNIST.mirrors", ["http://127.0.0.1:9/"])
    app = open_page(tmp_path, monkeypatch, "overview")
    message = app.error[0].value
    assert "MNIST is not on disk" in message and "python -m datalib download mnist" in message


def test_batches_next_and_jump(real_root, monkeypatch):
    app = open_page(real_root, monkeypatch, "batches")
    first = texts(app)
    assert "Batch 0 of 6,000" in first and "Showing 10 of 10 images in batch 0" in first
    next_button = next(b for b in app.button if b.label == "Next")
    next_button.click().run()
    assert "Batch 1 of 6,000" in texts(app)
    assert app.query_params["batch"] == "1"
    assert texts(app) != first
    app.number_input(key="batch").set_value(5999).run()
    assert "Batch 5,999 of 6,000" in texts(app)


def test_batch_size_changes_the_tensors(real_root, monkeypatch):
    app = open_page(real_root, monkeypatch, "batches", batch_size="64", batch="3", seed="7")
    assert "(64, 1, 28, 28)" in [str(v) for v in app.table[0].value["value"]]
    assert "Batch 3 of 938" in texts(app)
    app.toggle(key="shuffle").set_value(False).run()
    labels = next(c.value for c in app.code if c.value.startswith("tensor("))
    assert labels.startswith("tensor([0, 7, 4, 9, 7, 8, 3, 2, 1, 1,")  # samples 192-201 in order


def test_images_class_filter_changes_the_gallery(real_root, monkeypatch):
    app = open_page(real_root, monkeypatch, "images")
    assert "Showing 60 of 60,000 images in MNIST train" in texts(app)
    gallery = app.get("image")[0].proto.imgs
    assert [image.caption for image in gallery[:3]] == [
        "5 - five (#0)",
        "0 - zero (#1)",
        "4 - four (#2)",
    ]
    app.selectbox(key="cls").set_value("3 - three").run()
    assert "Showing 60 of 6,131 images of class 3 - three" in texts(app)
    assert app.get("image")[0].proto.imgs[0].caption == "#7"  # the first 3 in MNIST train
    app.number_input(key="image").set_value(7).run()
    assert "**#7** in MNIST train, label **3 - three**" in texts(app)
    heatmap = charts(app)[0]["data"][0]
    assert heatmap["type"] == "heatmap" and plotly_array(heatmap["z"]).shape == (28, 28)


def test_histogram_scope_and_scale_change_the_chart(real_root, monkeypatch):
    app = open_page(real_root, monkeypatch, "histograms")
    whole = charts(app)[0]
    assert "all images" in whole["layout"]["title"]["text"]
    assert "Scaled to [0, 1]" in app.info[0].value
    assert [m.value for m in app.metric][3:] == ["0.1307", "0.3081"]
    app.segmented_control(key="scale").set_value("raw 0-255 (on disk)").run()
    assert [m.value for m in app.metric][2:] == ["255", "33.3184", "78.5675"]
    app.segmented_control(key="scope").set_value("One class").run()
    app.selectbox(key="cls").set_value("1 - one").run()
    assert "class 1 - one" in charts(app)[0]["layout"]["title"]["text"]
    assert app.metric[0].value == f"{6742 * 784:,}"


def test_balance_counts_percent_and_samples(real_root, monkeypatch):
    app = open_page(real_root, monkeypatch, "balance")
    figure = charts(app)[0]
    train = next(t for t in figure["data"] if t["name"] == "train")
    assert plotly_array(train["y"]).tolist() == [
        5923,
        6742,
        5958,
        6131,
        5842,
        5421,
        5918,
        6265,
        5851,
        5949,
    ]
    assert (
        "MNIST train vs test: class counts (n=60,000 / 10,000)" in figure["layout"]["title"]["text"]
    )
    app.segmented_control(key="measure").set_value("percent").run()
    train = next(t for t in charts(app)[0]["data"] if t["name"] == "train")
    assert round(float(plotly_array(train["y"])[1]), 2) == round(100 * 6742 / 60000, 2)
    assert "shares (%)" in charts(app)[0]["layout"]["title"]["text"]
    assert app.metric[0].value == "1.24" and app.metric[1].value == "1.27"
    assert "Balanced: largest class 1 - one (6,742) / smallest 5 - five (5,421)" in texts(app)
    app.selectbox(key="cls").set_value("5 - five").run()
    assert "Showing 40 of 5,421 images of class 5 - five" in texts(app)

"""Every page through the real app (AppTest): every page on every kind of dataset renders,
and each page's inputs change what it shows."""

import json
from pathlib import Path

import pytest

import datalib
import ui
from tests.conftest import (
    REAL_TRAIN_COUNTS,
    charts,
    grid_captions,
    image_grids,
    open_page,
    plain,
    plotly_array,
    texts,
)

# Each kind of dataset the tests hold: the fixture that writes (or finds) it, the dataset as
# a link names it (None: the default, MNIST), and the start of the sidebar's caption.
DATASETS = {
    "tiny MNIST": ("tiny_root", None, "MNIST train: 12 images"),
    "FashionMNIST": ("family_root", "FashionMNIST", "FashionMNIST train: 12 images"),
    "KMNIST": ("family_root", "KMNIST", "KMNIST train: 12 images"),
    "CIFAR-10": ("cifar_root", "CIFAR-10", "CIFAR-10 train: 12 images"),
    "image folder": ("folder_root", "folder:pets", "folder:pets train: 7 images"),
    "real MNIST": ("real_root", None, "MNIST train: 60,000 images"),
}


@pytest.mark.parametrize("page", ui.PAGES, ids=lambda page: Path(page.file).stem)
@pytest.mark.parametrize("dataset", list(DATASETS))
def test_every_page_renders_on_every_dataset(dataset, page, request, monkeypatch):
    """The page runs without an exception or an error box, under its heading (the Overview's
    is the dataset's title), on the dataset the sidebar names."""
    fixture, name, caption = DATASETS[dataset]
    root = request.getfixturevalue(fixture)
    params = {"dataset": name} if name else {}
    app = open_page(root, monkeypatch, Path(page.file).stem, **params)
    assert not app.error, [e.value for e in app.error]
    heading = (name or "MNIST") if page is ui.PAGES[0] else page.title
    assert [plain(title.value) for title in app.main.title] == [heading]
    assert plain(app.sidebar.caption[0].value).startswith(caption)


def test_sidebar_reports_the_split_and_its_batches(real_root, monkeypatch):
    app = open_page(real_root, monkeypatch, "overview", batch_size="64")
    assert plain(app.sidebar.caption[0].value) == "MNIST train: 60,000 images, 938 batches of 64"
    app.segmented_control(key="split").set_value("test").run()
    assert plain(app.sidebar.caption[0].value) == "MNIST test: 10,000 images, 157 batches of 64"


def test_a_missing_dataset_shows_the_fix_not_a_traceback(tmp_path, monkeypatch):
    """No MNIST files: the page's scan tries to download them, fails, and the page says what
    to do. The scan runs in a new process, where a patched mirror list does not reach: a
    proxy that does not exist keeps it off the network."""
    (tmp_path / "MNIST" / "raw").mkdir(parents=True)
    monkeypatch.setattr("torchvision.datasets.MNIST.mirrors", ["http://127.0.0.1:9/"])
    for proxy in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.setenv(proxy, "http://127.0.0.1:9")
    for exempt in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(exempt, raising=False)
    app = open_page(tmp_path, monkeypatch, "overview")
    message = plain(app.error[0].value)
    assert "MNIST is not on disk" in message and "python -m datalib download mnist" in message
    assert "set DATALIB_ROOT to the folder that holds MNIST/raw/" in message
    assert f"the data root is now {tmp_path}" in message


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
    assert grid_captions(app, "gallery")[:3] == [
        "5 - five (#0)",
        "0 - zero (#1)",
        "4 - four (#2)",
    ]
    app.selectbox(key="cls").set_value("3 - three").run()
    assert "Showing 60 of 6,131 images of class 3 - three" in texts(app)
    assert grid_captions(app, "gallery")[0] == "#7"  # the first 3 in MNIST train
    app.number_input(key="image").set_value(7).run()
    assert "**#7** in MNIST train, label **3 - three**" in texts(app)
    heatmap = charts(app)[0]["data"][0]
    assert heatmap["type"] == "heatmap" and plotly_array(heatmap["z"]).shape == (28, 28)


def test_histogram_scope_and_scale_change_the_chart(real_root, monkeypatch):
    app = open_page(real_root, monkeypatch, "histograms")
    whole = charts(app)[0]
    assert "all images" in whole["layout"]["title"]["text"]
    assert "Scaled: the model sees values from 0 to 1, inside [0, 1]" in plain(app.info[0].value)
    assert [m.value for m in app.metric][3:] == ["0.1307", "0.3081"]
    app.segmented_control(key="scale").set_value("raw 0-255 (on disk)").run()
    assert [m.value for m in app.metric][2:] == ["255", "33.3184", "78.5675"]
    app.segmented_control(key="scope").set_value("One class").run()
    app.selectbox(key="cls").set_value("1 - one").run()
    assert "class 1 - one" in charts(app)[0]["layout"]["title"]["text"]
    assert app.metric[0].value == f"{6742 * 784:,}"


def test_a_class_page_opened_on_all_classes_puts_its_class_in_the_link(real_root, monkeypatch):
    """The Images page's "All classes" is not a class the Histograms page can show: the page
    shows the first class, and the link says so (a link copied there opens the same chart)."""
    app = open_page(real_root, monkeypatch, "images")
    assert app.selectbox(key="cls").value == ui.ALL_CLASSES
    app.switch_page("pages/histograms.py").run()
    app.segmented_control(key="scope").set_value("One class").run()
    assert "class 0 - zero" in charts(app)[0]["layout"]["title"]["text"]
    assert app.query_params.get("cls", ["0 - zero"]) == ["0 - zero"]  # the default: not written


def test_balance_counts_percent_and_samples(real_root, monkeypatch):
    app = open_page(real_root, monkeypatch, "balance")
    figure = charts(app)[0]
    train = next(t for t in figure["data"] if t["name"] == "train")
    assert plotly_array(train["y"]).tolist() == REAL_TRAIN_COUNTS
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


def test_test_split_histogram_prints_the_train_normalize_line(real_root, monkeypatch):
    app = open_page(real_root, monkeypatch, "histograms", split="test")
    assert [m.value for m in app.metric][3:] == ["0.1325", "0.3105"]  # test's own figures
    line = next(c.value for c in app.code if "Normalize" in c.value)
    assert line == "transforms.Normalize((0.1307,), (0.3081,))"  # the train split's
    assert "**train** split's" in texts(app)


def test_log_histogram_ticks_only_powers_of_ten(real_root, monkeypatch):
    app = open_page(real_root, monkeypatch, "histograms")
    yaxis = charts(app)[0]["layout"]["yaxis"]
    assert yaxis["type"] == "log" and yaxis["dtick"] == 1
    app.toggle(key="log_y").set_value(False).run()
    assert "dtick" not in charts(app)[0]["layout"]["yaxis"]


def test_the_large_image_follows_the_gallery(real_root, monkeypatch):
    app = open_page(real_root, monkeypatch, "images")
    assert app.number_input(key="image").value == 0
    app.selectbox(key="cls").set_value("3 - three").run()
    assert app.number_input(key="image").value == 7  # the first 3, shown first in the gallery
    assert "**#7** in MNIST train, label **3 - three**" in texts(app)
    app.session_state["page"] = 2  # AppTest has no pagination widget: as a click would set it
    app.run()
    first = int(grid_captions(app, "gallery")[0].lstrip("#"))
    assert app.number_input(key="image").value == first != 7
    tiles = image_grids(app)["gallery"]
    assert [t["key"] for t in tiles][:1] == [first]


def test_a_link_to_an_image_keeps_it(real_root, monkeypatch):
    app = open_page(real_root, monkeypatch, "images", cls="7 - seven", image="15")
    assert app.number_input(key="image").value == 15


def test_batch_buttons_stop_at_the_ends(real_root, monkeypatch):
    app = open_page(real_root, monkeypatch, "batches", split="test", batch_size="1000")
    buttons = {b.label: b for b in app.button}
    assert buttons["Prev"].disabled and not buttons["Next"].disabled
    app.number_input(key="batch").set_value(9).run()
    buttons = {b.label: b for b in app.button}
    assert buttons["Next"].disabled and not buttons["Prev"].disabled


def test_a_new_batch_size_keeps_the_place_in_the_epoch_and_says_so(real_root, monkeypatch):
    app = open_page(real_root, monkeypatch, "batches", batch="100")
    app.number_input(key="batch_size").set_value(20).run()
    assert app.number_input(key="batch").value == 50
    note = plain(app.info[0].value)
    assert "batch_size 10 \u2192 20: batch 100 is now batch 50" in note
    assert "from sample 1,000 of 60,000" in note
    app.segmented_control(key="split").set_value("test").run()
    assert app.number_input(key="batch").value == 50
    assert "MNIST test: batch 50" in plain(app.info[0].value)
    app.number_input(key="batch_size").set_value(1000).run()
    assert app.number_input(key="batch").value == 1  # samples 1,000-1,019 are in batch 1
    app.number_input(key="batch").set_value(9).run()
    assert not app.info  # a move the user made says nothing
    app.segmented_control(key="split").set_value("train").run()
    assert app.number_input(key="batch").value == 9


def test_the_labels_tensor_prints_in_even_lines(real_root, monkeypatch):
    app = open_page(real_root, monkeypatch, "batches", batch_size="64")
    labels = next(c for c in app.code if c.value.startswith("tensor("))
    lines = labels.value.splitlines()
    assert len(lines) == 6 and {line.count(",") for line in lines[:-1]} == {12}  # 12 a line
    assert max(len(line) for line in lines) <= 44  # fits the half-width column
    assert all(line.startswith(" " * 8) and not line.startswith(" " * 9) for line in lines[1:])
    assert not labels.proto.wrap_lines


def test_overview_links_every_other_page(tiny_root, monkeypatch):
    app = open_page(tiny_root, monkeypatch, "overview")
    links = [link.proto.page for link in app.main.get("page_link")]
    assert links == ["batches", "images", "histograms", "balance", "checklist", "quality"]
    labels = [link.proto.label for link in app.main.get("page_link")]
    nav = [link.proto.label for link in app.sidebar.get("page_link")]
    assert nav == [page.title for page in ui.PAGES]  # the app's own navigation, every page
    assert labels[-1].startswith("Data quality: ")


def test_grids_fill_their_rows(real_root, monkeypatch):
    app = open_page(real_root, monkeypatch, "balance")
    samples = next(
        json.loads(n.proto.json) for n in app.get("bidi_component") if n.key == "samples"
    )
    assert len(samples["tiles"]) == 40 and 40 % samples["columns"] == 0
    assert ui.grid_columns(40, 70) == 10
    assert ui.grid_columns(60, 64, room=560) in (6, 10)  # full rows, as many as fit
    assert ui.grid_columns(7, 84) == 7
    assert 128 % ui.grid_columns(128, 84) == 0 or ui.grid_columns(128, 84) == 11


def test_charts_hover_in_readable_colours_and_keep_the_toolbar_off_the_title(
    real_root, monkeypatch
):
    app = open_page(real_root, monkeypatch, "images")
    layout = charts(app)[0]["layout"]
    assert layout["hoverlabel"]["bgcolor"] == "white"
    assert layout["hoverlabel"]["font"]["color"] == "#262730"
    assert layout["modebar"]["orientation"] == "v"


def test_class_table_percents_are_rounded_for_the_csv(tiny_root):
    table = datalib.class_table([datalib.load("mnist", "train", tiny_root)])
    assert table["percent"].tolist()[:2] == [25.0, 8.333]

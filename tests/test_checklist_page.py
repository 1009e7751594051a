"""The Readiness checklist page through the real app (AppTest): its verdicts on tiny, real,
class-sorted and imbalanced data, and its inputs change what it shows."""

from __future__ import annotations

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import (
    REAL_TRAIN_COUNTS,
    charts,
    grid_captions,
    open_page,
    plotly_array,
    texts,
    verdicts,
)

CHECK_TITLES = [
    "Every file loads",
    "Numerical tensors",
    "Scaled values",
    "Normalized per channel",
    "Shuffled batches",
    "Disjoint train and test",
    "Balanced classes",
]


def code_box(app: AppTest) -> str:
    return next(c.value for c in app.main.code if c.value.startswith("import torch\n"))


def trace(app: AppTest, chart: int, name: str) -> np.ndarray:
    figure = charts(app)[chart]
    return plotly_array(next(t for t in figure["data"] if t["name"].startswith(name))["y"])


def test_verdicts_examples_and_code_on_tiny_data(tiny_root, monkeypatch):
    app = open_page(tiny_root, monkeypatch, "checklist")
    assert [s.value for s in app.main.subheader] == [*CHECK_TITLES, "Reproduce in code"]
    assert verdicts(app) == {
        "Every file loads": "pass",
        "Numerical tensors": "pass",
        "Scaled values": "pass",
        "Normalized per channel": "warn",
        "Shuffled batches": "pass",
        "Disjoint train and test": "warn",
        "Balanced classes": "warn",
    }
    # the five identical test images, side by side
    assert "Example 1: within test" in texts(app)
    assert grid_captions(app)[4] == "test #4: 4"
    assert f"datasets.MNIST(\n    {str(tiny_root)!r}, train=True" in code_box(app)
    # summaries are plain text, shown as typed: no Markdown left visible in them
    assert not [m.value for m in app.main.markdown if "\\`" in m.value]


def test_verdicts_and_facts_on_real_mnist(real_root, monkeypatch):
    app = open_page(real_root, monkeypatch, "checklist")
    assert verdicts(app)["Disjoint train and test"] == "pass"
    shown = texts(app)
    assert "0 images are in both train and test" in shown
    assert "transforms.Normalize((0.1307,), (0.3081,))" in shown
    assert f"one epoch's class counts: {REAL_TRAIN_COUNTS}" in shown
    assert "7 pass" not in shown and "6 pass, 1 warn, 0 fail" in shown
    labels = charts(app)[0]
    assert "labels of the first 20 batches of batch_size 10" in labels["layout"]["title"]["text"]


def test_sampler_and_shuffle_change_the_page(real_root, monkeypatch):
    app = open_page(real_root, monkeypatch, "checklist")
    before = trace(app, 1, "WeightedRandomSampler: the epoch")
    assert "WeightedRandomSampler(" not in code_box(app)
    app.segmented_control(key="sampler").set_value("weighted").run()
    assert not app.exception
    assert "sampler=WeightedRandomSampler(seed 0)" in texts(app)
    assert "sampler=sampler" in code_box(app)
    assert "The WeightedRandomSampler expects every class at 10.0% of the draws" in texts(app)
    app.number_input(key="seed").set_value(5).run()
    after = trace(app, 1, "WeightedRandomSampler: the epoch")
    assert not np.array_equal(before, after)  # another seed, another draw
    assert "manual_seed(5)" in code_box(app)
    app.segmented_control(key="sampler").set_value("none").run()
    app.toggle(key="shuffle").set_value(False).run()
    assert verdicts(app)["Shuffled batches"] == "warn"
    assert "every epoch repeats the same batches" in texts(app)


def test_class_sorted_and_leaking_data_fail(sorted_root, monkeypatch):
    app = open_page(sorted_root, monkeypatch, "checklist", batch_size="4", shuffle="false")
    found = verdicts(app)
    assert found["Shuffled batches"] == "fail" and found["Disjoint train and test"] == "fail"
    assert "Leak: 2 test images are exact copies of train images" in texts(app)
    assert grid_captions(app) == ["train #5: 1", "test #0: 0", "train #21: 5", "test #1: 1"]
    labels = plotly_array(charts(app)[0]["data"][0]["z"])
    assert labels.shape == (10, 4) and (labels == np.arange(10)[:, None]).all()
    app.toggle(key="shuffle").set_value(True).run()
    assert verdicts(app)["Shuffled batches"] != "fail"


@pytest.mark.parametrize("sampler", ["none", "weighted"])
def test_imbalanced_data_and_the_sampler(imbalanced_root, monkeypatch, sampler):
    app = open_page(imbalanced_root, monkeypatch, "checklist", sampler=sampler, batch_size="32")
    assert verdicts(app)["Balanced classes"] == ("pass" if sampler == "weighted" else "fail")
    without = trace(app, 1, "shuffle=True, no sampler")
    with_sampler = trace(app, 1, "WeightedRandomSampler: the epoch")
    assert without[0] == pytest.approx(100 * 2000 / 3800, abs=1e-3)
    assert np.abs(with_sampler - 10).max() < 1.5


def test_the_sampler_is_judged_by_its_expected_mix_not_one_noisy_epoch(tiny_root, monkeypatch):
    """Tiny train: class 0 has 3 images, the 9 others 1 each (ratio 3). One epoch of 12 draws
    cannot be balanced over 10 classes, but the sampler's expected mix is exactly uniform: the
    app's own fix applied must pass, and the page shows how far one epoch strays."""
    app = open_page(tiny_root, monkeypatch, "checklist", sampler="weighted")
    assert verdicts(app)["Balanced classes"] == "pass"
    expected = trace(app, 1, "WeightedRandomSampler: expected")
    assert expected == pytest.approx([10.0] * 10)
    figure = next(c for c in charts(app) if "class mix" in c["layout"]["title"]["text"])
    bar = next(t for t in figure["data"] if t["name"].startswith("WeightedRandomSampler: expected"))
    assert plotly_array(bar["error_y"]["array"]).max() > 10  # 12 draws scatter widely
    drawn = next(t for t in figure["data"] if "draws" in t["name"])
    assert plotly_array(drawn["y"]).sum() == pytest.approx(100, abs=0.01)
    uniform = next(t for t in figure["data"] if t["name"].startswith("uniform"))
    assert uniform["mode"] == "lines"  # named in the legend, not a label under the first bar
    assert not figure["layout"].get("annotations")
    assert figure["layout"]["shapes"][0]["y0"] == pytest.approx(10.0)
    plain = open_page(tiny_root, monkeypatch, "checklist")
    assert verdicts(plain)["Balanced classes"] != "pass"  # the data itself is imbalanced

"""The transform pipeline: parsed from the URL's text and never evaluated, applied to batch k
exactly as the code box's script applies it, and measured by the histograms and the
checklist after it."""

import contextlib
import io
import json
import re

import pytest
import torch

import datalib
from datalib import checks, snippets
from datalib import transforms as T
from tests.conftest import (
    charts,
    grid_captions,
    image_grids,
    open_page,
    run_cli,
    texts,
    verdicts,
)

NORMALIZE = "Normalize(mean=0.1307,std=0.3081)"
RANDOM = "RandomRotation(degrees=20);RandomErasing(p=0.5);" + NORMALIZE


@pytest.mark.parametrize(
    "text",
    [
        "Resize(size=32)",
        "CenterCrop(size=24/20);Normalize(mean=0.5,std=0.25)",
        "RandomCrop(size=24,padding=2,pad_if_needed=true)",
        "RandomResizedCrop(size=28,scale=0.5/1,ratio=0.75/1.3333)",
        "RandomHorizontalFlip(p=0.5)",
        "RandomRotation(degrees=-10/30,expand=false)",
        "RandomAffine(degrees=10,translate=0.1/0.1,scale=0.9/1.1,shear=5)",
        "ColorJitter(brightness=0.2,contrast=0.3)",
        "GaussianBlur(kernel_size=3,sigma=0.5)",
        "RandomErasing(p=1,scale=0.02/0.33,ratio=0.3/3.3,value=0)",
    ],
)
def test_every_offered_step_parses_back_to_its_own_text_and_runs(text):
    pipeline = T.parse(text)
    assert T.parse(pipeline.text).text == pipeline.text
    out = T.apply(pipeline, torch.rand(2, 1, 28, 28), [0, 1])
    assert len(out) == 2 and all(o.dtype == torch.float32 for o in out)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("__import__('os').system('id')", "is not a step"),
        ("Lambda(lambd=1)", "not a transform Batchscope offers"),
        ("Resize(size=32,interpolation=0)", "not one of its parameters"),
        ("Resize(size=abc)", "takes 1 or 2 whole numbers"),
        ("Resize(size=1e9)", "between 1 and 1024"),
        ("Resize(size=2.5)", "whole number"),
        ("Resize()", "needs size"),
        ("RandomHorizontalFlip(p=2)", "between 0 and 1"),
        ("RandomHorizontalFlip(p=nan)", "between 0 and 1"),
        ("GaussianBlur(kernel_size=4)", "must be odd"),
        ("RandomResizedCrop(size=28,scale=1/0.5)", "is above"),
        ("Normalize(mean=0.5/0.5,std=0.5)", "as many std values"),
        ("Normalize(mean=0.5,std=0)", "between 1e-06"),
        ("RandomRotation(degrees=10,expand=maybe)", "true or false"),
        ("RandomHorizontalFlip(p=0.5,p=0.2)", "given twice"),
        (";".join(["RandomHorizontalFlip(p=0.5)"] * 13), "at most 12 steps"),
    ],
)
def test_each_refusal_says_what_is_wrong(text, says):
    with pytest.raises(datalib.InvalidRequest, match=says):
        T.parse(text)


def test_normalize_with_other_channels_than_the_images_is_refused():
    with pytest.raises(datalib.InvalidRequest, match="the images have 1 channel"):
        T.apply(T.parse("Normalize(mean=0.5/0.5/0.5,std=0.2/0.2/0.2)"), torch.rand(1, 1, 4, 4), [0])


def run_shown(code: str) -> dict:
    namespace: dict = {}
    with contextlib.redirect_stdout(io.StringIO()):
        exec(compile(code, "<batch code>", "exec"), namespace)  # noqa: S102 - running it is the test
    return namespace


@pytest.mark.parametrize(
    "text",
    [
        "",
        "CenterCrop(size=24);" + NORMALIZE,
        RANDOM,
        "Resize(size=20/24);ColorJitter(brightness=0.4)",
    ],
)
def test_the_code_box_yields_the_batch_on_the_page(real_root, text):
    data = datalib.load("mnist", "test", real_root)
    settings = datalib.LoaderSettings(batch_size=16, shuffle=True, seed=3)
    pipeline = T.parse(text, seed=7)
    batch = datalib.batch(data, settings, 5, pipeline)
    shown = run_shown(
        snippets.batch_code(data.spec, real_root, "test", settings, data.image_shape, pipeline, 5)
    )
    assert torch.equal(shown["labels"], batch.labels)
    assert torch.equal(shown["images"], batch.images)  # same tensors, same random draws


def test_random_draws_follow_the_sample_not_the_batch(real_root):
    """Sample i's draw comes from seed + i, so it is the same in any batch that holds it."""
    data = datalib.load("mnist", "test", real_root)
    pipeline = T.parse(RANDOM, seed=11)
    shuffled = datalib.batch(data, datalib.LoaderSettings(8, True, 0), 0, pipeline)
    index = int(shuffled.indices[3])
    alone = T.apply(pipeline, torch.from_numpy(data.images([index])).float().div(255), [index])
    assert torch.equal(alone[0], shuffled.images[3])
    assert torch.equal(T.draws(data, pipeline, index, 3)[0], shuffled.images[3])
    other_seed = datalib.batch(data, datalib.LoaderSettings(8, True, 0), 0, T.parse(RANDOM, 12))
    assert not torch.equal(other_seed.images, shuffled.images)


def test_normalize_makes_the_checklist_pass_and_the_histogram_read_0_and_1(real_root):
    pipeline = T.parse(NORMALIZE)
    result = checks.checklist("mnist", "train", root=real_root, pipeline=pipeline)
    assert result["normalized"].verdict == "pass"
    assert result["scaled"].verdict == "pass"
    assert result["augment"].verdict == "pass"
    after = T.after_stats(datalib.load("mnist", "train", real_root, scan_first=False), pipeline)
    assert after.what == "all 60,000 images"
    assert abs(after.mean) < 1e-3 and abs(after.std - 1) < 1e-3
    assert result.as_dict()["transforms"] == NORMALIZE
    # Without it, the same checks say what to add.
    plain = checks.checklist("mnist", "train", root=real_root)
    assert plain["normalized"].verdict == "warn"


def test_pointwise_statistics_equal_running_every_image(tiny_root):
    """Normalize's figures come from the index's counts: the same as transforming each image."""
    data = datalib.load("mnist", "train", tiny_root)
    pipeline = T.parse("Normalize(mean=0.3,std=0.2)")
    exact = T.after_stats(data, pipeline)
    images = torch.from_numpy(data.images(range(len(data)))).float().div(255)
    direct = torch.stack(T.apply(pipeline, images, list(range(len(data)))))
    assert exact.mean == pytest.approx(direct.double().mean().item(), abs=1e-6)
    assert exact.std == pytest.approx(direct.double().std(unbiased=False).item(), abs=1e-6)
    assert exact.min == pytest.approx(direct.min().item()) and exact.images == len(data)


def test_a_pipeline_of_mixed_shapes_fails_numerical_with_the_fix(real_root):
    pipeline = T.parse("RandomRotation(degrees=30,expand=true)")
    result = checks.checklist("mnist", "test", root=real_root, pipeline=pipeline)
    numerical = result["numerical"]
    assert numerical.verdict == "fail"
    assert "different shapes" in numerical.summary and "seeded sample of 2,000" in numerical.summary
    assert "v2.Resize(size=" in numerical.fix
    data = datalib.load("mnist", "test", real_root, scan_first=False)
    with pytest.raises(datalib.InvalidRequest, match="cannot stack them"):
        datalib.batch(data, datalib.LoaderSettings(64), 0, pipeline)


def test_random_augmentation_on_test_warns_with_the_deterministic_steps(real_root):
    result = checks.checklist("mnist", "test", root=real_root, pipeline=T.parse(RANDOM))
    augment = result["augment"]
    assert augment.verdict == "warn"
    assert "RandomRotation, RandomErasing" in augment.summary
    assert "v2.Normalize(mean=[0.1307], std=[0.3081])" in augment.fix
    assert "RandomRotation" not in augment.fix


def test_the_cli_checks_through_a_pipeline(real_root):
    done = run_cli("check", "mnist", "--root", str(real_root), "--json", "--transforms", NORMALIZE)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["checks"]["normalized"]["verdict"] == "pass"
    assert "v2.Normalize(mean=[0.1307], std=[0.3081])" in result["code"]
    refused = run_cli("check", "mnist", "--root", str(real_root), "--transforms", "Resize(size=0)")
    assert refused.returncode == 1 and "between 1 and 1024" in refused.stderr
    assert "Traceback" not in refused.stderr


# The pages ---------------------------------------------------------------------------------


def test_batches_shows_before_and_after_with_the_code(real_root, monkeypatch):
    app = open_page(real_root, monkeypatch, "batches", transforms=RANDOM, draw_seed="3")
    grids = image_grids(app)
    assert set(grids) >= {"batch_images", "batch_after"}
    assert grid_captions(app, "batch_images") == grid_captions(app, "batch_after")
    shown = texts(app)
    assert "torch.manual_seed(3 + i)" in shown
    assert "dataset = SeededDraws(dataset, augment, seed=3)" in shown
    table = app.table[0].value
    facts = dict(zip(table["fact"], table["value"], strict=True))
    assert facts["images.min()"].startswith("-0.424")  # normalized: 0 maps to -0.4242


def test_histograms_after_normalize_read_0_and_1(real_root, monkeypatch):
    app = open_page(real_root, monkeypatch, "histograms", transforms=NORMALIZE)
    metrics = {m.label: m.value for m in app.metric}
    assert abs(float(metrics["mean"])) < 0.001 and abs(float(metrics["std"]) - 1) < 0.001
    assert "Standardized" in app.info[0].value
    assert "Normalize(mean=0.1307,std=0.3081)" in charts(app)[0]["layout"]["title"]["text"]


def test_the_sidebar_adds_a_step_normalizes_from_train_and_removes(real_root, monkeypatch):
    app = open_page(real_root, monkeypatch, "checklist")
    app.selectbox(key="add_step").set_value("CenterCrop").run()
    app.text_input(key="add_CenterCrop_size").set_value("24").run()
    app.button(key="add_step_button").click().run()
    assert app.text_input(key="transforms").value == "CenterCrop(size=24)"
    app.button(key="add_normalize").click().run()
    text = app.text_input(key="transforms").value
    assert text.startswith("CenterCrop(size=24);Normalize(mean=0.")
    assert app.query_params["transforms"] == [text] or app.query_params["transforms"] == text
    assert verdicts(app)["Normalized per channel"] == "pass"
    assert verdicts(app)["No random augmentation on test"] == "pass"
    app.button(key="remove_step_0").click().run()
    assert app.text_input(key="transforms").value.startswith("Normalize(mean=0.")


def test_a_bad_pipeline_is_named_and_the_page_still_works(real_root, monkeypatch):
    app = open_page(real_root, monkeypatch, "batches", transforms="Resize(size=0)")
    assert any("between 1 and 1024" in e.value for e in app.error)
    assert "batch_images" in image_grids(app) and "batch_after" not in image_grids(app)


def test_the_augmentation_preview_draws_16_times(real_root, monkeypatch):
    app = open_page(real_root, monkeypatch, "images", transforms=RANDOM, image="7")
    captions = grid_captions(app, "draws")
    assert captions == [f"draw {j}" for j in range(1, 17)]
    tiles = image_grids(app)["draws"]
    assert len({tile["src"] for tile in tiles}) > 8  # the draws differ
    assert "torch.manual_seed(0 + 7)" in texts(app)


@pytest.mark.parametrize("sampler", [None, "weighted"])
def test_the_checklists_code_runs_through_a_random_pipeline(tiny_root, sampler):
    """The checklist's code counts one epoch's labels through the pipeline, as shown."""
    settings = datalib.LoaderSettings(batch_size=4, seed=2)
    result = checks.checklist("mnist", "train", settings, sampler, tiny_root, T.parse(RANDOM))
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(result.code, "<checklist code>", "exec"), {})  # noqa: S102 - it is the test
    counts = json.loads(printed.getvalue())
    assert sum(counts) == 12
    if sampler is None:
        assert counts == [3, 1, 1, 1, 1, 1, 1, 1, 1, 1]
    assert "SeededDraws(dataset, augment, seed=0)" in result.code


def test_exact_values_survive_the_text(real_root):
    """Adding or removing a step rewrites the text: no figure may lose digits on the way."""
    pipeline = T.parse("Normalize(mean=0.13066048,std=0.30810776)", seed=4)
    grown = pipeline.plus(T.parse("RandomHorizontalFlip(p=0.5)").steps[0])
    assert T.parse(grown.text, 4) == grown
    assert dict(grown.steps[0].values)["mean"] == (0.13066048,)
    assert "Normalize(mean=0.13066048,std=0.30810776)" in grown.text
    assert T.parse(" ; ;") == T.EMPTY


def test_draws_are_the_same_when_sessions_draw_at_once(real_root):
    """torch's generator is the process's: two sessions' threads must not mix their draws."""
    import threading

    data = datalib.load("mnist", "test", real_root, scan_first=False)
    pipeline = T.parse(RANDOM, seed=9)
    images = torch.from_numpy(data.images(range(64))).float().div(255)
    expected = T.apply(pipeline, images, list(range(64)))
    mismatches = []

    def draw() -> None:
        for _ in range(10):
            got = T.apply(pipeline, images, list(range(64)))
            mismatches.extend(j for j in range(64) if not torch.equal(got[j], expected[j]))

    threads = [threading.Thread(target=draw) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert mismatches == []


def test_big_outputs_are_refused_or_sampled_not_allocated(real_root):
    data = datalib.load("mnist", "test", real_root, scan_first=False)
    with pytest.raises(datalib.InvalidRequest, match="GB in the pipeline"):
        datalib.batch(data, datalib.LoaderSettings(1024), 0, T.parse("CenterCrop(size=768)"))
    after = T.after_stats(data, T.parse("CenterCrop(size=512)"))
    assert after.sampled and after.images == T.SAMPLE_PIXELS // (28 * 28 + 512 * 512)
    assert after.what.startswith(f"a seeded sample of {after.images} of 10,000 images")


def test_the_checklist_tells_disk_from_pipeline_shapes(real_root):
    result = checks.checklist(
        "mnist", "test", root=real_root, pipeline=T.parse("CenterCrop(size=20)")
    )
    facts = result["numerical"].facts
    assert facts["images_on_disk"] == "torch.uint8, 10,000 x 1 x 28 x 28"
    assert facts["images_after_the_pipeline"].startswith("torch.float32, each 1 x 20 x 20")
    flip = checks.checklist(
        "mnist", "test", root=real_root, pipeline=T.parse("RandomHorizontalFlip(p=0.5)")
    )
    assert flip["augment"].fix.startswith("eval_transform = None")


def test_a_pipeline_the_images_cannot_take_is_not_applied(real_root, monkeypatch):
    """A colour Normalize in a link opened on MNIST: said in the sidebar, the pages go on."""
    app = open_page(
        real_root, monkeypatch, "batches", transforms="Normalize(mean=0.5/0.5/0.5,std=0.2/0.2/0.2)"
    )
    assert any(
        "Transforms not applied" in e.value and "1 channel" in e.value for e in app.sidebar.error
    )
    assert "batch_images" in image_grids(app) and "batch_after" not in image_grids(app)
    images = open_page(real_root, monkeypatch, "images", transforms="RandomCrop(size=32)")
    assert any("Transforms not applied" in e.value for e in images.sidebar.error)
    assert images.get("plotly_chart")  # the pixel chart still draws


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (
            "Resize(size=1024);" + ";".join(["RandomRotation(degrees=45,expand=true)"] * 3),
            "Step 4 (RandomRotation(degrees=45,expand=true)) would make images of 1 x 2900 x 2900",
        ),
        ("Resize(size=1024);GaussianBlur(kernel_size=99,sigma=50)", "operations an image"),
        ("GaussianBlur(kernel_size=61)", "a kernel of 61 is too big for images of 28 x 28"),
        ("RandomCrop(size=32)", "crops 32 x 32 from images of 28 x 28"),
    ],
)
def test_what_would_cost_too_much_is_refused_before_it_runs(text, says):
    with pytest.raises(datalib.InvalidRequest, match=re.escape(says)):
        T.plan(T.parse(text), (1, 28, 28))


def test_a_big_step_between_small_ones_counts(real_root):
    """Resize up, then down: the output is tiny, the work between is not."""
    data = datalib.load("mnist", "test", real_root, scan_first=False)
    pipeline = T.parse("Resize(size=1024);Resize(size=2)")
    assert T.plan(pipeline, (1, 28, 28)).peak == 1024 * 1024
    with pytest.raises(datalib.InvalidRequest, match="in the pipeline"):
        datalib.batch(data, datalib.LoaderSettings(1024), 0, pipeline)
    after = T.after_stats(data, pipeline)
    assert after.sampled and after.images == T.SAMPLE_PIXELS // (28 * 28 + 1024 * 1024)


def test_the_preview_draws_as_one_seed_then_calls_do(real_root):
    """draws() holds the lock a draw at a time, yet draws what one seed and 4 calls give."""
    data = datalib.load("mnist", "test", real_root, scan_first=False)
    pipeline = T.parse(RANDOM, seed=2)
    image = torch.from_numpy(data.images([5])[0]).float().div(255)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(2 + 5)
        expected = [pipeline.compose(image) for _ in range(4)]
    got = T.draws(data, pipeline, 5, 4)
    assert all(torch.equal(a, b) for a, b in zip(got, expected, strict=True))

"""Data quality: near duplicates (against a brute-force search), outliers and class means
(exact on hand-made images), the label job (finds the labels a folder got wrong, stores its
answer whole, refuses splits it cannot learn from) and the `quality` command's JSON."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import datalib
from datalib import quality
from datalib.quality import labels as label_module
from datalib.quality.near import fingerprints, picture_side
from tests.conftest import (
    LEARNABLE_WRONG,
    TRAIN_LABELS,
    charts,
    grid_captions,
    image_grids,
    open_page,
    pattern,
    plain,
    run_cli,
    save,
    scan_first,
    texts,
)


def splits_of(root: Path, monkeypatch) -> list[datalib.SplitData]:
    monkeypatch.setenv("DATALIB_ROOT", str(root))
    scan_first("folder:learnable", root)
    return [datalib.load("folder:learnable", s, root, scan_first=False) for s in ("train", "test")]


def where(data: datalib.SplitData, name: str) -> int:
    """The index of the file `name` (class/file) in the split."""
    sources = data.sources(np.arange(len(data)))
    return next(i for i, source in enumerate(sources) if source.endswith(name))


# Near duplicates ------------------------------------------------------------------------


def brute_force(splits, bits: int, difference: float) -> set[tuple]:
    """Every pair within `bits` and `difference`, by comparing all pairs."""
    hashes = np.concatenate([d.column("phash") for d in splits])
    side = min(picture_side(d) for d in splits)
    prints = np.concatenate([fingerprints(d, side) for d in splits]).astype(np.int64)
    names = [(d.split, i) for d in splits for i in range(len(d))]
    found = set()
    for a in range(len(names)):
        for b in range(a + 1, len(names)):
            far = (int(hashes[a]) ^ int(hashes[b])).bit_count()
            most = np.maximum(prints[a], prints[b]).sum()
            apart = np.abs(prints[a] - prints[b]).sum() / most if most else 0.0
            if far <= bits and apart <= difference:
                found.add((names[a], names[b]))
    return found


@pytest.mark.parametrize(("bits", "difference"), [(0, 0.1), (4, 0.1), (8, 0.3), (8, 1.0)])
def test_near_duplicates_are_every_pair_a_brute_force_search_finds(
    learnable_root, monkeypatch, bits, difference
):
    splits = splits_of(learnable_root, monkeypatch)
    found = quality.near_duplicates(splits, bits, difference)
    expected = brute_force(splits, bits, difference)
    linked = {m for pair in expected for m in pair}
    assert {m for g in found.groups for m in g.members} == linked
    for group in found.groups:  # each pair lies in one group
        assert group.bits <= bits and group.difference <= difference + 1e-9
    for a, b in expected:
        assert any(a in g.members and b in g.members for g in found.groups)


def test_a_leak_and_a_clash_are_found_across_splits(learnable_root, monkeypatch):
    train, test = splits_of(learnable_root, monkeypatch)
    found = quality.near_duplicates([train, test])
    across = {frozenset(g.members): g for g in found.across}
    leak = frozenset(
        {
            ("train", where(train, "horizontal/0003.png")),
            ("test", where(test, "horizontal/leak.png")),
        }
    )
    clash = frozenset(
        {("train", where(train, "vertical/0010.png")), ("test", where(test, "dots/clash.png"))}
    )
    assert leak in across and not across[leak].conflicting
    assert clash in across and across[clash].conflicting
    assert across[clash].difference == 0 and across[clash].bits == 0
    assert found.images_in("test", across=True) == 2
    assert found.groups[0] == across[clash]  # across splits and labels disagree: first
    assert quality.near_duplicates([train, test]) is found  # kept with the split


def test_identical_images_are_one_group_searched_once(tmp_path, monkeypatch):
    """400 blank images (and 5 others) are one group: each copy linked to the first, at
    distance 0, not 80,000 pairs found and kept."""
    root = tmp_path / "root"
    for i in range(400):
        save(root / "blanks" / "blank" / f"{i:03}.png", np.zeros((16, 16), np.uint8))
    for i in range(5):
        save(root / "blanks" / "other" / f"{i}.png", pattern("dots", np.random.default_rng(i)))
    monkeypatch.setenv("DATALIB_ROOT", str(root))
    data = datalib.load("folder:blanks", "all", root)
    found = quality.near_duplicates([data])
    blank = [g for g in found.groups if len(g.members) == 400]
    assert len(blank) == 1 and blank[0].bits == 0 and blank[0].difference == 0
    assert set(blank[0].names) == {"blank"}


def test_near_duplicate_settings_out_of_range_are_refused(learnable_root, monkeypatch):
    splits = splits_of(learnable_root, monkeypatch)
    with pytest.raises(datalib.InvalidRequest, match="0 to 8 bits"):
        quality.near_duplicates(splits, 9)
    with pytest.raises(datalib.InvalidRequest, match="0 to 1"):
        quality.near_duplicates(splits, 2, 1.5)


def test_real_mnist_near_duplicates_across_train_and_test(real_root, monkeypatch):
    monkeypatch.setenv("DATALIB_ROOT", str(real_root))
    splits = [datalib.load("mnist", s, real_root) for s in ("train", "test")]
    found = quality.near_duplicates(splits)
    assert found.across, "MNIST's test set has near copies of train images"
    for group in found.across:
        assert {"train", "test"} <= set(group.splits)
    hashes = [d.column("phash") for d in splits]
    for group in found.groups[:20]:  # every pair checked by hand: the hash distance holds
        (sa, ia), (sb, ib) = group.members[:2]
        a, b = hashes[sa == "test"][ia], hashes[sb == "test"][ib]
        assert (int(a) ^ int(b)).bit_count() <= group.bits


# Outliers and class means ---------------------------------------------------------------


def test_the_white_image_is_the_first_outlier_and_says_why(learnable_root, monkeypatch):
    train, _ = splits_of(learnable_root, monkeypatch)
    found = quality.outliers(train, 5)
    white = where(train, "dots/0007.png")
    assert found[0].index == white
    assert found[0].reason.startswith(("brightness 1.000", "distance", "contrast 0.000"))
    assert found[0].score > 5
    properties = quality.image_properties(train)
    assert properties.loc[white, "brightness"] == 1.0
    assert properties.loc[white, "contrast"] == 0.0


def test_class_means_and_spreads_are_exact(tiny_root, monkeypatch):
    monkeypatch.setenv("DATALIB_ROOT", str(tiny_root))
    data = datalib.load("mnist", "train", tiny_root)
    made = quality.class_pictures(data)
    # Class 0 holds images 0, 10 and 11: every pixel 0, 200 and 220.
    values = np.array([20 * i for i, label in enumerate(TRAIN_LABELS) if label == 0], float)
    assert made.side == 28 and made.counts.tolist() == np.bincount(TRAIN_LABELS).tolist()
    assert np.allclose(made.mean[0], values.mean())
    assert np.allclose(made.std[0], values.std())
    assert np.allclose(made.mean[3], 60) and np.allclose(made.std[3], 0)
    assert made.distance[0] == pytest.approx(abs(0 - values.mean()) / 255)
    spread = quality.property_spread(data, "brightness")
    assert spread["images"].tolist() == np.bincount(TRAIN_LABELS).tolist()
    assert spread.loc[0, "median"] == pytest.approx(200 / 255)


# Suspicious labels ----------------------------------------------------------------------


def test_the_label_job_ranks_the_wrong_labels_first(learnable_root, monkeypatch):
    train, test = splits_of(learnable_root, monkeypatch)
    assert quality.label_issues(train) is None  # nothing stored before the job
    found = quality.find_label_issues(train)
    wrong = {where(train, f"{kind}/{i:04}.png") for kind, i in LEARNABLE_WRONG}
    worst = set(found.table["index"].head(len(wrong)))
    assert worst == wrong
    assert set(found.flagged["index"]) >= wrong
    assert found.model["folds"] == quality.FOLDS and found.model["accuracy"] >= 0.9
    assert found.table["label_quality"].is_monotonic_increasing
    stored = quality.label_issues(train)  # the stored answer reads back whole
    assert stored is not None and stored.table.equals(found.table)
    folder = train.dataset.results
    assert not list(folder.glob(".tmp-*"))  # nothing half-written left behind
    assert (folder / "model.pt").is_file() and (folder / "map.parquet").is_file()
    # The test split is judged by the model trained on all of train.
    judged = quality.find_label_issues(test)
    assert judged.model["folds"] == 0 and judged.model["trained_on"] == "train"
    assert judged.table["index"].iat[0] == where(test, "dots/clash.png")
    points = quality.data_map(train.dataset).points
    assert len(points) == len(train) + len(test)
    assert set(points["split"]) == {"train", "test"}


def test_cifar_files_go_through_the_same_job_and_page(learnable_cifar_root, monkeypatch):
    """Colour images in CIFAR-10's own format (JPEG thumbnails, three channels): the wrong
    labels come first, and the page shows the findings."""
    root = learnable_cifar_root
    monkeypatch.setenv("DATALIB_ROOT", str(root))
    train = datalib.load("cifar10", "train", root)
    assert train.image_shape == (3, 32, 32)
    found = quality.find_label_issues(train)
    written = [w for batch in range(5) for w in range(len(train)) if w % 5 == batch]
    wrong = {written.index(1 * 30 + i) for _, i in LEARNABLE_WRONG}  # "vertical" is class 1
    assert set(found.table["index"].head(len(wrong))) == wrong
    assert quality.class_pictures(train).mean.shape == (10, 3, 32, 32)
    app = open_page(root, monkeypatch, "quality", dataset="CIFAR-10")
    assert not app.error and "3-fold cross-validation on train" in texts(app)
    first = grid_captions(app, "label_grid")[0].removeprefix("⚑ ")
    assert int(first.split(":")[0].lstrip("#")) in wrong  # the worst finding, shown first


def test_a_damaged_answer_is_not_read_and_the_job_makes_it_again(learnable_root, monkeypatch):
    train, _ = splits_of(learnable_root, monkeypatch)
    path = label_module._answer(train)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"PAR1 cut short")  # what a non-atomic writer could leave
    assert quality.label_issues(train) is None
    assert quality.find_label_issues(train).table["index"].size == len(train)


def test_splits_a_model_cannot_learn_from_are_refused_with_the_reason(tmp_path, monkeypatch):
    root = tmp_path / "root"
    for kind, count in (("only", 6),):
        for i in range(count):
            folder = root / "single" / kind
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(pattern("dots", np.random.default_rng(i))).save(folder / f"{i}.png")
    for kind, count in (("many", 6), ("few", 2)):
        for i in range(count):
            folder = root / "small" / kind
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(pattern("dots", np.random.default_rng(i))).save(folder / f"{i}.png")
    monkeypatch.setenv("DATALIB_ROOT", str(root))
    for name, message in (
        ("folder:single", "1 class only"),
        ("folder:small", "class 'few' has fewer than 3 images"),
    ):
        data = datalib.load(name, "all", root)
        with pytest.raises(datalib.InvalidRequest, match=message):
            quality.find_label_issues(data)
        status = quality.label_job(data).state()
        assert status.error and message in status.error and not status.running
        assert quality.label_issues(data) is None


def test_the_quality_command_prints_the_json_scripts_read(learnable_root, monkeypatch):
    monkeypatch.setenv("DATALIB_ROOT", str(learnable_root))
    result = run_cli("quality", "folder:learnable", "--split", "test", "--json")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["name"] == "folder:learnable" and out["split"] == "test"
    assert set(out["model"]) >= {"kind", "folds", "accuracy"}
    issues = out["label_issues"]
    assert len(issues) == 26  # fewer than 500 images: all of them, worst first
    qualities = [issue["label_quality"] for issue in issues]
    assert qualities == sorted(qualities)
    assert set(issues[0]) >= {"index", "given_label", "predicted_label", "label_quality"}
    groups = out["near_duplicates"]
    assert any(len({s for s, _ in g["indices"]}) == 2 for g in groups)
    assert all({"indices", "labels", "distance"} <= set(g) for g in groups)
    assert out["outliers"] and set(out["outliers"][0]) == {"index", "reason", "score"}


def test_the_quality_command_refuses_bad_settings_in_one_line(learnable_root, monkeypatch):
    monkeypatch.setenv("DATALIB_ROOT", str(learnable_root))
    result = run_cli("quality", "folder:learnable", "--bits", "30")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: The hash distance must be 0 to 8 bits, not 30."
    ]


# The page ---------------------------------------------------------------------------------

SECTIONS = ["Suspicious labels", "Near duplicates", "Outliers", "Class means", "Map"]
PAGE_DATASETS = {  # fixture, the dataset as a link names it, its split
    "CIFAR-10": ("cifar_root", "CIFAR-10", "train"),
    "image folder": ("folder_root", "folder:pets", "train"),
    "learnable folder": ("learnable_root", "folder:learnable", "test"),
}


@pytest.mark.parametrize("section", SECTIONS)
@pytest.mark.parametrize("dataset", list(PAGE_DATASETS))
def test_every_section_works_on_cifar_and_folders(dataset, section, request, monkeypatch):
    """Before any job ran: each section shows what it found, or offers the job, never an
    error or a traceback."""
    fixture, name, split = PAGE_DATASETS[dataset]
    root = request.getfixturevalue(fixture)
    app = open_page(root, monkeypatch, "quality", dataset=name, split=split, section=section)
    assert not app.error, [e.value for e in app.error]
    if section in ("Suspicious labels", "Map"):
        assert any(b.label.startswith(("Find", "Draw")) for b in app.button)
    if section == "Near duplicates":
        assert [m.label for m in app.metric][-1] == "Groups across splits"
    if section == "Class means":
        assert image_grids(app)


def test_the_page_shows_the_findings_and_the_map_after_the_job(learnable_root, monkeypatch):
    _train, test = splits_of(learnable_root, monkeypatch)
    quality.find_label_issues(test)
    page = {"dataset": "folder:learnable", "split": "test"}
    app = open_page(learnable_root, monkeypatch, "quality", **page)
    shown = texts(app)
    assert "small CNN trained on train" in shown and "out-of-sample accuracy" in shown
    captions = grid_captions(app, "label_grid")
    clash = where(test, "dots/clash.png")
    assert captions[0].startswith(f"⚑ #{clash}: dots → vertical")  # flagged, worst first
    assert charts(app)[0]["layout"]["title"]["text"].startswith("folder:learnable test: ")
    app = open_page(learnable_root, monkeypatch, "quality", section="Map", **page)
    figure = charts(app)[0]
    assert "map of 26 images from the model features" in figure["layout"]["title"]["text"]
    kinds = {trace["type"] for trace in figure["data"]}
    assert kinds == {"scattergl"}  # WebGL, for 70,000 points
    assert figure["data"][-1]["name"] == "suspicious label"


def test_a_job_that_cannot_run_says_why_on_the_page(tmp_path, monkeypatch):
    """The button starts the job in the background; its refusal is shown, with a retry."""
    root = tmp_path / "root"
    for i in range(6):
        folder = root / "single" / "only"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pattern("dots", np.random.default_rng(i))).save(folder / f"{i}.png")
    app = open_page(root, monkeypatch, "quality", dataset="folder:single")
    app.button(key="start_" + quality.label_job(load_single(root)).name).click().run()
    deadline = time.monotonic() + 120
    while not app.error and time.monotonic() < deadline:
        time.sleep(1)
        app.run()
    assert "1 class only" in plain(app.error[0].value)
    assert any(b.label == "Start it again" for b in app.button)


def load_single(root: Path) -> datalib.SplitData:
    return datalib.load("folder:single", "all", root, scan_first=False)


def test_the_checklist_counts_near_duplicates_across_train_and_test(learnable_root, monkeypatch):
    splits = splits_of(learnable_root, monkeypatch)
    from datalib.checks import check_splits

    check = check_splits(*splits, learnable_root)
    assert check.facts["near_duplicate_groups_across_train_and_test"] == 2
    assert check.facts["test_images_with_a_near_copy_in_train"] == 2
    assert "2 groups across train and test, holding 2 test images" in check.summary


def test_a_stored_search_is_the_search_and_another_process_reads_it(learnable_root, monkeypatch):
    """What one search finds is stored with the index, read back equal by another process
    (which searches nothing); other settings are another answer."""
    import subprocess
    import sys

    from datalib.quality import near

    splits = splits_of(learnable_root, monkeypatch)
    assert quality.stored_near_duplicates(splits) is None  # nothing searched yet
    found = quality.near_duplicates(splits)
    assert found.across  # something to store
    assert near._read(splits, near.DEFAULT_BITS, near.DEFAULT_DIFFERENCE) == found
    code = (
        "import datalib; from datalib import quality; "
        f"s = [datalib.load('folder:learnable', n, {str(learnable_root)!r}, scan_first=False) "
        "for n in ('train', 'test')]; "
        "f = quality.stored_near_duplicates(s); print(len(f.groups), len(f.across))"
    )
    other = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=120
    )
    assert other.returncode == 0, other.stderr
    assert other.stdout.split() == [str(len(found.groups)), str(len(found.across))]
    assert quality.stored_near_duplicates(splits, 0, 0.0) is None


def test_a_big_search_runs_in_the_background_and_the_checklist_shows_it(
    learnable_root, monkeypatch
):
    """Past IN_PAGE_IMAGES the pages never search: a job does, once, off the server; the
    checklist says it is pending, shows the job's progress, then its count."""
    from datalib.quality import near

    splits = splits_of(learnable_root, monkeypatch)
    monkeypatch.setattr(near, "IN_PAGE_IMAGES", 0)
    app = open_page(learnable_root, monkeypatch, "checklist", dataset="folder:learnable")
    assert not app.exception
    shown = texts(app)
    assert "not known yet: a background search finds them" in shown
    assert f"Searching {sum(len(d) for d in splits):,} images for near duplicates" in shown
    job = quality.near_job(splits, near.DEFAULT_BITS, near.DEFAULT_DIFFERENCE)
    deadline = time.monotonic() + 120
    while job.state().running and time.monotonic() < deadline:
        time.sleep(0.5)
    assert job.state().state == "done", job.log.read_text()[-2000:]
    app.run()
    expected = near._search(splits, near.DEFAULT_BITS, near.DEFAULT_DIFFERENCE)
    assert "not known yet" not in texts(app)
    assert f"{len(expected.across):,} groups across train and test" in texts(app)
    assert quality.stored_near_duplicates(splits) == expected
    # Its answer gone (removed by hand): offered again, never restarted by the page itself.
    for stored in splits[0].dataset.results.glob("near-*-groups.json"):
        stored.unlink()
    splits[0]._derived.clear()
    app = open_page(learnable_root, monkeypatch, "checklist", dataset="folder:learnable")
    assert not job.state().running and "not known yet" in texts(app)
    assert any(b.label == "Search at these settings" for b in app.button)


def test_a_big_search_at_other_settings_waits_for_the_button(learnable_root, monkeypatch):
    """Each setting is a search of its own: only the default one starts by itself."""
    from datalib.quality import near

    splits = splits_of(learnable_root, monkeypatch)
    monkeypatch.setattr(near, "IN_PAGE_IMAGES", 0)
    page = {"dataset": "folder:learnable", "section": "Near duplicates", "bits": "2"}
    app = open_page(learnable_root, monkeypatch, "quality", **page)
    assert not app.exception
    job = quality.near_job(splits, 2, near.DEFAULT_DIFFERENCE)
    assert job.state().state == "not started"
    (button,) = [b for b in app.button if b.label == "Search at these settings"]
    button.click().run()
    deadline = time.monotonic() + 120
    while job.state().state != "done" and time.monotonic() < deadline:
        time.sleep(0.5)
    assert quality.stored_near_duplicates(splits, 2, near.DEFAULT_DIFFERENCE) is not None

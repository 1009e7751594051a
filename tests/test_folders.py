"""Raw image folders: tiny real PNG and JPEG files written by fixtures, exact answers."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.datasets import ImageFolder

import datalib
from datalib import folders
from datalib.folders import find_folders, folder_splits, load_folder, pixels_on_disk

# Known pixels, so a test can check values through every conversion.
RGB = np.arange(8 * 8 * 3, dtype=np.uint8).reshape(8, 8, 3)
GREY = np.full((8, 8), 77, dtype=np.uint8)
RGBA = np.dstack([RGB, np.full((8, 8), 10, dtype=np.uint8)])  # nearly transparent
PALETTE = [255, 0, 0, 0, 0, 255]  # index 0 red, 1 blue
PALETTE_INDEX = np.tile(np.array([0, 1], dtype=np.uint8), (8, 4))  # red, blue, red, ...
WIDE = np.full((10, 12, 3), 200, dtype=np.uint8)  # 12 wide, 10 high: the odd size out


def save(path: Path, pixels: np.ndarray, **options) -> Path:
    """Write `pixels` as a real image file (format from the suffix) and return its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, **options)
    return path


def save_palette(path: Path, index: np.ndarray, palette: list[int]) -> Path:
    """Write a palette (mode P) PNG: `index` picks colours from `palette` (flat RGB)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.frombytes("P", (index.shape[1], index.shape[0]), index.tobytes())
    image.putpalette(palette)
    image.save(path)
    return path


def truncated_png(path: Path) -> Path:
    """A PNG cut off inside its pixel data: PIL opens it, but decoding fails."""
    noise = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    save(path, noise)
    path.write_bytes(path.read_bytes()[:500])
    return path


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every file and folder under root with its size and modification time."""
    return {
        p.relative_to(root).as_posix(): (p.lstat().st_size, p.lstat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
    }


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A data root with a split layout (`pets`), a flat one (`digits`) and things to ignore.

    pets/train: cat holds RGB PNG, RGB JPEG, grey PNG and a nested RGB PNG, plus a hidden
    file, a text file, a link out of the root and a link back to itself; dog holds RGBA,
    palette and a 12x10 RGB, plus a truncated PNG and an HTML page named .png; fox is empty;
    a hidden folder and a class folder that links out of the root are ignored.
    pets/test: two grey 8x8 images. digits: grey images in a flat layout, for ImageFolder.
    """
    data, outside = tmp_path / "root", tmp_path / "outside"
    train = data / "pets" / "train"
    save(train / "cat" / "c0.png", RGB)
    save(train / "cat" / "c1.jpg", RGB, quality=95)
    save(train / "cat" / "c2.png", GREY)
    save(train / "cat" / "more" / "c9.png", RGB)
    save(train / "cat" / ".c3.png", RGB)
    (train / "cat" / "notes.txt").write_text("photos from the shelter")
    save(outside / "secret.png", RGB)
    save(outside / "wolves" / "w0.png", RGB)
    (train / "cat" / "escape.png").symlink_to(outside / "secret.png")
    (train / "cat" / "again").symlink_to(train / "cat")
    save(train / "dog" / "d0.png", RGBA)
    save_palette(train / "dog" / "d1.png", PALETTE_INDEX, PALETTE)
    save(train / "dog" / "d2.png", WIDE)
    truncated_png(train / "dog" / "d3.png")
    (train / "dog" / "d4.png").write_text("<!DOCTYPE html><html><body>Not found</body></html>")
    (train / "fox").mkdir()
    save(train / ".ipynb_checkpoints" / "c0.png", RGB)
    (train / "wolf").symlink_to(outside / "wolves")
    save(data / "pets" / "test" / "cat" / "t0.png", GREY)
    save(data / "pets" / "test" / "dog" / "t1.png", GREY + 1)

    digits = data / "digits"
    grey_palette = [v for level in (0, 85, 170, 255) for v in (level, level, level)]
    save(digits / "one" / "o0.png", GREY)
    save(digits / "one" / "o1.png", PALETTE_INDEX.astype(bool))  # mode 1: black and white
    save(digits / "one" / "a" / "x" / "o2.png", GREY)
    save(digits / "one" / "a-b" / "o3.png", GREY)  # sorts before a/x, as in sorted(os.walk)
    save(digits / "zero" / "z0.png", GREY)
    save_palette(digits / "zero" / "z1.png", PALETTE_INDEX, grey_palette)
    (data / "linked").symlink_to(outside)
    return data


TRAIN_FILES = (
    "pets/train/cat/c0.png",
    "pets/train/cat/c1.jpg",
    "pets/train/cat/c2.png",
    "pets/train/cat/more/c9.png",
    "pets/train/dog/d0.png",
    "pets/train/dog/d1.png",
    "pets/train/dog/d2.png",
)
TRAIN_SKIPPED = (
    ("pets/train/.ipynb_checkpoints", "hidden folder"),
    ("pets/train/cat/.c3.png", "hidden file"),
    ("pets/train/cat/again", "link to a folder already read"),
    ("pets/train/cat/escape.png", "link leads outside the data root"),
    ("pets/train/cat/notes.txt", "not an image file (.txt)"),
    ("pets/train/dog/d3.png", "cannot be decoded: image file is truncated"),
    ("pets/train/dog/d4.png", "cannot be decoded: an HTML page, not an image (a failed download?)"),
    ("pets/train/fox", "empty class folder"),
    ("pets/train/wolf", "link leads outside the data root"),
)


def test_a_split_layout_loads_as_imagefolder_classes_with_everything_odd_skipped(root):
    data = load_folder(root, "pets", "train")
    assert data.classes == ("cat", "dog")
    assert data.files == TRAIN_FILES
    assert data.labels.tolist() == [0, 0, 0, 0, 1, 1, 1]
    assert data.labels.dtype == torch.int64
    assert data.skipped == TRAIN_SKIPPED
    assert data.from_cache is False
    assert (data.folder, data.split, len(data)) == ("pets", "train", 7)


def test_sizes_and_modes_are_reported_as_on_disk(root):
    data = load_folder(root, "pets", "train")
    assert data.sizes == {(8, 8): 6, (12, 10): 1}
    assert data.modes == {"RGB": 4, "L": 1, "RGBA": 1, "P": 1}
    assert data.original_modes == ("RGB", "RGB", "L", "RGB", "RGBA", "P", "RGB")
    assert data.original_sizes.tolist()[-1] == [12, 10]


def test_images_are_brought_to_one_shape_and_the_sentence_says_how(root):
    data = load_folder(root, "pets", "train")
    assert data.images.dtype == torch.uint8
    assert tuple(data.images.shape) == (7, 3, 8, 8)
    assert data.images.is_contiguous()
    assert data.image_shape == (3, 8, 8)
    assert data.conformed == (
        "1 of 7 images resized from other sizes to 8x8 (bilinear); "
        "1 greyscale image converted to RGB; 1 palette image converted to RGB; "
        "1 RGBA image converted to RGB (alpha dropped)."
    )
    as_hwc = data.images.permute(0, 2, 3, 1).numpy()
    np.testing.assert_array_equal(as_hwc[0], RGB)  # PNG: exact
    assert np.abs(as_hwc[1].astype(int) - RGB).max() < 16  # JPEG: close
    np.testing.assert_array_equal(as_hwc[2], np.dstack([GREY] * 3))  # grey on every channel
    np.testing.assert_array_equal(as_hwc[4], RGB)  # alpha dropped, colour kept
    red_blue = np.array(PALETTE, dtype=np.uint8).reshape(2, 3)[PALETTE_INDEX]
    np.testing.assert_array_equal(as_hwc[5], red_blue)
    np.testing.assert_array_equal(as_hwc[6], np.full((8, 8, 3), 200))  # resized, flat stays flat


def test_an_all_grey_split_stays_one_channel(root):
    data = load_folder(root, "pets", "test")
    assert tuple(data.images.shape) == (2, 1, 8, 8)
    assert data.images[:, 0, 0, 0].tolist() == [77, 78]
    assert data.labels.tolist() == [0, 1]
    assert data.skipped == ()
    assert data.conformed == "All 2 images are 8x8 greyscale: nothing was changed."


def test_a_flat_layout_is_one_split_in_imagefolders_order(root):
    assert folder_splits(root, "digits") == ["all"]
    data = load_folder(root, "digits")
    reference = ImageFolder(str(root / "digits"))
    assert data.classes == tuple(reference.classes) == ("one", "zero")
    assert [(root / f).as_posix() for f in data.files] == [p for p, _ in reference.samples]
    assert data.labels.tolist() == reference.targets == [0, 0, 0, 0, 1, 1]
    assert data.files[2:4] == ("digits/one/a-b/o3.png", "digits/one/a/x/o2.png")
    assert tuple(data.images.shape) == (6, 1, 8, 8)
    assert data.conformed == (
        "1 1-bit image converted to greyscale; 1 palette image converted to greyscale."
    )
    assert data.images[1, 0].unique().tolist() == [0, 255]  # 1-bit: black and white
    assert data.images[5, 0, 0, :2].tolist() == [0, 85]  # grey palette: its grey levels


def test_a_class_without_a_loadable_image_is_dropped_and_the_rest_renumbered(root):
    save(root / "zoo" / "ant" / "a.png", GREY)
    (root / "zoo" / "bee").mkdir()
    (root / "zoo" / "bee" / "b.png").write_text("<html>Forbidden</html>")
    save(root / "zoo" / "cow" / "c.png", GREY)
    (root / "zoo" / "dog").mkdir()
    (root / "zoo" / "dog" / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    data = load_folder(root, "zoo")
    assert data.classes == ("ant", "cow")
    assert data.labels.tolist() == [0, 1]
    assert data.skipped == (
        ("zoo/bee", "class folder without a loadable image"),
        ("zoo/bee/b.png", "cannot be decoded: an HTML page, not an image (a failed download?)"),
        ("zoo/dog", "empty class folder"),
        ("zoo/dog/.DS_Store", "hidden file"),
    )


def test_splits_are_listed_in_train_val_test_order(root):
    assert folder_splits(root, "pets") == ["train", "test"]
    for split in ("test", "Val", "Train"):
        save(root / "mixed" / split / "cls" / "a.png", GREY)
    assert folder_splits(root, "mixed") == ["Train", "Val", "test"]


def test_find_folders_lists_image_folders_up_to_two_levels(root):
    save(root / "collections" / "flowers" / "rose" / "r.png", RGB)  # depth 2: found
    save(root / "deep" / "er" / "est" / "cls" / "x.png", RGB)  # depth 3: not looked at
    save(root / "MNIST" / "raw" / "x.png", GREY)  # a torchvision dataset, not an image folder
    (root / "cifar-10-batches-py").mkdir()  # torchvision's CIFAR: pickles, no class folders
    (root / "cifar-10-batches-py" / "data_batch_1").write_bytes(b"\x80\x04")
    save(root / ".secret" / "cls" / "x.png", RGB)  # hidden
    (root / "notes" / "cls").mkdir(parents=True)
    (root / "notes" / "cls" / "a.txt").write_text("no images here")
    (root / "pets-link").symlink_to(root / "pets")  # a link inside the root is fine
    load_folder(root, "digits")  # writes .batchscope-cache, which is hidden
    assert find_folders(root) == ["collections/flowers", "digits", "pets", "pets-link"]
    assert find_folders(root / "nowhere") == []


def test_info_is_plain_json_for_the_command_line(root):
    info = load_folder(root, "pets", "train").info()
    assert json.loads(json.dumps(info)) == info
    assert info["size"] == 7 and info["image_shape"] == [3, 8, 8]
    assert info["skipped"][0] == {
        "path": "pets/train/.ipynb_checkpoints",
        "reason": "hidden folder",
    }
    assert len(info["skipped"]) == len(TRAIN_SKIPPED)
    assert info["sizes"] == [
        {"width": 8, "height": 8, "count": 6},
        {"width": 12, "height": 10, "count": 1},
    ]
    assert info["modes"] == {"RGB": 4, "L": 1, "RGBA": 1, "P": 1}


def test_pixels_on_disk_are_before_any_resize(root):
    wide = pixels_on_disk(root, "pets/train/dog/d2.png")
    assert wide.shape == (10, 12, 3) and wide.dtype == np.uint8
    np.testing.assert_array_equal(pixels_on_disk(root, "pets/train/cat/c2.png", 1), GREY)
    assert pixels_on_disk(root, "pets/train/cat/c2.png").shape == (8, 8, 3)
    with pytest.raises(datalib.CorruptFile, match="an HTML page"):
        pixels_on_disk(root, "pets/train/dog/d4.png")
    with pytest.raises(datalib.InvalidRequest, match="through a symbolic link"):
        pixels_on_disk(root, "pets/train/cat/escape.png")
    with pytest.raises(datalib.InvalidRequest, match="channels must be 1"):
        pixels_on_disk(root, "pets/train/cat/c2.png", 4)
    with pytest.raises(datalib.DatasetMissing, match="no image file"):
        pixels_on_disk(root, "pets/train/cat/c8.png")


def test_progress_is_reported_while_decoding_and_at_the_end(root):
    for i in range(130):
        save(root / "many" / f"c{i % 2}" / f"{i:03}.png", GREY[:2, :2])
    calls = []
    data = load_folder(root, "many", progress=lambda done, total: calls.append((done, total)))
    assert len(data) == 130
    assert calls == [(64, 130), (128, 130), (130, 130)]
    calls.clear()
    assert load_folder(root, "many", progress=lambda *a: calls.append(a)).from_cache
    assert calls == [(130, 130)]


# The disk cache --------------------------------------------------------------------------


def cache_files(root: Path) -> list[str]:
    return sorted(p.name for p in (root / folders.CACHE_FOLDER).iterdir())


def assert_same(a: folders.FolderSplit, b: folders.FolderSplit) -> None:
    assert torch.equal(a.images, b.images) and a.images.dtype == b.images.dtype
    assert torch.equal(a.labels, b.labels) and a.labels.dtype == b.labels.dtype
    assert torch.equal(a.original_sizes, b.original_sizes)
    for field in ("classes", "files", "skipped", "sizes", "modes", "original_modes", "conformed"):
        assert getattr(a, field) == getattr(b, field), field


def test_a_second_load_reads_the_cache_without_decoding(root, monkeypatch):
    first = load_folder(root, "pets", "train")
    assert len(cache_files(root)) == 1 and cache_files(root)[0].endswith(".npz")

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded an image although the cache holds it")

    monkeypatch.setattr(folders.Image, "open", no_decoding)
    second = load_folder(root, "pets", "train")
    assert second.from_cache is True
    assert_same(first, second)
    assert second.images.is_contiguous()


def test_the_cache_is_keyed_by_folder_and_split(root):
    load_folder(root, "pets", "train")
    test = load_folder(root, "pets", "test")
    assert test.from_cache is False and len(test) == 2
    assert len(cache_files(root)) == 2


def test_the_cache_is_written_to_a_temp_file_then_renamed(root, monkeypatch):
    renames = []
    real_replace = os.replace
    monkeypatch.setattr(os, "replace", lambda a, b: (renames.append((a, b)), real_replace(a, b)))
    load_folder(root, "digits")
    [(temp, final)] = renames
    cache = root / folders.CACHE_FOLDER
    assert Path(temp).parent == Path(final).parent == cache
    assert Path(temp).name.startswith(".tmp-")
    assert cache_files(root) == [Path(final).name]


def test_a_failed_cache_write_leaves_nothing_behind(root, monkeypatch):
    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(folders.np, "savez", disk_full)
    data = load_folder(root, "digits")
    assert len(data) == 6
    assert cache_files(root) == []


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda path: save(path, 255 - GREY), id="new pixels"),
        pytest.param(lambda path: os.utime(path, ns=(1, 1)), id="new mtime only"),
        pytest.param(lambda path: save(path.with_name("z9.png"), GREY), id="one more file"),
        pytest.param(lambda path: path.unlink(), id="one file less"),
        pytest.param(lambda path: (path.parent.parent / "two").mkdir(), id="one more empty class"),
    ],
)
def test_any_change_to_the_files_invalidates_the_cache(root, change):
    before = load_folder(root, "digits")
    change(root / "digits" / "zero" / "z0.png")
    after = load_folder(root, "digits")
    assert after.from_cache is False
    assert load_folder(root, "digits").from_cache is True
    assert len(cache_files(root)) == 1  # the outdated version was removed
    assert len(before) == 6


def test_new_pixels_are_seen_after_a_change(root):
    load_folder(root, "digits")
    save(root / "digits" / "zero" / "z0.png", 255 - GREY)
    assert load_folder(root, "digits").images[4, 0, 0, 0] == 255 - 77


@pytest.mark.parametrize("content", [b"", b"not a zip file", b"PK\x03\x04 truncated"])
def test_a_corrupt_cache_file_is_ignored_and_rebuilt(root, content):
    first = load_folder(root, "pets", "train")
    [name] = cache_files(root)
    (root / folders.CACHE_FOLDER / name).write_bytes(content)
    rebuilt = load_folder(root, "pets", "train")
    assert rebuilt.from_cache is False
    assert_same(first, rebuilt)
    assert load_folder(root, "pets", "train").from_cache is True


def test_a_cache_folder_that_links_elsewhere_is_not_written_through(root, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (root / folders.CACHE_FOLDER).symlink_to(elsewhere)
    assert load_folder(root, "digits").from_cache is False
    assert list(elsewhere.iterdir()) == []


@pytest.fixture
def read_only(monkeypatch):
    """Make a data root read-only: by mode bits, and where tests run as root (who ignores
    mode bits) also by refusing writes under it the way a read-only mount does (EROFS)."""
    made = []

    def make(root: Path) -> None:
        folders_under = [root, *(p for p in root.rglob("*") if p.is_dir() and not p.is_symlink())]
        for folder in folders_under:
            folder.chmod(0o555)
        made.extend(folders_under)
        if os.geteuid() != 0:
            return
        base = str(root.resolve())

        def refuse_under_root(real, is_write=lambda *a: True):
            def call(path, *args, **kwargs):
                if os.path.abspath(path).startswith(base) and is_write(*args):
                    raise OSError(errno.EROFS, "Read-only file system", path)
                return real(path, *args, **kwargs)

            return call

        writes = os.O_WRONLY | os.O_RDWR | os.O_CREAT
        monkeypatch.setattr(
            os, "open", refuse_under_root(os.open, lambda flags, *a: bool(flags & writes))
        )
        for name in ("mkdir", "replace", "rename", "unlink", "remove"):
            monkeypatch.setattr(os, name, refuse_under_root(getattr(os, name)))

    yield make
    monkeypatch.undo()
    for folder in made:
        folder.chmod(0o755)


def test_a_read_only_root_loads_without_a_cache_and_writes_nothing(root, read_only):
    read_only(root)
    before = snapshot(root)
    first = load_folder(root, "pets", "train")
    second = load_folder(root, "pets", "train")
    assert first.from_cache is second.from_cache is False
    assert_same(first, second)
    assert snapshot(root) == before


def test_a_cache_written_earlier_is_read_from_a_read_only_root(root, read_only):
    load_folder(root, "pets", "train")
    read_only(root)
    assert load_folder(root, "pets", "train").from_cache is True


def test_nothing_is_written_outside_the_cache_folder(root):
    before = snapshot(root)
    load_folder(root, "pets", "train")
    after = snapshot(root)
    new = {path for path in after if path not in before}
    assert {path.split("/")[0] for path in new} == {folders.CACHE_FOLDER}
    assert {k: v for k, v in after.items() if k in before} == before


# Errors a user can cause ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("relative", "message"),
    [
        ("../outside", "climbs out with '..'"),
        ("/etc", "is an absolute path"),
        ("linked", "through a symbolic link"),
        ("pets\x00", "NUL byte"),
    ],
)
def test_escapes_from_the_root_are_refused(root, relative, message):
    with pytest.raises(datalib.InvalidRequest, match=message):
        folder_splits(root, relative)
    with pytest.raises(datalib.InvalidRequest, match=message):
        load_folder(root, relative)


def test_a_missing_folder_says_where_the_images_go(root):
    with pytest.raises(datalib.DatasetMissing, match=r"no folder 'cats'.*cats/<class>/<image>"):
        load_folder(root, "cats")
    with pytest.raises(datalib.DatasetMissing, match="no folder 'cats'"):
        folder_splits(root, "cats")


def test_a_file_is_not_a_folder(root):
    with pytest.raises(datalib.InvalidRequest, match="is a file, not a folder"):
        load_folder(root, "digits/one/o0.png")


def test_a_missing_data_root_is_named(tmp_path):
    with pytest.raises(datalib.DataRootError, match="is not a folder"):
        load_folder(tmp_path / "nowhere", "pets")


def test_a_folder_without_class_folders_says_how_to_lay_it_out(root):
    save(root / "loose" / "a.png", GREY)
    with pytest.raises(datalib.DatasetMissing, match=r"loose holds no class folders.*<class>"):
        load_folder(root, "loose")


def test_a_split_that_is_not_there_names_the_choices(root):
    with pytest.raises(datalib.UnknownDataset, match="Choose one of: train, test"):
        load_folder(root, "pets", "val")
    with pytest.raises(datalib.UnknownDataset, match="Choose 'all'"):
        load_folder(root, "digits", "train")
    with pytest.raises(datalib.UnknownDataset, match="Choose one of: train, test"):
        load_folder(root, "pets")


def test_a_folder_where_every_image_is_broken_is_an_error_not_an_empty_dataset(root):
    truncated_png(root / "broken" / "cls" / "a.png")
    (root / "broken" / "cls" / "b.png").write_text("<html>Access denied</html>")
    with pytest.raises(datalib.CorruptFile, match=r"None of the 2 image files in broken"):
        load_folder(root, "broken")
    (root / "texts" / "cls").mkdir(parents=True)
    (root / "texts" / "cls" / "a.txt").write_text("hello")
    with pytest.raises(datalib.DatasetMissing, match=r"texts holds no image files.*\.png"):
        load_folder(root, "texts")

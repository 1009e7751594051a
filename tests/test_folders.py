"""Raw image folders: tiny real PNG and JPEG files written by fixtures, exact answers."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import numpy as np
import pytest
import torchvision.datasets.folder
from PIL import Image
from torchvision.datasets import ImageFolder

import datalib
from datalib.formats.folder import IMG_EXTENSIONS, find_folders
from tests.conftest import (
    GREY,
    PALETTE,
    PALETTE_INDEX,
    PETS_TRAIN_FILES,
    PETS_TRAIN_SKIPPED,
    RGB,
    save,
    truncated_png,
)


def load_folder(root: Path, folder: str, split: str = "all") -> datalib.SplitData:
    return datalib.load(f"folder:{folder}", split, root)


def folder_splits(root: Path, folder: str) -> list[str]:
    return list(datalib.splits_of(f"folder:{folder}", root))


def files(data: datalib.SplitData) -> tuple[str, ...]:
    return tuple(data.sources(range(len(data))))


def skipped(data: datalib.SplitData) -> tuple[tuple[str, str], ...]:
    return tuple((s["path"], s["reason"]) for s in data.details["skipped"])


def test_imagefolder_reads_the_extensions_listed_here():
    assert IMG_EXTENSIONS == torchvision.datasets.folder.IMG_EXTENSIONS


def test_a_split_layout_loads_as_imagefolder_classes_with_everything_odd_skipped(folder_root):
    data = load_folder(folder_root, "pets", "train")
    assert data.classes == ("cat", "dog")
    assert files(data) == PETS_TRAIN_FILES
    assert data.labels.tolist() == [0, 0, 0, 0, 1, 1, 1]
    assert data.labels.dtype == np.int64
    assert skipped(data) == PETS_TRAIN_SKIPPED
    assert (data.spec.name, data.split, len(data)) == ("folder:pets", "train", 7)


def test_sizes_and_modes_are_reported_as_on_disk(folder_root):
    data = load_folder(folder_root, "pets", "train")
    assert data.details["sizes"] == [
        {"width": 8, "height": 8, "count": 6},
        {"width": 12, "height": 10, "count": 1},
    ]
    assert data.details["modes"] == {"RGB": 4, "L": 1, "RGBA": 1, "P": 1}
    assert data.column("mode").tolist() == ["RGB", "RGB", "L", "RGB", "RGBA", "P", "RGB"]
    assert (data.column("width")[-1], data.column("height")[-1]) == (12, 10)


def test_images_are_brought_to_one_shape_and_the_sentence_says_how(folder_root):
    data = load_folder(folder_root, "pets", "train")
    images = data.images(range(len(data)))
    assert images.dtype == np.uint8 and images.shape == (7, 3, 8, 8)
    assert data.image_shape == (3, 8, 8)
    assert data.details["conformed"] == (
        "1 of 7 images resized from other sizes to 8x8 (bilinear); "
        "1 greyscale image converted to RGB; 1 palette image converted to RGB; "
        "1 RGBA image converted to RGB (alpha dropped)."
    )
    as_hwc = images.transpose(0, 2, 3, 1)
    np.testing.assert_array_equal(as_hwc[0], RGB)  # PNG: exact
    assert np.abs(as_hwc[1].astype(int) - RGB).max() < 16  # JPEG: close
    np.testing.assert_array_equal(as_hwc[2], np.dstack([GREY] * 3))  # grey on every channel
    np.testing.assert_array_equal(as_hwc[4], RGB)  # alpha dropped, colour kept
    red_blue = np.array(PALETTE, dtype=np.uint8).reshape(2, 3)[PALETTE_INDEX]
    np.testing.assert_array_equal(as_hwc[5], red_blue)
    np.testing.assert_array_equal(as_hwc[6], np.full((8, 8, 3), 200))  # resized, flat stays flat


def test_an_all_grey_split_stays_one_channel(folder_root):
    data = load_folder(folder_root, "pets", "test")
    images = data.images(range(len(data)))
    assert images.shape == (2, 1, 8, 8)
    assert images[:, 0, 0, 0].tolist() == [77, 78]
    assert data.labels.tolist() == [0, 1]
    assert skipped(data) == ()
    assert data.details["conformed"] == "All 2 images are 8x8 greyscale: nothing was changed."


def test_a_flat_layout_is_one_split_in_imagefolders_order(folder_root):
    assert folder_splits(folder_root, "digits") == ["all"]
    data = load_folder(folder_root, "digits")
    reference = ImageFolder(str(folder_root / "digits"))
    assert data.classes == tuple(reference.classes) == ("one", "zero")
    assert [(folder_root / f).as_posix() for f in files(data)] == [p for p, _ in reference.samples]
    assert data.labels.tolist() == reference.targets == [0, 0, 0, 0, 1, 1]
    assert files(data)[2:4] == ("digits/one/a-b/o3.png", "digits/one/a/x/o2.png")
    images = data.images(range(len(data)))
    assert images.shape == (6, 1, 8, 8)
    assert data.details["conformed"] == (
        "1 1-bit image converted to greyscale; 1 palette image converted to greyscale."
    )
    assert np.unique(images[1, 0]).tolist() == [0, 255]  # 1-bit: black and white
    assert images[5, 0, 0, :2].tolist() == [0, 85]  # grey palette: its grey levels


def test_a_class_without_a_loadable_image_is_dropped_and_the_rest_renumbered(folder_root):
    save(folder_root / "zoo" / "ant" / "a.png", GREY)
    (folder_root / "zoo" / "bee").mkdir()
    (folder_root / "zoo" / "bee" / "b.png").write_text("<html>Forbidden</html>")
    save(folder_root / "zoo" / "cow" / "c.png", GREY)
    (folder_root / "zoo" / "dog").mkdir()
    (folder_root / "zoo" / "dog" / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    data = load_folder(folder_root, "zoo")
    assert data.classes == ("ant", "cow")
    assert data.labels.tolist() == [0, 1]
    assert skipped(data) == (
        ("zoo/bee", "class folder without a loadable image"),
        ("zoo/bee/b.png", "cannot be decoded: an HTML page, not an image (a failed download?)"),
        ("zoo/dog", "empty class folder"),
        ("zoo/dog/.DS_Store", "hidden file"),
    )


def test_splits_are_listed_in_train_val_test_order(folder_root):
    assert folder_splits(folder_root, "pets") == ["train", "test"]
    for split in ("test", "Val", "Train"):
        save(folder_root / "mixed" / split / "cls" / "a.png", GREY)
    assert folder_splits(folder_root, "mixed") == ["Train", "Val", "test"]


def test_find_folders_lists_image_folders_up_to_two_levels(folder_root):
    root = folder_root
    save(root / "collections" / "flowers" / "rose" / "r.png", RGB)  # depth 2: found
    save(root / "deep" / "er" / "est" / "cls" / "x.png", RGB)  # depth 3: not looked at
    save(root / "MNIST" / "raw" / "x.png", GREY)  # a torchvision dataset, not an image folder
    (root / "cifar-10-batches-py").mkdir()  # torchvision's CIFAR: pickles, no class folders
    (root / "cifar-10-batches-py" / "data_batch_1").write_bytes(b"\x80\x04")
    save(root / ".secret" / "cls" / "x.png", RGB)  # hidden
    (root / "notes" / "cls").mkdir(parents=True)
    (root / "notes" / "cls" / "a.txt").write_text("no images here")
    (root / "pets-link").symlink_to(root / "pets")  # a link inside the root is fine
    (root / ".batchscope-cache" / "datasets").mkdir(parents=True)  # hidden: never a dataset
    assert find_folders(root) == ["collections/flowers", "digits", "pets", "pets-link"]
    assert find_folders(root / "nowhere") == []


def test_info_is_plain_json_for_the_command_line(folder_root):
    from datalib.__main__ import info

    facts = info("folder:pets", str(folder_root))
    assert json.loads(json.dumps(facts)) == facts
    train = facts["splits"]["train"]
    assert train["size"] == 7 and train["image_shape"] == [3, 8, 8]
    assert train["skipped"][0] == {
        "path": "pets/train/.ipynb_checkpoints",
        "reason": "hidden folder",
    }
    assert len(train["skipped"]) == len(PETS_TRAIN_SKIPPED)
    assert train["sizes"] == [
        {"width": 8, "height": 8, "count": 6},
        {"width": 12, "height": 10, "count": 1},
    ]
    assert train["modes"] == {"RGB": 4, "L": 1, "RGBA": 1, "P": 1}


def test_images_shown_are_decoded_as_the_loader_gives_them(folder_root):
    data = load_folder(folder_root, "pets", "train")
    wide = data.decode([6])[0]  # as read: its own size
    assert wide.shape == (10, 12, 3) and wide.dtype == np.uint8
    assert data.pixels([6])[0].shape == (8, 8, 3)  # as the loader batches it
    grey = load_folder(folder_root, "pets", "test")
    np.testing.assert_array_equal(grey.pixels([0])[0], GREY)


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
def test_escapes_from_the_root_are_refused(folder_root, relative, message):
    with pytest.raises(datalib.InvalidRequest, match=message):
        folder_splits(folder_root, relative)
    with pytest.raises(datalib.InvalidRequest, match=message):
        load_folder(folder_root, relative)


def test_a_missing_folder_says_where_the_images_go(folder_root):
    with pytest.raises(datalib.DatasetMissing, match=r"no folder 'cats'.*cats/<class>/<image>"):
        load_folder(folder_root, "cats")
    with pytest.raises(datalib.DatasetMissing, match="no folder 'cats'"):
        folder_splits(folder_root, "cats")


def test_a_file_is_not_a_folder(folder_root):
    with pytest.raises(datalib.InvalidRequest, match="is a file, not a folder"):
        load_folder(folder_root, "digits/one/o0.png")


def test_a_missing_data_root_is_named(tmp_path):
    with pytest.raises(datalib.DataRootError, match="does not exist"):
        load_folder(tmp_path / "nowhere", "pets")


def test_a_folder_without_class_folders_says_how_to_lay_it_out(folder_root):
    save(folder_root / "loose" / "a.png", GREY)
    with pytest.raises(datalib.DatasetMissing, match=r"loose holds no class folders.*<class>"):
        load_folder(folder_root, "loose")


def test_a_split_that_is_not_there_names_the_choices(folder_root):
    with pytest.raises(datalib.UnknownDataset, match="Choose one of: train, test"):
        load_folder(folder_root, "pets", "val")
    with pytest.raises(datalib.UnknownDataset, match="Choose one of: all"):
        load_folder(folder_root, "digits", "train")
    with pytest.raises(datalib.UnknownDataset, match="Choose one of: train, test"):
        load_folder(folder_root, "pets")


def test_a_folder_where_every_image_is_broken_is_an_error_not_an_empty_dataset(folder_root):
    truncated_png(folder_root / "broken" / "cls" / "a.png")
    (folder_root / "broken" / "cls" / "b.png").write_text("<html>Access denied</html>")
    with pytest.raises(datalib.CorruptFile, match=r"None of the 2 image files in broken"):
        load_folder(folder_root, "broken")
    (folder_root / "texts" / "cls").mkdir(parents=True)
    (folder_root / "texts" / "cls" / "a.txt").write_text("hello")
    with pytest.raises(datalib.DatasetMissing, match=r"texts holds no image files.*\.png"):
        load_folder(folder_root, "texts")


# JPEGs: libjpeg-turbo through simplejpeg, PIL's pixels exactly --------------------------


def _jpeg_kinds() -> list[tuple[str, Image.Image, dict]]:
    rng = np.random.default_rng(7)
    kinds = []
    for width, height in [(1, 1), (17, 3), (63, 65), (500, 375)]:
        noise = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        small = Image.fromarray(noise).resize((max(1, width // 4), max(1, height // 4)))
        smooth = small.resize((width, height), Image.Resampling.BILINEAR)
        for picture, look in ((Image.fromarray(noise), "noise"), (smooth, "smooth")):
            for subsampling in (0, 1, 2):
                for progressive in (False, True):
                    kinds.append(
                        (
                            f"{width}x{height}-{look}-sub{subsampling}-prog{int(progressive)}",
                            picture,
                            {"subsampling": subsampling, "progressive": progressive},
                        )
                    )
            kinds.append((f"{width}x{height}-{look}-grey", picture.convert("L"), {}))
            kinds.append((f"{width}x{height}-{look}-cmyk", picture.convert("CMYK"), {}))
    return kinds


def test_jpegs_of_every_kind_read_as_pil_decodes_them(tmp_path, monkeypatch):
    """The scan and the pages read JPEGs with libjpeg-turbo through simplejpeg (three times
    faster on small images): the pixels and the mode are PIL's, which ImageFolder gives."""
    import io

    import simplejpeg

    from datalib.formats.folder import read_image

    turbo = []
    real = simplejpeg.decode_jpeg
    monkeypatch.setattr(
        simplejpeg,
        "decode_jpeg",
        lambda data, **kw: turbo.append(kw["colorspace"]) or real(data, **kw),
    )
    for name, picture, options in _jpeg_kinds():
        path = tmp_path / f"{name}.jpg"
        with contextlib.suppress(OSError):  # PIL cannot write some tiny progressive ones
            buffer = io.BytesIO()
            picture.save(buffer, "JPEG", quality=90, **options)
            path.write_bytes(buffer.getvalue())
        if not path.exists():
            continue
        read = read_image(tmp_path, path.name)
        with Image.open(path) as image:
            image.load()
            expected = np.asarray(image if image.mode in ("L", "RGB") else image.convert("RGB"))
            mode = image.mode
        assert read.mode == mode, name
        np.testing.assert_array_equal(read.pixels, expected, err_msg=name)
        assert not read.pixels.flags.writeable
    # Grey and colour went through libjpeg-turbo; CMYK went to PIL (one kind of each size).
    kinds = _jpeg_kinds()
    assert turbo.count("GRAY") == sum("grey" in name for name, _, _ in kinds)
    assert "CMYK" not in turbo and turbo.count("RGB") >= 4
    # A truncated JPEG: PIL's verdict and words, as before.
    whole = (tmp_path / "63x65-smooth-sub2-prog0.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(whole[: len(whole) // 2])
    assert read_image(tmp_path, "cut.jpg").reason.startswith(
        "cannot be decoded: image file is truncated"
    )
    # An ImageFolder reads a JPEG named .png as a JPEG; so do we.
    (tmp_path / "named.png").write_bytes(whole)
    with Image.open(tmp_path / "named.png") as image:
        np.testing.assert_array_equal(read_image(tmp_path, "named.png").pixels, np.asarray(image))

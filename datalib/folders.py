"""Raw image folders, `<folder>/<split>/<class>/<image>`, read as torchvision's ImageFolder reads
them, brought to one shape, and cached on disk under the data root."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import PIL
import torch
from PIL import Image

from datalib.errors import (
    CorruptFile,
    DataRootError,
    DatasetMissing,
    InvalidRequest,
    UnknownDataset,
)
from datalib.paths import inside_root

__all__ = [
    "CACHE_FOLDER",
    "RESAMPLE",
    "SINGLE_SPLIT",
    "SPLIT_NAMES",
    "FolderSplit",
    "find_folders",
    "folder_splits",
    "load_folder",
    "pixels_on_disk",
]

CACHE_FOLDER = ".batchscope-cache"
# A folder whose sub-folders all have one of these names (any case) holds splits, not classes.
SPLIT_NAMES = ("train", "training", "val", "valid", "validation", "test", "testing")
SINGLE_SPLIT = "all"
RESAMPLE = "bilinear"
PROGRESS_EVERY = 64
# Bump when what is stored changes, so caches written by older code are rebuilt, never misread.
CACHE_FORMAT = 1
_STALE_TEMP_SECONDS = 3600

# PIL modes that hold one grey channel; converting them to L is what ImageFolder's RGB
# conversion does to each channel too (16- and 32-bit values are clipped to 0-255).
_GREY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"})
_MODE_WORDS = {"L": "greyscale", "P": "palette", "PA": "palette", "1": "1-bit"}
_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})
_WIDE_MODES = frozenset({"I", "I;16", "I;16L", "I;16B", "I;16N", "F"})


@dataclass(frozen=True, eq=False)
class FolderSplit:
    """One split of an image folder, decoded and brought to one shape.

    `images` is uint8, N x C x H x W and contiguous; `labels` is int64, N, aligned with
    `files`. `sizes` and `modes` describe the images as they are on disk, before
    `conformed` (a sentence) says what was done to bring them to one shape. Shared by
    every caller: never modify it in place.
    """

    folder: str
    split: str
    images: torch.Tensor
    labels: torch.Tensor
    classes: tuple[str, ...]
    files: tuple[str, ...]
    skipped: tuple[tuple[str, str], ...]
    sizes: Counter[tuple[int, int]]
    modes: Counter[str]
    original_sizes: torch.Tensor
    original_modes: tuple[str, ...]
    conformed: str
    from_cache: bool

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """C, H, W of every image after conforming."""
        c, h, w = self.images.shape[1:]
        return int(c), int(h), int(w)

    def info(self) -> dict:
        """What was skipped and conformed, as plain JSON-ready data (for `info --json`)."""
        return {
            "folder": self.folder,
            "split": self.split,
            "size": len(self),
            "image_shape": list(self.image_shape),
            "skipped": [{"path": path, "reason": reason} for path, reason in self.skipped],
            "sizes": [
                {"width": w, "height": h, "count": n} for (w, h), n in self.sizes.most_common()
            ],
            "modes": dict(self.modes.most_common()),
            "conformed": self.conformed,
            "from_cache": self.from_cache,
        }


def find_folders(root: Path) -> list[str]:
    """Image-folder datasets under the data root, up to two levels down, as POSIX paths."""
    base = Path(root).resolve()
    if not os.path.isdir(base):
        return []
    found = []
    for first in _subfolders(base, base):
        if _torchvision_layout(first):
            continue
        if _is_image_folder(first, base):
            found.append(first)
            continue
        found += [
            second
            for second in _subfolders(first, base)
            if not _torchvision_layout(second) and _is_image_folder(second, base)
        ]
    return sorted(path.relative_to(base).as_posix() for path in found)


def folder_splits(root: Path, relative: str) -> list[str]:
    """The folder's splits in train, val, test order, or `["all"]` when it is one split."""
    _, folder = _dataset_folder(root, relative)
    splits = _split_folders(folder)
    return [path.name for path in splits] if splits else [SINGLE_SPLIT]


def load_folder(
    root: Path,
    relative: str,
    split: str = SINGLE_SPLIT,
    progress: Callable[[int, int], None] | None = None,
) -> FolderSplit:
    """One split of an image folder, decoded (or read from the disk cache) and conformed.

    `progress(done, total)` is called every `PROGRESS_EVERY` images while decoding, and once
    at the end. A folder, split or image a user can fix raises an error of datalib's own.
    """
    base, folder = _dataset_folder(root, relative)
    name = folder.relative_to(base).as_posix()
    split_dir = _split_folder(folder, name, split)
    try:
        listing = _list_split(base, split_dir)
    except OSError as e:
        raise DataRootError(
            f"{_under(split_dir, base)} cannot be read ({e.strerror}). Fix its permissions so "
            "this user can list it."
        ) from None
    where = name if split_dir == folder else f"{name}/{split}"
    if not listing.classes:
        raise DatasetMissing(
            f"{where} holds no class folders. ImageFolder reads one folder per class: "
            f"put the images in {where}/<class>/<image>.png."
        )
    cache_file = base / CACHE_FOLDER / _cache_name(name, split, listing.stamp)
    cached = _read_cache(cache_file, name, split)
    if cached is not None:
        if progress is not None:
            progress(len(listing.samples), len(listing.samples))
        return cached
    result = _decode_split(base, name, split, where, listing, progress)
    _write_cache(cache_file, result)
    return result


def pixels_on_disk(root: Path, file: str, channels: int = 3) -> np.ndarray:
    """One image file's pixels at its own size, uint8 H x W (channels 1) or H x W x 3.

    These are the values on disk, before any resize; modes are converted as loading does.
    """
    if channels not in (1, 3):
        raise InvalidRequest(f"channels must be 1 (greyscale) or 3 (RGB), not {channels!r}.")
    path = inside_root(Path(root), file)
    if not path.is_file():
        raise DatasetMissing(f"There is no image file {file!r} under the data root {root}.")
    try:
        with Image.open(path) as image:
            image.load()
            pixels = np.asarray(_grey_or_rgb(image))
    except Exception as e:  # noqa: BLE001 - PIL raises many kinds for a bad file
        raise CorruptFile(f"{file} {_load_failure(path, e)}.") from None
    if channels == 1 and pixels.ndim == 3:
        return np.asarray(Image.fromarray(pixels).convert("L"))
    if channels == 3 and pixels.ndim == 2:
        return np.repeat(pixels[:, :, None], 3, axis=2)
    return pixels


# Finding folders and files -------------------------------------------------------------------


def _imagefolder():
    """torchvision's ImageFolder helpers (imported lazily: torchvision is slow to import)."""
    from torchvision.datasets import folder

    return folder


def _hidden(name: str) -> bool:
    return name.startswith(".")


def _leads_outside(path: Path | str, base: Path) -> bool:
    return not Path(os.path.realpath(path)).is_relative_to(base)


def _subfolders(folder: Path, base: Path) -> list[Path]:
    """Visible sub-folders that stay inside the data root, sorted by name."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return []
    return sorted(
        Path(entry.path)
        for entry in entries
        if not _hidden(entry.name) and entry.is_dir() and not _leads_outside(entry.path, base)
    )


def _split_folders(folder: Path) -> list[Path]:
    """The split sub-folders when every visible sub-folder is named like a split, else []."""
    try:
        subfolders = [
            Path(entry.path)
            for entry in os.scandir(folder)
            if not _hidden(entry.name) and entry.is_dir()
        ]
    except OSError:
        return []
    if not subfolders or any(path.name.lower() not in SPLIT_NAMES for path in subfolders):
        return []
    return sorted(subfolders, key=lambda path: (SPLIT_NAMES.index(path.name.lower()), path.name))


def _holds_an_image(folder: Path) -> bool:
    """Does the folder hold a visible image file directly? (Stops at the first one.)"""
    folder_lib = _imagefolder()
    try:
        with os.scandir(folder) as entries:
            return any(
                not _hidden(entry.name)
                and folder_lib.has_file_allowed_extension(entry.name, folder_lib.IMG_EXTENSIONS)
                and entry.is_file()
                for entry in entries
            )
    except OSError:
        return False


def _torchvision_layout(folder: Path) -> bool:
    """A torchvision dataset such as `MNIST/raw`, whose raw files are no image folder."""
    # os.path.isdir, not Path.is_dir: it answers False for an unreadable folder, never raises.
    return os.path.isdir(folder / "raw")


def _is_image_folder(folder: Path, base: Path) -> bool:
    """Class folders with images, directly or in split folders."""
    candidates = _split_folders(folder) or [folder]
    return any(
        _holds_an_image(class_dir)
        for split_dir in candidates
        for class_dir in _subfolders(split_dir, base)
    )


def _dataset_folder(root: Path, relative: str) -> tuple[Path, Path]:
    """The resolved data root and the dataset folder in it, or an error saying what to fix."""
    root = Path(root)
    if not root.is_dir():
        raise DataRootError(
            f"The data root {root} is not a folder. Set DATALIB_ROOT to the folder that holds "
            "your datasets."
        )
    folder = inside_root(root, relative)
    if not folder.exists():
        raise DatasetMissing(
            f"There is no folder {relative!r} under the data root {root}. Put the images in "
            f"{root / relative}/<class>/<image>.png, or in .../<split>/<class>/<image>.png "
            f"with splits named {', '.join(SPLIT_NAMES)}."
        )
    if not folder.is_dir():
        raise InvalidRequest(
            f"{relative!r} is a file, not a folder. Name the folder that holds the class folders."
        )
    return root.resolve(), folder


def _split_folder(folder: Path, name: str, split: str) -> Path:
    splits = _split_folders(folder)
    if not splits:
        if split != SINGLE_SPLIT:
            raise UnknownDataset(
                f"{name} has no split {split!r}: its class folders are one split, "
                f"{SINGLE_SPLIT!r}. Choose {SINGLE_SPLIT!r}."
            )
        return folder
    for path in splits:
        if path.name == split:
            return path
    names = ", ".join(path.name for path in splits)
    raise UnknownDataset(f"{name} has no split {split!r}. Choose one of: {names}.")


@dataclass
class _Listing:
    """What is in a split folder: candidate images per class, and what was left out."""

    classes: list[str]  # visible class folders, sorted: ImageFolder's classes
    samples: list[tuple[str, str, int]]  # absolute path, path under the root, class index
    files_per_class: list[int]  # every file met in each class folder, images or not
    skipped: list[tuple[str, str]]
    stamp: list[tuple[str, int, int]]  # (path, size, mtime_ns) of every entry: the cache key


def _list_split(base: Path, split_dir: Path) -> _Listing:
    """Walk a split folder in ImageFolder's order, recording everything left out and why."""
    folder_lib = _imagefolder()
    listing = _Listing(classes=[], samples=[], files_per_class=[], skipped=[], stamp=[])
    try:
        names, _ = folder_lib.find_classes(split_dir)
    except FileNotFoundError:  # find_classes' word for "no sub-folder at all"
        names = []
    for entry in sorted(os.scandir(split_dir), key=lambda entry: entry.name):
        if not entry.is_dir():
            reason = "hidden file" if _hidden(entry.name) else "not in a class folder"
            _note_file(listing, base, entry, reason)
    for name in names:
        class_dir = split_dir / name
        if _hidden(name):
            _skip_folder(listing, base, class_dir, "hidden folder")
        elif _leads_outside(class_dir, base):
            _skip_folder(listing, base, class_dir, "link leads outside the data root")
        else:
            _list_class(listing, base, class_dir, len(listing.classes))
            listing.classes.append(name)
    return listing


def _list_class(listing: _Listing, base: Path, class_dir: Path, label: int) -> None:
    folder_lib = _imagefolder()
    listing.stamp.append((_under(class_dir, base) + "/", 0, 0))
    files = 0
    for files_here in _walk(listing, base, class_dir):
        for entry in files_here:
            if _hidden(entry.name):  # a folder holding only .DS_Store still counts as empty
                _note_file(listing, base, entry, "hidden file")
                continue
            files += 1
            if entry.is_symlink() and _leads_outside(entry.path, base):
                _note_file(listing, base, entry, "link leads outside the data root")
            elif not entry.is_file():
                _note_file(listing, base, entry, "not a regular file (a broken link?)")
            elif not folder_lib.has_file_allowed_extension(entry.name, folder_lib.IMG_EXTENSIONS):
                suffix = Path(entry.name).suffix.lower() or "no extension"
                _note_file(listing, base, entry, f"not an image file ({suffix})")
            else:
                _note_file(listing, base, entry, None)
                listing.samples.append((entry.path, _under(entry.path, base), label))
    listing.files_per_class.append(files)


def _walk(listing: _Listing, base: Path, class_dir: Path) -> Iterator[list[os.DirEntry]]:
    """The files of a class folder and its sub-folders, in `sorted(os.walk(...))` order.

    That is ImageFolder's order (dirpath strings sorted, then file names), so an index here
    is the index a user's ImageFolder gives the same image. Hidden folders, links out of the
    root and links back to a folder already read are left out, each recorded.
    """
    seen = {os.path.realpath(class_dir)}
    pending, walked = [str(class_dir)], []
    while pending:
        dirpath = pending.pop()
        try:
            with os.scandir(dirpath) as it:
                entries = list(it)
        except OSError as e:
            listing.skipped.append((_under(dirpath, base), f"cannot be read: {e.strerror}"))
            continue
        files = []
        for entry in entries:
            if not entry.is_dir():
                files.append(entry)
            elif _hidden(entry.name):
                _skip_folder(listing, base, entry.path, "hidden folder")
            elif entry.is_symlink() and _leads_outside(entry.path, base):
                _skip_folder(listing, base, entry.path, "link leads outside the data root")
            elif os.path.realpath(entry.path) in seen:
                _skip_folder(listing, base, entry.path, "link to a folder already read")
            else:
                seen.add(os.path.realpath(entry.path))
                listing.stamp.append((_under(entry.path, base) + "/", 0, 0))
                pending.append(entry.path)
        walked.append((dirpath, sorted(files, key=lambda entry: entry.name)))
    for _, files in sorted(walked, key=lambda item: item[0]):
        yield files


def _note_file(listing: _Listing, base: Path, entry: os.DirEntry, reason: str | None) -> None:
    """Stamp the file for the cache key, and record it as skipped when there is a reason."""
    try:
        stat = entry.stat()
        size, mtime = stat.st_size, stat.st_mtime_ns
    except OSError:  # a broken link, or a file deleted meanwhile: still part of the key
        size, mtime = -1, -1
    listing.stamp.append((_under(entry.path, base), size, mtime))
    if reason is not None:
        listing.skipped.append((_under(entry.path, base), reason))


def _skip_folder(listing: _Listing, base: Path, path: str | Path, reason: str) -> None:
    """Record a folder left out, and stamp it: adding or removing one changes the result."""
    listing.skipped.append((_under(path, base), reason))
    listing.stamp.append((_under(path, base) + "/", 0, 0))


def _under(path: str | Path, base: Path) -> str:
    """The path relative to the data root, POSIX style (lexical: links are not followed)."""
    # String slicing, not Path.relative_to: this runs once per file, and pathlib is 20x slower.
    return str(path)[len(str(base).rstrip("/")) + 1 :]


# Decoding and conforming ---------------------------------------------------------------------


def _grey_or_rgb(image: Image.Image) -> Image.Image:
    """The image as L when it holds grey values only, else as RGB (alpha dropped, like
    ImageFolder's `convert("RGB")`)."""
    if image.mode == "L" or image.mode == "RGB":
        return image
    if image.mode in _GREY_MODES:
        return image.convert("L")
    if image.mode in ("P", "PA") and image.getpalette() is not None:
        # Grey or colour by the palette entries the pixels use: unused entries are often junk.
        rgb = np.asarray(image.getpalette()).reshape(-1, 3)
        index = np.asarray(image)
        used = np.unique(index[..., 0] if index.ndim == 3 else index)
        used = rgb[used[used < len(rgb)]]
        return image.convert("L" if (used == used[:, :1]).all() else "RGB")
    return image.convert("RGB")


def _load_failure(path: Path | str, error: Exception) -> str:
    """Why a file could not be loaded, in words a user can act on."""
    if isinstance(error, OSError) and error.errno is not None:  # permissions, I/O errors
        return f"cannot be read: {error.strerror}"
    if isinstance(error, PIL.UnidentifiedImageError):
        with contextlib.suppress(OSError), open(path, "rb") as handle:
            head = handle.read(512).lstrip().lower()
            if not head:
                return "cannot be decoded: empty file"
            if head.startswith((b"<!doctype html", b"<html", b"<?xml", b"<head", b"<body")):
                return "cannot be decoded: an HTML page, not an image (a failed download?)"
        return "cannot be decoded: not a known image format"
    # PIL's messages name the file by its absolute path; the user already sees which file.
    message = str(error).replace(f"'{path}'", "").replace(str(path), "").strip()
    return f"cannot be decoded: {message or type(error).__name__}"


def _decode_split(
    base: Path,
    name: str,
    split: str,
    where: str,
    listing: _Listing,
    progress: Callable[[int, int], None] | None,
) -> FolderSplit:
    total = len(listing.samples)
    pixels, labels, files, modes, sizes = [], [], [], [], []
    skipped = list(listing.skipped)
    for done, (path, file, label) in enumerate(listing.samples, start=1):
        try:
            with Image.open(path) as image:
                image.load()  # decodes now, so a truncated file fails here, not later
                mode, size = image.mode, image.size
                array = np.asarray(_grey_or_rgb(image))
        # PIL raises OSError, SyntaxError, ValueError, DecompressionBombError... for bad files,
        # and a bad file must be skipped and listed, never crash the page.
        except Exception as e:  # noqa: BLE001
            skipped.append((file, _load_failure(path, e)))
        else:
            pixels.append(array)
            labels.append(label)
            files.append(file)
            modes.append(mode)
            sizes.append(size)
        if progress is not None and (done % PROGRESS_EVERY == 0 or done == total):
            progress(done, total)
    if not pixels:
        _nothing_loaded(where, total, skipped)
    # A class folder with no loadable image is no class: ImageFolder would refuse it (empty)
    # or crash on it (undecodable), so it is skipped and the remaining classes renumbered.
    present = np.bincount(labels, minlength=len(listing.classes)) > 0
    for index in np.flatnonzero(~present):
        reason = (
            "empty class folder"
            if listing.files_per_class[index] == 0
            else "class folder without a loadable image"
        )
        class_dir = Path(where) / listing.classes[index]
        skipped.append((class_dir.as_posix(), reason))
    renumber = np.cumsum(present) - 1
    images, conformed = _conform(pixels, modes, sizes)
    return FolderSplit(
        folder=name,
        split=split,
        images=images,
        labels=torch.from_numpy(renumber[np.asarray(labels, dtype=np.int64)].astype(np.int64)),
        classes=tuple(c for c, keep in zip(listing.classes, present, strict=True) if keep),
        files=tuple(files),
        skipped=tuple(sorted(skipped)),
        sizes=Counter(sizes),
        modes=Counter(modes),
        original_sizes=torch.tensor(sizes, dtype=torch.int64).reshape(-1, 2),
        original_modes=tuple(modes),
        conformed=conformed,
        from_cache=False,
    )


def _nothing_loaded(where: str, total: int, skipped: list[tuple[str, str]]) -> None:
    examples = "; ".join(f"{path}: {reason}" for path, reason in sorted(skipped)[:3])
    extensions = ", ".join(_imagefolder().IMG_EXTENSIONS)
    if total:
        raise CorruptFile(
            f"None of the {total:,} image files in {where} could be decoded ({examples}). "
            "Replace them with images PIL can open."
        )
    raise DatasetMissing(
        f"{where} holds no image files ({len(skipped):,} entries skipped: {examples}). "
        f"Put images ({extensions}) in {where}/<class>/."
    )


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}" if n == 1 else f"{n:,} {word}s"


def _conform(
    pixels: list[np.ndarray], modes: list[str], sizes: list[tuple[int, int]]
) -> tuple[torch.Tensor, str]:
    """All images in one N x C x H x W uint8 tensor, and a sentence saying what was done.

    C is 3 if any image is colour, else 1; H x W is the most common size (ties: the larger,
    then the first met), others resized with `RESAMPLE`.
    """
    n = len(pixels)
    channels = 3 if any(array.ndim == 3 for array in pixels) else 1
    counts = Counter(sizes)
    width, height = max(counts, key=lambda size: (counts[size], size[0] * size[1]))
    out = np.empty((n, channels, height, width), dtype=np.uint8)
    resized = 0
    for i, array in enumerate(pixels):
        if array.shape[:2] != (height, width):
            array = np.asarray(
                Image.fromarray(array).resize((width, height), Image.Resampling.BILINEAR)
            )
            resized += 1
        # A grey H x W broadcasts over the 3 channels: the same values L -> RGB gives.
        out[i] = array.transpose(2, 0, 1) if array.ndim == 3 else array
        pixels[i] = None  # free each decoded image once copied: peak memory stays ~1x
    target = "RGB" if channels == 3 else "greyscale"
    done = []
    if resized:
        done.append(
            f"{resized:,} of {_plural(n, 'image')} resized from other sizes to "
            f"{width}x{height} ({RESAMPLE})"
        )
    for mode, count in sorted(Counter(modes).items()):
        if mode == ("RGB" if channels == 3 else "L"):
            continue
        note = ""
        if mode in _ALPHA_MODES:
            note = " (alpha dropped)"
        elif mode in _WIDE_MODES:
            note = " (values above 255 clipped)"
        word = _MODE_WORDS.get(mode, mode)
        done.append(f"{_plural(count, word + ' image')} converted to {target}{note}")
    if not done:
        done.append(f"All {_plural(n, 'image')} are {width}x{height} {target}: nothing was changed")
    return torch.from_numpy(out), "; ".join(done) + "."


# The disk cache ------------------------------------------------------------------------------


def _digest(value: object, length: int) -> str:
    return hashlib.sha256(json.dumps(value).encode()).hexdigest()[:length]


def _cache_name(name: str, split: str, stamp: list[tuple[str, int, int]]) -> str:
    """`<folder and split>-<contents>.npz`: the first part finds older versions to delete.

    The contents part hashes every entry's path, size and mtime, plus what else shapes the
    result (Pillow's decoders, the resample filter), never the pixels themselves.
    """
    where = _digest([name, split], 16)
    what = _digest([CACHE_FORMAT, PIL.__version__, RESAMPLE, sorted(stamp)], 24)
    return f"{where}-{what}.npz"


def _read_cache(path: Path, name: str, split: str) -> FolderSplit | None:
    """The cached split, or None when there is none or it cannot be trusted."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as stored:
            meta = json.loads(str(stored["meta"]))
            images = torch.from_numpy(stored["images"])
            labels = torch.from_numpy(stored["labels"])
            original_sizes = torch.from_numpy(stored["original_sizes"])
        n = len(meta["files"])
        if (
            meta["format"] != CACHE_FORMAT
            or images.dtype != torch.uint8
            or images.ndim != 4
            or labels.dtype != torch.int64
            or images.shape[0] != n
            or labels.shape != (n,)
            or original_sizes.shape != (n, 2)
        ):
            return None
        return FolderSplit(
            folder=name,
            split=split,
            images=images,
            labels=labels,
            classes=tuple(meta["classes"]),
            files=tuple(meta["files"]),
            skipped=tuple((path, reason) for path, reason in meta["skipped"]),
            sizes=Counter({(w, h): count for w, h, count in meta["sizes"]}),
            modes=Counter(meta["modes"]),
            original_sizes=original_sizes,
            original_modes=tuple(meta["original_modes"]),
            conformed=meta["conformed"],
            from_cache=True,
        )
    # A truncated, foreign or half-written file raises anything from BadZipFile to KeyError;
    # whatever it is, the cache is rebuilt rather than trusted.
    except Exception:  # noqa: BLE001
        return None


def _write_cache(path: Path, result: FolderSplit) -> None:
    """Store the split atomically (temp file, then rename); silently skip if the root is
    read-only. Writes nothing outside the cache folder."""
    folder = path.parent
    meta = {
        "format": CACHE_FORMAT,
        "classes": list(result.classes),
        "files": list(result.files),
        "skipped": [list(item) for item in result.skipped],
        "sizes": [[w, h, count] for (w, h), count in result.sizes.items()],
        "modes": dict(result.modes),
        "original_modes": list(result.original_modes),
        "conformed": result.conformed,
    }
    try:
        if folder.is_symlink():  # a link could lead the write out of the data root
            return
        folder.mkdir(exist_ok=True)
        handle, temp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".npz")
    except OSError:  # read-only or full: caching is only a speed-up
        return
    try:
        with os.fdopen(handle, "wb") as stream:
            np.savez(
                stream,
                images=result.images.numpy(),
                labels=result.labels.numpy(),
                original_sizes=result.original_sizes.numpy(),
                meta=np.array(json.dumps(meta)),
            )
        os.replace(temp, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        return
    _remove_stale(folder, path)


def _remove_stale(folder: Path, kept: Path) -> None:
    """Delete older versions of this folder split, and temp files a crash left behind."""
    prefix = kept.name.split("-")[0]
    now = time.time()
    with contextlib.suppress(OSError):
        for entry in os.scandir(folder):
            stale = entry.name.startswith(prefix + "-") and entry.name != kept.name
            # Only old temp files: a young one may be another process writing right now.
            abandoned = (
                entry.name.startswith(".tmp-")
                and now - entry.stat(follow_symlinks=False).st_mtime > _STALE_TEMP_SECONDS
            )
            if stale or abandoned:
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)

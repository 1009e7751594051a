"""Image folders, `<folder>/<split>/<class>/<image>`, listed and read as torchvision's
ImageFolder lists and reads them, without importing torchvision (its extension list is
kept here, and a test holds it equal to torchvision's)."""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import PIL
from PIL import Image

from datalib.errors import DataRootError, DatasetMissing, InvalidRequest, UnknownDataset
from datalib.formats import Decoded, Format, Listing, Unreadable, open_regular
from datalib.formats.download import check_root
from datalib.paths import inside_root

__all__ = [
    "IMG_EXTENSIONS",
    "MAX_PIXELS",
    "SINGLE_SPLIT",
    "SPLIT_NAMES",
    "FolderFormat",
    "find_folders",
    "grey_or_rgb",
]

# torchvision.datasets.folder.IMG_EXTENSIONS: the files ImageFolder reads.
IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
# A folder whose sub-folders all have one of these names (any case) holds splits, not classes.
SPLIT_NAMES = ("train", "training", "val", "valid", "validation", "test", "testing")
SINGLE_SPLIT = "all"
# Images above this many pixels are skipped, not decoded (BATCHSCOPE_MAX_PIXELS).
MAX_PIXELS = int(os.environ.get("BATCHSCOPE_MAX_PIXELS", "40000000"))

# PIL modes that hold one grey channel; converting them to L is what ImageFolder's RGB
# conversion does to each channel too (16- and 32-bit values are clipped to 0-255).
_GREY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"})


def _image_file(name: str) -> bool:
    return name.lower().endswith(IMG_EXTENSIONS)


def _hidden(name: str) -> bool:
    return name.startswith(".")


def _leads_outside(path: Path | str, base: Path) -> bool:
    return not Path(os.path.realpath(path)).is_relative_to(base)


def _under(path: str | Path, base: Path) -> str:
    """The path relative to the data root, POSIX style (lexical: links are not followed)."""
    # String slicing, not Path.relative_to: this runs once per file, and pathlib is 20x slower.
    return str(path)[len(str(base).rstrip("/")) + 1 :]


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
    try:
        with os.scandir(folder) as entries:
            return any(
                not _hidden(entry.name) and _image_file(entry.name) and entry.is_file()
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


@dataclass
class _Walk:
    """What listing a split folder found: samples per class, and what was left out."""

    classes: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    class_paths: list[str] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    mtimes: list[int] = field(default_factory=list)
    files_per_class: list[int] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)


class FolderFormat(Format):
    """A user's own images under the data root, read with ImageFolder's conventions."""

    name = "folder"

    def folder(self, spec) -> str:
        return spec.name.split(":", 1)[1]

    def _dataset_folder(self, spec, root: Path) -> tuple[Path, Path]:
        """The resolved data root and the dataset folder in it, or an error saying what to fix."""
        relative = self.folder(spec)
        check_root(root, create=False)
        folder = inside_root(root, relative)
        if not folder.exists():
            raise DatasetMissing(
                f"There is no folder {relative!r} under the data root {root}. Put the images in "
                f"{root / relative}/<class>/<image>.png, or in .../<split>/<class>/<image>.png "
                f"with splits named {', '.join(SPLIT_NAMES)}."
            )
        if not folder.is_dir():
            raise InvalidRequest(
                f"{relative!r} is a file, not a folder. Name the folder that holds the class "
                "folders."
            )
        return root.resolve(), folder

    def splits(self, spec, root: Path) -> tuple[str, ...]:
        _, folder = self._dataset_folder(spec, root)
        splits = _split_folders(folder)
        return tuple(path.name for path in splits) if splits else (SINGLE_SPLIT,)

    def _split_folder(self, spec, folder: Path, split: str) -> Path:
        splits = _split_folders(folder)
        if not splits:
            if split != SINGLE_SPLIT:
                raise UnknownDataset(
                    f"{spec.name} has no split {split!r}: its class folders are one split, "
                    f"{SINGLE_SPLIT!r}. Choose {SINGLE_SPLIT!r}."
                )
            return folder
        for path in splits:
            if path.name == split:
                return path
        names = ", ".join(path.name for path in splits)
        raise UnknownDataset(f"{spec.name} has no split {split!r}. Choose one of: {names}.")

    def listing(self, spec, root: Path, split: str, each_class=None) -> Listing:
        base, folder = self._dataset_folder(spec, root)
        split_dir = self._split_folder(spec, folder, split)
        name = folder.relative_to(base).as_posix()
        where = name if split_dir == folder else f"{name}/{split}"
        base_key = repr((PIL.__version__, MAX_PIXELS))

        def listed(walk: _Walk, start: int) -> None:
            if each_class is not None and len(walk.sources) > start:
                each_class(
                    Listing(
                        split=split,
                        classes=tuple(walk.classes),
                        sources=walk.sources[start:],
                        labels=np.asarray(walk.labels[start:], dtype=np.int64),
                        sizes=np.asarray(walk.sizes[start:], dtype=np.int64),
                        mtimes=np.asarray(walk.mtimes[start:], dtype=np.int64),
                        base=base_key,
                        cut_by_content=True,
                    )
                )

        try:
            walk = _list_split(base, split_dir, listed)
        except OSError as e:
            raise DataRootError(
                f"{_under(split_dir, base)} cannot be read ({e.strerror}). Fix its permissions "
                "so this user can list it."
            ) from None
        if not walk.classes:
            raise DatasetMissing(
                f"{where} holds no class folders. ImageFolder reads one folder per class: "
                f"put the images in {where}/<class>/<image>.png."
            )
        return Listing(
            split=split,
            classes=tuple(walk.classes),
            sources=walk.sources,
            labels=np.asarray(walk.labels, dtype=np.int64),
            sizes=np.asarray(walk.sizes, dtype=np.int64),
            mtimes=np.asarray(walk.mtimes, dtype=np.int64),
            base=base_key,
            skipped=walk.skipped,
            class_paths=walk.class_paths,
            files_per_class=walk.files_per_class,
            cut_by_content=True,
        )

    def read(self, spec, root: Path, sources: Sequence[str]) -> list[Decoded | Unreadable]:
        return [read_image(root, source) for source in sources]

    def dataset_code(
        self, spec, root: Path, split: str, shape: tuple[int, int, int], name: str = "dataset"
    ) -> list[str]:
        folder = (
            root / self.folder(spec) if split == SINGLE_SPLIT else root / self.folder(spec) / split
        )
        return [f"dataset = datasets.ImageFolder({str(folder)!r}, transform=transform)"]


def _list_split(base: Path, split_dir: Path, listed=None) -> _Walk:
    """Walk a split folder in ImageFolder's order, recording everything left out and why;
    `listed(walk, start)` hears of each class once its rows from `start` on are listed."""
    walk = _Walk()
    entries = sorted(os.scandir(split_dir), key=lambda entry: entry.name)
    for entry in entries:
        if not entry.is_dir():
            reason = "hidden file" if _hidden(entry.name) else "not in a class folder"
            walk.skipped.append((_under(entry.path, base), reason))
    for entry in entries:
        if not entry.is_dir():
            continue
        class_dir = Path(entry.path)
        if _hidden(entry.name):
            walk.skipped.append((_under(class_dir, base), "hidden folder"))
        elif _leads_outside(class_dir, base):
            walk.skipped.append((_under(class_dir, base), "link leads outside the data root"))
        else:
            start = len(walk.sources)
            _list_class(walk, base, class_dir, len(walk.classes))
            walk.classes.append(entry.name)
            walk.class_paths.append(_under(class_dir, base))
            if listed is not None:
                listed(walk, start)
    return walk


def _list_class(walk: _Walk, base: Path, class_dir: Path, label: int) -> None:
    files = 0
    for files_here in _files_in_order(walk, base, class_dir):
        for entry in files_here:
            if _hidden(entry.name):  # a folder holding only .DS_Store still counts as empty
                walk.skipped.append((_under(entry.path, base), "hidden file"))
                continue
            files += 1
            path = _under(entry.path, base)
            if entry.is_symlink() and _leads_outside(entry.path, base):
                walk.skipped.append((path, "link leads outside the data root"))
            elif not entry.is_file():
                walk.skipped.append((path, "not a regular file (a broken link?)"))
            elif not _image_file(entry.name):
                suffix = Path(entry.name).suffix.lower() or "no extension"
                walk.skipped.append((path, f"not an image file ({suffix})"))
            else:
                try:
                    info = entry.stat()
                    size, mtime = info.st_size, info.st_mtime_ns
                except OSError:  # deleted meanwhile: read fails with the reason
                    size, mtime = -1, -1
                walk.sources.append(path)
                walk.labels.append(label)
                walk.sizes.append(size)
                walk.mtimes.append(mtime)
    walk.files_per_class.append(files)


def _files_in_order(walk: _Walk, base: Path, class_dir: Path) -> Iterator[list[os.DirEntry]]:
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
            walk.skipped.append((_under(dirpath, base), f"cannot be read: {e.strerror}"))
            continue
        files = []
        for entry in entries:
            try:
                is_dir = entry.is_dir()
            except OSError as e:  # a symlink loop: ELOOP, too many levels of links
                walk.skipped.append((_under(entry.path, base), f"cannot be read: {e.strerror}"))
                continue
            if not is_dir:
                files.append(entry)
            elif _hidden(entry.name):
                walk.skipped.append((_under(entry.path, base), "hidden folder"))
            elif entry.is_symlink() and _leads_outside(entry.path, base):
                walk.skipped.append((_under(entry.path, base), "link leads outside the data root"))
            elif os.path.realpath(entry.path) in seen:
                walk.skipped.append((_under(entry.path, base), "link to a folder already read"))
            else:
                seen.add(os.path.realpath(entry.path))
                pending.append(entry.path)
        walked.append((dirpath, sorted(files, key=lambda entry: entry.name)))
    for _, files in sorted(walked, key=lambda item: item[0]):
        yield files


def grey_or_rgb(image: Image.Image) -> Image.Image:
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


def read_image(root: Path, source: str) -> Decoded | Unreadable:
    """One image file under the root, decoded as loading does, or why it cannot be."""
    path = os.path.join(root, source)  # a string join: pathlib costs more than the checks
    try:
        fd, size = open_regular(path, root)
    except InvalidRequest as e:
        return Unreadable(str(e))
    except OSError as e:
        return Unreadable(f"cannot be read: {e.strerror}")
    try:
        with os.fdopen(fd, "rb") as handle:
            if size <= TURBO_MAX_BYTES and handle.read(3) == JPEG_START:
                data = JPEG_START + handle.read()
                decoded = _turbo_jpeg(data, size)
                if decoded is not None:
                    return decoded
                handle = io.BytesIO(data)  # PIL reads it, and says why where it must
            handle.seek(0)
            return _pil_image(handle, size)
    # PIL raises OSError, SyntaxError, ValueError, DecompressionBombError... for bad files,
    # and a bad file must be skipped and listed, never crash the page.
    except Exception as e:  # noqa: BLE001
        return Unreadable(_load_failure(path, e))


JPEG_START = b"\xff\xd8\xff"  # every JPEG file's first bytes
# Bigger JPEG files go to PIL, which reads the header before the rest (a file far over
# MAX_PIXELS is refused unread).
TURBO_MAX_BYTES = 32 * 2**20
# The JPEG colour spaces that libjpeg-turbo turns into what PIL gives (L, RGB) the same way.
_TURBO_MODES = {"Gray": ("GRAY", "L"), "YCbCr": ("RGB", "RGB"), "RGB": ("RGB", "RGB")}


def _turbo_jpeg(data: bytes, size: int) -> Decoded | None:
    """A JPEG decoded by simplejpeg: libjpeg-turbo, as PIL's decoder is, with the same
    settings (accurate DCT, smooth upsampling), so the same pixels (a test compares them on
    every kind of JPEG), in a third of PIL's time on small images (its per-call overhead).
    None where PIL must decode: CMYK, too large, or anything libjpeg warns about (a
    truncated or damaged file), so that PIL's rules and messages stay the only ones."""
    import simplejpeg

    try:
        height, width, space, _ = simplejpeg.decode_jpeg_header(data)
        if space not in _TURBO_MODES or width * height > MAX_PIXELS:
            return None
        target, mode = _TURBO_MODES[space]
        pixels = simplejpeg.decode_jpeg(data, colorspace=target, strict=True)
    except ValueError:
        return None
    pixels = pixels.reshape(height, width) if mode == "L" else pixels
    pixels.flags.writeable = False  # as PIL's arrays are: decoded images are shared, not edited
    return Decoded(pixels, mode, size)


def _pil_image(handle, size: int) -> Decoded | Unreadable:
    with Image.open(handle) as image:
        width, height = image.size
        if width * height > MAX_PIXELS:
            return Unreadable(
                f"too large: {width}x{height} is over {MAX_PIXELS / 1e6:g} megapixels "
                "(BATCHSCOPE_MAX_PIXELS)"
            )
        image.load()  # decodes now, so a truncated file fails here, not later
        return Decoded(np.asarray(grey_or_rgb(image)), image.mode, size)


def _load_failure(path: str, error: Exception) -> str:
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

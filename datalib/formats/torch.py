"""Your own map-style torch Datasets, named in the config file (datalib.config): per split, a
factory (`"package.module:function"`, or a Dataset class such as torchvision's) called with
the config's keyword arguments. Its module is imported here, from the config's text only.

A sample is `(image, label)`. The image may be a PIL image; a uint8 numpy array or tensor,
H x W (grey), H x W x C or C x H x W (C from 1 to 4; where both ends could be channels, a
tensor is C x H x W and an array H x W x C, as torchvision's `to_pil_image` reads them); or a
float array or tensor in [0, 1], made uint8 as `to_pil_image` does (times 255, truncated).
It becomes what every format gives: grey uint8 H x W or RGB uint8 H x W x 3, alpha dropped
(PIL's `convert("RGB")`). The label is an int, a numpy integer or a 0-d integer tensor.

A dataset is made once per process and kept (the last KEPT), each read under its own lock,
as a DataLoader without workers reads it. torch is imported by the user's module, not here.
"""

from __future__ import annotations

import importlib
import json
import keyword
import os
import sys
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from datalib.errors import ConfigError, CorruptFile, DatalibError
from datalib.formats import Decoded, Format, Listing, Unreadable

__all__ = ["GREY_MODES", "TorchFormat", "sample_pixels"]

KEPT = 4  # datasets kept made, per process
# PIL modes of one grey channel (with alpha, or wider than 8 bits): made L, as ImageFolder's
# RGB conversion would make each channel; every other mode is made RGB.
GREY_MODES = ("1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B", "I;16N", "F")
_MODES = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}  # channels -> the PIL mode to_pil_image gives
_FLOATS = ("float16", "float32", "float64")
_FIX_FLOATS = (
    "Batchscope reads images before any normalization: remove Normalize (and anything after "
    "ToTensor) from the dataset's transform, and add it in Batchscope's pipeline instead."
)


class Unsupported(ValueError):
    """A sample Batchscope cannot read, and why (in words a user can act on)."""


def sample_pixels(image: object) -> tuple[np.ndarray, str, int, str]:
    """One sample's image as read: its pixels (grey H x W or RGB H x W x 3, uint8), its
    mode (PIL's, or the one `to_pil_image` gives an array), its size in bytes as given, and
    its kind (`pil`, or `tensor`/`array` with its layout `HW`, `HWC` or `CHW`). Raises
    Unsupported."""
    if isinstance(image, Image.Image):
        width, height = image.size
        if not width or not height:
            raise Unsupported(f"the image is empty ({width} x {height})")
        converted = image
        if image.mode not in ("L", "RGB"):
            converted = image.convert("L" if image.mode in GREY_MODES else "RGB")
        return np.asarray(converted), image.mode, width * height * len(image.getbands()), "pil"
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(image, torch.Tensor):
        container, channels_first = "tensor", True
        dtype = str(image.dtype).removeprefix("torch.")
        if dtype != "uint8" and dtype not in _FLOATS:
            raise Unsupported(f"the image is a {dtype} tensor: {_FIX_TYPES}")
        array = image.detach().cpu().numpy()
    elif isinstance(image, np.ndarray):
        container, channels_first = "array", False
        array = image
        if array.dtype != np.uint8 and str(array.dtype) not in _FLOATS:
            raise Unsupported(f"the image is a {array.dtype} numpy array: {_FIX_TYPES}")
    else:
        raise Unsupported(
            f"the image is a {type(image).__module__}.{type(image).__name__}: {_FIX_TYPES}"
        )
    if array.ndim == 2:
        layout = "HW"
    elif array.ndim == 3 and (array.shape[0] <= 4 or array.shape[2] <= 4):
        both = array.shape[0] <= 4 and array.shape[2] <= 4
        first = channels_first if both else array.shape[0] <= 4
        layout = "CHW" if first else "HWC"
    else:
        raise Unsupported(
            f"the image's shape {tuple(array.shape)} is not an image: give H x W, H x W x C or "
            "C x H x W, with C from 1 to 4"
        )
    if array.size == 0:
        raise Unsupported(f"the image is empty (shape {tuple(array.shape)})")
    nbytes = int(array.nbytes)
    if array.dtype != np.uint8:
        if not np.isfinite(array).all():
            raise Unsupported(f"the image holds NaN or infinite values. {_FIX_FLOATS}")
        low, high = float(array.min()), float(array.max())
        if low < 0 or high > 1:
            raise Unsupported(
                f"the image's values run from {low:.4g} to {high:.4g}, outside [0, 1]. {_FIX_FLOATS}"
            )
        array = (array * 255).astype(np.uint8)  # as to_pil_image: times 255, truncated
    if layout == "CHW":
        array = array.transpose(1, 2, 0)
    if array.ndim == 3 and array.shape[2] <= 2:  # grey, or grey and alpha: the grey
        mode = _MODES[array.shape[2]]
        array = array[:, :, 0]
    elif array.ndim == 3:
        mode = _MODES[array.shape[2]]
        array = array[:, :, :3]
    else:
        mode = "L"
    return np.ascontiguousarray(array), mode, nbytes, f"{container} {layout}"


_FIX_TYPES = (
    "give a PIL image, a uint8 numpy array or tensor (0-255), or a float tensor with values "
    "in [0, 1]"
)


def sample_label(value: object) -> int:
    """A sample's label as an int: from an int, a numpy integer or a 0-d integer tensor."""
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "iu":
        return int(value)
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(value, torch.Tensor):
        if value.ndim == 0 and not value.is_floating_point() and not value.is_complex():
            return int(value)
        raise Unsupported(
            f"the label is a {str(value.dtype).removeprefix('torch.')} tensor of shape "
            f"{tuple(value.shape)}: give an int or a 0-d integer tensor"
        )
    shown = repr(value)
    shown = shown if len(shown) <= 40 else shown[:40] + "..."
    raise Unsupported(f"the label is {shown} ({type(value).__name__}): give an int class index")


def _pair(sample: object) -> tuple[object, object]:
    if isinstance(sample, tuple | list) and len(sample) == 2:
        return sample[0], sample[1]
    kind = type(sample).__name__
    size = f" of {len(sample)}" if isinstance(sample, tuple | list) else ""
    raise Unsupported(f"a sample is a {kind}{size}, not an (image, label) pair")


def _sentence(text: object) -> str:
    text = str(text)
    return text if text.endswith((".", "!", "?")) else text + "."


def _one_line(error: BaseException, limit: int = 300) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    text = text if len(text) <= limit else text[:limit] + "..."
    return f"{type(error).__name__}: {text}"


@dataclass
class _Made:
    """One split's dataset as made in this process, and what was learnt of it once."""

    dataset: object
    length: int
    lock: threading.Lock = field(default_factory=threading.Lock)
    facts: _Facts | None = None


@dataclass(frozen=True)
class _Facts:
    """What the listing learns of a split: every sample's label, the classes, how the labels
    were found, the first image's kind."""

    labels: np.ndarray
    indices: np.ndarray
    classes: tuple[str, ...]
    numbered: bool  # classes "0".."K-1", made up here
    labels_from: str  # "targets", "labels", or "" (one pass over the samples)
    kind: str


class TorchFormat(Format):
    """A split is what its factory returns; a sample's source is `<split>:<index>`."""

    name = "torch"
    source = "as your Dataset gives them"

    def __init__(self, kept: int = KEPT) -> None:
        self.kept = kept
        self._made: OrderedDict[tuple, _Made] = OrderedDict()
        self._stamps: dict[str, tuple] = {}
        self._lock = threading.Lock()

    def folder(self, spec) -> str:
        return f"config-{spec.name}"

    def identity(self, spec) -> str:
        return json.dumps(
            [[part.name, part.key] for part in spec.config.splits]
            + [list(spec.config.classes or ())]
        )

    def splits(self, spec, root: Path) -> tuple[str, ...]:
        return tuple(entry.name for entry in spec.config.splits)

    # Making a split's dataset --------------------------------------------------------------

    def _module(self, spec, part):
        """The factory's module, imported (again, when its file changed since)."""
        where = spec.config.where(part.line)
        name = part.module
        try:
            if name not in sys.modules:
                importlib.invalidate_caches()  # a package added since the server started
            module = importlib.import_module(name)
            stamp = _stamp(getattr(module, "__file__", None))
            if self._stamps.get(name, stamp) != stamp:
                module = importlib.reload(module)  # its new code, as a new scan runs it
            self._stamps[name] = stamp
            return module
        except ModuleNotFoundError as e:
            missing = e.name or name
            if name == missing or name.startswith(missing + "."):
                raise ConfigError(
                    f"{where}: there is no module {name!r} to import. Put its package beside "
                    f"{spec.config.path.name} (that folder, {spec.config.path.parent}, is on "
                    "the import path), or install it where Batchscope runs."
                ) from None
            raise ConfigError(
                f"{where}: importing {name} failed: it imports {missing!r}, which is not "
                "installed here. Install it where Batchscope runs."
            ) from None
        except Exception as e:  # noqa: BLE001 - the user's module may raise anything
            raise ConfigError(
                f"{where}: importing {name} failed ({_one_line(e)}). Fix the module."
            ) from None

    def _factory(self, spec, part):
        module = self._module(spec, part)
        target = module
        for attribute in part.attribute.split("."):
            if not hasattr(target, attribute):
                raise ConfigError(
                    f"{spec.config.where(part.line)}: {part.module} has no {attribute!r}. "
                    f"Check the name after the colon in {part.factory!r}."
                )
            target = getattr(target, attribute)
        if not callable(target):
            raise ConfigError(
                f"{spec.config.where(part.line)}: {part.factory} is a "
                f"{type(target).__name__}, not a function or class to call."
            )
        return module, target

    def _make(self, spec, split: str) -> _Made:
        """The split's dataset, made once per process (and again after its config entry or
        its module's file changed)."""
        part = spec.config.split(split)
        module, factory = self._factory(spec, part)
        key = (
            spec.name,
            str(spec.config.path),
            part.key,
            _stamp(getattr(module, "__file__", None)),
        )
        with self._lock:
            if key in self._made:
                self._made.move_to_end(key)
                return self._made[key]
        where = spec.config.where(part.line)
        try:
            dataset = factory(**part.kwargs)
        except Exception as e:  # noqa: BLE001 - the user's factory may raise anything
            raise ConfigError(
                f"{where}: {part.factory}({_call_arguments(part.kwargs)}) raised "
                f"{_sentence(_one_line(e))} Fix the factory or its kwargs."
            ) from None
        if not (hasattr(dataset, "__getitem__") and hasattr(dataset, "__len__")):
            raise ConfigError(
                f"{where}: {part.factory} returned a {type(dataset).__name__}, not a map-style "
                "Dataset: it needs __len__ and __getitem__ (an IterableDataset cannot be "
                "indexed)."
            )
        try:
            length = len(dataset)
        except Exception as e:  # noqa: BLE001
            raise ConfigError(f"{where}: len(dataset) raised {_sentence(_one_line(e))}") from None
        if length < 1:
            raise ConfigError(f"{where}: {part.factory} returned an empty dataset (len 0).")
        made = _Made(dataset, length)
        with self._lock:
            made = self._made.setdefault(key, made)
            while len(self._made) > self.kept:
                self._made.popitem(last=False)
        return made

    def _sample(self, spec, part, made: _Made, index: int) -> tuple[object, object]:
        """dataset[index] as an (image, label) pair, or ConfigError: for the samples the
        listing must read."""
        where = spec.config.where(part.line)
        try:
            with made.lock:
                sample = made.dataset[index]
        except IndexError as e:
            raise _disagree(where, index, made, e) from None
        except Exception as e:  # noqa: BLE001
            raise ConfigError(
                f"{where}: dataset[{index}] raised {_sentence(_one_line(e))}"
            ) from None
        try:
            return _pair(sample)
        except Unsupported as e:
            raise ConfigError(f"{where}: dataset[{index}]: {_sentence(e)}") from None

    def _facts(self, spec, split: str, made: _Made) -> _Facts:
        if made.facts is None:
            made.facts = self._learn(spec, spec.config.split(split), made)
        return made.facts

    def _learn(self, spec, part, made: _Made) -> _Facts:
        """Labels, classes and the first image's kind: checked here, so that a dataset that
        cannot work fails once, with its line, not sample by sample."""
        entry, n = spec.config, made.length
        where = entry.where(part.line)
        firsts: dict[int, int] = {}  # the first and last samples' labels
        kinds = []
        for index in sorted({0, n - 1}):
            image, label = self._sample(spec, part, made, index)
            try:
                pixels, _, _, kind = sample_pixels(image)
                firsts[index] = sample_label(label)
                again = sample_pixels(self._sample(spec, part, made, index)[0])[0]
            except Unsupported as e:
                raise ConfigError(f"{where}: dataset[{index}]: {_sentence(e)}") from None
            if not np.array_equal(pixels, again):
                raise ConfigError(
                    f"{where}: dataset[{index}] gives other pixels each time it is read (a "
                    "random transform?). Batchscope reads every image more than once: remove "
                    "random transforms from the dataset, and add them in Batchscope's pipeline "
                    "instead."
                )
            kinds.append(kind)
        labels_from, labels = "", None
        for attribute in ("targets", "labels"):
            try:
                values = _label_array(getattr(made.dataset, attribute, None))
            except Exception as e:  # noqa: BLE001 - a property of the user's may raise
                raise ConfigError(
                    f"{where}: reading the dataset's `{attribute}` raised {_sentence(_one_line(e))}"
                ) from None
            if values is None:
                continue
            if len(values) != n:
                raise ConfigError(
                    f"{where}: the dataset's `{attribute}` holds {len(values):,} labels but "
                    f"len(dataset) is {n:,}: make them agree."
                )
            for index in (0, n - 1):
                if int(values[index]) != firsts[index]:
                    raise ConfigError(
                        f"{where}: the dataset's `{attribute}`[{index}] is {int(values[index])}"
                        f" but dataset[{index}] has label {firsts[index]}: make them agree."
                    )
            labels_from, labels = attribute, values.astype(np.int64)
            break
        indices = np.arange(n, dtype=np.int64)
        if labels is None:  # one pass over the samples: the labels are only in them
            found = []
            for index in range(n):
                try:
                    with made.lock:
                        sample = made.dataset[index]
                except IndexError as e:
                    raise _disagree(where, index, made, e) from None
                except Exception as e:  # noqa: BLE001 - the user's dataset may raise anything
                    raise _fails(where, index, e) from None
                try:
                    found.append(sample_label(_pair(sample)[1]))
                except Unsupported as e:
                    raise ConfigError(f"{where}: dataset[{index}]: {_sentence(e)}") from None
            labels = np.asarray(found, dtype=np.int64)
        classes, numbered = self._classes(entry, made.dataset, labels)
        outside = np.flatnonzero((labels < 0) | (labels >= len(classes)))
        if outside.size:
            first = int(outside[0])
            label, index = int(labels[first]), int(indices[first])
            if entry.classes is not None:
                at, fix = entry.classes_line, "List every class in `classes`, in label order."
            elif not numbered:
                at, fix = part.line, "Give every class's name in `classes` in the config."
            else:
                at, fix = part.line, "Labels are class indices: 0 or more."
            raise ConfigError(
                f"{entry.where(at)}: dataset[{index}] has label {label}, outside the "
                f"classes 0 to {len(classes) - 1} ({len(classes)} named); {outside.size:,} "
                f"samples have such labels. {fix}"
            )
        return _Facts(labels, indices, classes, numbered, labels_from, kinds[0])

    def _first_facts(self, spec, root: Path, split: str, part, made: _Made) -> _Facts:
        """What the shown code needs, from sample 0 and the index alone (a page must not
        read every sample): the image's kind, where labels are, the classes."""
        image, _ = self._sample(spec, part, made, 0)
        try:
            kind = sample_pixels(image)[3]
        except Unsupported as e:
            raise ConfigError(
                f"{spec.config.where(part.line)}: dataset[0]: {_sentence(e)}"
            ) from None
        labels_from = ""
        for attribute in ("targets", "labels"):
            try:
                values = _label_array(getattr(made.dataset, attribute, None))
            except Exception:  # noqa: BLE001 - the listing said why, when it ran
                values = None
            if values is not None and len(values) == made.length:
                labels_from = attribute
                break
        from datalib.index import open_index

        index = open_index(spec, root)
        listed = index.split(split).classes if index is not None else ()
        classes, numbered = self._classes(spec.config, made.dataset, np.arange(len(listed)))
        return _Facts(None, None, classes, numbered, labels_from, kind)

    def _classes(self, entry, dataset, labels: np.ndarray) -> tuple[tuple[str, ...], bool]:
        """The config's classes, else the dataset's `classes`, else "0" to the highest label."""
        if entry.classes is not None:
            return entry.classes, False
        try:
            named = getattr(dataset, "classes", None)
        except Exception:  # noqa: BLE001 - a property of the user's that fails names nothing
            named = None
        if isinstance(named, list | tuple) and named:
            return tuple(str(name) for name in named), False
        count = int(labels.max()) + 1 if labels.size and labels.max() >= 0 else 1
        return tuple(str(k) for k in range(count)), True

    # The format's interface ----------------------------------------------------------------

    def listing(self, spec, root: Path, split: str, each_class=None) -> Listing:
        try:
            made = self._make(spec, split)
            facts = self._facts(spec, split, made)
        except DatalibError:
            raise
        except Exception as e:  # noqa: BLE001 - whatever else the user's objects raise
            where = spec.config.where(spec.config.split(split).line)
            raise ConfigError(f"{where}: {_sentence(_one_line(e))}") from None
        part = spec.config.split(split)
        module = sys.modules.get(part.module)
        n = len(facts.indices)
        return Listing(
            split=split,
            classes=facts.classes,
            sources=[f"{split}:{i}" for i in facts.indices.tolist()],
            labels=facts.labels,
            sizes=np.zeros(n, dtype=np.int64),
            mtimes=np.zeros(n, dtype=np.int64),
            # A changed entry, module file or file a kwarg names: every sample read again.
            base=json.dumps(
                [
                    part.key,
                    facts.classes,
                    _stamp(getattr(module, "__file__", None)),
                    _kwarg_stamps(part.kwargs),
                ]
            ),
        )

    def read(self, spec, root: Path, sources: Sequence[str]) -> list[Decoded | Unreadable]:
        out: list[Decoded | Unreadable] = []
        made: dict[str, _Made] = {}
        splits = self.splits(spec, root)
        for source in sources:
            split, _, number = source.rpartition(":")
            if split not in splits or not number.isdigit():
                raise CorruptFile(f"{source!r} is not a sample of {spec.title}: scan again.")
            if split not in made:
                made[split] = self._make(spec, split)
            dataset, index = made[split], int(number)
            if index >= dataset.length:
                raise CorruptFile(
                    f"{spec.title} {split} has no sample {index} now (it holds "
                    f"{dataset.length:,}): scan it again."
                )
            try:
                with dataset.lock:
                    sample = dataset.dataset[index]
            except IndexError as e:
                where = spec.config.where(spec.config.split(split).line)
                raise _disagree(where, index, dataset, e) from None
            except Exception as e:  # noqa: BLE001 - the user's dataset may raise anything
                where = spec.config.where(spec.config.split(split).line)
                raise _fails(where, index, e) from None
            try:
                pixels, mode, nbytes, _ = sample_pixels(_pair(sample)[0])
            except Unsupported as e:
                where = spec.config.where(spec.config.split(split).line)
                raise ConfigError(f"{where}: dataset[{index}]: {_sentence(e)}") from None
            out.append(Decoded(pixels, mode, nbytes))
        return out

    def dataset_code(
        self, spec, root: Path, split: str, shape: tuple[int, int, int], name: str = "dataset"
    ) -> list[str]:
        """A small Dataset around the factory's that gives each image as Batchscope reads it
        (a PIL image of the split's one size and mode), with `transform` and the
        `classes` and `targets` a sampler needs."""
        part = spec.config.split(split)
        made = self._make(spec, split)
        facts = made.facts or self._first_facts(spec, root, split, part, made)
        module = sys.modules[part.module]
        head, _, rest = part.attribute.partition(".")
        channels, height, width = shape
        lines = ["", "import sys", "", "import torch", "from PIL import Image"]
        container = facts.kind.split()[0]
        if container != "pil":
            lines.append("from torchvision.transforms.functional import to_pil_image")
        lines.append("")
        folder = spec.config.path.parent
        if _inside(getattr(module, "__file__", None), folder):
            lines.append(
                f"sys.path.append({str(folder)!r})  # the folder of {spec.config.path.name}"
            )
        lines += [f"from {part.module} import {head}", "", ""]
        if facts.labels_from:
            targets = f"[int(label) for label in dataset.{facts.labels_from}]"
        else:
            targets = "[int(dataset[i][1]) for i in range(len(dataset))]  # one pass"
        as_pil = {
            "tensor HWC": "to_pil_image(image.permute(2, 0, 1))",
            "array CHW": "to_pil_image(image.transpose(1, 2, 0))",
        }.get(facts.kind, "to_pil_image(image)")
        lines += [
            "class AsBatchscopeReads(torch.utils.data.Dataset):",
            '    """A Dataset\'s images as Batchscope reads them: PIL images, one size and mode."""',
            "",
            f"    grey_modes = ({', '.join(f'{mode!r}' for mode in GREY_MODES)})",
            "",
            "    def __init__(self, dataset, classes, size, mode, transform=None):",
            "        self.dataset, self.classes, self.size, self.mode = dataset, classes, size, mode",
            "        self.transform = transform",
            f"        self.targets = {targets}",
            "",
            "    def __len__(self):",
            "        return len(self.dataset)",
            "",
            "    def __getitem__(self, index):",
            "        image, label = self.dataset[index]",
            *([f"        image = {as_pil}"] if container != "pil" else []),
            '        if image.mode not in ("L", "RGB"):  # grey or RGB, alpha dropped',
            '            image = image.convert("L" if image.mode in self.grey_modes else "RGB")',
            "        if image.size != self.size:  # the split's one size",
            "            image = image.resize(self.size, Image.Resampling.BILINEAR)",
            "        if image.mode != self.mode:",
            "            image = image.convert(self.mode)",
            "        if self.transform is not None:",
            "            image = self.transform(image)",
            "        return image, int(label)",
            "",
            "",
        ]
        call = f"{head}{'.' + rest if rest else ''}({_call_arguments(part.kwargs)})"
        if facts.numbered:
            classes = f"[str(k) for k in range({len(facts.classes)})]"
        else:
            classes = repr(list(facts.classes))
        mode = "L" if channels == 1 else "RGB"
        lines += [
            f"{name} = AsBatchscopeReads(",
            f"    {call},",
            f"    {classes},",
            f"    size=({width}, {height}),",
            f"    mode={mode!r},",
            "    transform=transform,",
            ")",
        ]
        return lines


def _fails(where: str, index: int, error: BaseException) -> ConfigError:
    """A sample whose __getitem__ raises: the user's DataLoader stops there too, so the split
    is refused (skipping it would shift every index after it against the user's)."""
    return ConfigError(
        f"{where}: dataset[{index}] raised {_sentence(_one_line(error))} A DataLoader over "
        "this dataset raises there too: fix the sample, or leave it out of the dataset "
        "(e.g. torch.utils.data.Subset)."
    )


def _disagree(where: str, index: int, made: _Made, error: IndexError) -> ConfigError:
    return ConfigError(
        f"{where}: dataset[{index}] raised IndexError ({error}) though len(dataset) is "
        f"{made.length:,}: __len__ and __getitem__ disagree. Make them agree."
    )


def _label_array(values: object) -> np.ndarray | None:
    """A `targets` or `labels` attribute as a 1-d integer array, or None when it is no such
    thing (then the labels are read from the samples)."""
    if values is None or isinstance(values, str | bytes | dict):
        return None
    try:
        array = np.asarray(values)
    except Exception:  # noqa: BLE001 - whatever it is, it is no list of labels
        return None
    if array.ndim != 1 or array.dtype.kind not in "iu":
        return None
    return array


def _stamp(path: str | None) -> tuple:
    """A file's size and modification time, or () for none."""
    if not path:
        return ()
    try:
        info = os.stat(path)
    except OSError:
        return ()
    return (info.st_size, info.st_mtime_ns)


def _kwarg_stamps(kwargs: dict) -> list:
    """The size and modification time of each absolute path a kwarg names (a `root`): a
    changed data file or folder there is read again."""
    found = []
    for key, value in sorted(kwargs.items()):
        if isinstance(value, str) and os.path.isabs(value) and os.path.exists(value):
            found.append([key, *_stamp(value)])
    return found


def _inside(path: str | None, folder: Path) -> bool:
    if not path:
        return False
    return Path(os.path.realpath(path)).is_relative_to(os.path.realpath(folder))


def _call_arguments(kwargs: dict) -> str:
    """The kwargs as Python call arguments."""
    if all(k.isidentifier() and not keyword.iskeyword(k) for k in kwargs):
        return ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
    return f"**{kwargs!r}"

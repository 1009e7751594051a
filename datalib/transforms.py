"""The user's transform pipeline: a list of torchvision.transforms.v2 steps, written as text
for the URL, validated, shown as code and applied to the images the DataLoader yields.

A pipeline runs after ToTensor, on float32 C x H x W in [0, 1]. Nothing in its text is ever
evaluated: a step is one of the names in `CATALOG`, each parameter is parsed as numbers or a
boolean and checked against its bounds, and each refusal says what to write instead.

    Resize(size=32);RandomHorizontalFlip(p=0.5);Normalize(mean=0.1307,std=0.3081)

Random steps draw from torch's generator. Sample `i` is drawn from `torch.manual_seed(seed + i)`
(in a forked generator state), so its draws are the same on every page, in every batch that
holds it, and in the script the code box shows (`SeededDraws`), whatever the loader's order.
"""

from __future__ import annotations

import functools
import math
import re
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np

from datalib.errors import InvalidRequest

if TYPE_CHECKING:
    import torch

__all__ = [
    "CATALOG",
    "EMPTY",
    "AfterStats",
    "ChannelFigures",
    "Param",
    "Pipeline",
    "Plan",
    "Step",
    "StepKind",
    "after_stats",
    "apply",
    "draws",
    "output_shape",
    "parse",
    "plan",
    "viewable",
]

MAX_STEPS = 12
MAX_SIDE = 1024  # a size a step may ask for, at most
MAX_SEED = 2**31 - 1  # seed + index stays a valid torch seed for any split


@dataclass(frozen=True)
class Param:
    """One parameter of a step: how many numbers it takes (or a boolean), and their bounds."""

    name: str
    counts: tuple[int, ...] = (1,)  # how many numbers it accepts; () for a boolean
    low: float = -math.inf
    high: float = math.inf
    integer: bool = False
    required: bool = False
    default: str = ""  # as written in the form ("" leaves torchvision's default)
    ordered: bool = False  # two numbers: low, high
    help: str = ""

    def parse(self, text: str, step: str) -> bool | tuple[float, ...]:
        """The value written as `text`, checked; raises InvalidRequest saying what to write."""
        where = f"{step}: {self.name}"
        if not self.counts:
            if text.lower() in ("true", "1", "yes"):
                return True
            if text.lower() in ("false", "0", "no"):
                return False
            raise InvalidRequest(f"{where} is true or false, not {text[:40]!r}.")
        parts = [p.strip() for p in text.split("/")]
        try:
            values = tuple(float(p) for p in parts)
        except ValueError:
            raise InvalidRequest(
                f"{where} takes {self._what()}, not {text[:40]!r} (several numbers are "
                "written with / between them, e.g. 0.5/0.5/0.5)."
            ) from None
        if len(values) not in self.counts and not (self.counts == (-1,) and values):
            raise InvalidRequest(f"{where} takes {self._what()}, not {len(values)} numbers.")
        for value in values:
            if not math.isfinite(value) or not self.low <= value <= self.high:
                raise InvalidRequest(
                    f"{where} must lie between {self.low:g} and {self.high:g}, not {value:g}."
                )
            if self.integer and value != int(value):
                raise InvalidRequest(f"{where} is a whole number, not {value:g}.")
        if self.ordered and len(values) == 2 and values[0] > values[1]:
            raise InvalidRequest(
                f"{where} is a range low/high: {values[0]:g} is above {values[1]:g}."
            )
        return tuple(int(v) for v in values) if self.integer else values

    def _what(self) -> str:
        if self.counts == (-1,):
            return "one number per channel"
        kind = "whole number" if self.integer else "number"
        options = " or ".join(str(n) for n in self.counts)
        return f"{options} {kind}{'s' if self.counts != (1,) else ''}"


@dataclass(frozen=True)
class StepKind:
    """One transform Batchscope can add: its torchvision.transforms.v2 class and parameters."""

    name: str
    params: tuple[Param, ...]
    what: str  # one line for the form
    random: bool = True  # draws from the generator (see `Step.random`)
    pointwise: bool = False  # each output value depends only on the same input value


_SIZE = {"counts": (1, 2), "low": 1, "high": MAX_SIDE, "integer": True, "required": True}
_DEGREES = {
    "counts": (1, 2),
    "low": -360,
    "high": 360,
    "ordered": True,
    "required": True,
    "help": "d: -d to d; or low/high",
}
CATALOG: dict[str, StepKind] = {
    kind.name: kind
    for kind in (
        StepKind(
            "Resize",
            (Param("size", **_SIZE, default="32", help="one side: the shorter side; H/W: both"),),
            "resize (bilinear, antialiased)",
            random=False,
        ),
        StepKind(
            "CenterCrop",
            (Param("size", **_SIZE, default="24", help="one side (square) or H/W"),),
            "crop the centre",
            random=False,
        ),
        StepKind(
            "RandomCrop",
            (
                Param("size", **_SIZE, default="24", help="one side (square) or H/W"),
                Param("padding", counts=(1, 2, 4), low=0, high=MAX_SIDE, integer=True),
                Param("pad_if_needed", counts=()),
            ),
            "crop at a random place",
        ),
        StepKind(
            "RandomResizedCrop",
            (
                Param("size", **_SIZE, default="28", help="one side (square) or H/W"),
                Param("scale", counts=(2,), low=0.001, high=1, ordered=True, default="0.08/1"),
                Param(
                    "ratio", counts=(2,), low=0.01, high=100, ordered=True, default="0.75/1.3333"
                ),
            ),
            "crop a random area and aspect, then resize",
        ),
        StepKind(
            "RandomHorizontalFlip",
            (Param("p", low=0, high=1, default="0.5", help="chance of a flip"),),
            "mirror left-right",
        ),
        StepKind(
            "RandomRotation",
            (
                Param("degrees", **_DEGREES, default="15"),
                Param("expand", counts=()),
            ),
            "rotate by a random angle",
        ),
        StepKind(
            "RandomAffine",
            (
                Param("degrees", **_DEGREES, default="10"),
                Param(
                    "translate",
                    counts=(2,),
                    low=0,
                    high=1,
                    default="0.1/0.1",
                    help="largest shift, as a share of width/height",
                ),
                Param("scale", counts=(2,), low=0.01, high=10, ordered=True, default="0.9/1.1"),
                Param("shear", counts=(1, 2, 4), low=-180, high=180),
            ),
            "rotate, shift, scale and shear at random",
        ),
        StepKind(
            "ColorJitter",
            (
                Param("brightness", counts=(1, 2), low=0, high=10, default="0.2"),
                Param("contrast", counts=(1, 2), low=0, high=10, default="0.2"),
                Param("saturation", counts=(1, 2), low=0, high=10),
                Param("hue", counts=(1, 2), low=-0.5, high=0.5),
            ),
            "change brightness, contrast, saturation and hue at random",
        ),
        StepKind(
            "GaussianBlur",
            (
                Param(
                    "kernel_size",
                    counts=(1, 2),
                    low=1,
                    high=99,
                    integer=True,
                    required=True,
                    default="3",
                    help="odd",
                ),
                Param(
                    "sigma",
                    counts=(1, 2),
                    low=0.001,
                    high=100,
                    ordered=True,
                    default="0.1/2",
                    help="s, or a random one in low/high",
                ),
            ),
            "blur (a fixed sigma is not random)",
        ),
        StepKind(
            "RandomErasing",
            (
                Param("p", low=0, high=1, default="0.5"),
                Param("scale", counts=(2,), low=0.001, high=1, ordered=True, default="0.02/0.33"),
                Param("ratio", counts=(2,), low=0.01, high=100, ordered=True, default="0.3/3.3"),
                Param("value", low=-1000, high=1000, default="0"),
            ),
            "blank a random rectangle",
        ),
        StepKind(
            "Normalize",
            (
                Param("mean", counts=(-1,), low=-1000, high=1000, required=True, default="0.5"),
                Param("std", counts=(-1,), low=1e-6, high=1000, required=True, default="0.5"),
            ),
            "subtract the mean and divide by the std, per channel",
            random=False,
            pointwise=True,
        ),
    )
}


@dataclass(frozen=True)
class Step:
    """One transform of a pipeline with its parameters (only those written)."""

    name: str
    values: tuple[tuple[str, bool | tuple[float, ...]], ...] = ()

    @property
    def kind(self) -> StepKind:
        return CATALOG[self.name]

    @property
    def random(self) -> bool:
        """Whether its output varies from draw to draw (a fixed sigma blurs alike)."""
        if self.name == "GaussianBlur":
            sigma = dict(self.values).get("sigma", (0.1, 2.0))
            return len(sigma) == 2 and sigma[0] != sigma[1]
        p = dict(self.values).get("p", (0.5,))[0]
        if self.name == "RandomHorizontalFlip":  # p 0 or 1: always the same
            return 0 < p < 1
        if self.name == "RandomErasing":
            return p > 0
        return self.kind.random

    @property
    def text(self) -> str:
        """As written in the URL: Name(key=value,...), several numbers joined by /."""
        return f"{self.name}({','.join(f'{k}={_text(v)}' for k, v in self.values)})"

    @property
    def code(self) -> str:
        """As Python: v2.Name(key=value, ...)."""
        return f"v2.{self.name}({', '.join(f'{k}={_code(k, v)}' for k, v in self.values)})"

    def arguments(self) -> dict:
        return {k: _argument(k, v) for k, v in self.values}


def _text(value: bool | tuple[float, ...]) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return "/".join(_number(v) for v in value)


def _number(value: float) -> str:
    """A number as short as it reads back exactly: 32, 0.5, 0.13066048."""
    short = f"{value:g}"
    return short if float(short) == value else repr(float(value))


def _argument(name: str, value: bool | tuple[float, ...]):
    if isinstance(value, bool):
        return value
    if name in ("mean", "std"):
        return list(value)
    if name in ("size", "kernel_size", "padding") and len(value) > 1:
        return list(value)
    return value[0] if len(value) == 1 else tuple(value)


def _code(name: str, value: bool | tuple[float, ...]) -> str:
    argument = _argument(name, value)
    if isinstance(argument, bool | int | float):
        return repr(argument)
    return repr(type(argument)(float(v) if isinstance(v, float) else v for v in argument))


_STEP = re.compile(r"\s*([A-Za-z]+)\s*\((.*)\)\s*")


@dataclass(frozen=True)
class Pipeline:
    """Transforms applied, in order, to each image after ToTensor; `seed` drives the random
    ones (sample i draws from seed + i)."""

    steps: tuple[Step, ...] = ()
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.seed <= MAX_SEED:
            raise InvalidRequest(f"Draw seed {self.seed} is out of range: choose 0 to {MAX_SEED}.")

    def __bool__(self) -> bool:
        return bool(self.steps)

    @property
    def text(self) -> str:
        return ";".join(step.text for step in self.steps)

    @property
    def random(self) -> bool:
        return any(step.random for step in self.steps)

    @property
    def draws(self) -> bool:
        """Whether a step draws from torch's generator (a flip with p=1 does, uselessly)."""
        return any(step.kind.random for step in self.steps)

    @property
    def pointwise(self) -> bool:
        """Every step maps each value alone (Normalize): statistics follow from the counts."""
        return all(step.kind.pointwise for step in self.steps)

    @property
    def title(self) -> str:
        """What a chart title says of it."""
        if not self.steps:
            return "ToTensor()"
        described = ", ".join(step.text for step in self.steps)
        return f"ToTensor(), {described}" + (f" (draw seed {self.seed})" if self.random else "")

    def code_lines(self) -> list[str]:
        return [f"{step.code}," for step in self.steps]

    def channels_check(self, channels: int) -> None:
        """Refuse a Normalize whose mean or std has neither one value nor one per channel."""
        for step in self.steps:
            for name, value in step.values:
                if name in ("mean", "std") and len(value) not in (1, channels):
                    raise InvalidRequest(
                        f"Normalize: {name} has {len(value)} values but the images have "
                        f"{channels} channel{'s' if channels > 1 else ''}: give one value "
                        f"{'or one per channel ' if channels > 1 else ''}(e.g. "
                        f"{'/'.join(['0.5'] * channels)})."
                    )

    @cached_property
    def compose(self):
        """The steps as one torchvision.transforms.v2.Compose."""
        from torchvision.transforms import v2

        return v2.Compose([getattr(v2, step.name)(**step.arguments()) for step in self.steps])

    def without(self, position: int) -> Pipeline:
        return Pipeline(self.steps[:position] + self.steps[position + 1 :], self.seed)

    def plus(self, step: Step) -> Pipeline:
        return parse(";".join([*(s.text for s in self.steps), step.text]), self.seed)


EMPTY = Pipeline()


def parse(text: str, seed: int = 0) -> Pipeline:
    """The pipeline written as `text` (see the module docstring), every value checked."""
    text = (text or "").strip()
    if not text:
        return Pipeline((), seed)
    parts = [part for part in text.split(";") if part.strip()]
    if not parts:
        return Pipeline((), seed)
    if len(parts) > MAX_STEPS:
        raise InvalidRequest(f"A pipeline has at most {MAX_STEPS} steps, not {len(parts)}.")
    steps = tuple(_parse_step(part) for part in parts)
    pipeline = Pipeline(steps, seed)
    try:
        _ = pipeline.compose  # torchvision's own checks, e.g. an even blur kernel
    except (ValueError, TypeError) as e:
        raise InvalidRequest(f"torchvision refuses the pipeline {pipeline.text!r}: {e}") from None
    return pipeline


def _parse_step(text: str) -> Step:
    match = _STEP.fullmatch(text)
    if match is None:
        raise InvalidRequest(
            f"{text.strip()[:60]!r} is not a step: write Name(key=value, ...), e.g. "
            "RandomHorizontalFlip(p=0.5)."
        )
    name, body = match.groups()
    kind = CATALOG.get(name)
    if kind is None:
        raise InvalidRequest(
            f"{name[:40]!r} is not a transform Batchscope offers: choose one of "
            f"{', '.join(CATALOG)}."
        )
    params = {param.name: param for param in kind.params}
    given: dict[str, bool | tuple[float, ...]] = {}
    for item in (i for i in body.split(",") if i.strip()):
        key, equals, value = item.partition("=")
        key = key.strip()
        if not equals or key not in params:
            raise InvalidRequest(
                f"{name}: {key[:40]!r} is not one of its parameters ({', '.join(params)}); "
                "write key=value."
            )
        if key in given:
            raise InvalidRequest(f"{name}: {key} is given twice.")
        given[key] = params[key].parse(value.strip(), name)
    for param in kind.params:
        if param.required and param.name not in given:
            raise InvalidRequest(f"{name} needs {param.name} (e.g. {param.name}={param.default}).")
    if name == "GaussianBlur" and any(k % 2 == 0 for k in given["kernel_size"]):
        raise InvalidRequest("GaussianBlur: kernel_size must be odd (e.g. 3 or 5).")
    if name == "Normalize" and len(given["mean"]) != len(given["std"]):
        raise InvalidRequest("Normalize: give as many std values as mean values.")
    order = [param.name for param in kind.params]
    return Step(name, tuple(sorted(given.items(), key=lambda kv: order.index(kv[0]))))


def apply(pipeline: Pipeline, images: torch.Tensor, indices: Sequence[int]) -> list[torch.Tensor]:
    """`images` (float32 N x C x H x W, after ToTensor) through the pipeline, one output per
    image; image j is sample `indices[j]`, whose random draws come from seed + that index."""
    import torch

    pipeline.channels_check(images.shape[1])
    if not pipeline:
        return list(images)
    compose = pipeline.compose
    if not pipeline.draws:  # one call for all: the same result as one image at a time
        return list(_run(compose, images))
    # A step that draws from the generator (even one whose output never varies, a flip with
    # p=1) runs an image at a time under the lock, so no session's draws disturb another's.
    out = []
    for image, index in zip(images, indices, strict=True):
        # torch's generator is the process's: sessions' threads take turns, image by image.
        with _GENERATOR, torch.random.fork_rng(devices=[]):
            torch.manual_seed(pipeline.seed + int(index))
            out.append(_run(compose, image))
    return out


_GENERATOR = threading.Lock()


# What one image may cost on its way through a pipeline: the elements (C x H x W) of any
# image between two steps, and the work (elements touched, a blur's kernel counted) of all
# steps. A GaussianBlur of kernel 99 on a 1024 x 1024 grey image, about 2e8, takes 2.5 s here.
MAX_ELEMENTS = 3 * 1536 * 1536
MAX_WORK = 100_000_000


@dataclass(frozen=True)
class Plan:
    """What a pipeline does to images of one shape, known before any runs: the output's
    shape (the largest, where random steps vary it), the most elements of any image between
    two steps, and the work an image costs."""

    shape: tuple[int, int, int]
    peak: int
    work: int


@functools.lru_cache(maxsize=64)
def plan(pipeline: Pipeline, shape: tuple[int, int, int]) -> Plan:
    """The pipeline's plan on images of `shape` (C x H x W), after refusing what they cannot
    go through or what would cost too much; one image of zeros is then run through it
    (bounded by the plan) for torchvision's own refusals."""
    import torch

    pipeline.channels_check(shape[0])
    c, h, w = shape
    peak, work = c * h * w, 0
    for position, step in enumerate(pipeline.steps, 1):
        h, w, factor = _step_shape(step, h, w, position)
        elements = c * h * w
        if elements > MAX_ELEMENTS:
            raise InvalidRequest(
                f"Step {position} ({step.text}) would make images of {c} x {h} x {w}: at most "
                f"{MAX_ELEMENTS:,} values an image. Use smaller sizes."
            )
        peak, work = max(peak, elements), work + max(elements, peak) * factor
    if work > MAX_WORK:
        raise InvalidRequest(
            f"The pipeline would cost about {work:.2g} operations an image of {shape[0]} x "
            f"{shape[1]} x {shape[2]} (at most {MAX_WORK:.0e}): use a smaller blur kernel, "
            "fewer steps or smaller sizes."
        )
    if pipeline:
        apply(pipeline, torch.zeros((1, *shape)), [0])
    return Plan((c, h, w), peak, max(work, c * h * w))


def _step_shape(step: Step, h: int, w: int, position: int) -> tuple[int, int, int]:
    """A step's output height and width (the largest it may give) and its work per element."""
    values = dict(step.values)
    size = values.get("size")
    if size is not None:
        size = tuple(int(v) for v in size)
    if step.name == "Resize":
        if len(size) == 2:
            return size[0], size[1], 4
        short, long = min(h, w), max(h, w)
        side = int(size[0] * long / short)
        return (size[0], side, 4) if h <= w else (side, size[0], 4)
    if step.name in ("CenterCrop", "RandomResizedCrop"):
        out = size * 2 if len(size) == 1 else size
        return out[0], out[1], 4 if step.name == "RandomResizedCrop" else 1
    if step.name == "RandomCrop":
        out = size * 2 if len(size) == 1 else size
        pad = [int(v) for v in values.get("padding", (0,))]
        left, top, right, bottom = (
            (pad * 4)[:4] if len(pad) == 1 else ((pad * 2)[:4] if len(pad) == 2 else pad)
        )
        padded_h, padded_w = h + top + bottom, w + left + right
        if not values.get("pad_if_needed") and (out[0] > padded_h or out[1] > padded_w):
            raise InvalidRequest(
                f"Step {position} ({step.text}) crops {out[0]} x {out[1]} from images of "
                f"{padded_h} x {padded_w}: crop smaller, pad, or set pad_if_needed=true."
            )
        return out[0], out[1], 1
    if step.name == "RandomRotation" and values.get("expand"):
        side = math.ceil(math.hypot(h, w))  # any angle fits in the diagonal
        return side, side, 8
    if step.name == "GaussianBlur":
        kernel = [int(k) for k in values["kernel_size"]]
        if max(kernel) // 2 >= min(h, w):
            raise InvalidRequest(
                f"Step {position} ({step.text}): a kernel of {max(kernel)} is too big for images "
                f"of {h} x {w}: at most {2 * min(h, w) - 1}."
            )
        return h, w, 2 * max(kernel)
    return h, w, 8 if step.name in ("RandomRotation", "RandomAffine") else 2


def output_shape(pipeline: Pipeline, shape: tuple[int, int, int]) -> tuple[int, ...]:
    """The shape an image of `shape` (C x H x W) comes out of the pipeline in (the largest,
    where a random step varies it); refuses what these images cannot go through."""
    return tuple(shape) if not pipeline else plan(pipeline, tuple(shape)).shape


def draws(data, pipeline: Pipeline, index: int, count: int = 16) -> list:
    """`count` draws of the pipeline on sample `index` of a split (after ToTensor): the first
    is the sample's own (seed + index, what its batch shows), the next ones continue from
    that generator state, as `torch.manual_seed(seed + index)` then `count` calls do."""
    import torch

    image = torch.from_numpy(data.images([index])[0]).float().div(255)
    plan(pipeline, tuple(image.shape))
    out, state = [], None
    for _ in range(count):  # the lock is held a draw at a time: other sessions go between
        with _GENERATOR, torch.random.fork_rng(devices=[]):
            if state is None:
                torch.manual_seed(pipeline.seed + int(index))
            else:
                torch.set_rng_state(state)
            out.append(_run(pipeline.compose, image))
            state = torch.get_rng_state()
    return out


def _run(compose, images: torch.Tensor) -> torch.Tensor:
    try:
        return compose(images)
    except (RuntimeError, ValueError, TypeError) as e:
        raise InvalidRequest(f"The pipeline cannot transform these images: {e}") from None


def viewable(images: Sequence[torch.Tensor]) -> tuple[list[np.ndarray], float, float]:
    """Transformed images as uint8 pictures (H x W or H x W x 3): values in [0, 1] as they
    are, others with the images' lowest value shown black and highest white. Returns the
    pictures and that low and high."""
    import torch

    low = min((float(image.min()) for image in images), default=0.0)
    high = max((float(image.max()) for image in images), default=1.0)
    if low >= 0 and high <= 1:
        low, high = 0.0, 1.0
    span = (high - low) or 1.0
    pictures = []
    for image in images:
        scaled = ((image.float() - low) / span).clamp(0, 1).mul(255).round().to(torch.uint8)
        array = scaled.numpy()
        pictures.append(array[0] if array.shape[0] == 1 else array.transpose(1, 2, 0))
    return pictures, low, high


# Statistics after the pipeline ---------------------------------------------------------------

LOW, HIGH, BINS = -16.0, 16.0, 3200  # a fixed grid (0.01 wide) that chunks add into
SAMPLE = 2000  # images drawn for a random pipeline's statistics, at most ...
SAMPLE_PIXELS = 50_000_000  # ... and pixels in and out
# A deterministic (not pointwise) pipeline runs over every image while the pixels in and out
# stay under this (MNIST train's 60,000: 94 million; CIFAR-10's 50,000: 307 million); a
# bigger selection, over a seeded sample.
WHOLE_PIXELS = 400_000_000
CHUNK_BYTES = 64 << 20  # float32 pixels in and out of one chunk, at most
SAMPLE_WORK = 1_000_000_000  # a sample's work (Plan.work), at most: about 10 s here
WHOLE_WORK = 2_000_000_000  # the whole split's, to be run in the page: about 20 s at most


@dataclass(frozen=True)
class ChannelFigures:
    """One channel's mean and std (what Normalize takes)."""

    mean: float
    std: float


@dataclass
class AfterStats:
    """Per-channel pixel statistics of images after the pipeline, mergeable chunk by chunk:
    exact count, sum, sum of squares, min and max, and counts on a fixed grid of 0.01 wide
    bins from -16 to 16 (values beyond land in the end bins)."""

    channels: int
    images: int = 0  # how many went through the pipeline
    of: int = 0  # how many were asked for
    sampled: bool = False
    seed: int = 0
    count: np.ndarray = field(default=None)  # type: ignore[assignment]
    sums: np.ndarray = field(default=None)  # type: ignore[assignment]
    squares: np.ndarray = field(default=None)  # type: ignore[assignment]
    low: np.ndarray = field(default=None)  # type: ignore[assignment]
    high: np.ndarray = field(default=None)  # type: ignore[assignment]
    grid: np.ndarray = field(default=None)  # type: ignore[assignment]
    non_finite: int = 0
    shapes: Counter = field(default_factory=Counter)

    def __post_init__(self) -> None:
        c = self.channels
        if self.count is None:
            self.count = np.zeros(c, np.int64)
            self.sums, self.squares = np.zeros(c), np.zeros(c)
            self.low, self.high = np.full(c, np.inf), np.full(c, -np.inf)
            self.grid = np.zeros((c, BINS), np.int64)

    def add(self, images: Sequence[torch.Tensor], weights: np.ndarray | None = None) -> None:
        """Count these images (each C x H x W); `weights` counts each value that many times
        (the pointwise path: one image of the 256 values, weighted by their counts)."""
        groups: dict[tuple[int, ...], list[int]] = {}
        for j, image in enumerate(images):
            self.shapes[tuple(image.shape)] += 1
            groups.setdefault(tuple(image.shape), []).append(j)
        for shape, members in groups.items():
            # One channel's values of every same-shaped image at once (float32; sums in
            # float64, a channel at a time).
            stacked = np.stack([images[j].detach().float().numpy() for j in members])
            values = np.moveaxis(stacked, 1, 0).reshape(shape[0], -1)
            self._add_values(values, weights)

    def _add_values(self, values: np.ndarray, weights: np.ndarray | None) -> None:
        finite = np.isfinite(values)
        self.non_finite += int((~finite).sum())
        for c in range(min(self.channels, values.shape[0])):
            v = values[c][finite[c]].astype(np.float64)
            w = None if weights is None else weights[c][finite[c]]
            self.count[c] += v.size if w is None else int(w.sum())
            self.sums[c] += v.sum() if w is None else float(v @ w)
            self.squares[c] += (v * v).sum() if w is None else float((v * v) @ w)
            seen = v if w is None else v[w > 0]
            if seen.size:
                self.low[c] = min(self.low[c], float(seen.min()))
                self.high[c] = max(self.high[c], float(seen.max()))
            where = np.clip(((v - LOW) * (BINS / (HIGH - LOW))).astype(np.int64), 0, BINS - 1)
            self.grid[c] += np.bincount(where, weights=w, minlength=BINS).astype(np.int64)

    @property
    def total(self) -> int:
        return int(self.count.sum())

    def _checked(self) -> None:
        if not self.total:
            raise InvalidRequest("No pixels to summarise: the selection is empty.")

    @property
    def mean(self) -> float:
        self._checked()
        return float(self.sums.sum() / self.total)

    @property
    def std(self) -> float:
        self._checked()
        return float(math.sqrt(max(self.squares.sum() / self.total - self.mean**2, 0.0)))

    @property
    def min(self) -> float:
        self._checked()
        return float(self.low.min())

    @property
    def max(self) -> float:
        self._checked()
        return float(self.high.max())

    def channel_means(self) -> list[float]:
        return (self.sums / np.maximum(self.count, 1)).tolist()

    def channel_stds(self) -> list[float]:
        means = self.sums / np.maximum(self.count, 1)
        return np.sqrt(np.maximum(self.squares / np.maximum(self.count, 1) - means**2, 0)).tolist()

    def figures(self) -> tuple[ChannelFigures, ...]:
        """Mean and std per channel."""
        return tuple(
            ChannelFigures(m, s)
            for m, s in zip(self.channel_means(), self.channel_stds(), strict=True)
        )

    def histogram(self, bars: int = 200) -> tuple[np.ndarray, np.ndarray]:
        """Bar left edges and counts per channel (C x bars), over the grid's used span."""
        used = np.flatnonzero(self.grid.sum(axis=0))
        if used.size == 0:
            return np.zeros(0), np.zeros((self.channels, 0), np.int64)
        first, last = int(used[0]), int(used[-1]) + 1
        width = max(1, math.ceil((last - first) / bars))
        span = self.grid[:, first : first + width * math.ceil((last - first) / width)]
        pad = width * math.ceil((last - first) / width) - span.shape[1]
        if pad:
            span = np.pad(span, ((0, 0), (0, pad)))
        counts = span.reshape(self.channels, -1, width).sum(axis=2)
        step = (HIGH - LOW) / BINS
        edges = LOW + (first + np.arange(counts.shape[1]) * width) * step
        return edges, counts

    @property
    def what(self) -> str:
        """Which images these figures are of, in words."""
        if self.sampled:
            return f"a seeded sample of {self.images:,} of {self.of:,} images (seed {self.seed})"
        return f"all {self.of:,} image{'s' if self.of != 1 else ''}"


def after_stats(
    data, pipeline: Pipeline, indices: Sequence[int] | None = None, *, label: int | None = None
) -> AfterStats:
    """Pixel statistics after ToTensor and the pipeline, of a split, one class of it
    (`label`) or some images (`indices`).

    A pointwise pipeline (Normalize) maps the index's exact counts; a deterministic one runs
    over every image while their pixels in and out stay under WHOLE_PIXELS (chunk by chunk,
    CHUNK_BYTES at a time); a random one, or a bigger selection, over a seeded sample of at
    most SAMPLE images (fewer for big ones: SAMPLE_PIXELS), each with its own draws.
    Results for a split or class are kept with the split.
    """
    if indices is not None:
        return _after_stats(data, pipeline, np.asarray(indices, dtype=np.int64), None)
    key = ("after", pipeline, label)
    return data.remember(key, lambda: _after_stats(data, pipeline, None, label))


def _after_stats(data, pipeline: Pipeline, indices: np.ndarray | None, label: int | None):
    import torch

    c = data.image_shape[0]
    pipeline.channels_check(c)
    stats = AfterStats(channels=c, seed=pipeline.seed)
    if indices is None:
        indices = np.arange(len(data)) if label is None else np.flatnonzero(data.labels == label)
        if pipeline.pointwise:  # the index's counts of each value, mapped
            values = torch.arange(256, dtype=torch.float32).div(255).expand(c, 1, 256).clone()
            (mapped,) = apply(pipeline, values[None], [0])
            stats.add([mapped], weights=data.histogram(label).astype(np.float64))
            stats.shapes = Counter({(c, *data.image_shape[1:]): len(indices)})
            stats.images = stats.of = len(indices)
            return stats
    stats.of = len(indices)
    cost = plan(pipeline, data.image_shape)
    each = math.prod(data.image_shape) + cost.peak
    most = min(SAMPLE, max(16, SAMPLE_PIXELS // each), max(16, SAMPLE_WORK // cost.work))
    if (
        (pipeline.random and len(indices) > most)
        or len(indices) * each > WHOLE_PIXELS
        or len(indices) * cost.work > WHOLE_WORK
    ):
        rng = np.random.default_rng(pipeline.seed)
        indices = np.sort(rng.choice(indices, size=min(most, len(indices)), replace=False))
        stats.sampled = True
    chunk = max(1, CHUNK_BYTES // (4 * each))
    for start in range(0, len(indices), chunk):
        part = indices[start : start + chunk]
        images = torch.from_numpy(data.images(part)).float().div(255)
        stats.add(apply(pipeline, images, part.tolist()))
    stats.images = len(indices)
    return stats

"""Odd images: simple properties of every image (from the index), how each class spreads on
them, the images furthest from their class, and each class's mean and spread as pictures."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from datalib.errors import InvalidRequest
from datalib.index import SplitData
from datalib.quality.pictures import picture_batches, picture_side

__all__ = [
    "PROPERTIES",
    "ClassPictures",
    "Outlier",
    "class_pictures",
    "image_properties",
    "outliers",
    "property_spread",
]

# What each property means, in the user's words: a chart's axis and an outlier's reason.
PROPERTIES = {
    "brightness": "mean pixel value (0-1)",
    "contrast": "pixel standard deviation (0-1)",
    "ink": "fraction of the image that differs from its border (the digit, the object)",
    "distance": "distance to the class mean picture (root mean square, 0-1)",
    "aspect": "width / height",
    "pixels": "width x height",
}
MADS = 1.4826  # a median absolute deviation times this estimates a normal standard deviation


def image_properties(data: SplitData) -> pd.DataFrame:
    """Per image: brightness, contrast and ink from the index; aspect ratio and size where the
    split's images differ in size; the distance to its class mean picture (kept with the
    split)."""
    return data.remember("image_properties", lambda: _image_properties(data))


def _image_properties(data: SplitData) -> pd.DataFrame:
    width = data.column("width").astype(np.float64)
    height = data.column("height").astype(np.float64)
    pixels = np.maximum(width * height, 1)
    channels = 3 if data.image_shape[0] == 3 else 1
    sums = sum(data.column(f"sum_c{c}").astype(np.float64) for c in range(channels))
    squares = sum(data.column(f"sumsq_c{c}").astype(np.float64) for c in range(channels))
    mean = sums / (pixels * channels)
    variance = np.maximum(squares / (pixels * channels) - mean**2, 0)
    frame = pd.DataFrame(
        {
            "index": np.arange(len(data)),
            "label": data.labels,
            "brightness": mean / 255,
            "contrast": np.sqrt(variance) / 255,
            "ink": data.column("ink").astype(np.float64),
            "distance": class_pictures(data).distance,
        }
    )
    if np.unique(width).size > 1 or np.unique(height).size > 1:
        frame["aspect"] = width / np.maximum(height, 1)
        frame["pixels"] = width * height
    return frame


def property_spread(data: SplitData, name: str) -> pd.DataFrame:
    """Per class: the property's quartiles, whiskers (1.5 IQR, within the data) and count: a
    box plot's numbers, without sending every image's value to the browser."""
    frame = image_properties(data)
    if name not in frame:
        raise InvalidRequest(
            f"No property {name!r} here: choose one of {', '.join(_columns(frame))}."
        )
    rows = []
    for label, values in frame.groupby("label")[name]:
        q1, median, q3 = np.percentile(values, [25, 50, 75])
        reach = 1.5 * (q3 - q1)
        inside = values[(values >= q1 - reach) & (values <= q3 + reach)]
        rows.append(
            {
                "class": data.classes[int(label)],
                "images": int(values.size),
                "low": float(inside.min()),
                "q1": float(q1),
                "median": float(median),
                "q3": float(q3),
                "high": float(inside.max()),
                "beyond_whiskers": int(values.size - inside.size),
            }
        )
    return pd.DataFrame(rows)


def _columns(frame: pd.DataFrame) -> list[str]:
    return [name for name in PROPERTIES if name in frame]


@dataclass(frozen=True)
class Outlier:
    """An image far from its class on one property: how far (in robust standard deviations)
    and why, in words."""

    index: int
    label: int
    score: float
    reason: str
    property: str  # the property it is furthest on, and its value there
    value: float

    def as_dict(self) -> dict:
        return {"index": self.index, "reason": self.reason, "score": round(self.score, 3)}


def outliers(data: SplitData, count: int = 100) -> list[Outlier]:
    """The `count` images furthest from their class on any property, furthest first.

    A property's distance is robust: (value - class median) / (1.4826 x the class's median
    absolute deviation), so the outliers themselves do not widen what counts as normal.
    """
    frame = image_properties(data)
    names = _columns(frame)
    labels = frame["label"].to_numpy()
    scores = np.zeros((len(frame), len(names)))
    medians = np.zeros_like(scores)
    for c in np.unique(labels):
        members = labels == c
        values = frame.loc[members, names].to_numpy()
        median = np.median(values, axis=0)
        apart = np.abs(values - median)
        spread = MADS * np.median(apart, axis=0)
        # Half a class or more at its median (a size every image shares, an empty border):
        # the mean absolute deviation instead (1.2533 x it estimates a normal SD), and a
        # floor, so a difference is never divided by nothing.
        spread = np.where(spread > 0, spread, 1.2533 * apart.mean(axis=0))
        spread = np.maximum(spread, np.maximum(1e-3 * np.abs(median), 1e-3))
        scores[members] = (values - median) / spread
        medians[members] = median
    strongest = np.abs(scores).argmax(axis=1)
    best = np.abs(scores[np.arange(len(frame)), strongest])
    order = np.argsort(-best, kind="stable")[:count]
    found = []
    for i in order.tolist():
        p = int(strongest[i])
        name, value, median = names[p], frame[names[p]].iat[i], medians[i, p]
        side = "above" if scores[i, p] > 0 else "below"
        found.append(
            Outlier(
                index=i,
                label=int(labels[i]),
                score=float(best[i]),
                reason=f"{name} {_number(value)}, {best[i]:.1f} robust SDs {side} the "
                f"class median {_number(median)}",
                property=name,
                value=float(value),
            )
        )
    return found


def _number(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3f}"


@dataclass(frozen=True, eq=False)
class ClassPictures:
    """Each class's mean and standard-deviation picture (K x C x S x S, 0-255), its image
    count, and every image's distance to its class mean (root mean square, 0-1)."""

    side: int
    mean: np.ndarray
    std: np.ndarray
    counts: np.ndarray
    distance: np.ndarray


def class_pictures(data: SplitData) -> ClassPictures:
    """Class mean and spread pictures and distances, from the index's thumbnails in two
    streamed passes (kept with the split)."""
    return data.remember("class_pictures", lambda: _class_pictures(data))


def _class_pictures(data: SplitData) -> ClassPictures:
    side = picture_side(data)
    k, channels = len(data.classes), data.image_shape[0]
    sums = np.zeros((k, channels, side, side))
    squares = np.zeros_like(sums)
    counts = np.bincount(data.labels, minlength=k)
    for indices, pictures in picture_batches(data, side):
        values = pictures.astype(np.float64)
        labels = data.labels[indices]
        for c in np.unique(labels):
            members = values[labels == c]
            sums[c] += members.sum(axis=0)
            squares[c] += (members**2).sum(axis=0)
    present = np.maximum(counts, 1)[:, None, None, None]
    mean = sums / present
    std = np.sqrt(np.maximum(squares / present - mean**2, 0))
    distance = np.zeros(len(data))
    for indices, pictures in picture_batches(data, side):
        apart = pictures.astype(np.float32) - mean[data.labels[indices]].astype(np.float32)
        distance[indices] = np.sqrt((apart**2).mean(axis=(1, 2, 3))) / 255
    return ClassPictures(side=side, mean=mean, std=std, counts=counts, distance=distance)

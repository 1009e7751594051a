"""The data-readiness checklist: for one split and DataLoader, a verdict (pass, warn, fail),
the evidence and the fix as code for each thing a tutorial checks by hand before training."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from datalib.batches import LoaderSettings, to_tensor
from datalib.datasets import load
from datalib.duplicates import conflicting_groups, cross_duplicates, duplicate_groups, pixel_keys
from datalib.errors import InvalidRequest
from datalib.formats.folder import IMG_EXTENSIONS
from datalib.index import SplitData
from datalib.quality.near import NearDuplicates, near_duplicates
from datalib.registry import DatasetSpec, dataset_spec
from datalib.sampling import (
    class_weights,
    epoch_order,
    label_mixing,
    sampler_name,
    sampler_shares,
    targets,
)
from datalib.snippets import (
    loadable_fix,
    normalize_line,
    reproduce_code,
    split_fix,
    weights_fix,
)
from datalib.stats import (
    BALANCED_RATIO,
    LEVELS,
    MILD_RATIO,
    PixelStats,
    balance_verdict,
    class_counts,
    imbalance_ratio,
    pixel_stats,
)
from datalib.transforms import EMPTY, AfterStats, ChannelFigures, Pipeline, after_stats

__all__ = [
    "CHECKS",
    "VERDICTS",
    "Check",
    "Checklist",
    "check_augment",
    "check_balanced",
    "check_loadable",
    "check_normalized",
    "check_numerical",
    "check_scaled",
    "check_shuffled",
    "check_splits",
    "checklist",
    "checklist_of",
    "standardized",
]

VERDICTS = ("pass", "warn", "fail")
CHECKS = {
    "loadable": "Every file loads",
    "numerical": "Numerical tensors",
    "scaled": "Scaled values",
    "normalized": "Normalized per channel",
    "shuffled": "Shuffled batches",
    "split": "Disjoint train and test",
    "balanced": "Balanced classes",
    "augment": "No random augmentation on test",  # with a pipeline only
}
MIXED, SORTED = 0.9, 0.5  # label mixing as a fraction of what a random order gives
NORMALIZED_MEAN, NORMALIZED_STD = 0.1, 0.1  # |mean| and |std - 1| of a normalized channel
# What "scaled" accepts after Normalize, of any split (test normalized with train's figures
# strays further than train): |mean| at most this, std within these.
STANDARD_MEAN, STANDARD_STD = 0.5, (0.5, 2.0)
EXAMPLE_GROUPS, EXAMPLE_MEMBERS = 6, 6  # duplicate groups shown, and images shown per group
SHOWN_BATCHES, SHOWN_LABELS = 20, 400  # the first batches' labels in the shuffled check's table


@dataclass(frozen=True, eq=False)
class LabelGrid:
    """The shuffled check's evidence: the labels of the first batches, in loader order."""

    labels: np.ndarray  # batches x batch_size, float: NaN past the epoch's end
    indices: np.ndarray  # the sample index at each place, -1 past the end
    classes: tuple[str, ...]

    def table(self) -> pd.DataFrame:
        batch, position = np.nonzero(self.indices >= 0)
        labels = self.labels[batch, position].astype(np.int64)
        return pd.DataFrame(
            {
                "batch": batch,
                "position": position,
                "index": self.indices[batch, position],
                "label": labels,
                "class": np.asarray(self.classes, dtype=object)[labels],
            }
        )


@dataclass(frozen=True)
class Member:
    """One image of a duplicate example."""

    split: str
    index: int
    label: int
    name: str  # its class's name


@dataclass(frozen=True)
class DuplicateExample:
    """Identical images: across train and test, or within one split."""

    kind: str  # "train and test", "within train", ...
    members: tuple[Member, ...]

    def by_split(self) -> dict[str, list[Member]]:
        """The members of each split, splits in order of first appearance."""
        parts: dict[str, list[Member]] = {}
        for member in self.members:
            parts.setdefault(member.split, []).append(member)
        return parts


@dataclass(frozen=True)
class DuplicateExamples:
    """The split check's evidence: a few examples of each kind of exact duplicate."""

    examples: tuple[DuplicateExample, ...]

    def table(self) -> pd.DataFrame:
        rows = [
            (number, example.kind, m.split, m.index, m.label, m.name)
            for number, example in enumerate(self.examples)
            for m in example.members
        ]
        return pd.DataFrame(rows, columns=["example", "kind", "split", "index", "label", "class"])


@dataclass(frozen=True, eq=False)
class ClassMix:
    """The balanced check's evidence, per class: counts and weights, and one epoch's class mix
    without a sampler and with a WeightedRandomSampler (expected, the 95% range of one epoch,
    and the seeded draw)."""

    classes: tuple[str, ...]
    counts: np.ndarray
    class_weight: np.ndarray  # n / (C * count); every sample of a class carries it
    epoch_without_sampler: np.ndarray
    percent_without_sampler: np.ndarray
    expected_percent_with_sampler: np.ndarray
    one_epoch_low_percent: np.ndarray
    one_epoch_high_percent: np.ndarray
    epoch_with_sampler: np.ndarray
    percent_with_sampler: np.ndarray

    def table(self) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "label": np.arange(len(self.classes)),
                "class": list(self.classes),
                "count": self.counts,
                "class_weight": self.class_weight,
                "sample_weight": self.class_weight,
                "epoch_without_sampler": self.epoch_without_sampler,
                "percent_without_sampler": self.percent_without_sampler,
                "expected_percent_with_sampler": self.expected_percent_with_sampler,
                "one_epoch_low_percent": self.one_epoch_low_percent,
                "one_epoch_high_percent": self.one_epoch_high_percent,
                "epoch_with_sampler": self.epoch_with_sampler,
                "percent_with_sampler": self.percent_with_sampler,
            }
        )

    def weights_table(self) -> pd.DataFrame:
        """What a reader compares per class: count, weight, and the two epochs' draws."""
        return self.table()[
            [
                "class",
                "count",
                "class_weight",
                "epoch_without_sampler",
                "expected_percent_with_sampler",
                "one_epoch_low_percent",
                "one_epoch_high_percent",
                "epoch_with_sampler",
            ]
        ]


@dataclass(frozen=True)
class Skipped:
    """An entry the scan skipped that torchvision's ImageFolder would trip over or read."""

    split: str
    path: str
    reason: str
    outcome: str  # "fail": the user's script breaks; "differs": it reads other images
    effect: str  # what ImageFolder or its DataLoader does with it


@dataclass(frozen=True)
class Unloadable:
    """The loadable check's evidence: every such entry."""

    entries: tuple[Skipped, ...]

    def table(self) -> pd.DataFrame:
        rows = [(e.split, e.path, e.reason, e.outcome, e.effect) for e in self.entries]
        return pd.DataFrame(rows, columns=["split", "path", "reason", "outcome", "in ImageFolder"])


@dataclass(frozen=True, eq=False)
class Check:
    """One checklist item: its verdict, a sentence that explains it, the evidence and the fix."""

    name: str
    title: str
    verdict: str
    summary: str
    facts: dict[str, object]
    fix: str = ""
    evidence: LabelGrid | DuplicateExamples | ClassMix | Unloadable | None = None
    fix_language: str = "python"

    @property
    def table(self) -> pd.DataFrame | None:
        """The evidence as one table: the CSV a page exports and the JSON's rows."""
        return None if self.evidence is None else self.evidence.table()

    def evidence_table(self) -> pd.DataFrame:
        """The facts as two columns of readable text."""
        return pd.DataFrame(
            {
                "evidence": [key.replace("_", " ") for key in self.facts],
                "value": [_readable(value) for value in self.facts.values()],
            }
        )

    def as_dict(self) -> dict:
        """Plain JSON-ready data: verdict, summary, facts, fix and the table's rows."""
        table = [] if self.table is None else self.table.to_dict("records")
        return _json_ready(
            {
                "name": self.name,
                "title": self.title,
                "verdict": self.verdict,
                "summary": self.summary,
                "facts": self.facts,
                "fix": self.fix,
                "table": table,
            }
        )


@dataclass(frozen=True, eq=False)
class Checklist:
    """Every check for one dataset split read by one DataLoader, and the code that builds it."""

    spec: DatasetSpec
    split: str
    root: Path
    loader: LoaderSettings
    sampler: str | None
    checks: tuple[Check, ...]
    code: str
    pipeline: Pipeline = EMPTY

    def __getitem__(self, name: str) -> Check:
        for check in self.checks:
            if check.name == name:
                return check
        raise KeyError(f"No check {name!r}: the checks are {', '.join(CHECKS)}.")

    @property
    def loader_text(self) -> str:
        """The DataLoader's arguments as a user would write them."""
        s = self.loader
        if self.sampler:
            order = f"sampler=WeightedRandomSampler(seed {s.seed})"
        else:
            order = f"shuffle={s.shuffle}" + (f", seed {s.seed}" if s.shuffle else "")
        return f"DataLoader(batch_size={s.batch_size}, {order}, drop_last={s.drop_last})"

    @property
    def transform_text(self) -> str:
        """What each image goes through, as the pages title it."""
        return self.pipeline.title

    def tally(self) -> dict[str, int]:
        """How many checks got each verdict."""
        return {v: sum(check.verdict == v for check in self.checks) for v in VERDICTS}

    def as_dict(self) -> dict:
        """Plain JSON-ready data: what was checked, every check, and the code."""
        s = self.loader
        return _json_ready(
            {
                "name": self.spec.name,
                "title": self.spec.title,
                "root": str(self.root),
                "split": self.split,
                "loader": {
                    "batch_size": s.batch_size,
                    "shuffle": s.shuffle,
                    "seed": s.seed,
                    "drop_last": s.drop_last,
                    "sampler": self.sampler,
                },
                "transforms": self.pipeline.text,
                "draw_seed": self.pipeline.seed,
                "tally": self.tally(),
                "checks": {check.name: check.as_dict() for check in self.checks},
                "code": self.code,
            }
        )


def check_numerical(
    data: SplitData, settings: LoaderSettings, after: AfterStats | None = None
) -> Check:
    """Tensors of a numeric dtype, one shape for all, no NaN or inf after ToTensor (and after
    the pipeline, whose figures are `after`)."""
    if after is not None and len(after.shapes) > 1:
        return _shapes_differ(data, after)
    counts = pixel_stats(data).counts.sum(axis=0)
    as_tensor = to_tensor(torch.arange(LEVELS, dtype=torch.uint8))
    # ToTensor maps each raw byte value to one float, so checking the 256 values checks all.
    finite = torch.isfinite(as_tensor).numpy()
    non_finite = int(counts[~finite].sum())
    stored = torch.uint8  # every format's images are read as bytes
    numeric = stored not in (torch.bool, torch.complex64, torch.complex128)
    labels = targets(data)
    label_min, label_max = int(labels.min()), int(labels.max())
    out_of_range = int(((labels < 0) | (labels >= len(data.classes))).sum())
    c, h, w = data.image_shape if after is None else next(iter(after.shapes))
    disk = " x ".join(map(str, data.image_shape))
    batches = settings.num_batches(len(data))
    last = len(data) - (batches - 1) * settings.batch_size
    last = min(last, settings.batch_size)
    facts = {
        "images_on_disk": f"{stored}, {len(data):,} x {disk}",
        "images_after_ToTensor": f"{as_tensor.dtype}, each {disk}",
        **(
            {"images_after_the_pipeline": f"{as_tensor.dtype}, each {c} x {h} x {w}, {after.what}"}
            if after is not None
            else {}
        ),
        "non_finite_values_after_ToTensor": non_finite,
        **({"non_finite_values_after_the_pipeline": after.non_finite} if after is not None else {}),
        "labels": f"{data.labels.dtype}, {label_min} to {label_max}",
        "labels_outside_classes": out_of_range,
        "batches": batches,
        "batch_shape": [min(settings.batch_size, len(data)), c, h, w],
        "last_batch_size": last,
    }
    where = f"{data.spec.title} {data.split}"
    non_finite += after.non_finite if after is not None else 0
    if not numeric or not as_tensor.dtype.is_floating_point or non_finite or out_of_range:
        problems = []
        if not numeric or not as_tensor.dtype.is_floating_point:
            problems.append(f"the images are {stored}, not a real number type")
        if non_finite:
            problems.append(f"{non_finite:,} pixels are NaN or inf after the transform")
        if out_of_range:
            problems.append(
                f"{out_of_range:,} labels are outside 0 to {len(data.classes) - 1}, which "
                "CrossEntropyLoss rejects"
            )
        return Check(
            "numerical",
            CHECKS["numerical"],
            "fail",
            f"{where}: {'; '.join(problems)}. Fix the data before training.",
            facts,
        )
    summary = (
        f"All {len(data):,} images share one shape ({c} x {h} x {w}"
        + (" after the pipeline" if after is not None else "")
        + "), stored as "
        f"{stored}; after the transform they are {as_tensor.dtype} with no NaN or inf, "
        f"and the labels are {labels.dtype} class indices."
    )
    if last == 1 and batches > 1:
        return Check(
            "numerical",
            CHECKS["numerical"],
            "warn",
            summary + " But the last batch holds a single sample, and BatchNorm in training "
            "mode raises on a batch of one: drop it.",
            facts,
            fix=f"loader = DataLoader(dataset, batch_size={settings.batch_size}, drop_last=True)",
        )
    return Check("numerical", CHECKS["numerical"], "pass", summary, facts)


def _shapes_differ(data: SplitData, after: AfterStats) -> Check:
    shapes = after.shapes.most_common()
    c, h, w = shapes[0][0]
    listed = ", ".join(f"{' x '.join(map(str, shape))} ({n:,})" for shape, n in shapes[:5])
    return Check(
        "numerical",
        CHECKS["numerical"],
        "fail",
        f"{data.spec.title} {data.split}: the pipeline gives images of {len(shapes)} different "
        f"shapes ({listed}{', ...' if len(shapes) > 5 else ''}; of {after.what}), and the "
        "DataLoader cannot stack them into one batch tensor: it raises at the first batch "
        "that mixes them. End the pipeline with one fixed size.",
        {"shapes_after_the_pipeline": len(shapes), "most_common": f"{c} x {h} x {w}"},
        fix=(
            f"v2.Resize(size=[{h}, {w}]),  # last step: one size for every image\n"
            "# or RandomResizedCrop / CenterCrop with one size; RandomRotation(expand=False)"
        ),
    )


def check_augment(split: str, pipeline: Pipeline) -> Check:
    """Random augmentation belongs to training: a random pipeline on another split warns."""
    random = [step.name for step in pipeline.steps if step.random]
    facts = {"split": split, "random_steps": ", ".join(random) or "none"}
    if not random:
        summary = "The pipeline is deterministic: every epoch sees the same tensors."
        return Check("augment", CHECKS["augment"], "pass", summary, facts)
    if split == "train":
        return Check(
            "augment",
            CHECKS["augment"],
            "pass",
            f"Random augmentation ({', '.join(random)}) on train, each sample drawn anew: as "
            "intended. Evaluate test without these steps.",
            facts,
        )
    kept = [step for step in pipeline.steps if not step.random]
    fix = (
        "eval_transform = v2.Compose([\n" + "".join(f"    {s.code},\n" for s in kept) + "])"
        if kept
        else "eval_transform = None  # no deterministic step: ToTensor() alone for evaluation"
    )
    return Check(
        "augment",
        CHECKS["augment"],
        "warn",
        f"The {split} split goes through random augmentation ({', '.join(random)}): its "
        "accuracy then changes from run to run and measures the augmented images, not yours. "
        "Evaluate with the deterministic steps only.",
        facts,
        fix=fix,
    )


def check_scaled(
    low: float,
    high: float,
    raw_low: int,
    raw_high: int,
    standardized: tuple[float, float] | None = None,
) -> Check:
    """Values the model sees in [0, 1] or [-1, 1], or standardized (`standardized`: the mean
    and std after a pipeline with Normalize, near 0 and 1); raw 0-255 bytes flagged with
    their transform."""
    facts = {
        "raw_on_disk": f"{raw_low} to {raw_high}",
        "min_after_transform": low,
        "max_after_transform": high,
    }
    if standardized is not None:
        mean, std = standardized
        facts |= {"mean_after_transform": mean, "std_after_transform": std}
        if abs(mean) <= STANDARD_MEAN and STANDARD_STD[0] <= std <= STANDARD_STD[1]:
            return Check(
                "scaled",
                CHECKS["scaled"],
                "pass",
                f"Standardized: after Normalize the model sees values from {low:.4g} to "
                f"{high:.4g} with mean {mean:.3f} and std {std:.3f}, the scale it expects "
                f"(on disk they are {raw_low} to {raw_high}).",
                facts,
            )
    raw = f"on disk they are {raw_low} to {raw_high}"
    if raw_high > 1:
        raw += ", which transforms.ToTensor() divides by 255 (this loader applies it)"
    if -1 <= low and high <= 1:
        interval = "[0, 1]" if low >= 0 else "[-1, 1]"
        summary = f"Scaled: the model sees values from {low:.4g} to {high:.4g}, inside {interval}; "
        return Check("scaled", CHECKS["scaled"], "pass", summary + raw + ".", facts)
    return Check(
        "scaled",
        CHECKS["scaled"],
        "fail",
        f"Not scaled: the model sees values from {low:.4g} to {high:.4g}, outside [0, 1] and "
        f"[-1, 1]; {raw}. Large inputs make early training unstable: scale them.",
        facts,
        fix="transforms.ToTensor()  # uint8 0-255 -> float32 0-1 (for a tensor: x.float() / 255)",
    )


def check_normalized(
    stats: Sequence[PixelStats | ChannelFigures], pipeline: Pipeline = EMPTY
) -> Check:
    """Per-channel mean and std of train after the loader's transform (ToTensor, then the
    pipeline), and the Normalize line that centres them."""
    means = [s.mean for s in stats]
    stds = [s.std for s in stats]
    facts = {"channels": len(stats), "mean": means, "std": stds, "normalize": normalize_line(stats)}
    if pipeline:
        facts["transform"] = pipeline.title
    shown = f"mean {_prose_text(means)}, std {_prose_text(stds)}"
    constant = [c for c, s in enumerate(stds) if s == 0]
    if constant:
        return Check(
            "normalized",
            CHECKS["normalized"],
            "fail",
            f"Channel {', '.join(map(str, constant))} of the train split is constant "
            f"(std 0): normalizing divides by zero. Drop it, or check the files.",
            facts,
        )
    if all(abs(m) <= NORMALIZED_MEAN for m in means) and all(
        abs(s - 1) <= NORMALIZED_STD for s in stds
    ):
        return Check(
            "normalized",
            CHECKS["normalized"],
            "pass",
            f"Normalized: per channel the train split has {shown} after the transform"
            + (f" ({pipeline.title})." if pipeline else "."),
            facts,
        )
    line = normalize_line(stats)
    return Check(
        "normalized",
        CHECKS["normalized"],
        "warn",
        f"Not normalized: after {'the pipeline' if pipeline else 'ToTensor'} the train split "
        f"has {shown} per channel, not 0 and 1. Normalize with the train statistics (for train "
        "and test alike) to centre the inputs"
        + (
            ": add this as the pipeline's last step (the sidebar's Normalize button does)."
            if pipeline
            else "."
        ),
        facts,
        fix=(
            f"v2.{line.removeprefix('transforms.')},  # last step: train mean and std per channel"
            if pipeline
            else (
                "transform = transforms.Compose([\n"
                "    transforms.ToTensor(),\n"
                f"    {line},  # train mean and std per channel\n"
                "])"
            )
        ),
    )


def check_shuffled(data: SplitData, settings: LoaderSettings, sampler: str | None) -> Check:
    """How mixed the labels are across consecutive batches, next to a random order."""
    order = epoch_order(data, settings, sampler)
    labels = data.labels[order]
    mixing = label_mixing(labels, settings.batch_size, len(data.classes))
    shown = min(mixing.batches, SHOWN_BATCHES, max(1, SHOWN_LABELS // settings.batch_size))
    first = labels[: shown * settings.batch_size]
    places = shown * settings.batch_size
    grid = np.full(places, np.nan)
    grid[: first.size] = first
    indices = np.full(places, -1, dtype=np.int64)
    indices[: first.size] = order[: first.size]
    shown_as = LabelGrid(
        labels=grid.reshape(shown, settings.batch_size),
        indices=indices.reshape(shown, settings.batch_size),
        classes=tuple(data.classes),
    )
    facts = {
        "label_runs": mixing.runs,
        "label_runs_in_random_order": round(mixing.expected_runs, 1),
        "longest_run": mixing.longest_run,
        "classes_per_batch": round(mixing.classes_per_batch, 3),
        "classes_per_batch_in_random_order": round(mixing.expected_classes_per_batch, 3),
        "single_class_batches": mixing.single_class_batches,
        "batches": mixing.batches,
        "labels_of_batch_0": labels[: min(settings.batch_size, 32)].tolist(),
    }
    evidence = (
        f"Along one epoch the labels form {mixing.runs:,} runs (a random order gives "
        f"{mixing.expected_runs:,.0f}; longest run {mixing.longest_run:,}), and a batch of "
        f"{settings.batch_size} holds {mixing.classes_per_batch:.2f} classes on average "
        f"(random order: {mixing.expected_classes_per_batch:.2f})."
    )
    if sampler:
        evidence = f"The WeightedRandomSampler draws the order (shuffle is unused). {evidence}"
    fix = (
        f"loader = DataLoader(dataset, batch_size={settings.batch_size}, shuffle=True, "
        f"generator=torch.Generator().manual_seed({settings.seed}))"
    )
    evaluation = data.split != "train"
    if mixing.score < SORTED:
        if evaluation:
            verdict, advice = (
                "warn",
                (
                    " Test metrics do not depend on the order, but batch statistics (BatchNorm in "
                    "training mode) would: shuffle the training loader."
                ),
            )
        else:
            verdict, advice = (
                "fail",
                (
                    " The batches are close to class-sorted: the model sees one class after "
                    "another and forgets the earlier ones. Shuffle."
                ),
            )
        return Check(
            "shuffled", CHECKS["shuffled"], verdict, evidence + advice, facts, fix, shown_as
        )
    if not settings.shuffle and not sampler:
        if evaluation:
            return Check(
                "shuffled",
                CHECKS["shuffled"],
                "pass",
                evidence + " Evaluation does not need shuffling.",
                facts,
                evidence=shown_as,
            )
        return Check(
            "shuffled",
            CHECKS["shuffled"],
            "warn",
            evidence + " The order on disk is about as mixed as a random one, but with "
            "shuffle=False every epoch repeats the same batches in the same order: shuffle.",
            facts,
            fix,
            shown_as,
        )
    if mixing.score < MIXED:
        return Check(
            "shuffled",
            CHECKS["shuffled"],
            "warn",
            evidence + " Less mixed than a random order.",
            facts,
            "" if sampler else fix,
            shown_as,
        )
    return Check(
        "shuffled",
        CHECKS["shuffled"],
        "pass",
        evidence + " As mixed as a random order.",
        facts,
        evidence=shown_as,
    )


def check_splits(
    train: SplitData, test: SplitData, root: Path, near: NearDuplicates | None | bool = True
) -> Check:
    """Train and test present and disjoint; exact duplicate images across and within splits;
    near duplicates across them: `near`, or searched now (True), or not known (None: a
    background search has not ended; it says so)."""
    splits = (train, test)
    keys = {data.split: pixel_keys(data) for data in splits}
    cross = cross_duplicates(train, test)
    facts: dict[str, object] = {
        "images": {data.split: len(data) for data in splits},
        "distinct_images": {split: int(k.keys.size) for split, k in keys.items()},
        "duplicates_within_split": {split: k.duplicates for split, k in keys.items()},
        "duplicate_groups_within_split": {
            split: int((k.counts > 1).sum()) for split, k in keys.items()
        },
        "duplicate_groups_with_conflicting_labels": {
            data.split: conflicting_groups(data) for data in splits
        },
        "images_in_both_train_and_test": cross.shared,
        "test_images_also_in_train": cross.images_b,
    }
    if near is True:
        near = near_duplicates([train, test])
    if not isinstance(near, NearDuplicates):
        pending = (
            "not known yet: a background search finds them (its progress, or why it stopped, "
            "is shown above the checks)"
        )
        facts["near_duplicate_groups_across_train_and_test"] = pending
        near_words = f"Near duplicates (perceptual hash and pixels): {pending}."
    else:
        facts["near_duplicate_groups_across_train_and_test"] = len(near.across)
        facts["test_images_with_a_near_copy_in_train"] = near.images_in(test.split, across=True)
        facts["near_duplicate_settings"] = f"<= {near.bits} hash bits, <= {near.difference} pixels"
        near_words = (
            "Near duplicates (perceptual hash and pixels, the Data quality page): "
            f"{len(near.across):,} groups across train and test, holding "
            f"{near.images_in(test.split, across=True):,} test images."
        )
    examples: list[DuplicateExample] = []
    shown = slice(0, EXAMPLE_GROUPS)
    pairs = zip(cross.first_a[shown].tolist(), cross.first_b[shown].tolist(), strict=True)
    for i, j in pairs:
        members = (_member(train, i), _member(test, j))
        examples.append(DuplicateExample("train and test", members))
    for data in splits:
        for group in duplicate_groups(data)[:EXAMPLE_GROUPS]:
            members = tuple(_member(data, index) for index in group[:EXAMPLE_MEMBERS].tolist())
            examples.append(DuplicateExample(f"within {data.split}", members))
    shown_as = DuplicateExamples(tuple(examples))
    counted = (
        f"{cross.shared:,} images are in both train and test; within the splits, "
        + ", ".join(f"{split} has {k.duplicates:,} exact duplicates" for split, k in keys.items())
        + f" (identical pixel bytes). {near_words}"
    )
    empty = [data.split for data in splits if len(data) == 0]
    if empty:
        summary = f"No {' or '.join(empty)} images: evaluate on a split the model never trains on."
        return Check("split", CHECKS["split"], "fail", summary, facts, evidence=shown_as)
    within = keys["train"].duplicates + keys["test"].duplicates
    fix = ""
    if cross.shared or within:
        # Each distinct image is kept once, at its first appearance: test loses its own repeats
        # and every copy of a train image.
        fix = split_fix(train, keys["train"].duplicates, keys["test"].duplicates + cross.shared)
    if cross.shared:
        summary = (
            f"Leak: {cross.images_b:,} test images are exact copies of train images, so test "
            f"accuracy partly measures memory. {counted}"
        )
        return Check("split", CHECKS["split"], "fail", summary, facts, fix, shown_as)
    if within:
        summary = (
            "Train and test are disjoint, but some images repeat within a split: they weigh "
            f"double in training or in the test score. {counted}"
        )
        return Check("split", CHECKS["split"], "warn", summary, facts, fix, shown_as)
    summary = (
        f"Train ({len(train):,}) and test ({len(test):,}) are both present and disjoint. {counted}"
    )
    return Check("split", CHECKS["split"], "pass", summary, facts, evidence=shown_as)


def check_balanced(data: SplitData, settings: LoaderSettings, sampler: str | None) -> Check:
    """Imbalance ratio with a verdict; class and sample weights; the class mix of one epoch
    without a sampler, and with a WeightedRandomSampler: expected, one seeded draw, and the
    range 95% of single epochs fall in.

    With the sampler, the verdict goes by the expected mix: one epoch of a small split is
    noisy, and that noise is shown, not judged.
    """
    counts = class_counts(data.labels, len(data.classes))
    num = len(data.classes)
    labels = data.labels
    before = np.bincount(labels[epoch_order(data, settings, None)], minlength=num)
    after = np.bincount(labels[epoch_order(data, settings, "weighted")], minlength=num)
    drawn = int(after.sum())
    expected = sampler_shares(data)
    spread = 1.96 * np.sqrt(expected * (1 - expected) / max(drawn, 1))  # binomial, per class
    weights = class_weights(data).numpy()
    shown_as = ClassMix(
        classes=tuple(data.classes),
        counts=counts,
        class_weight=weights,
        epoch_without_sampler=before,
        percent_without_sampler=np.round(100 * before / before.sum(), 3),
        expected_percent_with_sampler=np.round(100 * expected, 3),
        one_epoch_low_percent=np.round(100 * np.clip(expected - spread, 0, 1), 3),
        one_epoch_high_percent=np.round(100 * np.clip(expected + spread, 0, 1), 3),
        epoch_with_sampler=after,
        percent_with_sampler=np.round(100 * after / drawn, 3),
    )
    ratio = imbalance_ratio(counts)
    present = expected > 0
    delivered_ratio = (
        float(expected[present].max() / expected[present].min())
        if sampler
        else imbalance_ratio(before)
    )
    facts = {
        "class_counts": counts.tolist(),
        "imbalance_ratio": ratio,
        "class_weights": [round(float(w), 6) for w in weights],
        "sample_weights": f"class_weights[targets]: {len(data):,} values",
        "epoch_class_counts": (after if sampler else before).tolist(),
        "epoch_class_share_percent": [
            round(float(p), 2)
            for p in 100 * (after if sampler else before) / (after if sampler else before).sum()
        ],
        "sampler_expected_share_percent": [round(float(p), 2) for p in 100 * expected],
        "sampler_one_epoch_range_percent": [
            f"{100 * max(p - d, 0):.1f}-{100 * min(p + d, 1):.1f}"
            for p, d in zip(expected, spread, strict=True)
        ],
        "imbalance_ratio_as_trained": delivered_ratio,
    }
    text = balance_verdict(counts, data.classes)
    widest = float(spread.max()) * 100
    shares = (
        f"expects every class at {100 * expected[present].mean():.1f}% of the draws "
        f"(one epoch of {drawn:,} varies by up to \u00b1{widest:.1f} points, 95% of epochs; "
        f"seed {settings.seed} drew {100 * after.min() / drawn:.1f}% to "
        f"{100 * after.max() / drawn:.1f}%)"
    )
    if sampler:
        text = f"The WeightedRandomSampler {shares}. The data itself: {text}"
    elif ratio > BALANCED_RATIO:
        text += f" With the class weights below, a WeightedRandomSampler {shares}."
    if counts.min() == 0 or delivered_ratio > MILD_RATIO:
        verdict = "fail"
    elif delivered_ratio > BALANCED_RATIO:
        verdict = "warn"
    else:
        verdict = "pass"
    if data.split != "train":
        text += (
            " This is the evaluation split: keep it as it is and report per-class metrics; "
            "weight the training loader instead."
        )
        if sampler:
            verdict = "fail" if verdict == "fail" else "warn"
    fix = "" if sampler or verdict == "pass" else weights_fix(settings)
    return Check("balanced", CHECKS["balanced"], verdict, text, facts, fix, shown_as)


# What torchvision's ImageFolder does with the entries Batchscope skips, where that matters.
# ImageFolder makes a class of every folder (hidden ones too), reads every file with an image
# extension, follows links (out of the data root, and round a loop), and raises on a class
# folder without an image file. "fail": the user's script breaks; "differs": it runs, but on
# other images than Batchscope shows, so indices and classes differ.
_IN_IMAGEFOLDER = {
    "cannot be decoded": ("fail", "the DataLoader raises when it reaches it"),
    "cannot be read": ("fail", "the DataLoader raises when it reaches it"),
    "not a regular file": ("fail", "the DataLoader raises when it reaches it"),
    "empty class folder": ("fail", "ImageFolder raises 'Found no valid file' when it is built"),
    "class folder without a loadable image": ("fail", "the DataLoader raises on its files"),
    "link to a folder already read": (
        "fail",
        "ImageFolder follows the loop, reading the same images again at every level",
    ),
    "hidden folder": ("fail", "ImageFolder reads it as a class of its own, or into its class"),
    "link leads outside the data root": (
        "differs",
        "ImageFolder reads it; Batchscope stays inside the data root, so indices differ",
    ),
}


def _in_imagefolder(path: str, reason: str, image_suffixes: tuple[str, ...]) -> tuple[str, str]:
    """("fail" or "differs", what happens) for an entry Batchscope skipped; ("", "") when
    ImageFolder ignores it too."""
    for start, outcome in _IN_IMAGEFOLDER.items():
        if reason.startswith(start):
            return outcome
    if reason == "hidden file" and Path(path).name.lower().endswith(image_suffixes):
        return "fail", "ImageFolder reads it as an image ('._' files are macOS metadata)"
    return "", ""


def check_loadable(splits: Sequence[SplitData], root: Path) -> Check:
    """Every file the user's loader would read loads: among the entries the scan skipped,
    those torchvision's ImageFolder (or its DataLoader) would trip over or read differently."""
    entries = []
    for data in splits:
        for item in data.details.get("skipped", []):
            outcome, effect = _in_imagefolder(item["path"], item["reason"], IMG_EXTENSIONS)
            if outcome:
                entries.append(Skipped(data.split, item["path"], item["reason"], outcome, effect))
    shown_as = Unloadable(tuple(entries))
    failing = [e for e in entries if e.outcome == "fail"]
    ignored = sum(len(data.details.get("skipped", [])) for data in splits) - len(entries)
    facts = {
        "entries_that_break_ImageFolder": len(failing),
        "entries_ImageFolder_reads_and_Batchscope_skips": len(entries) - len(failing),
        "skipped_entries_ImageFolder_ignores_too": ignored,
        **{f"{data.split}_images_read": len(data) for data in splits},
    }
    if not entries:
        read = " and ".join(f"{data.split} ({len(data):,})" for data in splits)
        summary = f"Every image of {read} was read: nothing your loader would trip over" + (
            f" ({ignored:,} other entries, such as non-image files, it ignores too)."
            if ignored
            else "."
        )
        return Check("loadable", CHECKS["loadable"], "pass", summary, facts, evidence=shown_as)
    shown = failing or entries
    examples = "; ".join(f"{e.path}: {e.reason}" for e in shown[:3])
    more = "; ..." if len(shown) > 3 else ""
    fix = loadable_fix(root, [e.path for e in entries])
    if failing:
        summary = (
            f"{len(failing):,} entries would break torchvision's ImageFolder or its DataLoader "
            f"({examples}{more}). Batchscope skips them, so the pages work, but your training "
            "script would fail: move them out of the folder."
        )
        return Check("loadable", CHECKS["loadable"], "fail", summary, facts, fix, shown_as, "bash")
    summary = (
        f"{len(entries):,} entries are read by ImageFolder but skipped here ({examples}{more}): "
        "your DataLoader would see other images, classes and indices than these pages. Copy "
        "the linked files into the folder, or move the links out."
    )
    return Check("loadable", CHECKS["loadable"], "warn", summary, facts, fix, shown_as, "bash")


def checklist(
    name: str,
    split: str = "train",
    settings: LoaderSettings | None = None,
    sampler: str | None = None,
    root: str | Path | None = None,
    pipeline: Pipeline = EMPTY,
) -> Checklist:
    """Every check for `split` of dataset `name` read by a DataLoader with these settings
    and transform pipeline (its index brought up to date first)."""
    spec = dataset_spec(name)
    load(spec.name, split, root)  # scans when needed, and checks the split exists
    splits = {s: load(spec.name, s, root, scan_first=False) for s in ("train", "test")}
    return checklist_of(splits, split, settings, sampler, pipeline)


def checklist_of(
    splits: dict[str, SplitData],
    split: str,
    settings: LoaderSettings | None = None,
    sampler: str | None = None,
    pipeline: Pipeline = EMPTY,
    *,
    near: NearDuplicates | None | bool = True,
) -> Checklist:
    """Every check for `splits[split]` read by a DataLoader with these settings, its images
    through ToTensor and `pipeline`; `splits` holds train and test. `near`: train and test's
    near duplicates as the caller has them (None: not yet), or True to search now."""
    if split not in ("train", "test") or not {"train", "test"} <= set(splits):
        raise InvalidRequest(
            f"The checklist compares a train and a test split; choose train or test, not {split!r}."
        )
    train, test = splits["train"], splits["test"]
    data = splits[split]
    spec = data.spec
    settings = settings or LoaderSettings()
    sampler = sampler_name(sampler)
    if settings.num_batches(len(data)) == 0:
        raise InvalidRequest(
            f"With drop_last and batch size {settings.batch_size}, {spec.title} {split} "
            f"({len(data):,} images) yields no batch: lower the batch size or unset drop_last."
        )
    pixels = pixel_stats(data)
    path = data.root
    after = after_stats(data, pipeline) if pipeline else None
    low, high = (pixels.min, pixels.max) if after is None else (after.min, after.max)
    normalized = (
        pixel_stats(train).channels if not pipeline else after_stats(train, pipeline).figures()
    )
    checks = (
        check_loadable((train, test), path),
        check_numerical(data, settings, after),
        check_scaled(
            low,
            high,
            round(pixels.min * 255),
            round(pixels.max * 255),
            standardized(pipeline, after),
        ),
        check_normalized(normalized, pipeline),
        check_shuffled(data, settings, sampler),
        check_splits(train, test, path, near),
        check_balanced(data, settings, sampler),
        *([check_augment(split, pipeline)] if pipeline else []),
    )
    code = reproduce_code(
        spec,
        path,
        split,
        settings,
        sampler,
        normalize_line(normalized),
        data.image_shape,
        pipeline,
    )
    return Checklist(spec, split, path, settings, sampler, checks, code, pipeline)


def standardized(pipeline: Pipeline, after: AfterStats | None) -> tuple[float, float] | None:
    """The mean and std after a pipeline that normalizes, for the scaled check."""
    if after is None or not any(step.name == "Normalize" for step in pipeline.steps):
        return None
    return after.mean, after.std


def _member(data: SplitData, index: int) -> Member:
    label = int(data.labels[index])
    return Member(data.split, index, label, data.classes[label])


def _prose_text(values: Sequence[float]) -> str:
    items = [f"{v:.4f}" for v in values]
    return items[0] if len(items) == 1 else f"({', '.join(items)})"


def _readable(value: object) -> str:
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int | np.integer):
        return f"{int(value):,}"
    if isinstance(value, float | np.floating):
        if not math.isfinite(value):
            return str(float(value))
        return f"{float(value):,.1f}" if abs(value) >= 1000 else f"{float(value):.4g}"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_readable(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_readable(v) for v in value) + "]"
    return str(value)


def _json_ready(value: object) -> object:
    """Plain Python for `json.dumps`: numpy scalars unwrapped, inf and NaN as None."""
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [_json_ready(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value

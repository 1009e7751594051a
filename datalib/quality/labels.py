"""Suspicious labels: out-of-sample class probabilities for every image of a split, from a
small CNN (k-fold cross-validation on the training split; for another split, the model
trained on the training split), ranked by cleanlab's label quality.

It runs as one background job per dataset and split (`python -m datalib quality NAME --split
S`), whoever starts it; its answer is kept beside the index, written whole or not at all.
The job also draws the map of the data from the model's features (datalib.quality.data_map).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from datalib.errors import DatalibError, InvalidRequest
from datalib.formats.download import file_lock
from datalib.index import SplitData
from datalib.jobs import Job, atomic_write, clear_temp
from datalib.quality.pictures import picture_batches, picture_side

__all__ = [
    "EPOCHS",
    "FOLDS",
    "LabelIssues",
    "find_label_issues",
    "label_issues",
    "label_job",
    "start_label_job",
    "training_split",
]

FOLDS = 3
EPOCHS = 3
MIN_STEPS = 150  # a small split is seen more often: at least this many batches of 128
BATCH = 128
SEED = 0
WORST_KEPT = 500  # findings the JSON lists at least (all flagged ones when more)
NICENESS = 10  # the app's jobs yield the cores to the pages
TRUSTED_ACCURACY = 0.9  # below it, the page warns that the ranking lists hard images
# Training images a second on this machine's two cores at 28 x 28 (the MNIST train job of
# the 06:49 UTC bench run trained at 1,930 images/s): the page's estimate before a job starts.
TRAINING_RATE = 1900


@dataclass(frozen=True, eq=False)
class LabelIssues:
    """A split's images ranked by label quality, worst first (`table`), and the model."""

    split: str
    model: dict  # kind, folds, accuracy, epochs, seconds, device, trained_on
    table: pd.DataFrame = field(repr=False)  # index, given_label, predicted_label, confidence,
    # label_quality, flagged

    @property
    def flagged(self) -> pd.DataFrame:
        return self.table[self.table["flagged"]]

    def worst(self, count: int = WORST_KEPT) -> pd.DataFrame:
        """The `count` worst, and every flagged one (cleanlab flags by confusion between
        classes, so a flagged label may rank below the `count` worst)."""
        table = self.table
        return table[(np.arange(len(table)) < count) | table["flagged"].to_numpy()]


def epochs_for(images: int) -> int:
    """Passes over `images` training images: EPOCHS, more for a small split (a few hundred
    images give a batch or two an epoch, too few steps to learn anything)."""
    batches = max(1, -(-images // BATCH))
    return max(EPOCHS, -(-MIN_STEPS // batches))


def training_split(data: SplitData) -> str:
    """The split a model is trained on: train, else the dataset's first."""
    splits = data.dataset.splits
    return "train" if "train" in splits else splits[0]


def _slug(split: str) -> str:
    """A split's name as part of a file name (a folder's split names are folder names)."""
    clean = re.sub(r"[^A-Za-z0-9]+", "-", split).strip("-")[:24] or "split"
    return f"{clean}-{hashlib.sha256(split.encode()).hexdigest()[:8]}"


def label_job(data: SplitData) -> Job:
    return Job(data.dataset.results, f"labels-{_slug(data.split)}")


def _answer(data: SplitData) -> Path:
    return data.dataset.results / f"labels-{_slug(data.split)}.parquet"


def label_issues(data: SplitData) -> LabelIssues | None:
    """The split's stored findings, or None when its job has not finished."""
    import pyarrow.parquet as pq

    path = _answer(data)
    try:
        table = pq.read_table(path)
        model = json.loads(table.schema.metadata[b"model"])
    except (OSError, KeyError, ValueError):
        return None
    frame = table.to_pandas()
    if len(frame) != len(data):
        return None  # not this index's (cannot happen by the folder's name; never trusted)
    return LabelIssues(split=data.split, model=model, table=frame)


def start_label_job(data: SplitData) -> bool:
    """Start the split's job in the background unless it runs already (for anyone)."""
    name = data.spec.name
    return label_job(data).start(
        ["quality", name, "--split", data.split, "--root", str(data.root)]
        + ["--nice", str(NICENESS), "--labels-only"]
    )


def label_cost(data: SplitData) -> str:
    """What the split's job will cost, in words, before it starts."""
    training = data.dataset.split(training_split(data))
    steps = EPOCHS * len(training) * (FOLDS if data.split == training.split else 1)
    pixels = max(1, training.image_shape[0] * 28 * 28)
    scale = (training.image_shape[0] * min(training.image_shape[1], 32) ** 2) / pixels
    seconds = steps * scale / TRAINING_RATE
    took = f"{round(seconds / 60):,} min" if seconds >= 90 else "under 2 min"
    return (
        f"training takes about {took} of this server's CPU ({steps:,} images through the "
        f"model at the {TRAINING_RATE:,} a second measured on 2 cores), then the map of the "
        "data is drawn once (about a minute per 70,000 images); a GPU, when torch sees one, "
        "is used instead"
    )


def check_trainable(data: SplitData, training: SplitData) -> None:
    """Refuse, with the reason, a split the model cannot learn from."""
    if len(data) == 0:
        raise InvalidRequest(
            f"{data.spec.title} {data.split} has no images to judge: add images to it first."
        )
    counts = np.bincount(training.labels, minlength=len(training.classes))
    present = int((counts > 0).sum())
    where = f"{data.spec.title} {training.split}"
    if present < 2:
        raise InvalidRequest(
            f"{where} has images of {present} class only: a model needs at least two classes "
            "to tell labels apart. Add the other classes' folders, then run this again."
        )
    if data.split == training.split and counts[counts > 0].min() < FOLDS:
        small = training.classes[int(np.flatnonzero((counts > 0) & (counts < FOLDS))[0])]
        raise InvalidRequest(
            f"{where} is too small for {FOLDS}-fold cross-validation: class {small!r} has "
            f"fewer than {FOLDS} images. Add images, or merge it into another class."
        )


def find_label_issues(data: SplitData, report: Callable[[dict], None] | None = None) -> LabelIssues:
    """The split's findings: stored ones, or made now (under the job's lock: if the app's
    job is running, this waits for it and reads its answer)."""
    job = label_job(data)
    job.folder.mkdir(parents=True, exist_ok=True)
    report = report or (lambda status: None)
    with contextlib.ExitStack() as held:
        if not held.enter_context(file_lock(job.lock, blocking=False)):
            report(
                {
                    "state": "waiting for the job already running (the app's, or another "
                    "command's)",
                    "done": 0,
                    "total": 0,
                    "images_per_s": 0.0,
                    "eta_s": None,
                }
            )
            held.enter_context(file_lock(job.lock))
        found = label_issues(data)
        if found is not None:
            return found
        progress = Progress(job, report)
        try:
            return _find(data, progress)
        except KeyboardInterrupt:
            progress.fail("stopped before it finished; start it again")
            raise
        except DatalibError as e:
            progress.fail(str(e))
            raise
        except OSError as e:
            progress.fail(f"could not write the findings to {job.folder}: {e.strerror or e}")
            raise InvalidRequest(progress.error) from None
        except Exception as e:  # torch, cleanlab, UMAP: a readable line, never a traceback
            last = (str(e).strip().splitlines() or [type(e).__name__])[-1]
            progress.fail(f"the label job failed: {type(e).__name__}: {last}")
            raise InvalidRequest(progress.error) from e
        finally:
            clear_temp(job.folder, older_than=3600)  # another job's may be in use


class Progress:
    """The job's status file: what it is doing, images done of how many, images/s, ETA."""

    def __init__(self, job: Job, report: Callable[[dict], None]) -> None:
        self.job, self.report = job, report
        self.state, self.done, self.total = "starting", 0, 0
        self.started = time.monotonic()
        self.last = 0.0
        self.error = ""

    def stage(self, state: str, total: int) -> None:
        self.state, self.done, self.total = state, 0, total
        self.started = time.monotonic()
        self.write(force=True)

    def tick(self, images: int) -> None:
        self.done += images
        self.write()

    def write(self, *, force: bool = False, **extra) -> None:
        if not force and time.monotonic() - self.last < 0.5:
            return
        self.last = time.monotonic()
        elapsed = time.monotonic() - self.started
        rate = self.done / elapsed if elapsed > 0 and self.done else 0.0
        status = {
            "state": self.state,
            "done": self.done,
            "total": self.total,
            "images_per_s": round(rate, 1),
            "eta_s": round((self.total - self.done) / rate, 1) if rate else None,
            **extra,
        }
        self.job.write_status(**status)
        self.report(status)

    def fail(self, error: str) -> None:
        self.error = error
        self.state = "failed"
        self.write(force=True, error=error)


def _find(data: SplitData, progress: Progress) -> LabelIssues:
    from datalib.quality import model as torch_model

    started = time.monotonic()
    training = data.dataset.split(training_split(data))
    check_trainable(data, training)
    classes = len(training.classes)
    if len(data.classes) != classes or tuple(data.classes) != tuple(training.classes):
        raise InvalidRequest(
            f"{data.spec.title} {data.split} has other classes than {training.split} "
            f"({', '.join(data.classes)}): a model trained on {training.split} cannot judge "
            "its labels. Give both splits the same class folders."
        )
    pictures = ensure_pictures(training, progress)
    rows = np.arange(len(training))
    if data.split == training.split:
        folds = _folds(training.labels, FOLDS, SEED)
        probs = np.zeros((len(training), classes), dtype=np.float32)
        for k in range(FOLDS):
            train_rows, held = rows[folds != k], rows[folds == k]
            epochs = epochs_for(train_rows.size)
            progress.stage(f"training fold {k + 1} of {FOLDS}", epochs * train_rows.size)
            net = torch_model.fit(
                pictures,
                train_rows,
                training.labels,
                classes,
                epochs=epochs,
                seed=SEED + k,
                tick=progress.tick,
            )
            progress.stage(f"predicting fold {k + 1} of {FOLDS}", held.size)
            probs[held], _ = torch_model.predict(net, pictures, held, progress.tick)
        kind = f"small CNN, {FOLDS}-fold cross-validation on {training.split}"
        folds_used = FOLDS
    else:
        net = full_model(training, progress)
        own = ensure_pictures(data, progress)
        progress.stage(f"predicting {data.split}", len(data))
        probs, _ = torch_model.predict(net, own, np.arange(len(data)), progress.tick)
        kind = f"small CNN trained on {training.split}"
        folds_used = 0
    progress.stage("ranking labels (cleanlab)", len(data))
    table = _rank(data.labels, probs)
    accuracy = float((table.sort_values("index")["predicted_label"] == data.labels).mean())
    model = {
        "kind": kind,
        "folds": folds_used,
        "accuracy": round(accuracy, 5),
        "epochs": epochs_for(len(training) * (FOLDS - 1) // FOLDS if folds_used else len(training)),
        "images": len(data),
        "picture_side": pictures.shape[2],
        "device": str(torch_model.device()),
        "seconds": round(time.monotonic() - started, 1),
        "trained_on": training.split,
    }
    _write_answer(_answer(data), table, model)
    from datalib.quality.embedding import draw_map, map_job

    with file_lock(map_job(data.dataset).lock):  # one map at a time; the model's wins
        draw_map(data.dataset, progress, features=True)
    progress.state, progress.done = "done", progress.total
    progress.write(force=True, finished=time.time())
    return LabelIssues(split=data.split, model=model, table=table)


def _folds(labels: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """Each image's fold, stratified by class (scikit-learn's StratifiedKFold, shuffled)."""
    from sklearn.model_selection import StratifiedKFold

    out = np.zeros(labels.size, dtype=np.int64)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for k, (_, held) in enumerate(splitter.split(np.zeros(labels.size), labels)):
        out[held] = k
    return out


def _rank(labels: np.ndarray, probs: np.ndarray) -> pd.DataFrame:
    """Every image with its given and predicted label, the model's confidence in its
    prediction, cleanlab's label quality and whether cleanlab flags it; worst first."""
    from cleanlab.filter import find_label_issues as flag
    from cleanlab.rank import get_label_quality_scores

    present = np.unique(labels)
    # cleanlab wants every class of the probabilities to have an image: judge among those
    # that do (a class without images cannot be any image's given label anyway).
    sub = probs[:, present] / np.maximum(probs[:, present].sum(axis=1, keepdims=True), 1e-12)
    given = np.searchsorted(present, labels)
    quality = get_label_quality_scores(given, sub)
    flagged = flag(given, sub, filter_by="prune_by_noise_rate")
    frame = pd.DataFrame(
        {
            "index": np.arange(labels.size),
            "given_label": labels.astype(np.int64),
            "predicted_label": probs.argmax(axis=1).astype(np.int64),
            "confidence": probs.max(axis=1).astype(np.float64),
            "given_probability": probs[np.arange(labels.size), labels].astype(np.float64),
            "label_quality": quality.astype(np.float64),
            "flagged": flagged.astype(bool),
        }
    )
    return frame.sort_values(["label_quality", "index"], kind="stable").reset_index(drop=True)


def _write_answer(path: Path, table: pd.DataFrame, model: dict) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    arrow = pa.Table.from_pandas(table, preserve_index=False)
    arrow = arrow.replace_schema_metadata({b"model": json.dumps(model).encode()})
    atomic_write(path, lambda temp: pq.write_table(arrow, temp))


# The pictures the model reads, and the model trained on the whole training split ---------


def ensure_pictures(data: SplitData, progress: Progress):
    """The split's pictures as a .npy file beside the index (made once, streamed: the split is
    never held in memory), opened for reading in chunks and standardised with the training
    split's statistics (what the model learnt on: another split goes through the same)."""
    from datalib.quality.model import Pictures
    from datalib.stats import pixel_stats

    side = picture_side(data)
    channels = data.image_shape[0]
    path = data.dataset.results / f"pictures-{_slug(data.split)}-{side}.npy"
    stats = pixel_stats(data.dataset.split(training_split(data))).channels
    mean = [s.mean for s in stats]
    std = [s.std for s in stats]
    with file_lock(data.dataset.results / "pictures.lock"):
        if not path.is_file():
            progress.stage(f"reading the {data.split} pictures", len(data))

            def write(temp: Path) -> None:
                array = np.lib.format.open_memmap(
                    temp, mode="w+", dtype=np.uint8, shape=(len(data), channels, side, side)
                )
                for indices, pictures in picture_batches(data, side):
                    array[indices] = pictures
                    progress.tick(len(indices))
                array.flush()
                del array

            atomic_write(path, write)
    return Pictures.open(path, mean, std)


def full_model(training: SplitData, progress: Progress):
    """The network trained on the whole training split, kept beside the index (trained once,
    for every other split's job and for the map)."""
    import torch

    from datalib.quality import model as torch_model

    folder = training.dataset.results
    path = folder / "model.pt"
    classes = len(training.classes)
    with file_lock(folder / "model.lock"):
        if path.is_file():
            with contextlib.suppress(Exception):  # a damaged file: trained again below
                net = torch_model.network(training.image_shape[0], classes)
                net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
                return net.to(torch_model.device())
        pictures = ensure_pictures(training, progress)
        epochs = epochs_for(len(training))
        progress.stage(f"training on the whole {training.split} split", epochs * len(training))
        net = torch_model.fit(
            pictures,
            np.arange(len(training)),
            training.labels,
            classes,
            epochs=epochs,
            seed=SEED,
            tick=progress.tick,
        )
        atomic_write(path, lambda temp: torch.save(net.state_dict(), temp))
        return net

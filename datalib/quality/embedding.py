"""A map of the data: every image of every split as a point in 2-D (PCA to 50 dimensions,
then UMAP), from the label model's features when it has been trained, else from the
pictures themselves. Made by a background job; kept beside the index."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from datalib.index import Index, SplitData
from datalib.jobs import Job, atomic_write

__all__ = ["MAP_POINTS", "DataMap", "data_map", "draw_map", "map_job", "start_map_job"]

MAP_POINTS = 100_000  # images on the map at most (a seeded sample of bigger datasets)
PCA_DIMENSIONS = 50
SEED = 0


@dataclass(frozen=True, eq=False)
class DataMap:
    """Points (split, index, x, y) and what they were drawn from."""

    source: str  # "model features" or "pictures"
    points: pd.DataFrame = field(repr=False)
    images: int  # images in the dataset (more than points when sampled)
    seconds: float


def map_job(index: Index) -> Job:
    return Job(index.results, "map")


def start_map_job(data: SplitData) -> bool:
    """Draw the map from the pictures in the background (the label job redraws it from its
    model's features)."""
    return map_job(data.dataset).start(
        ["quality", data.spec.name, "--split", data.split, "--root", str(data.root)]
        + ["--nice", "10", "--map-only"]
    )


def data_map(index: Index) -> DataMap | None:
    """The stored map, or None when none has been drawn."""
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(index.results / "map.parquet")
        meta = json.loads(table.schema.metadata[b"map"])
    except (OSError, KeyError, ValueError):
        return None
    return DataMap(
        source=meta["source"],
        points=table.to_pandas(),
        images=int(meta["images"]),
        seconds=float(meta["seconds"]),
    )


def draw_map(index: Index, progress, *, features: bool) -> DataMap:
    """Embed the dataset's images (every split) and store the map: from the label model's
    features (`features`; trained now if need be), else from the pictures. A map from the
    model's features is kept: it is drawn once, and never replaced by the pictures'. The
    caller holds the map's lock."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from datalib.quality.labels import ensure_pictures, full_model, training_split

    drawn = data_map(index)
    if drawn is not None and (drawn.source == "model features" or not features):
        return drawn
    started = time.monotonic()
    splits = [index.split(s) for s in index.splits if "error" not in index.meta["splits"][s]]
    total = sum(len(d) for d in splits)
    chosen = _sample(splits, total)
    vectors, rows = [], []
    net = full_model(index.split(training_split(splits[0])), progress) if features else None
    pictures = {d.split: ensure_pictures(d, progress) for d in splits}
    reducer = None if net is not None else _fit_reducer(splits, chosen, pictures, progress)
    for data, members in zip(splits, chosen, strict=True):
        progress.stage(f"features of {data.split}", members.size)
        if net is not None:
            from datalib.quality.model import predict

            _, found = predict(net, pictures[data.split], members, progress.tick)
            vectors.append(found.astype(np.float32))
        else:
            vectors.append(_reduce(reducer, pictures[data.split], members, progress))
        rows.append(pd.DataFrame({"split": data.split, "index": members}))
    points = pd.concat(rows, ignore_index=True)
    progress.stage(f"embedding {len(points):,} images (PCA, then UMAP)", len(points))
    xy = _embed(np.concatenate(vectors))
    points["x"], points["y"] = xy[:, 0], xy[:, 1]
    source = "model features" if features else "pictures"
    meta = {
        "source": source,
        "images": total,
        "seconds": round(time.monotonic() - started, 1),
    }
    table = pa.Table.from_pandas(points, preserve_index=False)
    table = table.replace_schema_metadata({b"map": json.dumps(meta).encode()})
    atomic_write(index.results / "map.parquet", lambda temp: pq.write_table(table, temp))
    return DataMap(source=source, points=points, images=total, seconds=meta["seconds"])


def _sample(splits: list[SplitData], total: int) -> list[np.ndarray]:
    """Each split's images on the map: all of them, or the same seeded share of each."""
    if total <= MAP_POINTS:
        return [np.arange(len(d)) for d in splits]
    generator = np.random.default_rng(SEED)
    share = MAP_POINTS / total
    return [
        np.sort(generator.choice(len(d), min(len(d), max(1, round(len(d) * share))), replace=False))
        for d in splits
    ]


def _fit_reducer(splits, chosen, pictures, progress):
    """PCA to 50 dimensions of the pictures, fitted a chunk at a time (scikit-learn's
    IncrementalPCA): the pictures are never all in memory as floats."""
    from sklearn.decomposition import IncrementalPCA

    size = int(np.prod(next(iter(pictures.values())).shape[1:]))
    total = sum(m.size for m in chosen)
    dimensions = min(PCA_DIMENSIONS, size, total)
    reducer = IncrementalPCA(dimensions)
    progress.stage("fitting PCA to the pictures", total)
    pending: list[np.ndarray] = []
    for data, members in zip(splits, chosen, strict=True):
        for rows, chunk in pictures[data.split].chunks(members, None):
            pending.append(chunk.reshape(len(chunk), -1).astype(np.float32) / 255)
            if sum(len(p) for p in pending) >= max(dimensions, 1024):
                reducer.partial_fit(np.concatenate(pending))
                pending = []
            progress.tick(len(rows))
    if pending:
        batch = np.concatenate(pending)
        if len(batch) >= dimensions or not hasattr(reducer, "components_"):
            reducer.partial_fit(batch)
    return reducer


def _reduce(reducer, pictures, members: np.ndarray, progress) -> np.ndarray:
    out = np.zeros((members.size, reducer.n_components_), np.float32)
    place = {row: k for k, row in enumerate(members.tolist())}
    for rows, chunk in pictures.chunks(members, None):
        flat = chunk.reshape(len(chunk), -1).astype(np.float32) / 255
        out[[place[r] for r in rows.tolist()]] = reducer.transform(flat)
        progress.tick(len(rows))
    return out


def _embed(vectors: np.ndarray) -> np.ndarray:
    """Points in 2-D: PCA to 50 dimensions (features) and UMAP; a tiny set gets its first two
    principal components."""
    from sklearn.decomposition import PCA

    n = len(vectors)
    if n < 3:
        return np.zeros((n, 2), dtype=np.float32)
    dimensions = min(PCA_DIMENSIONS, *vectors.shape)
    reduced = PCA(dimensions, random_state=SEED).fit_transform(vectors)
    if n < 20:  # too few for UMAP's neighbour graph: the first two components
        out = np.zeros((n, 2), dtype=np.float32)
        out[:, : min(2, reduced.shape[1])] = reduced[:, :2]
        return out
    import warnings

    import umap

    # Unseeded: UMAP then uses every core (seeded it runs on one, 2.5 times slower on
    # MNIST); the map is drawn once and kept, so every visitor sees the same one.
    embedding = umap.UMAP(n_neighbors=min(15, n - 1), low_memory=True, n_jobs=-1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return embedding.fit_transform(reduced).astype(np.float32)

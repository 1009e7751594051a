"""Near duplicates: images whose perceptual hashes (from the index) differ in at most a few
bits and whose pixels (grey, at the thumbnails' size: MNIST's own 28 x 28) differ by at most a small fraction: within a
split, and across splits (a test image that is nearly a train image is a leak).

The hash alone is not enough on small, simple images: many different MNIST "1"s share one
hash exactly. So the hash finds the candidates, and the pixels decide. Candidates are found
by multi-index hashing: split the 64 bits into `bits + 1` blocks; two hashes within `bits`
bits agree exactly on at least one block, so only images sharing a block value are compared.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from datalib.errors import DataRootError, InvalidRequest
from datalib.index import SplitData
from datalib.jobs import Job, atomic_write
from datalib.quality.pictures import picture_batches, picture_side

__all__ = [
    "DEFAULT_BITS",
    "DEFAULT_DIFFERENCE",
    "MAX_BITS",
    "SEARCH_RATE",
    "NearDuplicates",
    "NearGroup",
    "near_duplicates",
    "near_job",
    "searched_in_page",
    "start_near_job",
    "stored_near_duplicates",
]

DEFAULT_BITS = 4
MAX_BITS = 8  # beyond this, too many images share each block of the hash
DEFAULT_DIFFERENCE = 0.10


@dataclass(frozen=True)
class NearGroup:
    """Images linked by near-duplicate pairs (a pair's images, or a chain of them)."""

    members: tuple[tuple[str, int], ...]  # (split, index), in split then index order
    labels: tuple[int, ...]
    names: tuple[str, ...]  # the labels' class names
    bits: int  # the most hash bits any linked pair differs in
    difference: float  # the largest pixel difference of a linked pair (0: identical)

    @property
    def splits(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(split for split, _ in self.members))

    @property
    def conflicting(self) -> bool:
        """Do its images carry different labels?"""
        return len(set(self.names)) > 1

    def as_dict(self) -> dict:
        return {
            "indices": [[split, index] for split, index in self.members],
            "labels": list(self.labels),
            "distance": self.bits,
            "pixel_difference": round(self.difference, 4),
        }


@dataclass(frozen=True)
class NearDuplicates:
    """Every near-duplicate group of some splits, and what they add up to."""

    splits: tuple[str, ...]
    bits: int
    difference: float
    groups: tuple[NearGroup, ...]  # across splits first, then labels that disagree, larger first

    def within(self, split: str) -> list[NearGroup]:
        """Groups whose images are all in `split`."""
        return [g for g in self.groups if g.splits == (split,)]

    @property
    def across(self) -> list[NearGroup]:
        """Groups with images in more than one split (leaks)."""
        return [g for g in self.groups if len(g.splits) > 1]

    def images_in(self, split: str, *, across: bool = False) -> int:
        """Images of `split` in some group (in a group that crosses splits, with `across`)."""
        groups = self.across if across else self.groups
        return len({m for g in groups for m in g.members if m[0] == split})


def near_duplicates(
    splits: Sequence[SplitData],
    bits: int = DEFAULT_BITS,
    difference: float = DEFAULT_DIFFERENCE,
    progress: Callable[[int, int], None] | None = None,
    *,
    must_store: bool = False,
) -> NearDuplicates:
    """The near-duplicate groups of these splits of one dataset (kept with the first): as
    stored with the index by an earlier search (a job's, another process's), else searched
    now and stored (a cache that cannot be written keeps it in memory, unless `must_store`:
    the job's answer must reach the pages). `progress(k, total)` hears of each k images
    read."""
    check_settings(bits, difference)

    def stored_or_searched() -> NearDuplicates:
        found = _read(splits, bits, difference)
        if found is None:
            found = _search(splits, bits, difference, progress)
            try:
                _write(splits, found)
            except OSError as e:
                if must_store:
                    raise DataRootError(
                        f"The near-duplicate search could not store its answer in "
                        f"{splits[0].dataset.results} ({e.strerror or e}): free some space, "
                        "or set BATCHSCOPE_CACHE to a folder this user can write."
                    ) from None
        return found

    return splits[0].remember(_key(splits, bits, difference), stored_or_searched)


def stored_near_duplicates(
    splits: Sequence[SplitData], bits: int = DEFAULT_BITS, difference: float = DEFAULT_DIFFERENCE
) -> NearDuplicates | None:
    """The groups if some search has stored them (never searches: for pages, where a search
    of many images is a background job's, `start_near_job`)."""
    check_settings(bits, difference)
    key = _key(splits, bits, difference)
    found = splits[0].recall(key)
    if found is None:
        found = _read(splits, bits, difference)
        if found is not None:
            splits[0].remember(key, lambda: found)
    return found


def searched_in_page(splits: Sequence[SplitData]) -> bool:
    """Small enough to search while a page waits (MNIST's 70,000 images: about 1.3 s here);
    bigger searches run as a job, off the server's memory and threads."""
    return sum(len(d) for d in splits) <= IN_PAGE_IMAGES


IN_PAGE_IMAGES = 100_000
SEARCH_RATE = 20_000  # images a second, the job's (200,000 synthetic 64 x 64 in 10 s, 2 cores)


def near_job(splits: Sequence[SplitData], bits: int, difference: float) -> Job:
    return Job(splits[0].dataset.results, _name(splits, bits, difference))


def start_near_job(
    splits: Sequence[SplitData], bits: int = DEFAULT_BITS, difference: float = DEFAULT_DIFFERENCE
) -> bool:
    """Search in the background, once for the whole server, unless it runs already."""
    data = splits[0]
    return near_job(splits, bits, difference).start(
        ["quality", data.spec.name, "--near-only", "--splits", ",".join(d.split for d in splits)]
        + ["--root", str(data.root), "--bits", str(bits), "--difference", f"{difference:.4f}"]
        + ["--nice", "10"]
    )


def _key(splits: Sequence[SplitData], bits: int, difference: float) -> tuple:
    return ("near_duplicates", tuple(d.split for d in splits), bits, round(difference, 4))


def _name(splits: Sequence[SplitData], bits: int, difference: float) -> str:
    """The stored answer's (and its job's) name: splits and settings, safe as a file name."""
    names = [d.split for d in splits]
    digest = hashlib.sha256(json.dumps(names).encode()).hexdigest()[:8]
    slug = re.sub(r"[^A-Za-z0-9_-]", "_", "_".join(names))[:40]
    return f"near-{slug}-{digest}-{bits}-{round(difference * 10_000)}"


def _read(splits: Sequence[SplitData], bits: int, difference: float) -> NearDuplicates | None:
    path = splits[0].dataset.results / f"{_name(splits, bits, difference)}-groups.json"
    try:
        stored = json.loads(path.read_text())
        groups = tuple(
            NearGroup(
                members=tuple((str(s), int(i)) for s, i in g["members"]),
                labels=tuple(int(label) for label in g["labels"]),
                names=tuple(str(n) for n in g["names"]),
                bits=int(g["bits"]),
                difference=float(g["difference"]),
            )
            for g in stored["groups"]
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
    sizes = {d.split: len(d) for d in splits}
    if any(not 0 <= i < sizes.get(s, 0) for g in groups for s, i in g.members):
        return None  # not this index's (cannot happen by the folder's name; never trusted)
    return NearDuplicates(
        splits=tuple(d.split for d in splits), bits=bits, difference=difference, groups=groups
    )


def _write(splits: Sequence[SplitData], found: NearDuplicates) -> None:
    """Stored with the index's results, whole or not at all."""
    folder = splits[0].dataset.results
    groups = [
        {
            "members": [list(m) for m in g.members],
            "labels": list(g.labels),
            "names": list(g.names),
            "bits": g.bits,
            "difference": g.difference,
        }
        for g in found.groups
    ]
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write(
        folder / f"{_name(splits, found.bits, found.difference)}-groups.json",
        lambda temp: temp.write_text(json.dumps({"groups": groups})),
    )


def check_settings(bits: int, difference: float) -> None:
    """Refuse settings the search cannot honour, with the range."""
    if not 0 <= bits <= MAX_BITS:
        raise InvalidRequest(f"The hash distance must be 0 to {MAX_BITS} bits, not {bits}.")
    if not 0 <= difference <= 1:
        raise InvalidRequest(f"The pixel difference must be 0 to 1, not {difference}.")


def _search(
    splits: Sequence[SplitData],
    bits: int,
    difference: float,
    progress: Callable[[int, int], None] | None = None,
) -> NearDuplicates:
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    hashes = np.concatenate([d.column("phash") for d in splits])
    sizes = [len(d) for d in splits]
    starts = np.cumsum([0, *sizes])
    side = min(picture_side(d) for d in splits)
    tick = (lambda done: progress(done, hashes.size)) if progress else None
    prints = np.concatenate([fingerprints(d, side, tick) for d in splits])
    # Identical pixels (the index's content hash) are searched once: a thousand blank images
    # would otherwise be half a million pairs to check and keep. Each copy is then linked to
    # the image it copies, at distance 0.
    _, kept, copy_of = np.unique(
        np.concatenate([d.column("content_hash") for d in splits]),
        return_index=True,
        return_inverse=True,
    )
    found = _pairs(hashes[kept], prints[kept], bits, difference)
    copies = np.flatnonzero(kept[copy_of] != np.arange(hashes.size))
    first = np.concatenate([kept[found[0]], kept[copy_of[copies]]])
    second = np.concatenate([kept[found[1]], copies])
    distance = np.concatenate([found[2], np.zeros(copies.size, np.int64)])
    pixel = np.concatenate([found[3], np.zeros(copies.size)])
    groups: list[NearGroup] = []
    if first.size:
        n = hashes.size
        graph = coo_matrix((np.ones(first.size), (first, second)), shape=(n, n))
        _, component = connected_components(graph, directed=False)
        linked = np.unique(np.concatenate([first, second]))
        order = np.argsort(component[linked], kind="stable")
        by_group = np.split(linked[order], np.flatnonzero(np.diff(component[linked][order])) + 1)
        edge_order = np.argsort(component[first], kind="stable")
        edge_groups = np.split(
            edge_order, np.flatnonzero(np.diff(component[first][edge_order])) + 1
        )  # the same groups in the same order: each group's pairs
        for members, edges in zip(by_group, edge_groups, strict=True):
            where = np.searchsorted(starts, members, side="right") - 1
            items = [
                (splits[s], int(m - starts[s]))
                for s, m in zip(where.tolist(), members.tolist(), strict=True)
            ]
            labels = tuple(int(d.labels[i]) for d, i in items)
            groups.append(
                NearGroup(
                    members=tuple((d.split, i) for d, i in items),
                    labels=labels,
                    names=tuple(
                        d.classes[label] for (d, _), label in zip(items, labels, strict=True)
                    ),
                    bits=int(distance[edges].max()),
                    difference=float(pixel[edges].max()),
                )
            )
    groups.sort(key=lambda g: (len(g.splits) == 1, not g.conflicting, -len(g.members), g.members))
    return NearDuplicates(
        splits=tuple(d.split for d in splits),
        bits=bits,
        difference=difference,
        groups=tuple(groups),
    )


def fingerprints(
    data: SplitData, side: int, tick: Callable[[int], None] | None = None
) -> np.ndarray:
    """Every image of the split as a grey side x side picture, N x side² uint8; `tick(k)`
    after each k read."""
    out = np.empty((len(data), side * side), dtype=np.uint8)
    for indices, pictures in picture_batches(data, side, grey=True):
        out[indices] = pictures.reshape(len(indices), -1)
        if tick is not None:
            tick(len(indices))
    return out


def _pairs(
    hashes: np.ndarray, prints: np.ndarray, bits: int, difference: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Pairs (first < second) within `bits` hash bits and `difference` of pixels, with each
    pair's bits and pixel difference."""
    from datalib.quality._kernels import near_pairs

    blocks = bits + 1
    edges = np.linspace(0, 64, blocks + 1).astype(np.int64)
    shifts = edges[:-1].astype(np.uint64)
    masks = ((np.uint64(1) << (edges[1:] - edges[:-1]).astype(np.uint64)) - np.uint64(1)).astype(
        np.uint64
    )
    keys = (hashes[None, :] >> shifts[:, None]) & masks[:, None]  # blocks x N
    orders = np.argsort(keys, axis=1, kind="stable")
    sorted_keys = np.take_along_axis(keys, orders, axis=1)
    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        found = list(
            pool.map(
                lambda b: near_pairs(
                    hashes, prints, keys, orders, sorted_keys, bits, difference, b
                ),
                range(blocks),
            )
        )
    return tuple(np.concatenate(parts) for parts in zip(*found, strict=True))  # type: ignore[return-value]

"""The pixel histogram's inner loop, compiled with numba (imported lazily: numba is heavy).

torch.bincount adds one pixel at a time to one table of counters, so in MNIST's long runs of
black background every increment waits for the previous one on the same counter: 52 ms for
the 47M pixels of the train split, 20x a copy of them. This loop reads eight pixels as one
64-bit word, counts an all-zero word in one step, and gives each byte of a word its own
table, so consecutive increments never wait on each other; the array is cut into one piece
per torch thread, counted side by side (the loop releases the GIL): 6-10 ms here.

The compiled loop is cached on disk (numba's cache: `__pycache__` beside this file, or
`NUMBA_CACHE_DIR`); the first call in a fresh install compiles it, a few seconds. Where no
folder is writable, each process compiles it on its first call.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
import torch

__all__ = ["byte_histogram"]

LEVELS = 256
LANES = 8  # bytes in a 64-bit word, one counter table each
PIECE_MIN = 1 << 20  # below a million pixels, one thread: starting others costs more


def _compiled(function):
    """`function` compiled, cached on disk when numba finds a folder it can write."""
    try:
        return numba.njit(nogil=True, cache=True)(function)
    except RuntimeError:  # "cannot cache function": no writable folder (read-only install)
        return numba.njit(nogil=True)(function)  # compiled again in each process


@_compiled
def _count(pixels: np.ndarray) -> np.ndarray:
    n_words = pixels.size // LANES
    words = pixels[: n_words * LANES].view(np.uint64)
    tables = np.zeros((LANES, LEVELS), np.int64)
    zero_words = 0
    for i in range(n_words):
        word = words[i]
        if word == 0:
            zero_words += 1
            continue
        tables[0, word & 255] += 1
        tables[1, (word >> 8) & 255] += 1
        tables[2, (word >> 16) & 255] += 1
        tables[3, (word >> 24) & 255] += 1
        tables[4, (word >> 32) & 255] += 1
        tables[5, (word >> 40) & 255] += 1
        tables[6, (word >> 48) & 255] += 1
        tables[7, word >> 56] += 1
    counts = tables.sum(axis=0)
    counts[0] += LANES * zero_words
    for i in range(n_words * LANES, pixels.size):
        counts[pixels[i]] += 1
    return counts


def byte_histogram(pixels: np.ndarray) -> np.ndarray:
    """How many bytes of a flat, contiguous uint8 array take each value 0-255 (int64)."""
    if pixels.dtype != np.uint8 or pixels.ndim != 1 or not pixels.flags.c_contiguous:
        raise TypeError("byte_histogram needs a flat, contiguous uint8 array")
    pieces = max(1, min(torch.get_num_threads(), pixels.size // PIECE_MIN))
    if pieces == 1:
        return _count(pixels)
    step = -(-pixels.size // pieces // LANES) * LANES  # whole words in every piece but the last
    with ThreadPoolExecutor(pieces) as pool:
        return sum(pool.map(_count, (pixels[i : i + step] for i in range(0, pixels.size, step))))

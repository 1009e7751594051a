"""The compiled inner loop of the near-duplicate search (numba; compiled once, cached)."""

from __future__ import annotations

import numba  # after datalib.quality set NUMBA_CACHE_DIR
import numpy as np

_M1, _M2, _M4 = (
    np.uint64(0x5555555555555555),
    np.uint64(0x3333333333333333),
    np.uint64(0x0F0F0F0F0F0F0F0F),
)
_H01 = np.uint64(0x0101010101010101)


@numba.njit(cache=True, nogil=True)
def _popcount(x):
    x = x - ((x >> np.uint64(1)) & _M1)
    x = (x & _M2) + ((x >> np.uint64(2)) & _M2)
    x = (x + (x >> np.uint64(4))) & _M4
    return (x * _H01) >> np.uint64(56)


@numba.njit(cache=True, nogil=True)
def near_pairs(hashes, prints, keys, orders, sorted_keys, bits, difference, block):
    """Every pair of images sharing the value of hash block `block` (and no earlier block:
    a pair is seen once), kept when within `bits` and `difference`. Runs without the GIL: the
    blocks are searched on threads side by side."""
    capacity = 1024
    first = np.empty(capacity, np.int64)
    second = np.empty(capacity, np.int64)
    distance = np.empty(capacity, np.int64)
    pixel = np.empty(capacity, np.float64)
    count = 0
    n = keys.shape[1]
    size = prints.shape[1]
    b = block
    start = 0
    while start < n:
        stop = start + 1
        while stop < n and sorted_keys[b, stop] == sorted_keys[b, start]:
            stop += 1
        for p in range(start, stop):
            for q in range(p + 1, stop):
                i, j = orders[b, p], orders[b, q]
                if i > j:
                    i, j = j, i
                seen = False
                for e in range(b):
                    if keys[e, i] == keys[e, j]:
                        seen = True
                        break
                if seen:
                    continue
                d = _popcount(hashes[i] ^ hashes[j])
                if d > bits:
                    continue
                apart = 0
                most = 0
                for k in range(size):
                    a, c = np.int64(prints[i, k]), np.int64(prints[j, k])
                    apart += abs(a - c)
                    most += max(a, c)
                share = apart / most if most > 0 else 0.0
                if share > difference:
                    continue
                if count == capacity:
                    capacity *= 2
                    first = _grow(first, capacity)
                    second = _grow(second, capacity)
                    distance = _grow(distance, capacity)
                    pixel = _grow(pixel, capacity)
                first[count], second[count] = i, j
                distance[count], pixel[count] = d, share
                count += 1
        start = stop
    return first[:count], second[:count], distance[:count], pixel[:count]


@numba.njit(cache=True, nogil=True)
def _grow(values, capacity):
    out = np.empty(capacity, values.dtype)
    out[: values.size] = values
    return out

"""numba kernels of the hashed unigram Gram ``sum_pages h hᵀ`` (see :class:`accum.accumulator.Settings`).

The Gram is kept as its upper triangle, packed row by row, in int64 (fixed point, so
sums and merges are exact). The counting kernel (:func:`accum._kernels.accumulate`)
writes each page's vector h as (bucket, value) entries; :func:`gram_add_pages` adds a
batch of pages at once, tile by tile, so that the part of the triangle being updated
stays in the cache while every page of the batch adds to it (updating page by page
touches a new cache line of a 64 MiB triangle for almost every entry).
"""

import numpy as np
from numba import njit

from .config import NJIT_OPTIONS

#: Buckets per side of a tile: a 512 x 512 tile of int64 (2 MiB) stays in the last-level
#: cache; smaller tiles spend more on the loops per page and tile than they save (measured:
#: 500 pages of 150 buckets, 64: 85 ms, 256: 40 ms, 512: 34 ms, 1024: 50 ms; page by page 95 ms).
TILE = 512


@njit(**NJIT_OPTIONS)
def gram_offset(i, n_buckets):
    """Index in the packed upper triangle (row-major) of the Gram entry ``(i, i)``."""
    return i * n_buckets - i * (i - 1) // 2


@njit(**NJIT_OPTIONS)
def _combine(bucket, value, first, last):
    """Sort entries ``first..last-1`` by bucket and add up repeated buckets; returns the
    end of the combined entries (from ``first``)."""
    order = np.argsort(bucket[first:last]) + first
    b, v = bucket[order], value[order]
    m = first
    for i in range(len(b)):
        if m > first and bucket[m - 1] == b[i]:
            value[m - 1] += v[i]
        else:
            bucket[m], value[m] = b[i], v[i]
            m += 1
    return m


@njit(**NJIT_OPTIONS)
def gram_add_pages(gram, n_buckets, page_bounds, bucket, value):
    """Add ``h hᵀ`` of each page to the packed triangle ``gram``.

    Page p's vector has ``value[i]`` in bucket ``bucket[i]`` for ``page_bounds[p] <= i <
    page_bounds[p + 1]`` (buckets may repeat: their values add up). Reorders ``bucket``
    and ``value`` within each page.
    """
    n_pages = page_bounds.shape[0] - 1
    n_tiles = (n_buckets + TILE - 1) // TILE
    # per page, where each tile's buckets start among its sorted, combined entries
    starts = np.empty((n_pages, n_tiles + 1), np.int64)
    for p in range(n_pages):
        end = _combine(bucket, value, page_bounds[p], page_bounds[p + 1])
        i = page_bounds[p]
        for t in range(n_tiles + 1):
            while i < end and bucket[i] < t * TILE:
                i += 1
            starts[p, t] = i
    for ti in range(n_tiles):
        for tj in range(ti, n_tiles):
            for p in range(n_pages):
                for i in range(starts[p, ti], starts[p, ti + 1]):
                    bi, vi = bucket[i], value[i]
                    row = gram_offset(bi, n_buckets) - bi
                    for j in range(i if tj == ti else starts[p, tj], starts[p, tj + 1]):
                        gram[row + bucket[j]] += vi * value[j]


@njit(**NJIT_OPTIONS)
def gram_unpack(gram, n_buckets, out):
    """The full symmetric matrix ``out`` (float64[n, n]) of a packed upper triangle."""
    for i in range(n_buckets):
        base = gram_offset(i, n_buckets) - i
        for j in range(i, n_buckets):
            out[i, j] = out[j, i] = gram[base + j]


@njit(**NJIT_OPTIONS)
def gram_centered_lower(gram, n_buckets, scale, mean, n_pages, lam, out):
    """The lower triangle of ``gram / scale - n_pages * mean meanᵀ + lam * I`` into ``out``
    (float[n, n] in Fortran order, as LAPACK reads it): column j of the lower triangle is
    row j of the packed upper one, so both are read and written in order."""
    for j in range(n_buckets):
        base = gram_offset(j, n_buckets) - j
        mj = n_pages * mean[j]
        for i in range(j, n_buckets):
            out[i, j] = gram[base + i] / scale - mj * mean[i]
        out[j, j] += lam

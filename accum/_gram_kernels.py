"""numba kernels of the hashed unigram Gram ``sum_pages h hᵀ`` (see :class:`accum.settings.Settings`).

The Gram is kept as its upper triangle, packed row by row, in int64 (fixed point, so
sums and merges are exact). The counting kernel (:func:`accum._kernels.accumulate`)
writes each page's vector h as (bucket, value) entries; :func:`gram_add_pages` adds a
batch of pages at once, row by row of the Gram, so that the row being updated stays in
the first-level cache while every page of the batch that has its bucket adds to it
(updating page by page touches a new cache line of a 64 MiB triangle for almost every
entry).
"""

import numpy as np
from numba import njit

from .config import NJIT_OPTIONS

@njit(**NJIT_OPTIONS)
def gram_offset(i, n_buckets):
    """Index in the packed upper triangle (row-major) of the Gram entry ``(i, i)``."""
    return i * n_buckets - i * (i - 1) // 2


@njit(**NJIT_OPTIONS)
def _pages_by_bucket(page_bounds, bucket, value, n_buckets):
    """Each page's entries sorted by bucket, repeated buckets added up, and the entries
    listed bucket by bucket, by one counting sort of the whole batch.

    Returns ``(b, v, end, order, page, first)``: page p's entries are ``b[i], v[i]`` for
    ``page_bounds[p] <= i < end[p]``, in increasing bucket order; ``order[first[k]:first[k
    + 1]]`` are the entries of bucket k (page by page) and ``page`` the page of each.
    """
    n_pages = page_bounds.shape[0] - 1
    n_entries = page_bounds[n_pages]
    if n_entries >= 1 << 31:  # positions are int32: half the bytes to stream (7 % of the time)
        raise ValueError("too many Gram entries for one call (at most 2**31 - 1)")
    cursor = np.zeros(n_buckets + 1, np.int64)
    for e in range(n_entries):
        cursor[bucket[e] + 1] += 1
    for k in range(n_buckets):
        cursor[k + 1] += cursor[k]
    by_bucket = np.empty(n_entries, np.int32)
    for e in range(n_entries):
        by_bucket[cursor[bucket[e]]] = e
        cursor[bucket[e]] += 1
    page_of = np.empty(n_entries, np.int32)
    for p in range(n_pages):
        page_of[page_bounds[p] : page_bounds[p + 1]] = p
    b = np.empty(n_entries, bucket.dtype)
    v = np.empty(n_entries, value.dtype)
    end = page_bounds[:n_pages].copy()
    order = np.empty(n_entries, np.int32)
    page = np.empty(n_entries, np.int32)
    first = np.zeros(n_buckets + 1, np.int64)
    n = 0
    for k in range(n_entries):  # buckets in increasing order, so each page's come sorted
        e = by_bucket[k]
        p = page_of[e]
        i = end[p]
        if i > page_bounds[p] and b[i - 1] == bucket[e]:
            v[i - 1] += value[e]
        else:
            b[i], v[i] = bucket[e], value[e]
            end[p] = i + 1
            order[n], page[n] = i, p
            n += 1
            first[bucket[e] + 1] = n
    for k in range(n_buckets):  # buckets no page has
        first[k + 1] = max(first[k + 1], first[k])
    return b, v, end, order, page, first


@njit(**NJIT_OPTIONS)
def gram_add_pages(gram, n_buckets, page_bounds, bucket, value):
    """Add ``h hᵀ`` of each page to the packed triangle ``gram``.

    Page p's vector has ``value[i]`` in bucket ``bucket[i]`` for ``page_bounds[p] <= i <
    page_bounds[p + 1]`` (buckets may repeat: their values add up). The accumulator
    passes them as uint16 and int32 (values are at most ``GRAM_SCALE`` times a unit
    vector's entries, repeats included): the entries of a page are read again for each
    of its buckets, from beyond the cache, and 6 bytes an entry instead of 16 take a
    quarter off the time.

    Each page's entries are sorted by bucket (:func:`_pages_by_bucket`: one counting sort
    of the batch: 20 Newsgroups' Gram 0.51 -> 0.47 s against sorting page by page); then, for
    each bucket i in turn, every entry of bucket i adds its value times each later entry
    of its page to row i, which stays in the cache meanwhile (measured on 20 Newsgroups:
    15 % faster than updating 512 x 512 tiles of the triangle, 4x faster than page by
    page). The row's index is unsigned, which spares each add numba's wrap-around test
    for negative indices (20 % of the time).
    """
    b, v, end, order, page, first = _pages_by_bucket(page_bounds, bucket, value, n_buckets)
    for i in range(n_buckets):
        row = np.uint64(gram_offset(i, n_buckets) - i)  # unsigned: no negative-index check per add
        for k in range(first[i], first[i + 1]):
            e = order[k]
            x = np.int64(v[e])
            for f in range(e, end[page[k]]):
                gram[row + np.uint64(b[f])] += x * v[f]


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


@njit(**NJIT_OPTIONS)
def gram_centered_columns(gram, n_buckets, scale, mean, n_pages, lam, first, out):
    """Columns ``first`` to ``first + w`` of ``gram / scale - n_pages * mean meanᵀ + lam *
    I`` into ``out`` (float64[n, w]), both triangles: a block of the whole matrix, for
    products without unpacking it all. Row i above the block is a stretch of packed row
    i; below it, entry (i, j) is packed row j's entry i, and the w rows j of the block
    are read side by side as i grows, a cache line each."""
    width = out.shape[1]
    base = np.empty(width, np.int64)  # where packed row j starts, minus j
    for c in range(width):
        base[c] = gram_offset(first + c, n_buckets) - (first + c)
    for i in range(n_buckets):
        scaled = n_pages * mean[i]
        row = gram_offset(i, n_buckets) - i
        for c in range(width):
            j = first + c
            if i <= j:
                value = gram[row + j]
            else:
                value = gram[base[c] + i]
            out[i, c] = value / scale - scaled * mean[j]
        if first <= i < first + width:
            out[i, i - first] += lam


@njit(**NJIT_OPTIONS)
def gram_nonzero(gram):
    """Positions (uint32) and values of the non-zero entries of a packed Gram, without
    a full-size temporary."""
    n = 0
    for i in range(gram.shape[0]):
        if gram[i] != 0:
            n += 1
    index = np.empty(n, np.uint32)
    value = np.empty(n, np.int64)
    n = 0
    for i in range(gram.shape[0]):
        if gram[i] != 0:
            index[n] = i
            value[n] = gram[i]
            n += 1
    return index, value

"""The feature table and the pair table: finding, adding, growing, rebuilding, reading out.

Private (see :mod:`accum._kernels` for the layout of rows, pairs and both tables).
"""

import numpy as np
from numba import njit

from .._prefetch import prefetch as _prefetch
from .._primitives import ONE, ZERO, mix64
from ..config import NJIT_OPTIONS


@njit(**NJIT_OPTIONS)
def _find_slot(slots, row_info, key):
    """Slot of feature ``key`` in the feature table, or of the empty slot where it would go."""
    mask = np.uint64(slots.shape[0] - 1)
    s = key & mask
    while True:
        r = slots[s]
        if r == 0 or row_info[r - 1, 0] == key:
            return np.int64(s)
        s = (s + ONE) & mask


@njit(**NJIT_OPTIONS)
def table_lookup(slots, row_info, key):
    """Row of feature ``key``, or -1 when the table does not hold it."""
    return np.int64(slots[_find_slot(slots, row_info, key)]) - 1


#: Columns of ``pairs`` (see module notes): the pair's row and category as
#: ``row << 32 | category``; its count; its document weight; the low 32 bits of its
#: feature id (high half) and, as scratch, its term frequency in the current document
#: (low half, zero between documents).
P_KEY, P_COUNT, P_WEIGHT, P_ID_TF = 0, 1, 2, 3


#: Rows, categories and pairs stay below this (rows and categories share ``P_KEY``; the
#: pair table's slots come from the 32-bit tags).
PAIR_LIMIT = 1 << 31


LOW32 = np.uint64(0xFFFFFFFF)


S32 = np.uint64(32)


@njit(**NJIT_OPTIONS)
def category_salt(cat):
    """What a category mixes into the pair-table hashes of its features."""
    return mix64(np.uint64(cat) + ONE)


@njit(**NJIT_OPTIONS)
def pair_table_shift(pair_table):
    """``64 - log2(capacity)``: a hash's first slot is its top bits, ``h >> shift``."""
    bits = 0
    while (1 << bits) < pair_table.shape[0]:
        bits += 1
    return np.uint64(64 - bits)


@njit(**NJIT_OPTIONS)
def _pair_probe(pair_table, shift, pairs, h, id_low, cat):
    """Slot and pair of the hash ``h = fid ^ category_salt(cat)``: the pair is -1 and the
    slot the empty one where it would go when (feature, category) has no pair.

    An entry is the hash's top 32 bits (its tag) over the pair + 1 (so never 0); a tag
    match is confirmed by the pair's category and the low 32 bits of its feature id,
    which with the tag and the salt give back the whole feature id: exact.
    """
    tag = h >> S32
    mask = np.uint64(pair_table.shape[0] - 1)
    s = h >> shift
    while True:
        e = pair_table[s]
        if e == ZERO:
            return np.int64(s), np.int64(-1)
        if (e >> S32) == tag:
            p = np.int64(e & LOW32) - 1
            if ((pairs[p, P_ID_TF] >> 32) & 0xFFFFFFFF) == id_low and (pairs[p, P_KEY] & 0xFFFFFFFF) == cat:
                return np.int64(s), p
        s = (s + ONE) & mask


#: :func:`_pair_ahead` when the hash's home slot is empty.
NO_PAIR = -1


@njit(**NJIT_OPTIONS)
def _pair_ahead(pair_table, shift, h):
    """A guess of :func:`_pair_probe` for prefetching, from the hash's home slot only: the
    pair its entry points to when the tags match, ``NO_PAIR`` when the slot is empty, -2
    otherwise."""
    e = pair_table[h >> shift]
    if e == ZERO:
        return NO_PAIR
    if (e >> S32) == (h >> S32):
        return np.int64(e & LOW32) - 1
    return -2


@njit(**NJIT_OPTIONS)
def _pair_add(pair_table, pairs, n_pairs, slot, h, id_low, row, cat):
    """Add pair ``n_pairs`` of (row, category) with a zero count at the empty ``slot``
    that :func:`_pair_probe` returned for ``h``."""
    pair_table[slot] = ((h >> S32) << S32) | np.uint64(n_pairs + 1)
    pairs[n_pairs, P_KEY] = (row << 32) | cat
    pairs[n_pairs, P_COUNT] = 0
    pairs[n_pairs, P_WEIGHT] = 0
    pairs[n_pairs, P_ID_TF] = id_low << 32


@njit(**NJIT_OPTIONS)
def pair_find(pair_table, pairs, fid, cat):
    """Pair of (feature ``fid``, category), or -1 when never counted."""
    _, p = _pair_probe(pair_table, pair_table_shift(pair_table), pairs, fid ^ category_salt(cat),
                       np.int64(fid & LOW32), cat)
    return p


@njit(**NJIT_OPTIONS)
def pair_table_grow(old, new):
    """Move the entries of pair table ``old`` into the empty, larger ``new``: a slot is
    the top bits of the tag, so no pair or feature is read and slots come in order."""
    shift = pair_table_shift(new)
    mask = np.uint64(new.shape[0] - 1)
    for i in range(old.shape[0]):
        e = old[i]
        if e != ZERO:
            s = ((e >> S32) << S32) >> shift
            while new[s] != ZERO:
                s = (s + ONE) & mask
            new[s] = e


@njit(**NJIT_OPTIONS)
def pair_table_build(pairs, n_pairs, row_info, pair_table):
    """Fill an empty pair table with pairs ``0..n_pairs-1`` (given their ``P_KEY``,
    count and weight), setting their ``P_ID_TF`` from the rows' feature ids."""
    shift = pair_table_shift(pair_table)
    mask = np.uint64(pair_table.shape[0] - 1)
    for p in range(n_pairs):
        key = pairs[p, P_KEY]
        fid = row_info[key >> 32, 0]
        pairs[p, P_ID_TF] = np.int64(fid & LOW32) << 32
        h = fid ^ category_salt(key & 0xFFFFFFFF)
        s = h >> shift
        while pair_table[s] != ZERO:
            s = (s + ONE) & mask
        pair_table[s] = ((h >> S32) << S32) | np.uint64(p + 1)


@njit(**NJIT_OPTIONS)
def pairs_columns(pairs, n_pairs, n_rows, ordered):
    """Row, category, count and weight of pairs ``0..n_pairs-1``, four int64[n_pairs].

    ``ordered``: by row, then category (the order of ``np.nonzero`` on the dense counts),
    by a counting sort on rows and an insertion sort of each row's few categories;
    otherwise in pair order.
    """
    rows = np.empty(n_pairs, np.int64)
    cats = np.empty(n_pairs, np.int64)
    counts = np.empty(n_pairs, np.int64)
    weights = np.empty(n_pairs, np.int64)
    if ordered:
        start = np.zeros(n_rows + 1, np.int64)
        for p in range(n_pairs):
            start[(pairs[p, P_KEY] >> 32) + 1] += 1
        for r in range(n_rows):
            start[r + 1] += start[r]
    for p in range(n_pairs):
        key = pairs[p, P_KEY]
        i = p
        if ordered:
            i = start[key >> 32]
            start[key >> 32] += 1
        rows[i] = key >> 32
        cats[i] = key & 0xFFFFFFFF
        counts[i] = pairs[p, P_COUNT]
        weights[i] = pairs[p, P_WEIGHT]
    if ordered:  # start[r] is now where row r + 1 begins
        begin = 0
        for r in range(n_rows):
            for i in range(begin + 1, start[r]):
                c, n, w = cats[i], counts[i], weights[i]
                j = i - 1
                while j >= begin and cats[j] > c:
                    cats[j + 1], counts[j + 1], weights[j + 1] = cats[j], counts[j], weights[j]
                    j -= 1
                cats[j + 1], counts[j + 1], weights[j + 1] = c, n, w
            begin = start[r]
    return rows, cats, counts, weights


@njit(**NJIT_OPTIONS)
def pairs_dense(pairs, n_pairs, column, scale, out):
    """Scatter one column of the pairs, divided by ``scale`` when ``out`` is float, into
    dense ``out[row, category]`` (zeroed)."""
    for p in range(n_pairs):
        key = pairs[p, P_KEY]
        if scale == 1.0:
            out[key >> 32, key & 0xFFFFFFFF] = pairs[p, column]
        else:
            out[key >> 32, key & 0xFFFFFFFF] = np.float64(pairs[p, column]) / scale


#: How many features ahead the scoring loops prefetch table slots and rows: random reads
#: into tables larger than the cache, so their misses overlap instead of queueing.
AHEAD = 32


@njit(**NJIT_OPTIONS)
def lookup_rows(grams, slots, row_info):
    """Row of every n-gram in ``grams`` (-1 where unseen or absent), prefetching the
    table slots ``AHEAD`` n-grams ahead."""
    rows = np.empty(grams.shape, np.int64)
    fids, out = grams.ravel(), rows.ravel()
    mask = np.uint64(slots.shape[0] - 1)
    for i in range(fids.shape[0]):
        if i + AHEAD < fids.shape[0]:
            _prefetch(slots, fids[i + AHEAD] & mask)
        out[i] = table_lookup(slots, row_info, fids[i]) if fids[i] != ZERO else -1
    return rows


@njit(**NJIT_OPTIONS)
def table_build(row_info, n_rows, slots):
    """Fill an empty feature table (``slots`` all 0) with rows ``0..n_rows-1`` of ``row_info``
    (their feature ids are distinct, so a row takes the first empty slot of its probe
    and no row is read to compare; slots are prefetched ``AHEAD`` rows ahead)."""
    mask = np.uint64(slots.shape[0] - 1)
    for r in range(n_rows):
        if r + AHEAD < n_rows:
            _prefetch(slots, row_info[r + AHEAD, 0] & mask)
        s = row_info[r, 0] & mask
        while slots[s] != 0:
            s = (s + ONE) & mask
        slots[s] = r + 1

"""Generator kernels: count n-grams and sentence openers, merge, and read counts back.

Private (see :mod:`accum._markov_kernels` for the conventions: rows, the row table, the
(row, category) pairs).
"""

import numpy as np
from numba import njit

from .._prefetch import prefetch_row
from .._primitives import ONE, ZERO, mix64
from ..config import NJIT_OPTIONS
from .tokens import BOS_ID, EOS_ID, K_CLOSER, K_LOWER, K_TERMINAL, ROOT_ID, _in_sorted, ngram_id, opener_id

COUNT_BLOCK = 64  # positions count_ngrams makes keys for (fetching their slots) before it counts them
CAT_BITS = 20  # a category-count pair's key is ((row + 1) << CAT_BITS) | category
CAT_MASK = np.uint64((1 << 20) - 1)

# -- tables --------------------------------------------------------------------------------


@njit(**NJIT_OPTIONS)
def _probe(table, key, start):
    """Slot of ``key`` in ``table[:, 0]``, or of the empty slot where it would go, probing
    linearly from slot ``start`` (taken modulo the table's power-of-two size)."""
    mask = np.uint64(table.shape[0] - 1)
    s = start & mask
    while True:
        k = table[s, 0]
        if k == key or k == ZERO:
            return np.int64(s)
        s = (s + ONE) & mask


@njit(**NJIT_OPTIONS)
def _find_slot(table, key):
    """Slot of ``key`` in the row table (its keys are hashes: probing starts at the key)."""
    return _probe(table, key, key)


@njit(**NJIT_OPTIONS)
def table_lookup(table, key):
    """Row of ``key``, or -1 when absent."""
    s = _find_slot(table, key)
    if table[s, 0] == ZERO:
        return np.int64(-1)
    return np.int64(table[s, 1])


@njit(**NJIT_OPTIONS)
def table_build(row_key, n_rows, table):
    """Fill an empty table with rows ``0..n_rows-1``."""
    for r in range(n_rows):
        s = _find_slot(table, row_key[r])
        table[s, 0] = row_key[r]
        table[s, 1] = r


@njit(**NJIT_OPTIONS)
def _pair_slot(pairs, pk):
    """Slot of pair key ``pk`` in ``pairs[:, 0]`` (hashed: pair keys are not random)."""
    return _probe(pairs, pk, mix64(pk))


@njit(**NJIT_OPTIONS)
def pair_key(row, cat):
    return (np.uint64(row + 1) << np.uint64(CAT_BITS)) | np.uint64(cat)


@njit(**NJIT_OPTIONS)
def pairs_add(pairs, rows, cats, values, n_pairs):
    """Add ``values`` to the (row, category) pairs; returns the pairs in use.

    The caller keeps the table at most half full after the additions.
    """
    for i in range(rows.shape[0]):
        if values[i] == 0:
            continue
        pk = pair_key(rows[i], cats[i])
        s = _pair_slot(pairs, pk)
        if pairs[s, 0] == ZERO:
            pairs[s, 0] = pk
            n_pairs += 1
        pairs[s, 1] += np.uint64(values[i])
    return n_pairs


@njit(**NJIT_OPTIONS)
def pairs_lookup(pairs, row, cat):
    """Count of ``row`` in category ``cat`` (0 when absent)."""
    s = _pair_slot(pairs, pair_key(row, cat))
    return np.int64(pairs[s, 1]) if pairs[s, 0] != ZERO else np.int64(0)


@njit(**NJIT_OPTIONS)
def sparse_counts(row_count, pairs):
    """Every non-zero count as (row, category, count), sorted by row then category.

    A row's count in its first category ``row_count[r, 1]`` is its total less the counts
    the pair table holds for its other categories. Counting sort by row, O(rows + pairs).
    """
    n = row_count.shape[0]
    others = np.zeros(n, np.int64)
    per_row = np.ones(n + 1, np.int64)
    per_row[n] = 0
    for s in range(pairs.shape[0]):
        k = pairs[s, 0]
        if k != ZERO:
            r = np.int64(k >> np.uint64(CAT_BITS)) - 1
            others[r] += np.int64(pairs[s, 1])
            per_row[r] += 1
    start = np.zeros(n + 1, np.int64)
    for r in range(n):
        start[r + 1] = start[r] + per_row[r]
    rows = np.empty(start[n], np.int64)
    cats = np.empty(start[n], np.int64)
    vals = np.empty(start[n], np.int64)
    fill = start[:n].copy()
    for r in range(n):
        rows[fill[r]] = r
        cats[fill[r]] = row_count[r, 1]
        vals[fill[r]] = row_count[r, 0] - others[r]
        fill[r] += 1
    for s in range(pairs.shape[0]):
        k = pairs[s, 0]
        if k != ZERO:
            r = np.int64(k >> np.uint64(CAT_BITS)) - 1
            rows[fill[r]] = r
            cats[fill[r]] = np.int64(k & CAT_MASK)
            vals[fill[r]] = np.int64(pairs[s, 1])
            fill[r] += 1
    # categories in order inside each row (rows hold few pairs: insertion sort)
    for r in range(n):
        for i in range(start[r] + 1, start[r + 1]):
            c = cats[i]
            v = vals[i]
            j = i - 1
            while j >= start[r] and cats[j] > c:
                cats[j + 1] = cats[j]
                vals[j + 1] = vals[j]
                j -= 1
            cats[j + 1] = c
            vals[j + 1] = v
    return rows, cats, vals


@njit(**NJIT_OPTIONS)
def load_counts(rows, cats, values, row_count, pairs):
    """Fill empty rows' totals and first categories, and the pairs, from sparse counts.

    A row's first listed category keeps its count in the row; the others go to the
    pairs (reserved by the caller). Returns the pairs in use.
    """
    for i in range(rows.shape[0]):
        row_count[rows[i], 0] = 0
        row_count[rows[i], 1] = -1
    n_pairs = 0
    for i in range(rows.shape[0]):
        r = rows[i]
        if values[i] == 0:
            continue
        if row_count[r, 1] < 0:
            row_count[r, 1] = cats[i]
        elif row_count[r, 1] != cats[i]:
            s = _pair_slot(pairs, pair_key(r, cats[i]))
            if pairs[s, 0] == ZERO:
                pairs[s, 0] = pair_key(r, cats[i])
                n_pairs += 1
            pairs[s, 1] += np.uint64(values[i])
        row_count[r, 0] += values[i]
    for i in range(rows.shape[0]):
        if row_count[rows[i], 1] < 0:
            row_count[rows[i], 1] = 0
    return n_pairs


@njit(**NJIT_OPTIONS)
def count_column(row_count, pairs, cat):
    """The counts of one category, int64[n_rows] (dense)."""
    n = row_count.shape[0]
    others = np.zeros(n, np.int64)
    out = np.zeros(n, np.int64)
    for s in range(pairs.shape[0]):
        k = pairs[s, 0]
        if k != ZERO:
            r = np.int64(k >> np.uint64(CAT_BITS)) - 1
            others[r] += np.int64(pairs[s, 1])
            if (k & CAT_MASK) == np.uint64(cat):
                out[r] = np.int64(pairs[s, 1])
    for r in range(n):
        if row_count[r, 1] == cat:
            out[r] = row_count[r, 0] - others[r]
    return out


@njit(**NJIT_OPTIONS)
def pairs_rehash(old, new):
    """Move every pair of ``old`` into the empty table ``new``."""
    for s in range(old.shape[0]):
        if old[s, 0] != ZERO:
            t = _pair_slot(new, old[s, 0])
            new[t, 0] = old[s, 0]
            new[t, 1] = old[s, 1]


# -- counting ------------------------------------------------------------------------------


@njit(**NJIT_OPTIONS)
def count_ngrams(ids, info, tok_bounds, doc_cats, first_doc, order, abbrev, table, row_key,
                 row_prefix, row_last, row_order, row_count, n_rows, pairs, n_pairs, multi, new_tok):
    """Count the n-grams (orders 1..``order``) and sentence openers of documents.

    Each document is ``BOS t_1 .. t_n EOS``; every ``t_i`` and the ``EOS`` are counted
    after each of their contexts of length 0..order-1 that fits after ``BOS``. A row
    keeps its total and the first category that counted it (``row_count[r] = (total,
    category)``); counts in other categories go to the (row, category) pairs (most
    n-grams occur in one category only, so the pairs stay few). Stops before a document
    that could overfill the rows or push the table or the pairs past half full; the
    caller grows them and calls again from the returned document.

    Sentence starts follow :func:`_starts_sentence`, tracked incrementally: the phase of
    the run of terminals and closers before the token, and whether the word before the
    terminals is an abbreviation.

    A document goes by blocks of ``COUNT_BLOCK`` positions in three passes: the keys of
    the block's n-grams (their table slots fetched as they are made), then each key's
    row (found or added; its count's row fetched), then the counts. Every read of the
    big tables is thus requested a pass before it is needed.

    Parameters
    ----------
    ids, info, tok_bounds : from :func:`tokenize`.
    doc_cats : int64[n_docs]
        Category column of each document.
    first_doc : int
    order : int
    abbrev : uint64[n_abbrev]
        Sorted ids of abbreviations (a terminal after one does not end a sentence).
    table : uint64[cap, 2]
        (key, row) by open addressing.
    row_key, row_prefix, row_last, row_order : the rows.
    row_count : int64[rows_cap, 2]
        Total and first category of each row.
    n_rows : int
        Rows in use on entry.
    pairs : uint64[pcap, 2]
        (pair key, count) of (row, category) pairs beyond each row's first category.
    n_pairs : int
    multi : bool
        The documents may have several categories (else no pair is ever added, and
        the pairs need no room).
    n_pairs : int
    new_tok : int64[n_tokens]
        Receives the index of each token whose unigram row is new (for the lexicon).

    Returns
    -------
    next_doc, n_rows, n_pairs, n_new : int
    """
    n_docs = tok_bounds.shape[0] - 1
    rows_cap = row_key.shape[0]
    half = table.shape[0] // 2
    pair_half = pairs.shape[0] // 2
    cap = COUNT_BLOCK * (order + 1)
    bk = np.empty(cap, np.uint64)  # the block's n-grams: key, prefix, last token, order, position
    bp = np.empty(cap, np.uint64)
    bw = np.empty(cap, np.uint64)
    bo = np.empty(cap, np.int64)
    bt = np.empty(cap, np.int64)
    br = np.empty(cap, np.int64)  # and row
    ctx = np.empty(order + 1, np.uint64)  # ctx[k]: key of the k-gram before the position (0: ROOT)
    mask = np.uint64(table.shape[0] - 1)
    n_new = 0
    for d in range(first_doc, n_docs):
        a = tok_bounds[d]
        b = tok_bounds[d + 1]
        worst = (b - a + 1) * (order + 1)
        if n_rows + worst > rows_cap or n_rows + worst > half or (multi and n_pairs + worst > pair_half):
            return d, n_rows, n_pairs, n_new
        c = doc_cats[d]
        phase = 0  # 1: after terminals, 2: after terminals and closers
        after_abbrev = False
        ctx[0] = ROOT_ID
        ctx[1] = BOS_ID
        n_ctx = 2 if order > 1 else 1
        u = a
        while u <= b:  # positions u..end_u-1 (b is the document's EOS)
            end_u = min(u + COUNT_BLOCK, b + 1)
            m = 0
            for t in range(u, end_u):
                if t < b:
                    w = ids[t]
                    kind = info[t] & 7
                    opener = t == a or (phase > 0 and not after_abbrev and kind != K_LOWER and kind != K_TERMINAL
                                        and kind != K_CLOSER and (info[t - 1] & 16) != 0)
                    if kind == K_TERMINAL:
                        if phase != 1:
                            after_abbrev = t > a and _in_sorted(abbrev, ids[t - 1])
                            phase = 1
                    elif kind == K_CLOSER:
                        if phase != 0:
                            phase = 2
                    else:
                        phase = 0
                    if opener:
                        prev = ids[t - 1] if t > a else BOS_ID
                        key = opener_id(prev, w)
                        bk[m] = key
                        bp[m] = prev
                        bw[m] = w
                        bo[m] = 0
                        bt[m] = t
                        prefetch_row(table, np.int64(key & mask))
                        m += 1
                else:
                    w = EOS_ID
                first = m
                for k in range(n_ctx):
                    key = ngram_id(ctx[k], w, k + 1)
                    bk[m] = key
                    bp[m] = ctx[k]
                    bw[m] = w
                    bo[m] = k + 1
                    bt[m] = t
                    prefetch_row(table, np.int64(key & mask))
                    m += 1
                nxt = min(n_ctx + 1, order)
                for j in range(1, nxt):
                    ctx[j] = bk[first + j - 1]
                n_ctx = nxt
            for i in range(m):
                key = bk[i]
                s = _find_slot(table, key)
                if table[s, 0] == ZERO:
                    table[s, 0] = key
                    table[s, 1] = np.uint64(n_rows)
                    row_key[n_rows] = key
                    row_prefix[n_rows] = bp[i]
                    row_last[n_rows] = bw[i]
                    row_order[n_rows] = bo[i]
                    row_count[n_rows, 0] = 0
                    row_count[n_rows, 1] = c
                    if bo[i] == 1 and bt[i] < b:
                        new_tok[n_new] = bt[i]
                        n_new += 1
                    n_rows += 1
                row = np.int64(table[s, 1])
                br[i] = row
                prefetch_row(row_count, row)
            for i in range(m):
                row = br[i]
                row_count[row, 0] += 1
                if multi and row_count[row, 1] != c:
                    pk = pair_key(row, c)
                    q = _pair_slot(pairs, pk)
                    if pairs[q, 0] == ZERO:
                        pairs[q, 0] = pk
                        n_pairs += 1
                    pairs[q, 1] += ONE
            u = end_u
    return n_docs, n_rows, n_pairs, n_new


@njit(**NJIT_OPTIONS)
def merge_rows(o_key, o_prefix, o_last, o_order, o_total, o_cat, table, row_key, row_prefix,
               row_last, row_order, row_count, n_rows):
    """Add another model's rows and totals; returns our row of each of its rows, and the
    rows in use. A new row takes its first category from ``o_cat`` (already mapped to
    ours); new rows keep their order. The caller reserves room for every incoming row.

    By blocks of ``COUNT_BLOCK`` rows, as :func:`count_ngrams`: the table slots of a
    block fetched, then its rows found (or added) and their counts fetched, then added.
    """
    n = o_key.shape[0]
    where = np.empty(n, np.int64)
    mask = np.uint64(table.shape[0] - 1)
    for a in range(0, n, COUNT_BLOCK):
        b = min(a + COUNT_BLOCK, n)
        for r in range(a, b):
            prefetch_row(table, np.int64(o_key[r] & mask))
        for r in range(a, b):
            s = _find_slot(table, o_key[r])
            if table[s, 0] == ZERO:
                table[s, 0] = o_key[r]
                table[s, 1] = np.uint64(n_rows)
                row_key[n_rows] = o_key[r]
                row_prefix[n_rows] = o_prefix[r]
                row_last[n_rows] = o_last[r]
                row_order[n_rows] = o_order[r]
                row_count[n_rows, 0] = 0
                row_count[n_rows, 1] = o_cat[r]
                n_rows += 1
            row = np.int64(table[s, 1])
            where[r] = row
            prefetch_row(row_count, row)
        for r in range(a, b):
            row_count[where[r], 0] += o_total[r]
    return where, n_rows

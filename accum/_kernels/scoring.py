"""Scoring pages under linear models: their weights laid out for look-up, and the sums.

Private (see :mod:`accum._kernels`). A page is tokenised, turned into its distinct
features and scored in one pass, in scratch arrays sized for the longest page so far.
"""

import numpy as np
from numba import njit

from .._prefetch import prefetch as _prefetch
from .._primitives import ONE, ZERO
from ..config import NJIT_OPTIONS
from .counting import WEIGHT_SCALE, gram_bucket
from .features import _doc_features, _doc_ngrams, _tokenize_doc
from .tables import AHEAD, P_KEY, P_WEIGHT


#: Load factor of a linear model's :func:`key_table` at most: most test features are unseen, and a
#: miss probes on to an empty slot, which stays within a cache line or two at this load.
LINEAR_LOAD = 0.6


#: Header of a dense row among a linear model's entries (:func:`entry_starts`).
DENSE = -1.0


@njit(**NJIT_OPTIONS)
def entry_starts(pairs, n_pairs, n_rows, n_cats, layout, offset):
    """Where the entries of each of ``n_rows`` rows start when the rows are laid out in
    the order ``layout`` lists them from ``offset`` (see :func:`fill_entries`): returns
    each row's pair count, its start, and where the entries end.

    A linear model's entries hold, per row, a header (the number of its pairs, its
    ``row_default``), then its pairs as (category, ``pair_delta``); a row counted in a
    quarter of the categories or more is dense instead: header (``DENSE``,
    ``row_default``), then ``n_cats`` deltas. Most rows have one pair (sparse: 32 bytes)
    while the frequent features most pages contain are dense (their sums vectorise).
    Laying the frequent rows out first keeps the pages a query touches few when the
    entries are memory-mapped.
    """
    n_of = np.zeros(n_rows, np.int64)  # pairs per row
    for p in range(n_pairs):
        n_of[pairs[p, P_KEY] >> 32] += 1
    start = np.empty(n_rows, np.int64)
    size = offset
    for r in layout:
        start[r] = size
        size += 2 + (n_cats if 4 * n_of[r] >= n_cats else 2 * n_of[r])
    return n_of, start, size


@njit(**NJIT_OPTIONS)
def fill_entries(pairs, n_pairs, n_of, start, n_cats, pair_delta, row_default, entries):
    """Write the rows' entries where :func:`entry_starts` placed them: a feature (row r)
    weighs ``category_term[c] + row_default[r] + delta`` in category c, where ``delta``
    is the pair's ``pair_delta`` if (r, c) was counted, else 0."""
    for r in range(n_of.shape[0]):  # headers; a sparse row's count grows as its pairs are placed
        e = start[r]
        entries[e + 1] = row_default[r]
        if 4 * n_of[r] >= n_cats:
            entries[e] = DENSE
            entries[e + 2 : e + 2 + n_cats] = 0.0
        else:
            entries[e] = 0.0
    for p in range(n_pairs):
        if p + AHEAD < n_pairs:  # pairs come in counting order: their rows' entries are scattered
            _prefetch(start, pairs[p + AHEAD, P_KEY] >> 32)
        if p + AHEAD // 2 < n_pairs:  # and the header of a nearer one, whose start has arrived
            _prefetch(entries, start[pairs[p + AHEAD // 2, P_KEY] >> 32])
        key = pairs[p, P_KEY]
        e = start[key >> 32]
        c = key & 0xFFFFFFFF
        if entries[e] == DENSE:
            entries[e + 2 + c] = pair_delta[p]
        else:
            j = e + 2 + 2 * np.int64(entries[e])
            entries[j] = np.float64(c)
            entries[j + 1] = pair_delta[p]
            entries[e] += 1.0


@njit(**NJIT_OPTIONS)
def complement_rows(pairs, n_pairs, n_rows, alpha):
    """Complement naive Bayes' weights ``-log((W[w] - W[w, c] + alpha) / sum_v (W[v] -
    W[v, c] + alpha))`` over the pairs' document weights W, without the per-category
    normaliser (which needs every row): per row ``-log(W[w] + alpha)`` and per pair what
    its own category's weight takes away from that, the two row parts
    :func:`fill_entries` takes."""
    row_total = np.zeros(n_rows)  # fixed-point integers summed in float64: exact below 2**53
    for p in range(n_pairs):
        key = pairs[p, P_KEY]
        row_total[key >> 32] += np.float64(pairs[p, P_WEIGHT])
    row_default = -np.log(row_total / WEIGHT_SCALE + alpha)
    pair_delta = np.empty(n_pairs)
    for p in range(n_pairs):
        r = pairs[p, P_KEY] >> 32
        pair_delta[p] = -np.log((row_total[r] - pairs[p, P_WEIGHT]) / WEIGHT_SCALE + alpha) - row_default[r]
    return row_default, pair_delta


@njit(**NJIT_OPTIONS)
def unigram_bucket_sums(pairs, n_pairs, row_info, bits, n_cats):
    """Per Gram bucket and category, the sum of ``sign * W[w, c]`` over the unigrams w
    hashed to the bucket (:func:`gram_bucket`), float64[2 ** bits, n_cats]: the sums of
    the training pages' hashed vectors per category."""
    sums = np.zeros((1 << bits, n_cats))
    for p in range(n_pairs):
        key = pairs[p, P_KEY]
        r = key >> 32
        if row_info[r, 3] == 1:
            bucket, sign = gram_bucket(row_info[r, 0], bits)
            sums[bucket, key & 0xFFFFFFFF] += sign * (pairs[p, P_WEIGHT] / WEIGHT_SCALE)
    return sums


@njit(**NJIT_OPTIONS)
def linear_find(table, fid):
    """Where the entries of feature ``fid`` start in a linear model's :func:`key_table`, or -1."""
    mask = np.uint64(table.shape[0] // 2 - 1)
    s = fid & mask
    while True:
        k = table[2 * s]
        if k == fid:
            return np.int64(table[2 * s + 1])
        if k == ZERO:
            return np.int64(-1)
        s = (s + ONE) & mask


@njit(**NJIT_OPTIONS)
def _find_starts(fids, a, b, table, starts, entries):
    """``starts[i]`` = :func:`linear_find` of ``fids[i]`` for ``a <= i < b``, each slot
    prefetched ``AHEAD`` features before it is read; the first cache line of each row
    found in ``entries`` (when not empty) starts loading too."""
    mask = np.uint64(table.shape[0] // 2 - 1)
    for i in range(a, min(a + AHEAD, b)):
        _prefetch(table, 2 * (fids[i] & mask))
    for i in range(a, b):
        if i + AHEAD < b:
            _prefetch(table, 2 * (fids[i + AHEAD] & mask))
        starts[i] = linear_find(table, fids[i])
        if starts[i] >= 0 and entries.shape[0]:
            _prefetch(entries, starts[i])


@njit(**NJIT_OPTIONS)
def linear_starts(fids, table):
    """:func:`linear_find` of each feature id (int64[n])."""
    starts = np.empty(fids.shape[0], np.int64)
    _find_starts(fids, 0, fids.shape[0], table, starts, np.empty(0))
    return starts


@njit(**NJIT_OPTIONS)
def _add_row(entries, e, x, out):
    """``out[c] += x * delta[c]`` for the deltas of the row whose entries start at ``e``;
    returns its row default."""
    if entries[e] == DENSE:
        for c in range(out.shape[0]):
            out[c] += x * entries[e + 2 + c]
    else:
        for j in range(e + 2, e + 2 + 2 * np.int64(entries[e]), 2):
            out[np.int64(entries[j])] += x * entries[j + 1]
    return entries[e + 1]


@njit(**NJIT_OPTIONS)
def linear_weights(starts, entries, category_term):
    """The weight in every category of each feature found at ``starts`` (from
    :func:`linear_starts`), float64[n, n_categories]; rows of unseen features are 0."""
    out = np.zeros((starts.shape[0], category_term.shape[0]))
    for i in range(starts.shape[0]):
        if starts[i] >= 0:
            default = _add_row(entries, starts[i], 1.0, out[i])
            out[i] += category_term + default
    return out


@njit(**NJIT_OPTIONS)
def _score_doc(fids, tfs, first, starts, a, b, order, entries, category_term, binary, out, ridge_coef, bits,
               log_tf, ridge_out):
    """Add the evidence of one document's distinct features ``a..b-1`` (from
    :func:`_doc_features`, found at ``starts`` by :func:`_find_starts`) to its scores
    ``out`` and ridge part ``ridge_out`` (rows: see :func:`score_texts`)."""
    n_cats = category_term.shape[0]
    ridge = ridge_coef.shape[0] > 0
    norm = 0.0
    if ridge:
        for i in range(a, b):
            norm += log_tf[tfs[i]] ** 2
        norm = np.sqrt(norm)
    evidence = 0.0  # sum of x over the seen features
    shared = 0.0  # sum of x times the row defaults
    token = first[a] - first[a] % order if b > a else 0  # first[token] of the token of feature i
    for i in range(a, b):
        while first[i] >= token + order:  # first[] grows: no division per feature
            token += order
        if i + AHEAD < b and starts[i + AHEAD] >= 0:
            ahead = starts[i + AHEAD]
            for k in range(0, min(2 + n_cats, entries.shape[0] - ahead), 8):  # 8 float64 a cache line
                _prefetch(entries, ahead + k)
        e = starts[i]
        if e < 0:
            continue
        x = 1.0 if binary else np.float64(tfs[i])
        evidence += x
        shared += x * entries[e + 1]
        if entries[e] == DENSE:
            for c in range(n_cats):
                out[c] += x * entries[e + 2 + c]
        else:
            for j in range(e + 2, e + 2 + 2 * np.int64(entries[e]), 2):
                out[np.int64(entries[j])] += x * entries[j + 1]
        if ridge and first[i] == token:  # a unigram
            bucket, sign = gram_bucket(fids[i], bits)
            w = sign * log_tf[tfs[i]] / norm
            for c in range(n_cats):
                ridge_out[c] += w * ridge_coef[bucket, c]
    for c in range(n_cats):
        out[c] += evidence * category_term[c] + shared


@njit(**NJIT_OPTIONS)
def score_texts(buf, doc_bounds, max_order, table, entries, category_term, binary, out, ridge_coef, ridge_out):
    """Add the evidence of each document's features seen in training to its scores.

    Document d is ``buf[doc_bounds[d]:doc_bounds[d + 1]]`` (UTF-8). Per document, over
    its distinct features (tf: occurrences in the document), each feature the
    model's table (:func:`key_table`) holds adds ``x`` times its weights, ``x`` = 1 with ``binary``
    (presence), else tf: its pairs' deltas go to their categories, and its row default
    and ``category_term`` (float64[n_categories]) to every category, summed per page
    first. When ``ridge_coef`` (float64[2 ** bits, n_cats], the ridge coefficients of
    the hashed unigram buckets) has rows, also ``ridge_out[doc] += sign * w *
    ridge_coef[bucket]`` for each seen unigram (:func:`gram_bucket`), where ``w = log(1 +
    tf) / ||log(1 + tf)||_2`` with the norm over all the document's features, seen or not
    (as the accumulator weighs training pages).

    One document at a time, through tokens, n-gram ids, distinct features, their table
    slots and the sums (:func:`_tokenize_doc`, :func:`_doc_ngrams`, :func:`_doc_features`,
    :func:`_find_starts`, :func:`_score_doc`), in scratch arrays sized for the longest
    document so far: they stay in cache, and a batch allocates almost nothing.
    """
    ridge = ridge_coef.shape[0] > 0
    bits = 0
    while (1 << bits) < ridge_coef.shape[0]:
        bits += 1
    no_ridge = np.empty(0)
    scratch = _page_scratch(0, max_order)
    for d in range(doc_bounds.shape[0] - 1):
        scratch = _page_scratch_for(scratch, doc_bounds[d + 1] - doc_bounds[d], max_order)
        fids, tfs, first, starts, log_tf = scratch[5], scratch[6], scratch[7], scratch[8], scratch[9]
        n = _page_rows(buf, doc_bounds[d], doc_bounds[d + 1], table, entries, scratch)
        _score_doc(fids, tfs, first, starts, 0, n, max_order, entries, category_term, binary, out[d], ridge_coef,
                   bits, log_tf, ridge_out[d] if ridge else no_ridge)


@njit(**NJIT_OPTIONS)
def _page_scratch(cap, max_order):
    """Scratch arrays for pages of up to ``cap`` tokens: token ids, starts and lengths,
    n-gram ids, a feature set, the distinct features' ids, counts, first positions and
    table starts, and ``log(1 + tf)`` for tf up to ``cap``."""
    return (np.empty(cap, np.uint64), np.empty(cap, np.int64), np.empty(cap, np.int32),
            np.empty((cap, max_order), np.uint64), np.empty(4 * cap * max_order, np.int64),
            np.empty(cap * max_order, np.uint64), np.empty(cap * max_order, np.int64),
            np.empty(cap * max_order, np.int64), np.empty(cap * max_order, np.int64), np.log1p(np.arange(cap + 1)))


@njit(**NJIT_OPTIONS)
def _page_scratch_for(scratch, n_bytes, max_order):
    """``scratch``, or larger arrays when a page of ``n_bytes`` UTF-8 bytes may not fit
    (a token takes at least one byte and a separator)."""
    most = n_bytes // 2 + 1
    cap = scratch[0].shape[0]
    if most > cap:
        return _page_scratch(max(most, 2 * cap), max_order)
    return scratch


@njit(**NJIT_OPTIONS)
def _page_rows(buf, a, b, table, entries, scratch):
    """The distinct features of the page ``buf[a:b]`` with where a model's :func:`key_table` holds
    them, into ``scratch`` (see :func:`_page_scratch`:
    ids in ``scratch[5]``, counts ``[6]``, first positions ``[7]``, table values ``[8]``,
    -1 where absent); returns how many."""
    ids, tok_starts, lengths, grams, seen = scratch[0], scratch[1], scratch[2], scratch[3], scratch[4]
    fids, tfs, first, starts = scratch[5], scratch[6], scratch[7], scratch[8]
    n_tokens = _tokenize_doc(buf, a, b, ids, tok_starts, lengths, 0)
    _doc_ngrams(ids, 0, n_tokens, grams)
    n = _doc_features(grams, 0, n_tokens, seen, fids, tfs, first, 0, table)
    _find_starts(fids, 0, n, table, starts, entries)
    return n


def key_table(key_parts: list, value_parts: list) -> np.ndarray:
    """An open-addressing table mapping each distinct non-zero key (uint64) of the parts
    to its value (uint64): slot s holds the key at ``2s`` (0 = empty) and the value at
    ``2s + 1`` (read by :func:`linear_find`), in the fewest slots (a power of two) that
    keep the load at most :data:`LINEAR_LOAD`. The keys come in parts (a model's shards),
    inserted a part at a time, so that no array of them all is made."""
    n_keys = sum(len(keys) for keys in key_parts)
    cap = 1 << 4
    while n_keys > LINEAR_LOAD * cap:
        cap *= 2
    table = np.zeros(2 * cap, np.uint64)
    for keys, values in zip(key_parts, value_parts):
        _key_insert(table, np.ascontiguousarray(keys, np.uint64), np.ascontiguousarray(values, np.uint64))
    return table


@njit(**NJIT_OPTIONS)
def _key_insert(table, keys, values):
    """Put each of ``keys`` with its value into the first free slot from its own (see :func:`key_table`)."""
    mask = np.uint64(table.shape[0] // 2 - 1)
    for r in range(keys.shape[0]):
        if r + AHEAD < keys.shape[0]:
            _prefetch(table, 2 * (keys[r + AHEAD] & mask))
        s = keys[r] & mask
        while table[2 * s] != ZERO:
            s = (s + ONE) & mask
        table[2 * s] = keys[r]
        table[2 * s + 1] = values[r]


@njit(**NJIT_OPTIONS)
def score_dense(buf, doc_bounds, max_order, table, weights, scale, binary, normalize, out):
    """Add each document's score under a dense linear model to ``out`` (float64[n_docs, n_cols]).

    A feature found in ``table`` (:func:`key_table`: feature id -> row) at row r weighs
    ``weights[r]`` (float32[n_rows, n_cols]) times ``x`` = 1 with ``binary`` (presence),
    else ``log(1 + tf)``. With ``normalize``, column c's sum is divided by the page's norm
    ``sqrt(sum_r (x * scale[r, c'])**2)`` over its features found, where ``scale``
    (float32[n_rows, 1 or n_cols]) is shared by the columns (c' = 0) or per column.
    """
    n_cols = weights.shape[1]
    n_s = scale.shape[1]
    sums = np.zeros(n_cols)
    norms = np.zeros(n_s)
    flat = weights.reshape(-1)
    no_entries = np.empty(0)
    scratch = _page_scratch(0, max_order)
    for d in range(doc_bounds.shape[0] - 1):
        scratch = _page_scratch_for(scratch, doc_bounds[d + 1] - doc_bounds[d], max_order)
        tfs, starts, log_tf = scratch[6], scratch[8], scratch[9]
        n = _page_rows(buf, doc_bounds[d], doc_bounds[d + 1], table, no_entries, scratch)
        sums[:] = 0.0
        norms[:] = 0.0
        for i in range(n):
            if i + AHEAD < n and starts[i + AHEAD] >= 0:
                _prefetch(flat, starts[i + AHEAD] * n_cols)
            r = starts[i]
            if r < 0:
                continue
            x = 1.0 if binary else log_tf[tfs[i]]
            for c in range(n_cols):
                sums[c] += x * weights[r, c]
            if normalize:
                for c in range(n_s):
                    norms[c] += (x * scale[r, c]) ** 2
        for c in range(n_cols):
            if normalize:
                nrm = norms[0 if n_s == 1 else c]
                out[d, c] += sums[c] / np.sqrt(nrm) if nrm > 0 else 0.0
            else:
                out[d, c] += sums[c]

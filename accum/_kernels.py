"""numba kernels over arrays: tokenise, hash, derive n-gram features, count, score.

Private: the public classes in :mod:`accum.tokens`, :mod:`accum.accumulator` and
:mod:`accum.classify` validate input and call these. Hashing, UTF-8 decoding and the
word-character rule come from :mod:`accum._primitives`, shared with the generator's
kernels (:mod:`accum.config` keeps numba's cache right across files).

Conventions
-----------
- Token ids are 64-bit hashes of the token's UTF-8 bytes (FNV-1a, then a murmur3 final
  mix). Feature ids: a unigram's id is its token id; an n-gram's id (n >= 2) mixes the
  ids of its tokens in order with a per-order salt. The id 0 is reserved for "empty".
- The feature table is open addressing with linear probing: ``slots[cap]`` (uint32) holds
  a row + 1 (0 = empty slot), confirmed by the row's feature id in ``row_info``: 4 bytes a
  slot. ``cap`` is a power of two.
- Rows are dense: ``row_info[r]`` holds the feature id, the id of the feature without its
  last token (0 for unigrams), the last token id and the order, and ``row_total[r]`` its
  count summed over categories.
- Counts are sparse *pairs*: only (row, category) pairs counted at least once are kept,
  as dense rows ``pairs[p] = (row << 32 | category, count, weight, scratch)`` in the order
  they were first counted, so memory follows the non-zero counts, not rows x categories.
  A second open-addressing table, ``pair_table[cap]``, finds them by feature id and
  category: the hash ``fid ^ category_salt(category)`` needs no row, so a count whose
  pair exists (most of them) reads the pair table, the pair and the row total, and not
  the feature table at all. An entry is the hash's top 32 bits (a tag, whose top bits
  are also the first slot probed) over pair + 1, so an empty slot is 0; the pair keeps
  the low 32 bits of its feature id to confirm a tag match exactly
  (see :func:`_pair_probe`). Pairs are only ever appended, so a pair keeps its index
  for the life of the accumulator.
"""

import numpy as np
from numba import njit

from ._prefetch import prefetch as _prefetch
from ._primitives import BYTE_CLASS, FNV_OFFSET, FNV_PRIME, ONE, ZERO, decode_utf8, finish, is_word_char, mix64
from ._primitives import ngram_id as _ngram_id
from .config import NJIT_OPTIONS


@njit(**NJIT_OPTIONS)
def ngram_id(prefix_id, token_id, order):
    """Feature id of an n-gram from the id of its first n-1 tokens and its last token
    (never 0, the "empty" id; see :func:`accum._primitives.ngram_id`).

    For ``order == 1`` the prefix is ignored and the feature id is the token id.
    """
    return _ngram_id(prefix_id, token_id, order, ONE)


@njit(**NJIT_OPTIONS)
def _tokenize_doc(buf, i, end, ids, starts, lengths, n):
    """Write the tokens of ``buf[i:end]`` (ids, byte offsets, byte lengths) from index
    ``n`` on; returns the index after the last (see :func:`tokenize`). Two tight loops,
    over separators then over a token's bytes, each byte one table look-up unless it is
    not ASCII."""
    while i < end:
        while i < end and BYTE_CLASS[buf[i]] == 0:
            i += 1
        start = i
        h = FNV_OFFSET
        skip = 0  # bytes of a non-ASCII separator that ended the token
        while i < end:
            b = buf[i]
            kind = BYTE_CLASS[b]
            if kind == 1:
                h = (h ^ np.uint64(b)) * FNV_PRIME
                i += 1
            elif kind == 0:
                break
            else:
                cp, width = decode_utf8(buf, i, end)
                if not is_word_char(cp):
                    skip = width
                    break
                for k in range(width):
                    h = (h ^ np.uint64(buf[i + k])) * FNV_PRIME
                i += width
        if i > start:
            ids[n] = finish(h, ONE)
            starts[n] = start
            lengths[n] = i - start
            n += 1
        i += skip
    return n


@njit(**NJIT_OPTIONS)
def tokenize(buf, doc_bounds):
    """Split UTF-8 documents into tokens and hash each one.

    Parameters
    ----------
    buf : uint8[n_bytes]
        The documents' bytes, concatenated.
    doc_bounds : int64[n_docs + 1]
        Document d is ``buf[doc_bounds[d]:doc_bounds[d + 1]]``.

    Returns
    -------
    ids : uint64[n_tokens]
        Token ids.
    starts : int64[n_tokens]
        Byte offset of each token in ``buf``.
    lengths : int32[n_tokens]
        Byte length of each token.
    tok_bounds : int64[n_docs + 1]
        Document d's tokens are ``ids[tok_bounds[d]:tok_bounds[d + 1]]``.

    The first three are views of arrays sized for the most tokens the bytes can hold:
    their unused ends are never written, so they take no memory, and trimming them with
    copies cost a quarter of the time (20 Newsgroups: 0.135 -> 0.103 s).
    """
    n_docs = doc_bounds.shape[0] - 1
    cap = buf.shape[0] // 2 + n_docs + 1
    ids = np.empty(cap, np.uint64)
    starts = np.empty(cap, np.int64)
    lengths = np.empty(cap, np.int32)
    tok_bounds = np.empty(n_docs + 1, np.int64)
    n = 0
    for d in range(n_docs):
        tok_bounds[d] = n
        n = _tokenize_doc(buf, doc_bounds[d], doc_bounds[d + 1], ids, starts, lengths, n)
    tok_bounds[n_docs] = n
    return ids[:n], starts[:n], lengths[:n], tok_bounds


@njit(**NJIT_OPTIONS)
def gather_tokens(buf, starts, lengths, tokens, sep):
    """The bytes of the given tokens of ``buf`` (indices into ``starts``/``lengths``), one
    byte ``sep`` between two (uint8[n]): a batch's new words decoded with one call."""
    size = len(tokens) - 1
    for t in tokens:
        size += lengths[t]
    out = np.empty(max(size, 0), np.uint8)
    i = 0
    for k, t in enumerate(tokens):
        if k:
            out[i] = sep
            i += 1
        out[i : i + lengths[t]] = buf[starts[t] : starts[t] + lengths[t]]
        i += lengths[t]
    return out


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


@njit(**NJIT_OPTIONS)
def _doc_ngrams(ids, a, b, grams):
    """Rows ``a..b-1`` of :func:`ngram_ids` for the document whose tokens are ``ids[a:b]``."""
    for t in range(a, b):
        grams[t, 0] = ids[t]
        for k in range(2, grams.shape[1] + 1):
            grams[t, k - 1] = ngram_id(grams[t - 1, k - 2], ids[t], k) if t - a + 1 >= k else ZERO


@njit(**NJIT_OPTIONS)
def ngram_ids(ids, tok_bounds, max_order):
    """Feature ids of the n-grams ending at each token.

    Returns uint64[n_tokens, max_order]: entry ``[t, k - 1]`` is the id of the k-gram
    whose last token is ``t``, or 0 where that k-gram would start before the document.
    The prefix of the k-gram at ``[t, k - 1]`` is the (k-1)-gram at ``[t - 1, k - 2]``.
    """
    grams = np.empty((ids.shape[0], max_order), np.uint64)
    for d in range(tok_bounds.shape[0] - 1):
        _doc_ngrams(ids, tok_bounds[d], tok_bounds[d + 1], grams)
    return grams


#: Fixed-point scale of the document weights: integers keep sums and merges exact.
WEIGHT_SCALE = float(1 << 24)
#: Fixed-point scale of a page's hashed unigram vector in the Gram (see :mod:`accum._gram_kernels`):
#: products of integers, so the Gram is a sum of exact integers and merges exactly.
GRAM_SCALE = float(1 << 16)
#: Multiplier of the Gram's multiply-shift hash of a feature id (see :func:`gram_bucket`).
GRAM_MIX = np.uint64(0x9E3779B97F4A7C15)
#: Fields of the per-order growth statistics (last axis of ``cat_stats``/``all_stats``).
DISTINCT, SINGLETONS, DOUBLETONS, AT_LEAST_K = 0, 1, 2, 3
#: Page counts at which growth is logged: 1..10, then about 20 points a decade.
CHECKPOINT_GROWTH = 1.12


@njit(**NJIT_OPTIONS)
def gram_bucket(fid, bits):
    """Bucket and sign (+1 or -1) of a feature id among ``2 ** bits`` Gram buckets: the
    top ``bits`` bits of ``fid * GRAM_MIX mod 2**64``, and the next bit for the sign."""
    h = fid * GRAM_MIX
    bucket = np.int64(h >> np.uint64(64 - bits))
    sign = -1 if (h >> np.uint64(63 - bits)) & ONE else 1
    return bucket, sign


@njit(**NJIT_OPTIONS)
def gram_buckets(fids, bits):
    """:func:`gram_bucket` of each feature id: int64[n] buckets and int64[n] signs."""
    buckets = np.empty(fids.shape[0], np.int64)
    signs = np.empty(fids.shape[0], np.int64)
    for i in range(fids.shape[0]):
        buckets[i], signs[i] = gram_bucket(fids[i], bits)
    return buckets, signs


@njit(**NJIT_OPTIONS)
def is_checkpoint(n):
    """True when ``n`` pages is a growth-log checkpoint (log-spaced, see module notes)."""
    s = 1
    while s < n:
        s = max(s + 1, int(s * CHECKPOINT_GROWTH))
    return s == n


@njit(**NJIT_OPTIONS)
def _count_transition(stats, k, before, prune_k):
    """Update growth statistics ``stats[k]`` for a count going from ``before`` to ``before + 1``."""
    if before == 0:
        stats[k, DISTINCT] += 1
        stats[k, SINGLETONS] += 1
    elif before == 1:
        stats[k, SINGLETONS] -= 1
        stats[k, DOUBLETONS] += 1
    elif before == 2:
        stats[k, DOUBLETONS] -= 1
    if before + 1 == prune_k:
        stats[k, AT_LEAST_K] += 1


@njit(**NJIT_OPTIONS)
def _log_growth(events, n_events, cat, pages, tokens, stats):
    """Append a growth-log row: category (-1 overall), pages, tokens, then stats per order."""
    events[n_events, 0] = cat
    events[n_events, 1] = pages
    events[n_events, 2] = tokens
    for k in range(stats.shape[0]):
        for f in range(4):
            events[n_events, 3 + 4 * k + f] = stats[k, f]
    return n_events + 1


#: How many tokens ahead the counting loop prefetches pair-table slots (random reads into
#: a table larger than the cache: prefetched, their misses overlap).
COUNT_AHEAD = 8
#: How many tokens ahead it prefetches the pairs those slots point to (their slots have
#: been loaded by then; the pair is a second random read, which confirms the match).
PAIR_AHEAD = 4
#: How many tokens ahead it prefetches the row totals of those pairs' rows.
ROW_AHEAD = 2
#: Term frequencies below this take ``log(1 + tf)`` from a table instead of computing it.
LOG1P_SMALL = 256


@njit(**NJIT_OPTIONS)
def _log_tf(tf, log1p_small):
    """``log(1 + tf)`` of a count in a page (small counts from the table ``log1p_small``)."""
    return log1p_small[tf] if tf < LOG1P_SMALL else np.log1p(np.int64(tf))


@njit(**NJIT_OPTIONS)
def _scaled(log_tf, norm, scale):
    """A feature's share ``log_tf / norm`` of its page's weight, in fixed point ``scale``
    (the accumulator adds these integers, so a page added and taken back cancels exactly)."""
    return np.int64(np.round(log_tf / norm * scale))


@njit(**NJIT_OPTIONS)
def accumulate(grams, ids, tok_bounds, doc_cats, first_doc, slots, row_info, row_total,
               pair_table, pairs, n_rows, n_pairs, new_unigram_tok, doc_counts, token_counts,
               cat_stats, all_stats, prune_k, events, touched, touched_unigram, track, cross_keys, cross_at,
               gram_bits, h_bucket, h_value, h_pages, touched_fid, vec_fid, vec_tf, vec_pages):
    """Count the n-grams of documents into their categories and log feature growth.

    Processes documents from ``first_doc`` on and stops before a document that could
    overfill the rows or the pairs, or push either table past half full; the caller grows
    them and calls again from the returned document.

    Parameters
    ----------
    grams : uint64[n_tokens, max_order]
        From :func:`ngram_ids`.
    ids, tok_bounds : as returned by :func:`tokenize`.
    doc_cats : int64[n_docs]
        Category column of each document.
    first_doc : int
        First document to process.
    slots : uint32[cap]
        The feature table (see module notes); updated in place.
    row_info : uint64[rows_cap, 4]
        Per row: feature id, prefix id (0 for unigrams), last token id, order.
    row_total : int64[rows_cap]
        Count of each row over all categories.
    pair_table : uint64[pair_cap]
        The pair table (see module notes); updated in place.
    pairs : int64[pairs_cap, 4]
        One row per (row, category) pair counted, columns ``P_KEY`` (row and category),
        ``P_COUNT``, ``P_WEIGHT`` and ``P_ID_TF`` (see there); the weight is the sum over
        documents of ``log(1 + tf) / ||log(1 + tf)||_2`` (Rennie et al.'s TF transform and
        length normalisation) in fixed point (``WEIGHT_SCALE``) so that sums, and merges,
        stay exact. Updated in place; the low half of ``P_ID_TF`` is zero between calls.
    n_rows, n_pairs : int
        Rows and pairs in use on entry.
    new_unigram_tok : int64[n_tokens]
        Receives the token index of each unigram seen for the first time (for the lexicon).
    doc_counts, token_counts : int64[cats_cap]
        Pages and tokens per category, updated in place.
    cat_stats : int64[cats_cap, max_order, 4]
        Per category and order: distinct features, singletons, doubletons, features
        counted at least ``prune_k`` times; ``all_stats`` (int64[max_order, 4]) the same
        over all categories (row totals).
    prune_k : int
        Threshold of the AT_LEAST_K statistic.
    events : int64[2 * n_docs, 3 + 4 * max_order]
        Receives a growth-log row (see :func:`_log_growth`) whenever a category's pages,
        or all pages, reach a checkpoint (:func:`is_checkpoint`).
    touched : int64[max features of a document]
        Scratch: the pairs of the current document.
    touched_unigram : uint64[as ``touched``]
        Scratch: the feature id of each of them that is a unigram, else 0 (so that the
        Gram's pass needs no random read of the rows).
    track : bool
        Keep the growth statistics and log (False only to measure what they cost).
    cross_keys : uint64[n_tokens * max_order * 2] or uint64[0]
        When not empty (and ``track``), receives a crossing whenever a count below
        ``prune_k`` grows: the feature id here, and in ``cross_at`` (int64[same, 2]) the
        category and its page count including the current page (category -1 and the
        overall page count for row totals). Crossings let growth logs of pages counted
        elsewhere be replayed in order (see :func:`replay_crossings`).
    gram_bits : int
        When > 0, each page's hashed unigram vector for the Gram is written out (the
        caller adds it with :func:`accum._gram_kernels.gram_add_pages`): each unigram has
        ``sign * round(GRAM_SCALE * log(1 + tf) / ||log(1 + tf)||_2)`` in its bucket
        (:func:`gram_bucket` of ``2 ** gram_bits``; the norm over all the page's features,
        as the weights), in ``h_bucket`` (uint16) and ``h_value`` (int32[n_tokens]), page by page:
        the k-th page processed by this call holds entries ``h_pages[k]`` to
        ``h_pages[k + 1]`` (int64[n_docs + 1], ``h_pages[0]`` = 0).
    touched_fid : uint64[as ``touched``]
        Scratch: the feature id of each touched pair.
    vec_fid, vec_tf, vec_pages : uint64[n_tokens * max_order], uint32[same], int64[n_docs + 1]
        When ``vec_fid`` is not empty, each page's vector is written out, page by page as
        the Gram's: its distinct features and their counts in the page, in the order they
        first occur (the order the page's norm sums them in, so that a page's weights can
        be recomputed exactly; see :mod:`accum.vectors`). ``vec_pages[0]`` is the entries
        already written (the caller's offset); page k of this call ends at
        ``vec_pages[k + 1]``.

    Returns
    -------
    next_doc : int
        First document not processed (``n_docs`` when all are done).
    n_rows, n_pairs : int
        Rows and pairs in use on exit.
    n_new_unigrams : int
        Entries written to ``new_unigram_tok``.
    n_events : int
        Rows written to ``events``.
    n_cross : int
        Entries written to ``cross_keys`` and ``cross_at``.
    n_gram_pages : int
        Pages written to ``h_pages``.
    n_vec_pages : int
        Pages written to ``vec_pages``.
    """
    n_docs = tok_bounds.shape[0] - 1
    max_order = grams.shape[1]
    rows_cap = min(row_info.shape[0], slots.shape[0] // 2)
    pairs_cap = min(pairs.shape[0], pair_table.shape[0] // 2)
    shift = pair_table_shift(pair_table)
    log_cross = track and cross_keys.shape[0] > 0
    n_gram_pages = 0
    n_vec_pages = 0
    keep_vectors = vec_fid.shape[0] > 0
    n_new = 0
    n_events = 0
    n_cross = 0
    all_docs = doc_counts.sum()
    log1p_small = np.log1p(np.arange(LOG1P_SMALL).astype(np.float64))
    touched_log = np.empty(touched.shape[0])  # log(1 + tf) of each touched pair
    for d in range(first_doc, n_docs):
        a = tok_bounds[d]
        b = tok_bounds[d + 1]
        worst = (b - a) * max_order
        if n_rows + worst > rows_cap or n_pairs + worst > pairs_cap:
            return d, n_rows, n_pairs, n_new, n_events, n_cross, n_gram_pages, n_vec_pages
        c = doc_cats[d]
        salt = category_salt(c)
        n_touched = 0
        for t in range(a, b):
            if t + COUNT_AHEAD < b:  # start loading the pair-table slots of a token ahead
                for k in range(max_order):
                    ahead = grams[t + COUNT_AHEAD, k]
                    if ahead == ZERO:
                        break
                    _prefetch(pair_table, (ahead ^ salt) >> shift)
            if t + PAIR_AHEAD < b:  # and the pairs of a nearer token, whose slots have arrived
                for k in range(max_order):
                    ahead = grams[t + PAIR_AHEAD, k]
                    if ahead == ZERO:
                        break
                    p = _pair_ahead(pair_table, shift, ahead ^ salt)
                    if p >= 0:
                        _prefetch(pairs, p)
                    elif p == NO_PAIR:  # the feature table will be read
                        _prefetch(slots, ahead & np.uint64(slots.shape[0] - 1))
            if t + ROW_AHEAD < b:  # and the row totals of a nearer one, whose pairs have arrived
                for k in range(max_order):
                    ahead = grams[t + ROW_AHEAD, k]
                    if ahead == ZERO:
                        break
                    p = _pair_ahead(pair_table, shift, ahead ^ salt)
                    if p >= 0:
                        _prefetch(row_total, pairs[p, P_KEY] >> 32)
            for k in range(max_order):
                fid = grams[t, k]
                if fid == ZERO:
                    break
                # The pair first: when it exists, so does the row, and the feature
                # table is not needed.
                h = fid ^ salt
                id_low = np.int64(fid & LOW32)
                ps, p = _pair_probe(pair_table, shift, pairs, h, id_low, c)
                if p >= 0:
                    r = pairs[p, P_KEY] >> 32
                else:
                    s = _find_slot(slots, row_info, fid)
                    if slots[s] == 0:
                        slots[s] = n_rows + 1
                        row_info[n_rows, 0] = fid
                        row_info[n_rows, 1] = grams[t - 1, k - 1] if k > 0 else ZERO
                        row_info[n_rows, 2] = ids[t]
                        row_info[n_rows, 3] = k + 1
                        if k == 0:
                            new_unigram_tok[n_new] = t
                            n_new += 1
                        n_rows += 1
                    r = np.int64(slots[s]) - 1
                    p = n_pairs
                    _pair_add(pair_table, pairs, p, ps, h, id_low, r, c)
                    n_pairs += 1
                before = pairs[p, P_COUNT]
                total = row_total[r]
                if track:
                    _count_transition(cat_stats[c], k, before, prune_k)
                    _count_transition(all_stats, k, total, prune_k)
                    if log_cross:
                        if before < prune_k:
                            cross_keys[n_cross] = fid
                            cross_at[n_cross, 0] = c
                            cross_at[n_cross, 1] = doc_counts[c] + 1
                            n_cross += 1
                        if total < prune_k:
                            cross_keys[n_cross] = fid
                            cross_at[n_cross, 0] = -1
                            cross_at[n_cross, 1] = all_docs + 1
                            n_cross += 1
                pairs[p, P_COUNT] = before + 1
                row_total[r] = total + 1
                id_tf = pairs[p, P_ID_TF]
                if id_tf & 0xFFFFFFFF == 0:  # a document has one category: one pair per row
                    touched[n_touched] = p
                    touched_unigram[n_touched] = fid if k == 0 else ZERO
                    touched_fid[n_touched] = fid
                    n_touched += 1
                pairs[p, P_ID_TF] = id_tf + 1
        norm = 0.0
        for i in range(n_touched):
            p = touched[i]
            tf = pairs[p, P_ID_TF] & 0xFFFFFFFF
            pairs[p, P_ID_TF] -= tf
            log_tf = _log_tf(tf, log1p_small)
            touched_log[i] = log_tf
            norm += log_tf**2
            if keep_vectors:
                v = vec_pages[n_vec_pages] + i
                vec_fid[v] = touched_fid[i]
                vec_tf[v] = tf
        norm = np.sqrt(norm)
        n_uni = h_pages[n_gram_pages]
        for i in range(n_touched):
            pairs[touched[i], P_WEIGHT] += _scaled(touched_log[i], norm, WEIGHT_SCALE)
            if gram_bits > 0 and touched_unigram[i] != ZERO:
                bucket, sign = gram_bucket(touched_unigram[i], gram_bits)
                h_bucket[n_uni] = bucket
                h_value[n_uni] = sign * _scaled(touched_log[i], norm, GRAM_SCALE)
                n_uni += 1
        if gram_bits > 0:
            n_gram_pages += 1
            h_pages[n_gram_pages] = n_uni
        if keep_vectors:
            vec_pages[n_vec_pages + 1] = vec_pages[n_vec_pages] + n_touched
            n_vec_pages += 1
        doc_counts[c] += 1
        token_counts[c] += b - a
        all_docs += 1
        if not track:
            continue
        if is_checkpoint(doc_counts[c]):
            n_events = _log_growth(events, n_events, c, doc_counts[c], token_counts[c], cat_stats[c])
        if is_checkpoint(all_docs):
            n_events = _log_growth(events, n_events, -1, all_docs, token_counts.sum(), all_stats)
    return n_docs, n_rows, n_pairs, n_new, n_events, n_cross, n_gram_pages, n_vec_pages


@njit(**NJIT_OPTIONS)
def subtract_pages(fids, tfs, bounds, cats, pair_table, pairs, row_info, row_total, gram_bits, h_bucket, h_value,
                   h_pages):
    """Take pages' counts and weights back out of the pairs: the exact inverse of what
    :func:`accumulate` added for them, from their vectors (see :mod:`accum.vectors`: the
    features in the order they first occur, which is the order the page's norm summed
    them in, so every weight is recomputed bit for bit).

    Page d holds ``fids``/``tfs`` entries ``bounds[d]`` to ``bounds[d + 1]`` and belongs
    to category ``cats[d]``. With ``gram_bits``, each page's hashed unigram vector is
    written as :func:`accumulate` writes it (``h_bucket``, ``h_value``, ``h_pages``),
    for the caller to take the pages' Gram out. Returns the pages taken out, or
    ``-1 - d`` when page d has a feature the accumulator never counted that often in its
    category (then nothing is taken out).
    """
    log1p_small = np.log1p(np.arange(LOG1P_SMALL).astype(np.float64))
    for d in range(bounds.shape[0] - 1):  # check every page before changing anything
        for i in range(bounds[d], bounds[d + 1]):
            p = pair_find(pair_table, pairs, fids[i], cats[d])
            if p < 0 or pairs[p, P_COUNT] < tfs[i]:
                return -1 - d
    n_uni = 0
    h_pages[0] = 0
    for d in range(bounds.shape[0] - 1):
        a, b = bounds[d], bounds[d + 1]
        c = cats[d]
        norm = 0.0
        for i in range(a, b):
            norm += _log_tf(tfs[i], log1p_small) ** 2
        norm = np.sqrt(norm)
        for i in range(a, b):
            log_tf = _log_tf(tfs[i], log1p_small)
            p = pair_find(pair_table, pairs, fids[i], c)
            r = pairs[p, P_KEY] >> 32
            pairs[p, P_COUNT] -= tfs[i]
            row_total[r] -= tfs[i]
            pairs[p, P_WEIGHT] -= _scaled(log_tf, norm, WEIGHT_SCALE)
            if gram_bits > 0 and row_info[r, 3] == 1:
                bucket, sign = gram_bucket(fids[i], gram_bits)
                h_bucket[n_uni] = bucket
                h_value[n_uni] = sign * _scaled(log_tf, norm, GRAM_SCALE)
                n_uni += 1
        h_pages[d + 1] = n_uni
    return bounds.shape[0] - 1


@njit(**NJIT_OPTIONS)
def count_stats(pairs, n_pairs, row_total, row_order, prune_k, cat_stats, all_stats):
    """Growth statistics of the pairs' counts into ``cat_stats`` (int64[n_cats,
    max_order, 4]) and of ``row_total`` (int64[n_rows]) into ``all_stats`` (both zeroed here)."""
    cat_stats[:] = 0
    all_stats[:] = 0
    for p in range(n_pairs):
        key = pairs[p, P_KEY]
        k = row_order[key >> 32] - 1
        for before in range(min(pairs[p, P_COUNT], prune_k)):
            _count_transition(cat_stats[key & 0xFFFFFFFF], k, before, prune_k)
    for r in range(row_total.shape[0]):
        k = row_order[r] - 1
        for before in range(min(row_total[r], prune_k)):
            _count_transition(all_stats, k, before, prune_k)


@njit(**NJIT_OPTIONS)
def replay_crossings(cross_keys, cross_cat, cross_bucket, slots, row_info, pair_table, pairs, row_order,
                     running_pair, running_all, prune_k, hist_cat, hist_all):
    """Replay crossings (see :func:`accumulate`) in stream order on top of earlier counts.

    Parameters
    ----------
    cross_keys, cross_cat : uint64[n], int64[n]
        Feature id and category (-1: row total) of each crossing, in the order the pages
        were counted.
    cross_bucket : int64[n]
        Index of the first growth-log checkpoint at or after the crossing's page.
    slots, row_info, pair_table, pairs, row_order : the merged feature table, rows, pair
        table, pairs, and the order of each row.
    running_pair, running_all : uint8[n_pairs], uint8[n_rows]
        Counts of each pair and row before the replayed pages, capped at ``prune_k``;
        updated in place.
    hist_cat, hist_all : int64[n_cats, max_order, 4, n_buckets], int64[max_order, 4, n_buckets]
        Incremented where a count reaches 1, 2, 3 (fields 0-2) and ``prune_k`` (field 3)
        in a bucket; their cumulative sums give the features counted at least that often.
    """
    for i in range(cross_keys.shape[0]):
        r = table_lookup(slots, row_info, cross_keys[i])
        c = cross_cat[i]
        if c >= 0:
            p = pair_find(pair_table, pairs, cross_keys[i], c)
            reached = np.int64(running_pair[p]) + 1
            if reached > prune_k:
                continue
            running_pair[p] = reached
        else:
            reached = np.int64(running_all[r]) + 1
            if reached > prune_k:
                continue
            running_all[r] = reached
        k = row_order[r] - 1
        b = cross_bucket[i]
        if reached <= 3:
            if c >= 0:
                hist_cat[c, k, reached - 1, b] += 1
            else:
                hist_all[k, reached - 1, b] += 1
        if reached == prune_k:
            if c >= 0:
                hist_cat[c, k, 3, b] += 1
            else:
                hist_all[k, 3, b] += 1


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


#: An empty :func:`linear_table`: nothing to prefetch.
NO_TABLE = np.zeros(0, np.uint64)


@njit(**NJIT_OPTIONS)
def _doc_features(grams, a, b, table, fids, tfs, first, n, model_table):
    """Write the distinct features of the document whose n-grams are ``grams[a:b]`` from
    index ``n`` on (see :func:`page_features`); returns the index after the last.
    ``table`` (int64) is scratch: at least twice the document's n-grams. Each new
    feature's slot in ``model_table`` (a :func:`linear_table`, when not empty) starts
    loading meanwhile."""
    model_mask = np.uint64(model_table.shape[0] // 2 - 1)
    cap = 2
    while cap < 2 * (b - a) * grams.shape[1]:
        cap *= 2
    table[:cap] = -1
    mask = np.uint64(cap - 1)
    for t in range(a, b):
        for k in range(grams.shape[1]):
            fid = grams[t, k]
            if fid == ZERO:
                break
            s = fid & mask
            while table[s] >= 0 and fids[table[s]] != fid:
                s = (s + ONE) & mask
            if table[s] < 0:
                if model_table.shape[0]:
                    _prefetch(model_table, 2 * (fid & model_mask))
                table[s] = n
                fids[n] = fid
                tfs[n] = 0
                first[n] = t * grams.shape[1] + k
                n += 1
            tfs[table[s]] += 1
    return n


@njit(**NJIT_OPTIONS)
def page_features(grams, tok_bounds):
    """The distinct features of each document, in order of first occurrence.

    Returns their ids (uint64[n]), occurrences in the document (int64[n]), where each
    first occurs (int64[n]: ``t * max_order + k`` for the n-gram of order k + 1 ending at
    token t, so a unigram's is a multiple of ``max_order``) and bounds (int64[n_docs + 1]:
    document d's features are ``a:b = bounds[d]:bounds[d + 1]``). A per-document open-addressing set of feature
    indices, twice the document's n-grams or more, finds repeats.
    """
    n_docs = tok_bounds.shape[0] - 1
    width = 1
    for d in range(n_docs):
        width = max(width, (tok_bounds[d + 1] - tok_bounds[d]) * grams.shape[1])
    table = np.empty(4 * width, np.int64)
    fids = np.empty(grams.size, np.uint64)
    tfs = np.empty(grams.size, np.int64)
    first = np.empty(grams.size, np.int64)
    bounds = np.empty(n_docs + 1, np.int64)
    n = 0
    for d in range(n_docs):
        bounds[d] = n
        n = _doc_features(grams, tok_bounds[d], tok_bounds[d + 1], table, fids, tfs, first, n, NO_TABLE)
    bounds[n_docs] = n
    return fids[:n], tfs[:n], first[:n], bounds


#: Load factor of a :func:`linear_table` at most: most test features are unseen, and a
#: miss probes on to an empty slot, which stays within a cache line or two at this load.
LINEAR_LOAD = 0.6
#: Header of a dense row among a :func:`linear_table`'s entries.
DENSE = -1.0


@njit(**NJIT_OPTIONS)
def linear_table(pairs, n_pairs, row_keys, n_cats, pair_delta, row_default, cap):
    """A linear model's weights, laid out for scoring (see :func:`score_texts`).

    A feature (row r) weighs ``category_term[c] + row_default[r] + delta`` in category c,
    where ``delta`` is the pair's ``pair_delta`` if (r, c) was counted, else 0.

    Returns ``table`` (uint64[2 * cap]: open addressing, slot s holds a feature id at
    ``2s`` (0 = empty) and where its entries start at ``2s + 1``) and ``entries``
    (float64): per row, in row order, a header (the number of its pairs, its
    ``row_default``), then its pairs as (category, ``pair_delta``); a row counted in a
    quarter of the categories or more is dense instead: header (``DENSE``,
    ``row_default``), then ``n_cats`` deltas. Most rows have one pair (sparse: 32 bytes)
    while the frequent features most pages contain are dense (their sums vectorise).
    """
    n_rows = row_keys.shape[0]
    start = np.zeros(n_rows, np.int64)  # pairs per row, then where each row's entries start
    for p in range(n_pairs):
        start[pairs[p, P_KEY] >> 32] += 1
    size = 0
    for r in range(n_rows):
        n_of = start[r]
        start[r] = size
        size += 2 + (n_cats if 4 * n_of >= n_cats else 2 * n_of)
    entries = np.empty(size, np.float64)
    for r in range(n_rows):  # headers; a sparse row's count grows as its pairs are placed
        e = start[r]
        end = start[r + 1] if r + 1 < n_rows else size
        entries[e + 1] = row_default[r]
        if end - e - 2 == n_cats:  # dense (a sparse row that long would be dense: 4 * pairs >= n_cats)
            entries[e] = DENSE
            entries[e + 2 : end] = 0.0
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
    return key_table(row_keys, start, cap), entries


@njit(**NJIT_OPTIONS)
def complement_parts(pairs, n_pairs, n_rows, n_cats, alpha):
    """Complement naive Bayes' weights ``-log((W[w] - W[w, c] + alpha) / sum_v (W[v] -
    W[v, c] + alpha))`` over the pairs' document weights W, as the three parts a
    :func:`linear_table` takes: per category the normaliser, per row ``-log(W[w] +
    alpha)`` and per pair what its own category's weight takes away from that."""
    row_total = np.zeros(n_rows)  # fixed-point integers summed in float64: exact below 2**53
    cat_total = np.zeros(n_cats)
    for p in range(n_pairs):
        key = pairs[p, P_KEY]
        w = np.float64(pairs[p, P_WEIGHT])
        row_total[key >> 32] += w
        cat_total[key & 0xFFFFFFFF] += w
    category_term = np.log((cat_total.sum() - cat_total) / WEIGHT_SCALE + alpha * n_rows)
    row_default = -np.log(row_total / WEIGHT_SCALE + alpha)
    pair_delta = np.empty(n_pairs)
    for p in range(n_pairs):
        r = pairs[p, P_KEY] >> 32
        pair_delta[p] = -np.log((row_total[r] - pairs[p, P_WEIGHT]) / WEIGHT_SCALE + alpha) - row_default[r]
    return category_term, row_default, pair_delta


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
    """Where the entries of feature ``fid`` start in a :func:`linear_table`, or -1."""
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
    :func:`linear_table` holds adds ``x`` times its weights, ``x`` = 1 with ``binary``
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
    """The distinct features of the page ``buf[a:b]`` with where a :func:`linear_table`
    (or :func:`key_table`) holds them, into ``scratch`` (see :func:`_page_scratch`:
    ids in ``scratch[5]``, counts ``[6]``, first positions ``[7]``, table values ``[8]``,
    -1 where absent); returns how many."""
    ids, tok_starts, lengths, grams, seen = scratch[0], scratch[1], scratch[2], scratch[3], scratch[4]
    fids, tfs, first, starts = scratch[5], scratch[6], scratch[7], scratch[8]
    n_tokens = _tokenize_doc(buf, a, b, ids, tok_starts, lengths, 0)
    _doc_ngrams(ids, 0, n_tokens, grams)
    n = _doc_features(grams, 0, n_tokens, seen, fids, tfs, first, 0, table)
    _find_starts(fids, 0, n, table, starts, entries)
    return n


@njit(**NJIT_OPTIONS)
def key_table(keys, values, cap):
    """An open-addressing table of ``cap`` slots (a power of two, more than ``len(keys)``)
    mapping each distinct non-zero key (uint64) to its value (uint64): slot s holds the
    key at ``2s`` (0 = empty) and the value at ``2s + 1`` (read by :func:`linear_find`)."""
    table = np.zeros(2 * cap, np.uint64)
    mask = np.uint64(cap - 1)
    for r in range(keys.shape[0]):
        if r + AHEAD < keys.shape[0]:
            _prefetch(table, 2 * (keys[r + AHEAD] & mask))
        s = keys[r] & mask
        while table[2 * s] != ZERO:
            s = (s + ONE) & mask
        table[2 * s] = keys[r]
        table[2 * s + 1] = np.uint64(values[r])
    return table


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

@njit(**NJIT_OPTIONS)
def merge_rows(o_info, o_pairs, cat_map, slots, row_info, row_total, pair_table, pairs, n_rows, n_pairs):
    """Add another accumulator's rows and pairs into this one; ``cat_map`` maps its
    categories to ours.

    Rows new here are appended in the other's row order; pairs new here in the other's
    pair order. The caller reserves room for every incoming row and pair. Returns the
    rows and pairs in use.
    """
    shift = pair_table_shift(pair_table)
    row_map = np.empty(o_info.shape[0], np.int64)
    for r in range(o_info.shape[0]):
        key = o_info[r, 0]
        s = _find_slot(slots, row_info, key)
        if slots[s] == 0:
            slots[s] = n_rows + 1
            for j in range(4):
                row_info[n_rows, j] = o_info[r, j]
            n_rows += 1
        row_map[r] = np.int64(slots[s]) - 1
    for q in range(o_pairs.shape[0]):
        key = o_pairs[q, P_KEY]
        row = row_map[key >> 32]
        c = cat_map[key & 0xFFFFFFFF]
        fid = row_info[row, 0]
        h = fid ^ category_salt(c)
        id_low = np.int64(fid & LOW32)
        ps, p = _pair_probe(pair_table, shift, pairs, h, id_low, c)
        if p < 0:
            p = n_pairs
            _pair_add(pair_table, pairs, p, ps, h, id_low, row, c)
            n_pairs += 1
        pairs[p, P_COUNT] += o_pairs[q, P_COUNT]
        pairs[p, P_WEIGHT] += o_pairs[q, P_WEIGHT]
        row_total[row] += o_pairs[q, P_COUNT]
    return n_rows, n_pairs


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

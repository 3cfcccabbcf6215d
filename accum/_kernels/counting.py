"""Counting pages into the tables, taking them back out, merging, growth statistics.

Private (see :mod:`accum._kernels` for the conventions). :func:`accumulate` is the
ingest's inner loop: each count is two dependent random reads (the pair-table slot, then
the pair), so the loop prefetches both a few tokens ahead.
"""

import numpy as np
from numba import njit

from .._prefetch import prefetch as _prefetch
from .._primitives import ONE, ZERO
from ..config import NJIT_OPTIONS
from .tables import (LOW32, NO_PAIR, P_COUNT, P_ID_TF, P_KEY, P_WEIGHT, _find_slot, _pair_add, _pair_ahead,
                     _pair_probe, category_salt, pair_find, pair_table_shift, table_lookup)


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


@njit(inline="always", **NJIT_OPTIONS)
def _prefetch_pairs(grams, u, max_order, salt, pair_table, shift, pairs, slots, row_total, rows):
    """Start loading what counting token ``u`` will read after its pair-table slots: its
    pairs (or, for a feature the category lacks, its feature-table slot), or with
    ``rows`` the row totals those pairs point to. Inlined into the per-token loop."""
    for k in range(max_order):
        ahead = grams[u, k]
        if ahead == ZERO:
            break
        p = _pair_ahead(pair_table, shift, ahead ^ salt)
        if rows:
            if p >= 0:
                _prefetch(row_total, pairs[p, P_KEY] >> 32)
        elif p >= 0:
            _prefetch(pairs, p)
        elif p == NO_PAIR:  # the feature table will be read
            _prefetch(slots, ahead & np.uint64(slots.shape[0] - 1))


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
        ``prune_k`` grows: the feature's row here, and in ``cross_at`` (int64[same, 2]) the
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
        # The per-token counting stays in this loop: moved into a helper, even one numba
        # inlines, it counted measurably slower. The prefetch stages and the per-page
        # work are helpers (the stages inlined, timed the same as written out).
        for t in range(a, b):
            if t + COUNT_AHEAD < b:  # start loading the pair-table slots of a token ahead
                for k in range(max_order):
                    ahead = grams[t + COUNT_AHEAD, k]
                    if ahead == ZERO:
                        break
                    _prefetch(pair_table, (ahead ^ salt) >> shift)
            if t + PAIR_AHEAD < b:  # and the pairs of a nearer token, whose slots have arrived
                _prefetch_pairs(grams, t + PAIR_AHEAD, max_order, salt, pair_table, shift, pairs, slots, row_total,
                                False)
            if t + ROW_AHEAD < b:  # and the row totals of a nearer one, whose pairs have arrived
                _prefetch_pairs(grams, t + ROW_AHEAD, max_order, salt, pair_table, shift, pairs, slots, row_total,
                                True)
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
                            cross_keys[n_cross] = r
                            cross_at[n_cross, 0] = c
                            cross_at[n_cross, 1] = doc_counts[c] + 1
                            n_cross += 1
                        if total < prune_k:
                            cross_keys[n_cross] = r
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
        _close_page(pairs, touched, touched_unigram, touched_fid, touched_log, n_touched, log1p_small, gram_bits,
                    h_bucket, h_value, h_pages, n_gram_pages, vec_fid, vec_tf, vec_pages, n_vec_pages, keep_vectors)
        if gram_bits > 0:
            n_gram_pages += 1
        if keep_vectors:
            n_vec_pages += 1
        doc_counts[c] += 1
        token_counts[c] += b - a
        all_docs += 1
        if track:
            n_events = _log_page_growth(events, n_events, c, all_docs, doc_counts, token_counts, cat_stats, all_stats)
    return n_docs, n_rows, n_pairs, n_new, n_events, n_cross, n_gram_pages, n_vec_pages


@njit(**NJIT_OPTIONS)
def _close_page(pairs, touched, touched_unigram, touched_fid, touched_log, n_touched, log1p_small, gram_bits,
                h_bucket, h_value, h_pages, n_gram_pages, vec_fid, vec_tf, vec_pages, n_vec_pages, keep_vectors):
    """After a page's counts: clear its term frequencies, add its weights
    ``log(1 + tf) / ||log(1 + tf)||_2`` to its pairs (``touched[:n_touched]``), and write
    its hashed unigram vector for the Gram (as page ``n_gram_pages``, with ``gram_bits``)
    and its vector (as page ``n_vec_pages``, with ``keep_vectors``); see :func:`accumulate`."""
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
        h_pages[n_gram_pages + 1] = n_uni
    if keep_vectors:
        vec_pages[n_vec_pages + 1] = vec_pages[n_vec_pages] + n_touched


@njit(**NJIT_OPTIONS)
def _log_page_growth(events, n_events, c, all_docs, doc_counts, token_counts, cat_stats, all_stats):
    """Log a growth row for category c and one for all pages when a page just brought them
    to a checkpoint; returns the rows in ``events``."""
    if is_checkpoint(doc_counts[c]):
        n_events = _log_growth(events, n_events, c, doc_counts[c], token_counts[c], cat_stats[c])
    if is_checkpoint(all_docs):
        n_events = _log_growth(events, n_events, -1, all_docs, token_counts.sum(), all_stats)
    return n_events


@njit(**NJIT_OPTIONS)
def page_terms(fids, tfs, bounds, unigram, gram_bits, weights, h_bucket, h_value, h_pages):
    """What :func:`accumulate` added for pages, from their vectors (see
    :mod:`accum.vectors`: the features in the order they first occur, which is the order
    the page's norm summed them in, so every weight is recomputed bit for bit).

    Page d holds ``fids``/``tfs`` entries ``bounds[d]`` to ``bounds[d + 1]``. Writes each
    entry's fixed-point document weight to ``weights`` and, with ``gram_bits``, each page's
    hashed vector of its unigram entries (``unigram``) as :func:`accumulate` writes it
    (``h_bucket``, ``h_value``, ``h_pages``).
    """
    log1p_small = np.log1p(np.arange(LOG1P_SMALL).astype(np.float64))
    n_uni = 0
    h_pages[0] = 0
    for d in range(bounds.shape[0] - 1):
        a, b = bounds[d], bounds[d + 1]
        norm = 0.0
        for i in range(a, b):
            norm += _log_tf(tfs[i], log1p_small) ** 2
        norm = np.sqrt(norm)
        for i in range(a, b):
            log_tf = _log_tf(tfs[i], log1p_small)
            weights[i] = _scaled(log_tf, norm, WEIGHT_SCALE)
            if gram_bits > 0 and unigram[i]:
                bucket, sign = gram_bucket(fids[i], gram_bits)
                h_bucket[n_uni] = bucket
                h_value[n_uni] = sign * _scaled(log_tf, norm, GRAM_SCALE)
                n_uni += 1
        h_pages[d + 1] = n_uni


@njit(**NJIT_OPTIONS)
def subtract_pages(fids, tfs, weights, bounds, cats, pair_table, pairs, row_total):
    """Take pages' counts and weights (as :func:`page_terms` gives them) back out of the
    pairs: the exact inverse of what :func:`accumulate` added for them. Page d holds
    entries ``bounds[d]`` to ``bounds[d + 1]`` and belongs to category ``cats[d]``.
    Returns the pages taken out, or ``-1 - d`` when page d has a feature the accumulator
    never counted that often in its category (then nothing is taken out).
    """
    for d in range(bounds.shape[0] - 1):  # check every page before changing anything
        for i in range(bounds[d], bounds[d + 1]):
            p = pair_find(pair_table, pairs, fids[i], cats[d])
            if p < 0 or pairs[p, P_COUNT] < tfs[i]:
                return -1 - d
    for d in range(bounds.shape[0] - 1):
        for i in range(bounds[d], bounds[d + 1]):
            p = pair_find(pair_table, pairs, fids[i], cats[d])
            pairs[p, P_COUNT] -= tfs[i]
            row_total[pairs[p, P_KEY] >> 32] -= tfs[i]
            pairs[p, P_WEIGHT] -= weights[i]
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

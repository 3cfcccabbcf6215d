"""numba kernel of the exact merge of count runs (see :mod:`accum.runs`).

Each source (the store's snapshot, then the runs an ingest spilled, in the order it
counted them) lists its counts of (feature, category) keys, category -1 being the
feature's total over all categories, and, for a run, the *crossings* of its counts: the
pages at which each of its own counts below ``prune_k`` grew. Merged key by key, a
count's exact history is known: the base count, then each run's crossings in order,
then the run's count added. That gives, without holding any count in memory across keys,
the growth statistics of every page checkpoint that a single process counting every page
in order would have logged.
"""

import numpy as np
from numba import njit

from .config import NJIT_OPTIONS


@njit(**NJIT_OPTIONS)
def _transition(hist, src, cat, k, bucket, before, after, prune_k):
    """Counts going from ``before`` to ``after`` cross the thresholds 1, 2, 3 and
    ``prune_k`` (fields 0-3 of ``hist``): +1 where one is reached, -1 where one is left."""
    for field in range(4):
        t = field + 1 if field < 3 else prune_k
        if before < t <= after:
            hist[src, cat + 1, k, field, bucket] += 1
        elif after < t <= before:
            hist[src, cat + 1, k, field, bucket] -= 1


@njit(**NJIT_OPTIONS)
def merge_sources(p_off, p_fid, p_cat, p_count, p_weight, x_off, x_fid, x_cat, x_bucket, r_off, r_fid, r_prefix,
                  r_last, r_order, prune_k, out_fid, out_cat, out_count, out_weight, o_fid, o_prefix,
                  o_last, o_order, hist, occurrences, n_base, d_fid, d_cat, d_count, d_weight, d_row_fid,
                  d_prefix, d_last, d_order):
    """Add up the sources' counts key by key and replay their growth (a k-way merge:
    every source is sorted already).

    Source ``s`` holds entries ``p_off[s]`` to ``p_off[s + 1]`` of its counts, crossings
    (``x_*``) and rows (``r_*``), each concatenated in source order.

    Parameters
    ----------
    p_fid, p_cat, p_count, p_weight : uint64, int64 x 3
        Counts per (feature, category), sorted by feature id then category, -1 first:
        the feature's total over categories (weight 0).
    x_fid, x_cat, x_bucket : uint64, int64 x 2
        Crossings (a source's own count below ``prune_k`` growing by one), sorted by
        feature id, category and page; ``x_bucket`` is the first growth-log checkpoint
        at or after the crossing's page.
    r_fid, r_prefix, r_last, r_order : uint64 x 3, int64
        Each feature the source counted, sorted by id: its prefix, last token and order.
    out_fid, out_cat, out_count, out_weight
        Receive the merged non-zero counts per category (totals left out), in order.
    o_fid, o_prefix, o_last, o_order
        Receive the rows of the features with a merged count, in order, as the first
        source that has the feature holds them.
    hist : int64[n_sources, n_categories + 1, max_order, 4, n_buckets]
        Incremented (or decremented) where a count reaches (or leaves) 1, 2, 3 and
        ``prune_k``; index 0 of the category axis is the totals. A source's changes
        that are not crossings (a snapshot's counts, a run of pages taken back out, a
        run's count past ``prune_k``, which crosses nothing) go to its bucket 0: only
        their sum over the buckets is read (:meth:`accum.runs.Growth.log_rows`).
    occurrences : int64[n_categories, max_order]
        Incremented by the merged counts.
    n_base, d_fid, d_cat, d_count, d_weight, d_row_fid, d_prefix, d_last, d_order
        Receive the *delta* of the sources from ``n_base`` on: per (feature, category)
        what they change in the merged count and weight (negative where pages were taken
        out), where they change something, and the rows of the features changed. Added
        to the first ``n_base`` sources' counts, it gives the merged counts
        (``n_base`` = the number of sources: no delta).

    Returns ``(counts written, rows written, delta counts, delta rows)``, or
    ``(-1 - i, 0, 0, 0)`` when the merge of the key at ``p_*[i]`` leaves a negative
    count, or a zero count with a non-zero weight (pages taken out that were never
    counted).
    """
    n_src = p_off.shape[0] - 1
    ph = p_off[:n_src].copy()
    xh = x_off[:n_src].copy()
    rh = r_off[:n_src].copy()
    n_out = 0
    n_rows = 0
    n_delta = 0
    n_delta_rows = 0
    have_fid = False
    fid = np.uint64(0)
    k = 0
    row = -1
    emitted = False
    while True:
        best = -1
        for s in range(n_src):
            if ph[s] < p_off[s + 1]:
                i = ph[s]
                if best < 0 or p_fid[i] < p_fid[best] or (p_fid[i] == p_fid[best] and p_cat[i] < p_cat[best]):
                    best = i
        if best < 0:
            break
        if not have_fid or p_fid[best] != fid:
            fid = p_fid[best]
            have_fid = True
            emitted = False
            delta_emitted = False
            row = -1
            for s in range(n_src):  # the row, from the first source that has it
                while rh[s] < r_off[s + 1] and r_fid[rh[s]] < fid:
                    rh[s] += 1
                if row < 0 and rh[s] < r_off[s + 1] and r_fid[rh[s]] == fid:
                    row = rh[s]
            k = r_order[row] - 1 if row >= 0 else 0
        cat = p_cat[best]
        running = np.int64(0)
        weight = np.int64(0)
        base_count = np.int64(0)
        base_weight = np.int64(0)
        for s in range(n_src):
            i = ph[s]
            if i >= p_off[s + 1] or p_fid[i] != fid or p_cat[i] != cat:
                continue
            before = running
            x = xh[s]
            while x < x_off[s + 1] and (x_fid[x] < fid or (x_fid[x] == fid and x_cat[x] < cat)):
                x += 1
            while x < x_off[s + 1] and x_fid[x] == fid and x_cat[x] == cat:
                _transition(hist, s, cat, k, x_bucket[x], running, running + 1, prune_k)
                running += 1
                x += 1
            xh[s] = x
            _transition(hist, s, cat, k, 0, running, before + p_count[i], prune_k)
            running = before + p_count[i]
            weight += p_weight[i]
            if s < n_base:
                base_count, base_weight = running, weight
            ph[s] = i + 1
        if running < 0 or (running == 0 and weight != 0) or row < 0:
            return -1 - best, 0, 0, 0
        if cat >= 0 and (running != base_count or weight != base_weight):
            d_fid[n_delta], d_cat[n_delta] = fid, cat
            d_count[n_delta], d_weight[n_delta] = running - base_count, weight - base_weight
            n_delta += 1
            if not delta_emitted:
                d_row_fid[n_delta_rows], d_prefix[n_delta_rows], d_last[n_delta_rows], d_order[n_delta_rows] = (
                    fid, r_prefix[row], r_last[row], r_order[row])
                n_delta_rows += 1
                delta_emitted = True
        if cat >= 0 and running != 0:
            out_fid[n_out] = fid
            out_cat[n_out] = cat
            out_count[n_out] = running
            out_weight[n_out] = weight
            occurrences[cat, k] += running
            n_out += 1
            if not emitted:
                o_fid[n_rows], o_prefix[n_rows], o_last[n_rows], o_order[n_rows] = (
                    fid, r_prefix[row], r_last[row], r_order[row])
                n_rows += 1
                emitted = True
    return n_out, n_rows, n_delta, n_delta_rows


@njit(**NJIT_OPTIONS)
def sort_counts(row_info, row_total, pairs, rank, fid, cat, count, weight):
    """An accumulator's counts as a run: each row's total (category -1) and its pairs
    (``pairs``: the accumulator's, row in the high half of the key, category in the low
    half), sorted by feature id (the row's ``rank`` among the feature ids), then
    category, into ``fid``, ``cat``, ``count`` and ``weight`` (a counting sort: no
    comparison sort of the pairs, and nothing else allocated but the rows' offsets)."""
    n_rows = rank.shape[0]
    start = np.zeros(n_rows + 1, np.int64)
    for r in range(n_rows):
        start[rank[r] + 1] += 1
    for p in range(pairs.shape[0]):
        start[rank[pairs[p, 0] >> 32] + 1] += 1
    for j in range(n_rows):
        start[j + 1] += start[j]
    cursor = start[:n_rows].copy()
    for r in range(n_rows):
        i = cursor[rank[r]]
        fid[i], cat[i], count[i], weight[i] = row_info[r, 0], -1, row_total[r], 0
        cursor[rank[r]] += 1
    for p in range(pairs.shape[0]):
        r = pairs[p, 0] >> 32
        i = cursor[rank[r]]
        fid[i], cat[i], count[i], weight[i] = row_info[r, 0], pairs[p, 0] & 0xFFFFFFFF, pairs[p, 1], pairs[p, 2]
        cursor[rank[r]] += 1
    sort_segments(start, cat, count, weight)


@njit(**NJIT_OPTIONS)
def count_crossings(rows, rank, start):
    """Add the crossings of ``rows`` to ``start[rank + 1]`` of their rows."""
    for i in range(rows.shape[0]):
        start[rank[rows[i]] + 1] += 1


@njit(**NJIT_OPTIONS)
def place_crossings(rows, at, row_info, rank, cursor, fid, cat, pos):
    """Write crossings (``rows``; ``at``: category and page) at their rows' ``cursor``
    (advanced), keeping their order: pages stay in order within a row."""
    for i in range(rows.shape[0]):
        j = rank[rows[i]]
        k = cursor[j]
        fid[k], cat[k], pos[k] = row_info[rows[i], 0], at[i, 0], at[i, 1]
        cursor[j] = k + 1


@njit(**NJIT_OPTIONS)
def sort_segments(start, cat, a, b):
    """Sort each segment ``start[j]:start[j + 1]`` by ``cat``, stably, moving ``a`` and
    ``b`` along (segments are a feature's entries: a few per category)."""
    for j in range(start.shape[0] - 1):
        for i in range(start[j] + 1, start[j + 1]):
            c, x, y = cat[i], a[i], b[i]
            k = i - 1
            while k >= start[j] and cat[k] > c:
                cat[k + 1], a[k + 1], b[k + 1] = cat[k], a[k], b[k]
                k -= 1
            cat[k + 1], a[k + 1], b[k + 1] = c, x, y

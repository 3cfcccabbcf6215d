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
def merge_sources(p_fid, p_cat, p_src, p_count, p_weight, x_fid, x_cat, x_src, x_bucket, r_fid, r_order,
                  jump_bucket, prune_k, out_fid, out_cat, out_count, out_weight, hist, occurrences):
    """Add up the sources' counts key by key and replay their growth.

    Parameters
    ----------
    p_fid, p_cat, p_src, p_count, p_weight : uint64, int64 x 4 [n]
        Every source's counts of one shard, sorted by feature id, category (-1 first:
        the feature's total) and source; weights in fixed point (totals carry 0).
    x_fid, x_cat, x_src, x_bucket : uint64, int64 x 3 [m]
        Crossings (a source's own count below ``prune_k`` growing by one), sorted by
        feature id, category, source and page; ``x_bucket`` is the first growth-log
        checkpoint at or after the crossing's page.
    r_fid, r_order : uint64[q], int64[q]
        Each feature of the shard once, sorted, with its n-gram order.
    jump_bucket : int64[n_sources]
        Bucket of each source's count changes that are not crossings (a snapshot's
        counts, a run of pages taken back out).
    out_fid, out_cat, out_count, out_weight : [n]
        Receive the merged non-zero counts per category (totals left out), in order.
    hist : int64[n_sources, n_categories + 1, max_order, 4, n_buckets]
        Incremented (or decremented) where a count reaches (or leaves) 1, 2, 3 and
        ``prune_k``; index 0 of the category axis is the totals.
    occurrences : int64[n_categories, max_order]
        Incremented by the merged counts.

    Returns the merged counts written, or ``-1 - i`` when the merge of key ``p_*[i]``
    leaves a negative count, or a zero count with a non-zero weight (pages taken out
    that were never counted).
    """
    n = p_fid.shape[0]
    m = x_fid.shape[0]
    x = 0
    r = 0
    n_out = 0
    i = 0
    while i < n:
        fid = p_fid[i]
        cat = p_cat[i]
        while r < r_fid.shape[0] and r_fid[r] < fid:
            r += 1
        k = r_order[r] - 1
        while x < m and (x_fid[x] < fid or (x_fid[x] == fid and x_cat[x] < cat)):
            x += 1  # crossings of a key no source counts: none (every crossing's run counts it)
        running = np.int64(0)
        weight = np.int64(0)
        first = i
        while i < n and p_fid[i] == fid and p_cat[i] == cat:
            src = p_src[i]
            before = running
            while x < m and x_fid[x] == fid and x_cat[x] == cat and x_src[x] == src:
                _transition(hist, src, cat, k, x_bucket[x], running, running + 1, prune_k)
                running += 1
                x += 1
            _transition(hist, src, cat, k, jump_bucket[src], running, before + p_count[i], prune_k)
            running = before + p_count[i]
            weight += p_weight[i]
            i += 1
        if running < 0 or (running == 0 and weight != 0):
            return -1 - first
        if cat >= 0 and running != 0:
            out_fid[n_out] = fid
            out_cat[n_out] = cat
            out_count[n_out] = running
            out_weight[n_out] = weight
            occurrences[cat, k] += running
            n_out += 1
    return n_out

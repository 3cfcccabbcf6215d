"""numba kernel of the incidence profiles (private: :mod:`accum.profiles` calls it).

A page sequence is walked once per category (and once for all pages), counting for
each feature the pages that hold it (its incidence); the profile, how many features
are held by exactly 1, 2, ..., K pages and by more, is kept up to date as incidences
grow and copied at the page counts asked for.
"""

import numpy as np
from numba import njit

from .config import NJIT_OPTIONS


@njit(**NJIT_OPTIONS)
def incidence_profiles(bounds, cols, col_order, labels, sequence, cutoffs, n_orders, k):
    """Profiles of every category (and, last, of all pages) at the page counts ``cutoffs``.

    ``bounds`` (int64[n_pages + 1]) and ``cols`` (int32[nnz], a feature's column) are the
    pages' distinct features; ``col_order`` (int64[n_cols]) each column's n-gram order
    minus one; ``labels`` (int32[n_pages]) each page's category; ``sequence`` the pages
    in the order to walk them; ``cutoffs`` int64[n_categories + 1, n_cuts], ascending
    page counts of that category (the last row: of all pages) at which to copy the
    profile (a count that is never reached leaves zeros).

    Returns int64[n_categories + 1, n_cuts, n_orders, k + 1]: entry ``j < k`` counts the
    features held by exactly ``j + 1`` of the pages walked so far, entry ``k`` those held
    by more than ``k``.
    """
    n_groups, n_cuts = cutoffs.shape
    n_categories = n_groups - 1
    out = np.zeros((n_groups, n_cuts, n_orders, k + 1), np.int64)
    incidence = np.zeros(col_order.shape[0], np.int64)
    for group in range(n_groups):
        hist = np.zeros((n_orders, k + 1), np.int64)
        walked = 0
        cut = 0
        for page in sequence:
            if group < n_categories and labels[page] != group:
                continue
            for e in range(bounds[page], bounds[page + 1]):
                col = cols[e]
                before = incidence[col]
                incidence[col] = before + 1
                if before < k + 1:  # beyond k the feature stays in the last entry
                    order = col_order[col]
                    if before > 0:
                        hist[order, before - 1] -= 1
                    hist[order, before] += 1
            walked += 1
            while cut < n_cuts and cutoffs[group, cut] == walked:
                out[group, cut] = hist
                cut += 1
        for page in sequence:  # back to zero for the next group, touching only what was counted
            if group < n_categories and labels[page] != group:
                continue
            for e in range(bounds[page], bounds[page + 1]):
                incidence[cols[e]] = 0
    return out

"""numba kernels of the discriminative models trained over page vectors.

Private: :mod:`accum.linear` validates input and calls these. The pages are a CSR
matrix over *model columns* (``indptr`` int64, ``indices`` int32, per-entry values):
:func:`factorize` numbers the distinct feature ids of the pages, and the caller orders
the columns by document frequency, most frequent first, so that the weight rows most
pages touch sit together in cache.

Feature values are ``v[e] * s[j, c] / norm[i, c]`` for entry e of page i in column j and
problem c: ``v`` is per entry (1 for presence, ``log(1 + tf)``), ``s`` a per-column scale
(an inverse document frequency shared by every problem, or naive Bayes log-count ratios
per problem) and ``norm`` the page's L2 norm under that scale. Weights are kept
multiplied by the scale (``ws = w * s``) so that a page's score is ``bias + sum_e v[e] *
ws[j] / norm`` and its update ``ws[j] += delta * v[e] * s[j]² / norm``.
"""

import numpy as np
from numba import njit

from ._prefetch import prefetch, prefetch_row
from .config import NJIT_OPTIONS

#: Entries ahead whose weight rows :func:`train_ovr` starts loading: rows of rare
#: features are scattered over memory, and their misses then overlap.
AHEAD = 16

_EMPTY = np.uint64(0xFFFFFFFFFFFFFFFF)
_ONE = np.uint64(1)


def factorize(fids):
    """Number the distinct values of ``fids`` (uint64[n]) in order of first occurrence.

    Returns codes (int32[n]), the distinct values (uint64[m]) and how many entries hold
    each (int64[m]: for page vectors, the document frequency). The table grows with the
    distinct values (at most half full), not with the entries.
    """
    codes, uniques, df = factorize_parts([fids], len(fids))
    return codes, uniques.copy(), df.copy()


def factorize_parts(parts, n: int):
    """:func:`factorize` of the concatenation of ``parts`` (uint64 arrays, ``n`` values in
    all) without it: the parts are numbered one after the other, so that views of
    memory-mapped files serve and the values are never held whole. The distinct values
    and their counts are views of the grown table (copy them to keep them long)."""
    codes, table, at = np.empty(n, np.int32), new_table(), 0
    for fids in parts:
        table = factorize_into(fids, codes[at : at + len(fids)], table)
        at += len(fids)
    _, uniques, df, m = table
    return codes, uniques[:m], df[:m]


def new_table() -> tuple:
    """An empty table of :func:`factorize_into`: (slots, distinct values, their counts, how many)."""
    return np.full(1 << 16, -1, np.int32), np.empty(1 << 15, np.uint64), np.zeros(1 << 15, np.int64), 0


@njit(**NJIT_OPTIONS)
def factorize_into(fids, codes, table):
    """Number the values of ``fids`` (uint64[n]) into ``codes`` (int32[n]) with the numbers
    ``table`` (:func:`new_table`) gave earlier values, new ones in order of first
    occurrence; returns the table, grown as needed. A corpus's entries can so be
    numbered a part at a time (:func:`factorize` numbers one array)."""
    slot_code, uniques, df, m = table
    cap = slot_code.shape[0]
    mask = np.uint64(cap - 1)
    for i in range(fids.shape[0]):
        key = fids[i]
        s = (key ^ (key >> np.uint64(29))) & mask
        while slot_code[s] >= 0 and uniques[slot_code[s]] != key:
            s = (s + _ONE) & mask
        if slot_code[s] < 0:
            if m == uniques.shape[0]:  # room for twice as many distinct values
                grown = np.empty(2 * m, np.uint64)
                grown[:m] = uniques
                uniques = grown
                grown_df = np.zeros(2 * m, np.int64)
                grown_df[:m] = df
                df = grown_df
                cap *= 2
                mask = np.uint64(cap - 1)
                slot_code = np.full(cap, -1, np.int32)
                for code in range(m):
                    t = (uniques[code] ^ (uniques[code] >> np.uint64(29))) & mask
                    while slot_code[t] >= 0:
                        t = (t + _ONE) & mask
                    slot_code[t] = code
                s = (key ^ (key >> np.uint64(29))) & mask
                while slot_code[s] >= 0:
                    s = (s + _ONE) & mask
            slot_code[s] = m
            uniques[m] = key
            m += 1
        code = slot_code[s]
        codes[i] = code
        df[code] += 1
    return slot_code, uniques, df, m


@njit(**NJIT_OPTIONS)
def renumber(codes, new):
    """``codes[i] = new[codes[i]]`` in place (int32 each)."""
    for i in range(codes.shape[0]):
        codes[i] = new[codes[i]]


@njit(**NJIT_OPTIONS)
def class_counts(indptr, indices, rows, labels, n_cols, n_classes):
    """How many of the pages ``rows`` of each class hold each column, int32[n_cols, n_classes]
    (pages whose label is negative are left out)."""
    out = np.zeros((n_cols, n_classes), np.int32)
    for k in range(rows.shape[0]):
        i = rows[k]
        c = labels[i]
        if c < 0:
            continue
        for e in range(indptr[i], indptr[i + 1]):
            out[indices[e], c] += 1
    return out


@njit(**NJIT_OPTIONS)
def class_sums(indptr, indices, values, rows, row_weight, labels, n_rows, n_classes):
    """Per column and class, the sum of ``values[e] * row_weight[k]`` over the entries of
    the pages ``rows[k]`` of that class: float64[n_rows, n_classes] for the first
    ``n_rows`` columns, and float64[n_classes] summed over the others (pages whose label
    is negative are left out)."""
    out = np.zeros((n_rows, n_classes))
    beyond = np.zeros(n_classes)
    for k in range(rows.shape[0]):
        i = rows[k]
        c = labels[i]
        if c < 0:
            continue
        w = row_weight[k]
        for e in range(indptr[i], indptr[i + 1]):
            j = indices[e]
            if j < n_rows:
                out[j, c] += values[e] * w
            else:
                beyond[c] += values[e] * w
    return out, beyond


@njit(**NJIT_OPTIONS)
def complement_logs(weights, totals, cols, alpha, out):
    """Complement naive Bayes' ``log(W[j] - W[j, c] + alpha)`` (``W[j]``, ``totals[j]``,
    the column's sum over every class; ``weights`` float64[n_cols, n_classes] of some of
    the classes) of the columns ``cols``, less ``log(W[j] + alpha)`` (which shifts a
    page's scores alike, nothing a decision or a softmax sees, and keeps single-precision
    sums small), into ``out[j]`` (float32[n_cols, n_classes])."""
    n_classes = weights.shape[1]
    a = np.float32(alpha)
    for j in cols:
        shift = np.log(np.float32(totals[j]) + a)
        for c in range(n_classes):
            out[j, c] = np.log(np.float32(totals[j] - weights[j, c]) + a) - shift


@njit(**NJIT_OPTIONS)
def log_count_ratio(class_df, df, alpha, two):
    """Naive Bayes' log-count ratios ``r = log(p / |p|_1) - log(q / |q|_1)`` per column and
    problem, float32[n_cols, n_problems], with ``p`` and ``q`` the document frequencies of
    a class and of the other classes (``two`` classes: class 1 and class 0, one problem)
    plus ``alpha``, over the columns ``df > 0``; 0 in the others.

    ``class_df`` int32[n_cols, n_problems] (``two``: [n_cols, 2]), the document
    frequencies of the problems' classes (any subset of the classes: each problem's ratio
    needs only its own class and ``df``); ``df`` int64[n_cols], over every class.
    """
    n_cols = class_df.shape[0]
    n_prob = 1 if two else class_df.shape[1]
    p_sum = np.zeros(n_prob)
    q_sum = np.zeros(n_prob)
    held = 0
    for j in range(n_cols):
        if df[j] > 0:
            held += 1
            for c in range(n_prob):
                p = class_df[j, 1] if two else class_df[j, c]
                p_sum[c] += p
                q_sum[c] += class_df[j, 0] if two else df[j] - p
    norm = np.empty(n_prob)
    for c in range(n_prob):
        norm[c] = np.log(q_sum[c] + alpha * held) - np.log(p_sum[c] + alpha * held)
    out = np.zeros((n_cols, n_prob), np.float32)
    for j in range(n_cols):
        if df[j] > 0:
            for c in range(n_prob):
                p = class_df[j, 1] if two else class_df[j, c]
                q = class_df[j, 0] if two else df[j] - p
                out[j, c] = np.float32(np.log((p + alpha) / (q + alpha)) + norm[c])
    return out


@njit(**NJIT_OPTIONS)
def keep_columns(a, cols):
    """The columns ``cols`` (increasing) of the C-ordered ``a`` (2-d), moved to the front of
    its own buffer row by row: a view of it, shape ``(a.shape[0], len(cols))``. No new
    memory is touched (a copy of a large array costs its page faults); ``a`` is spent."""
    n, width = a.shape
    m = cols.shape[0]
    flat = a.reshape(-1)
    for i in range(n):
        for c in range(m):  # the destination never passes the source: i * m + c <= i * width + cols[c]
            flat[i * m + c] = flat[i * width + cols[c]]
    return flat[: n * m].reshape(n, m)


@njit(**NJIT_OPTIONS)
def inverse_norms(indptr, indices, values, scale, rows, out):
    """``out[k, c] = 1 / ||v * scale[:, c]||_2`` over page ``rows[k]``'s entries (1 for an
    empty page): ``scale`` float32[n_cols, n_s], ``out`` float32[len(rows), n_s]."""
    n_s = scale.shape[1]
    acc = np.zeros(n_s)
    for k in range(rows.shape[0]):
        i = rows[k]
        acc[:] = 0.0
        for e in range(indptr[i], indptr[i + 1]):
            j = indices[e]
            v = np.float64(values[e])
            for c in range(n_s):
                x = v * scale[j, c]
                acc[c] += x * x
        for c in range(n_s):
            out[k, c] = 1.0 / np.sqrt(acc[c]) if acc[c] > 0 else 1.0


@njit(**NJIT_OPTIONS)
def shared_rows(indptr, indices, values, rows, private):
    """The training pages ``rows`` as the solver reads them: their entries in columns
    held by two training pages or more (not ``private``), as a compact CSR (page k is
    ``rows[k]``; int64[n + 1], int32, float32)."""
    n = rows.shape[0]
    size = 0
    for k in range(n):
        for e in range(indptr[rows[k]], indptr[rows[k] + 1]):
            if not private[indices[e]]:
                size += 1
    out_ptr = np.zeros(n + 1, np.int64)
    out_idx = np.empty(size, np.int32)
    out_val = np.empty(size, np.float32)
    m = 0
    for k in range(n):
        i = rows[k]
        for e in range(indptr[i], indptr[i + 1]):
            j = indices[e]
            if not private[j]:
                out_idx[m] = j
                out_val[m] = values[e]
                m += 1
        out_ptr[k + 1] = m
    return out_ptr, out_idx, out_val


@njit(**NJIT_OPTIONS)
def dual_diagonal(indptr, indices, values, rows, private, inv_norm, scale):
    """Per training page (``rows``) and scale, the squared norm of its whole feature
    vector (``q``, the dual's diagonal) and of its part in the ``private`` columns
    (``own``), float64[n, n_s] each, for the scales ``scale`` (float32[n_cols, n_s]) and
    the pages' inverse norms ``inv_norm`` (float32[n, n_s])."""
    n = rows.shape[0]
    n_s = scale.shape[1]
    q = np.zeros((n, n_s))
    own = np.zeros((n, n_s))
    for k in range(n):
        i = rows[k]
        for e in range(indptr[i], indptr[i + 1]):
            j = indices[e]
            v2 = np.float64(values[e]) ** 2
            for c in range(n_s):
                s = scale[j, c]
                x2 = v2 * (s * s)
                q[k, c] += x2
                if private[j]:
                    own[k, c] += x2
        for c in range(n_s):
            n2 = np.float64(inv_norm[k, c]) ** 2
            q[k, c] *= n2
            own[k, c] *= n2
    return q, own


@njit(**NJIT_OPTIONS)
def train_ovr(indptr, indices, values, rows, private, targets, inv_norm, scale, q, own, C, ws, bias, alpha,
              max_epochs, eps, seed):
    """L2-regularised squared-hinge linear SVMs, one per problem, by dual coordinate
    descent (Hsieh, Chang, Lin, Keerthi & Sundararajan 2008, as LIBLINEAR's solver 1).

    The problems share the pages and are solved in lockstep: each page, in a seeded
    random order per epoch, is one coordinate step of every problem, so the page's
    weight rows are read once for all of them (a problem is a class, one-vs-rest, and
    each C of a path is another set of problems: the cost of a pass grows little with
    them). Scores and weight updates are summed in single precision (a page's score sums
    a few hundred terms), the dual variables and intercepts kept in double. The
    intercept is the weight of a constant feature 1, regularised like the others
    (LIBLINEAR's bias, scikit-learn's ``LinearSVC`` with ``intercept_scaling=1``).

    A column that only one training page holds is never read or written while solving:
    its weight is that page's dual variable times its value, so its part of the page's
    score is ``alpha * y * own``, and :func:`private_weights` writes its weights at the
    end. The solution is the same; most columns of a text corpus are such (rare n-grams),
    and they are the ones whose rows miss the cache.

    Parameters
    ----------
    indptr, indices, values : int64[m + 1], int32[nnz], float32[nnz]
        Pages' entries: the training pages' shared entries (:func:`shared_rows`), or the
        entries of every page, the private ones skipped while solving (no copy made).
    rows : int64[n]
        Each training page's row of ``indptr``.
    private : bool[n_cols] or bool[0]
        The columns to skip (none when empty: the entries are already the shared ones).
    targets : int8[n, n_problems]
        +1 or -1 per training page and problem.
    inv_norm : float32[n, n_s]
        Inverse norm of each training page under each scale.
    scale : float32[n_cols, n_s]
        The column scales: problem c uses scale ``c % n_s`` (one shared by every
        problem, or one per class with the problems in blocks of the classes, one block per C).
    q, own : float64[n, n_s]
        From :func:`dual_diagonal`.
    C : float64[n_problems]
        Cost of a margin violation, per problem.
    ws, bias, alpha : float32[n_cols, n_problems], float64[n_problems], float64[n, n_problems]
        Weights (times the scale), intercepts and dual variables, updated in place (zeros
        to start from scratch).
    max_epochs : int
        Passes over the pages at most.
    eps : float
        A problem stops (its weights no longer change) after an epoch whose projected
        gradients span less than this; the solver stops when every problem has.
    seed : int

    Returns
    -------
    int
        The epochs run.
    """
    n = rows.shape[0]
    n_prob = targets.shape[1]
    n_s = scale.shape[1]
    shared = n_s == 1
    skips = private.shape[0] > 0
    diag = 0.5 / C
    order = np.arange(n)
    flat = ws.reshape(-1)
    scales = scale.reshape(-1)
    np.random.seed(seed)
    dots = np.empty(n_prob, np.float32)
    step = np.empty(n_prob, np.float32)
    done = np.zeros(n_prob, np.bool_)  # a problem stops when it converges, whatever the others do
    epoch = 0
    while epoch < max_epochs and not done.all():
        epoch += 1
        np.random.shuffle(order)
        pg_max = np.full(n_prob, -np.inf)
        pg_min = np.full(n_prob, np.inf)
        for t in range(n):
            k = order[t]
            a, b = indptr[rows[k]], indptr[rows[k] + 1]
            if t + 1 < n:  # the first rows of the next page arrive while this one is worked
                nxt = rows[order[t + 1]]
                for e in range(indptr[nxt], min(indptr[nxt] + AHEAD, indptr[nxt + 1])):
                    prefetch(flat, indices[e] * n_prob)
                    if not shared:  # a per-class scale is read by the update too
                        prefetch(scales, indices[e] * n_s)
            dots[:] = 0.0
            for e in range(a, b):
                if e + AHEAD < b:
                    prefetch(flat, indices[e + AHEAD] * n_prob)
                    if not shared:
                        prefetch(scales, indices[e + AHEAD] * n_s)
                if skips and private[indices[e]]:
                    continue
                v = values[e]
                row = ws[indices[e]]
                for c in range(n_prob):
                    dots[c] += v * row[c]
            moved = False
            for c in range(n_prob):
                step[c] = 0.0
                if done[c]:
                    continue
                y = np.float64(targets[k, c])
                sc = c % n_s
                nrm = np.float64(inv_norm[k, sc])
                old = alpha[k, c]
                g = y * (np.float64(dots[c]) * nrm + bias[c]) - 1.0 + (diag[c] + own[k, sc]) * old
                pg = min(g, 0.0) if old == 0.0 else g
                pg_max[c] = max(pg_max[c], pg)
                pg_min[c] = min(pg_min[c], pg)
                if pg != 0.0:
                    new = max(old - g / (q[k, sc] + 1.0 + diag[c]), 0.0)
                    if new != old:
                        alpha[k, c] = new
                        delta = (new - old) * y
                        bias[c] += delta
                        step[c] = np.float32(delta * nrm)
                        moved = True
            if moved:
                for e in range(a, b):
                    j = indices[e]
                    if skips and private[j]:
                        continue
                    v = values[e]
                    row = ws[j]
                    if shared:
                        s = scale[j, 0]
                        sv = v * (s * s)
                        for c in range(n_prob):
                            row[c] += step[c] * sv
                    else:  # problem c has scale column c % n_s: blocks of n_s problems
                        for first in range(0, n_prob, n_s):
                            for sc in range(n_s):
                                s = scale[j, sc]
                                row[first + sc] += step[first + sc] * v * (s * s)
        for c in range(n_prob):
            if pg_max[c] - pg_min[c] <= eps:
                done[c] = True
    return epoch


@njit(**NJIT_OPTIONS)
def private_weights(indptr, indices, values, rows, private, targets, inv_norm, scale, alpha, ws, beyond):
    """Write the weights of the ``private`` columns (held by one training page each): the
    page's ``alpha * y * v * s² / norm`` (see :func:`train_ovr`). Those of columns past
    the rows of ``ws`` are not kept: their ``|ws / s|`` is added to ``beyond[0]`` and
    their number to ``beyond[1]`` (float64[2, n_problems], zeros in), for
    :func:`mean_abs_ratio`."""
    n_prob = targets.shape[1]
    n_s = scale.shape[1]
    kept = ws.shape[0]
    for k in range(rows.shape[0]):
        for e in range(indptr[rows[k]], indptr[rows[k] + 1]):
            j = indices[e]
            if private[j]:
                v = np.float64(values[e])
                for c in range(n_prob):
                    sc = c % n_s
                    s = scale[j, sc]
                    w = np.float32(alpha[k, c] * targets[k, c] * v * (s * s) * inv_norm[k, sc])
                    if j < kept:
                        ws[j, c] = w
                    elif s != 0:
                        beyond[0, c] += abs(np.float64(w) / s)
                        beyond[1, c] += 1


@njit(**NJIT_OPTIONS)
def score_rows(indptr, indices, values, rows, inv_norm, weights, bias, out):
    """``out[k, c] = bias[c] + inv_norm[k, c] * sum_e values[e] * weights[j, c]`` over
    page ``rows[k]``'s entries (``inv_norm`` float32[len(rows), 1 or n_problems]); the
    sums in single precision, as :func:`train_ovr` makes them, weight rows prefetched.
    Columns past the rows of ``weights`` weigh 0."""
    n_prob = weights.shape[1]
    kept = weights.shape[0]
    shared = inv_norm.shape[1] == 1
    acc = np.empty(n_prob, np.float32)
    for k in range(rows.shape[0]):
        i = rows[k]
        a, b = indptr[i], indptr[i + 1]
        acc[:] = 0.0
        for e in range(a, b):
            if e + AHEAD < b:
                prefetch_row(weights, np.int64(indices[e + AHEAD]))
            j = indices[e]
            if j < kept:
                v = values[e]
                row = weights[j]
                for c in range(n_prob):
                    acc[c] += v * row[c]
        for c in range(n_prob):
            out[k, c] = bias[c] + np.float64(acc[c]) * inv_norm[k, 0 if shared else c]


@njit(**NJIT_OPTIONS)
def mean_abs_ratio(ws, scale, beyond):
    """Per problem, the mean of ``|ws / scale|`` over the columns whose scale is not 0
    (``scale`` float32[n_cols, 1 or n_problems]): NBSVM's mean weight magnitude. The
    columns past the rows of ``ws`` are summed in ``beyond`` (see :func:`private_weights`)."""
    n_prob = ws.shape[1]
    shared = scale.shape[1] == 1
    total = beyond[0].copy()
    count = beyond[1].copy()
    for j in range(ws.shape[0]):
        for c in range(n_prob):
            s = scale[j, 0 if shared else c]
            if s != 0:
                total[c] += abs(np.float64(ws[j, c]) / s)
                count[c] += 1
    out = np.empty(n_prob, np.float32)
    for c in range(n_prob):
        out[c] = total[c] / max(count[c], 1.0)
    return out

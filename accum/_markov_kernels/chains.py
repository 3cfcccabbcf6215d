"""Generator kernels: compile counts into chains, and the smoothed back-off distribution.

Private (see :mod:`accum._markov_kernels` for the conventions). A chain is a
:class:`ChainArrays`; a query's smoother and its parameters are a :class:`Query`.

Every smoothed probability is the same back-off walk: from a context down to the empty
one, each level with a positive denominator ``den`` passes on the part of the mass its
own entries do not take (:func:`_context_mass`), and an entry's share at a level is
``mass * weight / den`` (:func:`_weight`); what is left at the end is spread uniformly
over the vocabulary and the unknown token. :func:`backoff_path` walks it once;
:func:`_prob` (one token), :func:`_fill_probs` (every token) and the greedy decoder read
the levels it found, each adding the levels' terms in the walk's order, so that all of
them give the same bits for the same token.
"""

from typing import NamedTuple

import numpy as np
from numba import njit

from .._prefetch import prefetch, prefetch_row
from ..config import NJIT_OPTIONS
from .counts import COUNT_BLOCK, table_lookup
from .tokens import BOS_ID, _lower_bound, ngram_id

DIRICHLET = 0
KNESER_NEY = 1
MLE = 2

#: Levels a back-off walk can visit: contexts of up to 31 tokens, ``BOS`` and the empty one.
MAX_LEVELS = 40


class ChainArrays(NamedTuple):
    """A compiled category column at one order (see :func:`build_chain`)."""

    ctx_start: np.ndarray  # int64[n_ctx + 1]: context c owns entries ctx_start[c]:ctx_start[c + 1]
    ctx_parent: np.ndarray  # int64[n_ctx]: its back-off context (-1 below the empty context)
    ctx_raw: np.ndarray  # int64[n_ctx]: sum of its entries' raw counts
    ctx_kn: np.ndarray  # int64[n_ctx]: sum of their Kneser-Ney counts
    e_tok: np.ndarray  # int64[n_entries]: dense token of each entry (sorted inside a context)
    e_next: np.ndarray  # int64[n_entries]: the context after emitting it
    cum_raw: np.ndarray  # int64[n_entries + 1]: prefix sums of raw counts
    cum_kn: np.ndarray  # float64[n_entries + 1]: prefix sums of discounted Kneser-Ney counts


class Query(NamedTuple):
    """The smoother of a query and its parameters."""

    method: np.int64  # DIRICHLET, KNESER_NEY or MLE (the plain table: no interpolation)
    alpha: np.float64  # Dirichlet concentration
    per_type: np.bool_  # concentration alpha * T(h) (else alpha)
    discount: np.float64  # Kneser-Ney discount (compiled into the chain's cum_kn)
    n_vocab: np.int64  # vocabulary size V: dense tokens 0..V-1, V the unknown token


# -- compiling -----------------------------------------------------------------------------


@njit(**NJIT_OPTIONS)
def _by_order(order, max_order):
    """Indices sorted by ``order`` (int, 0 to ``max_order``), stably: a counting sort."""
    n_per = np.zeros(max_order + 2, np.int64)
    for i in range(order.shape[0]):
        n_per[order[i] + 1] += 1
    for k in range(1, max_order + 2):
        n_per[k] += n_per[k - 1]
    by_order = np.empty(order.shape[0], np.int64)
    for i in range(order.shape[0]):
        by_order[n_per[order[i]]] = i
        n_per[order[i]] += 1
    return by_order


@njit(**NJIT_OPTIONS)
def derive_rows(row_key, row_prefix, row_last, row_order, table, max_order):
    """Prefix row, suffix row and "starts with BOS" of every row.

    Returns
    -------
    prefix_row : int64[n_rows]
        Row of the context (-1: the empty context, -2: ``BOS``, -3: an opener row).
    suffix_row : int64[n_rows]
        Row of the n-gram without its first token (-1: the empty n-gram or an opener).
    bos_initial : bool[n_rows]
        The n-gram starts with ``BOS`` (so it has no left extension).
    bad : int
        Rows whose prefix or suffix is missing (0 for a consistent model).

    Rows go by order, in blocks of ``COUNT_BLOCK`` rows of one order, each read of the
    table or of a row fetched a pass before it is needed (KJV at order 8, 4.6 M rows:
    0.53 -> 0.28 s against one row at a time).
    """
    n = row_key.shape[0]
    prefix_row = np.full(n, -1, np.int64)
    suffix_row = np.full(n, -1, np.int64)
    bos_initial = np.zeros(n, np.bool_)
    mask = np.uint64(table.shape[0] - 1)
    sp = np.empty(COUNT_BLOCK, np.int64)  # per row of a block: its prefix's suffix row
    keys = np.empty(COUNT_BLOCK, np.uint64)  # and its own suffix's key
    by_order = _by_order(row_order, max_order)  # so a prefix is done before its extensions
    bad = 0
    a = 0
    while a < n:
        # a block of rows of one order: independent of each other, their prefixes and
        # suffixes (of lower orders) done; each random read is fetched a pass ahead
        k = row_order[by_order[a]]
        b = a + 1
        while b < n and b - a < COUNT_BLOCK and row_order[by_order[b]] == k:
            b += 1
        if k == 0:
            for i in range(a, b):
                prefix_row[by_order[i]] = -3
        elif k >= 2:
            for i in range(a, b):
                r = by_order[i]
                prefetch_row(table, np.int64(row_prefix[r] & mask))
                if k == 2:
                    prefetch_row(table, np.int64(row_last[r] & mask))
            for i in range(a, b):
                r = by_order[i]
                p = row_prefix[r]
                if k == 2:
                    suffix_row[r] = table_lookup(table, row_last[r])
                    if p == BOS_ID:
                        prefix_row[r] = -2
                        bos_initial[r] = True
                    else:
                        prefix_row[r] = table_lookup(table, p)
                else:
                    prefix_row[r] = table_lookup(table, p)
                    if prefix_row[r] >= 0:
                        prefetch(suffix_row, prefix_row[r])
            if k >= 3:
                for i in range(a, b):
                    r = by_order[i]
                    pr = prefix_row[r]
                    sp[i - a] = -1
                    if pr >= 0:
                        bos_initial[r] = bos_initial[pr]
                        sp[i - a] = suffix_row[pr]
                        if sp[i - a] >= 0:
                            prefetch(row_key, sp[i - a])
                for i in range(a, b):
                    if sp[i - a] >= 0:
                        keys[i - a] = ngram_id(row_key[sp[i - a]], row_last[by_order[i]], k - 1)
                        prefetch_row(table, np.int64(keys[i - a] & mask))
                for i in range(a, b):
                    if sp[i - a] >= 0:
                        suffix_row[by_order[i]] = table_lookup(table, keys[i - a])
            for i in range(a, b):
                r = by_order[i]
                if prefix_row[r] == -1 or suffix_row[r] < 0:
                    bad += 1
        a = b
    return prefix_row, suffix_row, bos_initial, bad


@njit(**NJIT_OPTIONS)
def build_chain(row_order, row_last_dense, prefix_row, suffix_row, bos_initial, col_count,
                order, discount, n_vocab, eos_dense):
    """Compile one category column's counts at one order into a chain (module notes).

    Parameters
    ----------
    row_order : int8[n_rows]
    row_last_dense : int64[n_rows]
        Dense vocabulary index of each row's last token.
    prefix_row, suffix_row, bos_initial : from :func:`derive_rows`.
    col_count : int64[n_rows]
        The column's count of each row.
    order : int
        Model order (contexts of length 0..order-1).
    discount : float
        Kneser-Ney discount D.
    n_vocab : int
        Vocabulary size (dense indices 0..n_vocab-1).
    eos_dense : int
        Dense index of ``EOS`` (-1 when absent).

    Returns
    -------
    chain : ChainArrays
        ``ctx_kn`` sums the Kneser-Ney counts: continuation counts below the top order.
    ctx_order : int64[n_ctx]
    bos_ctx : int
        Context index of ``BOS`` (the empty context's 0 when the order is 1).
    """
    n = row_order.shape[0]
    # Kneser-Ney counts: distinct left extensions below the top order
    adj = np.zeros(n, np.int64)
    n_sel = 0
    for r in range(n):
        k = row_order[r]
        if k >= 1 and k <= order and col_count[r] > 0:
            n_sel += 1
            if k >= 2:
                adj[suffix_row[r]] += 1
    # contexts, numbered in order of first appearance; key = prefix row + 2
    ctx_of = np.full(n + 2, -1, np.int64)
    ctx_key = np.empty(n_sel + 2, np.int64)
    ctx_of[1] = 0  # the empty context (prefix row -1)
    ctx_key[0] = -1
    n_ctx = 1
    if order > 1:
        ctx_of[0] = 1  # BOS (prefix row -2)
        ctx_key[1] = -2
        n_ctx = 2
    ent_ctx = np.empty(n_sel, np.int64)
    ent_row = np.empty(n_sel, np.int64)
    i = 0
    for r in range(n):
        k = row_order[r]
        if k >= 1 and k <= order and col_count[r] > 0:
            p = prefix_row[r] + 2
            if ctx_of[p] < 0:
                ctx_of[p] = n_ctx
                ctx_key[n_ctx] = prefix_row[r]
                n_ctx += 1
            ent_ctx[i] = ctx_of[p]
            ent_row[i] = r
            i += 1
    # sort entries by (context, dense token): counting sort by token, then by context
    cnt = np.zeros(n_vocab + 1, np.int64)
    for i in range(n_sel):
        cnt[row_last_dense[ent_row[i]] + 1] += 1
    for v in range(1, n_vocab + 1):
        cnt[v] += cnt[v - 1]
    by_tok = np.empty(n_sel, np.int64)
    for i in range(n_sel):
        v = row_last_dense[ent_row[i]]
        by_tok[cnt[v]] = i
        cnt[v] += 1
    ctx_start = np.zeros(n_ctx + 1, np.int64)
    for i in range(n_sel):
        ctx_start[ent_ctx[i] + 1] += 1
    for c in range(1, n_ctx + 1):
        ctx_start[c] += ctx_start[c - 1]
    fill = ctx_start[:n_ctx].copy()
    entry_row = np.empty(n_sel, np.int64)
    for j in range(n_sel):
        i = by_tok[j]
        c = ent_ctx[i]
        entry_row[fill[c]] = ent_row[i]
        fill[c] += 1
    # entries
    e_tok = np.empty(n_sel, np.int64)
    e_next = np.empty(n_sel, np.int64)
    cum_raw = np.zeros(n_sel + 1, np.int64)
    cum_kn = np.zeros(n_sel + 1, np.float64)
    bos_ctx = 1 if order > 1 else 0
    ctx_raw = np.zeros(n_ctx, np.int64)
    ctx_kn = np.zeros(n_ctx, np.int64)
    ctx_order = np.zeros(n_ctx, np.int64)
    ctx_parent = np.full(n_ctx, -1, np.int64)
    for c in range(n_ctx):
        for e in range(ctx_start[c], ctx_start[c + 1]):
            r = entry_row[e]
            k = row_order[r]
            raw = col_count[r]
            x = raw if (k == order or bos_initial[r]) else adj[r]
            e_tok[e] = row_last_dense[r]
            cum_raw[e + 1] = cum_raw[e] + raw
            cum_kn[e + 1] = cum_kn[e] + max(x - discount, 0.0)
            ctx_raw[c] += raw
            ctx_kn[c] += x
            ctx_order[c] = k - 1
            if e_tok[e] == eos_dense:
                e_next[e] = bos_ctx
                continue
            cand = r if k <= order - 1 else suffix_row[r]
            while cand >= 0 and ctx_of[cand + 2] < 0:
                cand = suffix_row[cand]
            e_next[e] = ctx_of[cand + 2] if cand >= 0 else 0
        key = ctx_key[c]
        if key == -1:
            ctx_parent[c] = -1
        elif key == -2:
            ctx_parent[c] = 0
        elif row_order[key] == 1:
            ctx_parent[c] = 0
        else:
            ctx_parent[c] = ctx_of[suffix_row[key] + 2]
    return (ChainArrays(ctx_start, ctx_parent, ctx_raw, ctx_kn, e_tok, e_next, cum_raw, cum_kn),
            ctx_order, bos_ctx)


@njit(**NJIT_OPTIONS)
def rank_entries(ctx_start, cum):
    """Every context's entries by decreasing weight (``cum`` prefix sums), ties by token.

    Entries are sorted by token within a context, so a stable sort by weight keeps ties
    in token order. Returns int64[n_entries] of entry indices.
    """
    out = np.arange(cum.shape[0] - 1)
    for c in range(ctx_start.shape[0] - 1):
        lo = ctx_start[c]
        hi = ctx_start[c + 1]
        if hi - lo > 1:
            neg = np.empty(hi - lo, np.float64)
            for e in range(lo, hi):
                neg[e - lo] = -(np.float64(cum[e + 1]) - np.float64(cum[e]))
            order = np.argsort(neg, kind="mergesort")
            for i in range(hi - lo):
                out[lo + i] = lo + order[i]
    return out


# -- the back-off walk ---------------------------------------------------------------------


@njit(inline="always", **NJIT_OPTIONS)
def _context_mass(ch, q, c):
    """Denominator of context ``c``'s smoothed probabilities and the part of it its own
    entries carry; the rest backs off to the parent context."""
    lo = ch.ctx_start[c]
    hi = ch.ctx_start[c + 1]
    if q.method == KNESER_NEY:
        return np.float64(ch.ctx_kn[c]), ch.cum_kn[hi] - ch.cum_kn[lo]
    den = np.float64(ch.ctx_raw[c])
    if q.method == DIRICHLET:
        den += q.alpha * (hi - lo) if q.per_type else q.alpha
    return den, np.float64(ch.ctx_raw[c])


@njit(inline="always", **NJIT_OPTIONS)
def _weight(ch, q, e):
    """Unnormalised weight of entry ``e`` at its level (its count, or its discounted
    Kneser-Ney count)."""
    if q.method == KNESER_NEY:
        return ch.cum_kn[e + 1] - ch.cum_kn[e]
    return np.float64(ch.cum_raw[e + 1] - ch.cum_raw[e])


@njit(inline="always", **NJIT_OPTIONS)
def _find_entry(e_tok, lo, hi, w):
    """Entry of dense token ``w`` in ``e_tok[lo:hi]`` (sorted), or -1."""
    e = _lower_bound(e_tok, lo, hi, w)
    return e if e < hi and e_tok[e] == w else -1


@njit(**NJIT_OPTIONS)
def backoff_scratch():
    """Room for one back-off walk (see :func:`backoff_path`): contexts, denominators, masses."""
    return np.empty(MAX_LEVELS, np.int64), np.empty(MAX_LEVELS, np.float64), np.empty(MAX_LEVELS, np.float64)


@njit(**NJIT_OPTIONS)
def backoff_path(ch, q, state, scratch):
    """Walk back from context ``state``: fills ``scratch`` (:func:`backoff_scratch`) with
    each level that has a positive denominator, in order (its context, denominator and
    the mass that reaches it), and returns their number and the mass left for the base
    measure.

    ``p(w | state) = sum_i masses[i] * weight(w at level i) / dens[i] + left / (V + 1)``,
    the terms added in level order.
    """
    ctxs, dens, masses = scratch
    n = 0
    mass = 1.0
    c = state
    while c >= 0:
        den, level = _context_mass(ch, q, c)
        if den > 0.0:
            ctxs[n] = c
            dens[n] = den
            masses[n] = mass
            n += 1
            mass *= 1.0 - level / den
        c = ch.ctx_parent[c]
    return n, mass


@njit(**NJIT_OPTIONS)
def _prob(ch, q, state, w, scratch):
    """p(w | context ``state``) and the context after ``w`` (``scratch``: see
    :func:`backoff_scratch`).

    ``w == n_vocab`` is the unknown token: it gets the base measure's share only, and the
    context after it is the empty one.
    """
    ctxs, dens, masses = scratch
    n, left = backoff_path(ch, q, state, scratch)
    p = 0.0
    nxt = -1
    if w < q.n_vocab:
        for i in range(n):
            c = ctxs[i]
            e = _find_entry(ch.e_tok, ch.ctx_start[c], ch.ctx_start[c + 1], w)
            if e >= 0:
                p += masses[i] * _weight(ch, q, e) / dens[i]
                if nxt < 0:
                    nxt = ch.e_next[e]
    p += left / (q.n_vocab + 1)
    return p, (nxt if nxt >= 0 else 0)


@njit(**NJIT_OPTIONS)
def _fill_probs(ch, q, state, probs, scratch):
    """``probs[w]`` = p(w | context ``state``) for every dense token w and the unknown
    token (``probs[V]``), equal bit for bit to :func:`_prob`'s, in O(V + entries on the
    back-off path) instead of a search per token and level."""
    ctxs, dens, masses = scratch
    n, left = backoff_path(ch, q, state, scratch)
    probs[: q.n_vocab + 1] = 0.0
    for i in range(n):
        c = ctxs[i]
        for e in range(ch.ctx_start[c], ch.ctx_start[c + 1]):
            probs[ch.e_tok[e]] += masses[i] * _weight(ch, q, e) / dens[i]
    base = left / (q.n_vocab + 1)
    for w in range(q.n_vocab + 1):
        probs[w] += base


@njit(**NJIT_OPTIONS)
def distribution(ch, q, state):
    """p(w | context ``state``) for every dense token and the unknown token, float64[V + 1]."""
    out = np.empty(q.n_vocab + 1, np.float64)
    _fill_probs(ch, q, state, out, backoff_scratch())
    return out


@njit(**NJIT_OPTIONS)
def log_probs(ch, q, dense, tok_bounds, bos_ctx, eos_dense):
    """Natural log-probability of every token and of each document's end.

    Parameters
    ----------
    dense : int64[n_tokens]
        Dense token indices (``n_vocab`` or -1 for unknown tokens).
    tok_bounds : int64[n_docs + 1]

    Returns
    -------
    float64[n_tokens + n_docs]: document d's events are its tokens, then its ``EOS``.
    """
    n_docs = tok_bounds.shape[0] - 1
    out = np.empty(dense.shape[0] + n_docs, np.float64)
    scratch = backoff_scratch()
    j = 0
    for d in range(n_docs):
        state = bos_ctx
        for t in range(tok_bounds[d], tok_bounds[d + 1] + 1):
            w = dense[t] if t < tok_bounds[d + 1] else eos_dense
            if w < 0:
                w = q.n_vocab
            p, state = _prob(ch, q, state, w, scratch)
            out[j] = np.log(p)
            j += 1
    return out


@njit(**NJIT_OPTIONS)
def next_state(ch, state, w, n_vocab):
    """Longest known context after emitting ``w`` in context ``state``."""
    if w >= n_vocab or w < 0:
        return 0
    c = state
    while c >= 0:
        e = _find_entry(ch.e_tok, ch.ctx_start[c], ch.ctx_start[c + 1], w)
        if e >= 0:
            return ch.e_next[e]
        c = ch.ctx_parent[c]
    return 0


@njit(**NJIT_OPTIONS)
def advance(ch, n_vocab, state, tokens):
    """Context after reading ``tokens`` (dense; ``n_vocab`` = unknown) from ``state``."""
    for i in range(tokens.shape[0]):
        state = next_state(ch, state, tokens[i], n_vocab)
    return state


@njit(**NJIT_OPTIONS)
def next_states(ch, n_vocab, states, tokens):
    """The context after each ``tokens[i]`` (dense) read in context ``states[i]``."""
    out = np.empty(states.shape[0], np.int64)
    for i in range(states.shape[0]):
        out[i] = next_state(ch, states[i], tokens[i], n_vocab)
    return out

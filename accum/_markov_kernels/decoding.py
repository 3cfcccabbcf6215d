"""Generator kernels: decode a chain token by token (sampling, greedy, temperature and
top-k) and generate sentences.

Private (see :mod:`accum._markov_kernels`). Plain sampling at temperature one has a
faster path over packed alias tables (:mod:`accum._markov_kernels.sampling`); these
kernels serve the other modes, sentences and recall.
"""

from typing import NamedTuple

import numpy as np
from numba import njit

from .._primitives import SALT
from ..config import NJIT_OPTIONS
from .chains import (KNESER_NEY, _find_entry, _context_mass, _fill_probs, _weight, backoff_path, backoff_scratch,
                     next_state)
from .tokens import K_CLOSER, K_LOWER, K_TERMINAL

SM_1 = np.uint64(0xBF58476D1CE4E5B9)  # SplitMix64's multipliers
SM_2 = np.uint64(0x94D049BB133111EB)

SAMPLE = 0  # decoding modes: draw from the smoothed distribution,
GREEDY = 1  # take the most probable token,
FULL = 2  # draw from the whole distribution with a temperature and/or a top-k cut


class Decoding(NamedTuple):
    """How to choose each token."""

    mode: np.int64  # SAMPLE, GREEDY or FULL
    temperature: np.float64  # FULL: divides log-probabilities
    top_k: np.int64  # FULL: keep the k most probable tokens (0: all)
    rank: np.ndarray  # GREEDY: entries by context, then decreasing weight (rank_entries)


class SentenceRule(NamedTuple):
    """Per dense token, what the sentence rule reads (see :func:`_ends_sentence`)."""

    kind: np.ndarray  # int64[V + 1]: K_LOWER ... K_PUNCT
    space_after: np.ndarray  # bool[V + 1]
    is_abbrev: np.ndarray  # bool[V + 1]


class Openers(NamedTuple):
    """Sentence openers of a chain, by (token before, first token)."""

    cum: np.ndarray  # int64[n + 1]: prefix sums of their counts
    state: np.ndarray  # int64[n]: the context before the first token
    first: np.ndarray  # int64[n]: the first token (dense)


# -- random numbers ------------------------------------------------------------------------


TWO53 = 9007199254740992.0  # 2**53: a 53-bit uniform integer over this is a uniform float in [0, 1)


@njit(**NJIT_OPTIONS)
def splitmix(z):
    """SplitMix64's output for the state ``z``."""
    z = (z ^ (z >> np.uint64(30))) * SM_1
    z = (z ^ (z >> np.uint64(27))) * SM_2
    return z ^ (z >> np.uint64(31))


@njit(**NJIT_OPTIONS)
def _rand64(rng):
    """Uniform 64-bit integer from the SplitMix64 state ``rng[0]`` (advanced in place)."""
    rng[0] += SALT
    return splitmix(rng[0])


@njit(**NJIT_OPTIONS)
def _rand53(rng):
    """Uniform 53-bit integer (as int64) from the SplitMix64 state ``rng[0]``."""
    return np.int64(_rand64(rng) >> np.uint64(11))


@njit(inline="always", **NJIT_OPTIONS)
def _rand(rng):
    """Uniform float in [0, 1) from the SplitMix64 state ``rng[0]``."""
    return np.float64(_rand53(rng)) * (1.0 / TWO53)


@njit(inline="always", **NJIT_OPTIONS)
def _first_above(cum, lo, hi, target):
    """The first ``e`` in ``lo:hi`` with ``cum[e + 1] > target`` (prefix sums, so
    non-decreasing; ``hi - 1`` when none is): the entry a draw of ``target`` falls in."""
    hi -= 1
    while lo < hi:
        mid = (lo + hi) >> 1
        if cum[mid + 1] > target:
            hi = mid
        else:
            lo = mid + 1
    return lo


# -- one token -----------------------------------------------------------------------------


@njit(**NJIT_OPTIONS)
def _sample(ch, q, state, rng):
    """Draw a token from p(. | state) exactly, level by level (no scan of any level).

    At each context, one uniform decides whether the draw stays there (with the mass the
    level keeps, :func:`~accum._markov_kernels.chains._context_mass`) and, if so, which
    entry (by binary search on the prefix sums); below the empty context the base
    measure is uniform over the vocabulary.

    Returns the token and, when it was drawn from ``state`` itself, the context that
    follows it (else -1: the caller looks it up with :func:`next_state`).
    """
    c = state
    while c >= 0:
        lo = ch.ctx_start[c]
        hi = ch.ctx_start[c + 1]
        if hi > lo:
            den, level = _context_mass(ch, q, c)
            u = _rand(rng) * den
            if u < level:
                if q.method == KNESER_NEY:
                    a = _first_above(ch.cum_kn, lo, hi, ch.cum_kn[lo] + u)
                else:
                    a = _first_above(ch.cum_raw, lo, hi, ch.cum_raw[lo] + np.int64(u))
                return ch.e_tok[a], (ch.e_next[a] if c == state else -1)
        c = ch.ctx_parent[c]
    return min(np.int64(_rand(rng) * q.n_vocab), q.n_vocab - 1), -1


@njit(**NJIT_OPTIONS)
def _greedy(ch, q, state, rank, scratch):
    """The most probable token in context ``state`` (ties: the lowest dense index).

    Fagin's threshold algorithm over the levels of the back-off walk
    (:func:`~accum._markov_kernels.chains.backoff_path`): read each level's entries in
    decreasing weight (``rank`` lists every context's entries that way), score each token
    read exactly, and stop once the leader beats what any unread token could still
    reach. Usually one or two rounds; no level is scanned. ``scratch`` is
    :func:`~accum._markov_kernels.chains.backoff_scratch`'s.
    """
    levels, dens, scale = scratch
    n_lv, left = backoff_path(ch, q, state, scratch)
    for i in range(n_lv):
        scale[i] = scale[i] / dens[i]  # the mass reaching level i, per unit of weight there
    base = left / (q.n_vocab + 1)
    best = -1
    best_p = -1.0
    depth = 0
    while True:
        bound = base
        more = False
        for i in range(n_lv):
            c = levels[i]
            e = ch.ctx_start[c] + depth
            if e < ch.ctx_start[c + 1] and scale[i] > 0.0:
                more = True
                bound += scale[i] * _weight(ch, q, rank[e])
                w = ch.e_tok[rank[e]]
                p = base
                for j in range(n_lv):
                    cj = levels[j]
                    if scale[j] > 0.0:
                        f = _find_entry(ch.e_tok, ch.ctx_start[cj], ch.ctx_start[cj + 1], w)
                        if f >= 0:
                            p += scale[j] * _weight(ch, q, f)
                if p > best_p or (p == best_p and w < best):
                    best = w
                    best_p = p
        if not more or best_p > bound:
            break
        depth += 1
    if best < 0:
        best = 0  # nothing seen at all: everything is uniform
    return best


@njit(**NJIT_OPTIONS)
def _sample_full(ch, q, state, rng, probs, temperature, top_k, scratch):
    """Draw from the full distribution with a temperature and/or a top-k cut (O(V))."""
    n_vocab = q.n_vocab
    _fill_probs(ch, q, state, probs, scratch)
    if top_k > 0 and top_k < n_vocab:
        kth = -np.partition(-probs[:n_vocab], top_k - 1)[top_k - 1]
        above = 0
        for w in range(n_vocab):
            if probs[w] > kth:
                above += 1
        room = top_k - above
        for w in range(n_vocab):
            if probs[w] < kth:
                probs[w] = 0.0
            elif probs[w] == kth:
                if room > 0:
                    room -= 1
                else:
                    probs[w] = 0.0
    top = probs[:n_vocab].max()
    total = 0.0
    for w in range(n_vocab):
        if probs[w] > 0.0:
            probs[w] = np.exp(np.log(probs[w] / top) / temperature)
            total += probs[w]
    u = _rand(rng) * total
    acc = 0.0
    last = 0
    for w in range(n_vocab):
        if probs[w] > 0.0:
            acc += probs[w]
            last = w
            if u < acc:
                return w
    return last


@njit(inline="always", **NJIT_OPTIONS)
def _choose(ch, q, dec, state, rng, probs, scratch):
    """One token by ``dec.mode`` (see :class:`Decoding`); ``probs`` (float64[V + 1] for
    ``FULL``) and ``scratch`` (:func:`backoff_scratch`) are room.

    Returns the token and the context after it (-1 when not known yet).
    """
    if dec.mode == SAMPLE:
        return _sample(ch, q, state, rng)
    if dec.mode == GREEDY:
        return _greedy(ch, q, state, dec.rank, scratch), -1
    return _sample_full(ch, q, state, rng, probs, dec.temperature, dec.top_k, scratch), -1


@njit(**NJIT_OPTIONS)
def generate(ch, q, dec, state, n_tokens, rng, eos_dense, bos_ctx):
    """Generate ``n_tokens`` tokens (document ends, as ``eos_dense``, not counted).

    Returns int64[n_out] of dense tokens, ``EOS`` included where a document ended (the
    next one starts from the ``BOS`` context).
    """
    n_vocab = q.n_vocab
    probs = np.zeros(n_vocab + 1 if dec.mode == FULL else 1, np.float64)
    scratch = backoff_scratch()
    out = np.empty(n_tokens + 16, np.int64)
    n = 0
    made = 0
    ends = 0
    while made < n_tokens:
        w, after = _choose(ch, q, dec, state, rng, probs, scratch)
        if n >= out.shape[0]:
            grown = np.empty(2 * out.shape[0], np.int64)
            grown[:n] = out[:n]
            out = grown
        out[n] = w
        n += 1
        if w == eos_dense:
            state = bos_ctx
            ends += 1
            if ends > 1000:
                break  # a model of empty documents only ends them
        else:
            ends = 0
            made += 1
            state = after if after >= 0 else next_state(ch, state, w, n_vocab)
    return out[:n].copy()


# -- sentences -----------------------------------------------------------------------------


@njit(**NJIT_OPTIONS)
def _ends_sentence(sent, n, w, rule):
    """True when token ``w`` would begin a new sentence after ``sent[:n]`` (the
    tokeniser's rule, :func:`~accum._markov_kernels.tokens._starts_sentence`, over dense
    tokens)."""
    kind = rule.kind
    k = kind[w]
    if k == K_LOWER or k == K_TERMINAL or k == K_CLOSER:
        return False
    if n == 0 or not rule.space_after[sent[n - 1]]:
        return False
    j = n - 1
    while j >= 0 and kind[sent[j]] == K_CLOSER:
        j -= 1
    if j < 0 or kind[sent[j]] != K_TERMINAL:
        return False
    while j >= 0 and kind[sent[j]] == K_TERMINAL:
        j -= 1
    if j >= 0 and rule.is_abbrev[sent[j]]:
        return False
    return True


@njit(**NJIT_OPTIONS)
def make_sentences(ch, q, dec, n_sentences, max_tokens, rng, eos_dense, rule, openers):
    """Generate sentences: each from a sentence opener drawn by its count, up to its end.

    A sentence ends where the next token would begin a new one (``rule``, see
    :class:`SentenceRule`) or at a document's end; one that reaches ``max_tokens`` is
    abandoned (length -1).

    Returns
    -------
    tokens : int64[total]
    bounds : int64[n_sentences + 1]
        Sentence i is ``tokens[bounds[i]:bounds[i + 1]]`` (empty when abandoned).
    """
    n_vocab = q.n_vocab
    probs = np.zeros(n_vocab + 1 if dec.mode == FULL else 1, np.float64)
    scratch = backoff_scratch()
    out = np.empty(n_sentences * max_tokens, np.int64)
    bounds = np.zeros(n_sentences + 1, np.int64)
    n = 0
    open_cum = openers.cum
    total_open = open_cum[open_cum.shape[0] - 1]
    for s in range(n_sentences):
        start = n
        a = _first_above(open_cum, 0, open_cum.shape[0] - 1, np.int64(_rand(rng) * total_open))
        w = openers.first[a]
        state = next_state(ch, openers.state[a], w, n_vocab)
        out[n] = w
        n += 1
        ok = False
        while n - start < max_tokens:
            w, after = _choose(ch, q, dec, state, rng, probs, scratch)
            if w == eos_dense or _ends_sentence(out[start:n], n - start, w, rule):
                ok = True
                break
            out[n] = w
            n += 1
            state = after if after >= 0 else next_state(ch, state, w, n_vocab)
        if not ok:
            n = start
        bounds[s + 1] = n
    return out[:n].copy(), bounds

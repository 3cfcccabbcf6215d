"""Generator kernels: verbatim recall, prompted (greedy continuations of training text)
and free (matching statistics over a suffix array).

Private (see :mod:`accum._markov_kernels`).
"""

import numpy as np
from numba import njit

from ..config import NJIT_OPTIONS
from .chains import backoff_scratch, next_state
from .decoding import _greedy


@njit(**NJIT_OPTIONS)
def prompted_recall(ch, q, dense, tok_bounds, sample_doc, sample_pos, prefix,
                    continuation, rank, bos_ctx):
    """Greedy continuation of prompts taken from the training text (Carlini et al.).

    For sample i the prompt is the ``prefix`` tokens of document ``sample_doc[i]``
    before token ``sample_pos[i]`` (preceded by ``BOS`` when they start the document);
    the model decodes greedily and the match length is the number of leading tokens
    equal to the next ``continuation`` tokens of the text.

    Returns int64[n_samples]: the exact-match length of each sample (0..continuation).
    """
    n_vocab = q.n_vocab
    scratch = backoff_scratch()
    out = np.zeros(sample_doc.shape[0], np.int64)
    for i in range(sample_doc.shape[0]):
        a = tok_bounds[sample_doc[i]]
        t = a + sample_pos[i]
        state = bos_ctx if t - prefix == a else 0
        for j in range(t - prefix, t):
            w = dense[j]
            state = next_state(ch, state, w if w >= 0 else n_vocab, n_vocab)
        m = 0
        while m < continuation:
            w = _greedy(ch, q, state, rank, scratch)
            if w != dense[t + m]:
                break
            m += 1
            state = next_state(ch, state, w, n_vocab)
        out[i] = m
    return out


@njit(inline="always", **NJIT_OPTIONS)
def _first_suffix(text, sa, lo, hi, depth, x, above):
    """The first suffix in ``sa[lo:hi]`` (sorted) whose symbol at offset ``depth`` is at
    least ``x`` (``above``: greater than ``x``), or ``hi``; past the text's end reads -1."""
    n = text.shape[0]
    while lo < hi:
        mid = (lo + hi) >> 1
        p = sa[mid] + depth
        s = text[p] if p < n else -1
        if s < x or (above and s == x):
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(**NJIT_OPTIONS)
def matching_statistics(text, sa, query):
    """Length of the longest prefix of ``query[i:]`` found anywhere in ``text``, per i.

    ``sa`` is the suffix array of ``text`` (int64 symbols; negative symbols are unique
    separators and never match). Query symbols below 0 never match.
    """
    n = text.shape[0]
    m = query.shape[0]
    out = np.zeros(m, np.int64)
    for i in range(m):
        lo = 0
        hi = n
        L = 0
        while i + L < m and query[i + L] >= 0:
            x = query[i + L]
            # narrow [lo, hi) to suffixes whose symbol at offset L equals x
            new_lo = _first_suffix(text, sa, lo, hi, L, x, False)
            new_hi = _first_suffix(text, sa, new_lo, hi, L, x, True)
            if new_hi == new_lo:
                break
            lo = new_lo
            hi = new_hi
            L += 1
        out[i] = L
    return out

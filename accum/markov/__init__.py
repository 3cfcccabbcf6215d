"""Super Markov generators: n-gram accumulators that regenerate text and measure recall.

A :class:`MarkovAccumulator` counts, per category, every token after each of its
contexts of length 0..order-1 (words keep their case, punctuation marks are tokens,
documents start with ``BOS`` and end with ``EOS``). Like the classifier's accumulators,
counts only add: two models merge by addition exactly, and smoothed probabilities are
derived from the counts on demand, never stored as the source of truth.

Two smoothers back off from each context to its suffix:

- **Dirichlet back-off** (hierarchical Dirichlet / MacKay & Peto): with ``c(h, w)`` the
  count of ``w`` after context ``h``, ``c(h)`` their sum, ``T(h)`` the number of distinct
  continuations and ``h'`` the context without its oldest token,
  ``p(w|h) = (c(h, w) + a(h) p(w|h')) / (c(h) + a(h))`` with ``a(h) = alpha * T(h)``
  (``alpha_per_type=True``, a Witten-Bell-like prior that measured better here) or
  ``a(h) = alpha``;
- **interpolated Kneser-Ney** (Chen & Goodman): ``p(w|h) = max(x(h, w) - D, 0) / x(h)
  + D T(h) / x(h) p(w|h')`` with ``x`` the raw count at the top order and the number of
  distinct left extensions (continuation count) below it, except for n-grams that start
  with ``BOS``, which have no left extension and keep raw counts (as KenLM does).

Both end in a uniform base measure over the vocabulary plus one unknown-token slot, so
every held-out token has a probability and ``p(.|h)`` sums to one over ``V + 1``.
``method="mle"`` is the plain table: the longest known context's relative frequencies.

The package splits the generator the way markovify splits ``Chain`` from ``Text``:

==============================  ============================================================
:mod:`accum.markov.tokens`      tokenising (words keep their case, marks their spacing)
:mod:`accum.markov.counts`      the counts: adding, merging, arrays (:class:`NgramCounts`)
:mod:`accum.markov.chain`       the chain view: vocabulary, compiled chains, sampling tables
:mod:`accum.markov.recall`      verbatim recall: prompted extraction, the suffix-array index
:mod:`accum.markov.model`       :class:`MarkovAccumulator`: hooks, checks and queries
:mod:`accum.markov.compiled`    one chain kept apart from the counts, for queries that need only it
==============================  ============================================================

Examples
--------
>>> m = MarkovAccumulator(order=2)
>>> m.partial_fit(["The cat sat.", "The cat ran."])
>>> m.count("cat sat"), m.count("The"), m.count("cat.")
(1, 2, 0)

With a constant Dirichlet prior ``a = 1``: the root gives "sat" ``(1 + 1/7) / (10 + 1)``
(10 tokens, 6 types plus the unknown slot), so ``p(sat | cat) = (1 + 8/77) / (2 + 1)``:

>>> from fractions import Fraction
>>> p = m.distribution("The cat", method="dirichlet", alpha=1.0, alpha_per_type=False)
>>> Fraction(p["sat"]).limit_denominator(1000), round(sum(p.values()), 12)
(Fraction(85, 231), 1.0)
>>> print(m.generate(8, seed=0, method="mle"))
The cat sat.
The cat ran.
"""

import os

#: Threads for building from a large batch (``partial_fit``): with two, a second thread
#: tokenises the batch chunk by chunk while the first counts the chunks already made, in
#: order (so the same rows, counts and lexicon as one thread). ``ACCUM_MARKOV_THREADS=1``
#: keeps one thread; more than two are not used. Read at each call (as are the two
#: below), so it may be set here.
THREADS = min(2, int(os.environ.get("ACCUM_MARKOV_THREADS") or 0)
              or (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1))
PARALLEL_MIN_CHARS = 1 << 20  # smaller batches are built by one thread
PIPELINE_CHUNKS = 8  # a large batch is tokenised in this many chunks, each counted as soon as it is ready

from .chain import METHODS  # noqa: E402
from .counts import DEFAULT_LABEL, NgramCounts  # noqa: E402
from .model import DEFAULT_ORDER, MarkovAccumulator  # noqa: E402
from .recall import RecallResult, VerbatimIndex  # noqa: E402
from .tokens import ABBREVIATIONS, MarkovTokens, tokenize  # noqa: E402

__all__ = ["ABBREVIATIONS", "DEFAULT_LABEL", "DEFAULT_ORDER", "METHODS", "MarkovAccumulator", "MarkovTokens",
           "NgramCounts", "RecallResult", "THREADS", "VerbatimIndex", "tokenize"]

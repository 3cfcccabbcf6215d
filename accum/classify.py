"""Classify pages from an accumulator's counts: linear models that stay exact and additive.

Every model here scores a page as ``prior[c] + sum_w x[w] * weight[w, c]`` over the
features w it shares with training (features never seen carry no evidence), so the
explanation of a decision is exact. Three models are built from the same accumulator:

**"dm": the Dirichlet-multinomial posterior predictive** of each category.

Each category c has counts ``n[w, c]`` of features w (unigrams and n-grams) and a
symmetric Dirichlet prior ``alpha`` over the V features seen in training. The posterior
predictive probability of feature w in category c is

    p(w | c) = (n[w, c] + alpha) / (N[c] + alpha * V),      N[c] = sum_w n[w, c],

and a page scores ``log p(c) + sum_w x[w] * log p(w | c)`` over its features w with
counts x[w]. The category prior is itself a Dirichlet posterior predictive:
``p(c) = (D[c] + beta) / (D + beta * C)`` from documents per category. Features never
seen in training carry no evidence about the categories and are left out (as
scikit-learn's ``MultinomialNB`` does over a fixed vocabulary); on identical counts the
scores equal ``MultinomialNB``'s joint log-likelihood.

**"complement": complement naive Bayes over normalised document weights** (Rennie,
Shih, Teevan & Karger 2003). Each training page adds ``log(1 + tf) / ||log(1 + tf)||_2``
per feature to its category (accumulated beside the counts, in fixed point, so it stays
additive and merges exactly); a category is scored against the weights of all *other*
categories, ``weight[w, c] = -log((W[w] - W[w, c] + alpha) / sum_v (W[v] - W[v, c] + alpha))``,
and a page's features count once (presence). On identical weights its scores equal
scikit-learn's ``ComplementNB`` on binary test rows. Complement estimates use the data of
every other category, which helps the small ones; length normalisation removes the pull
of long pages. No inverse document frequency: it is not additive (the benchmark shows it
adds nothing here).

**"ridge-complement" (the default): ridge regression on hashed unigram weights, blended
with complement NB** (:class:`RidgeComplementClassifier`). Naive Bayes weighs every
feature as if the others were absent; a least-squares linear classifier accounts for
features that occur together, and its normal equations are sums over pages too: the
per-category sums of the pages' hashed unigram weights (derived from the accumulator's
weights) and the Gram ``sum h hᵀ`` of the pages' hashed vectors, which the accumulator
keeps beside the counts (4,096 buckets by default, integers that merge by addition).
Each part is standardised per page over the categories, then added. In
``benchmarks/results/classify_peers.md`` it is the most accurate model (WebKB-4 leave
one university out 0.920, complement 0.864; 20 Newsgroups 0.868, complement 0.862) and
the only one at or above the best peer, linear SVM, on both; its price is the Gram
(64 MiB while ingesting) and solving a 4,096-unknown linear system when the model is
built. Stores without the Gram default to "complement".

Because the score is a sum, explanations are exact: the log-odds between the top two
categories is the prior term plus one term per feature, and the terms add up to it.
"""

from __future__ import annotations

import inspect
from typing import Sequence

import numpy as np

from . import _gram_kernels, _kernels
from .accumulator import Accumulator
from .prediction import Explanation, TextClassifier, _chunk_ends, _PageFeatures, _top_two
from .settings import Settings
from .tokens import encode, tokenize


#: Tells :func:`accum._kernels.score_texts` to score no ridge part.
_NO_RIDGE = np.zeros((0, 0))


class _Entries:
    """A linear model's entries (:func:`accum._kernels.entry_starts`), laid out a shard at
    a time, the frequent rows of each shard first, and the table that finds a feature's."""

    def __init__(self, n_categories: int):
        self.n_categories = n_categories
        self.entries = np.empty(0)
        self.keys: list[np.ndarray] = []
        self.starts: list[np.ndarray] = []
        self.n_rows = 0

    def add(self, pairs, n_pairs: int, keys: np.ndarray, row_default: np.ndarray, pair_delta: np.ndarray) -> None:
        """Lay out one shard's rows (feature ids ``keys``) after those added before."""
        totals = np.bincount(pairs[:n_pairs, _kernels.P_KEY] >> 32, pairs[:n_pairs, _kernels.P_COUNT], len(keys))
        n_of, start, end = _kernels.entry_starts(pairs, n_pairs, len(keys), self.n_categories,
                                                 np.argsort(-totals, kind="stable"), len(self.entries))
        # grown in place to the exact size (realloc moves a large block's pages, never copies them)
        self.entries.resize(end, refcheck=False)
        _kernels.fill_entries(pairs, n_pairs, n_of, start, self.n_categories, pair_delta, row_default, self.entries)
        self.keys.append(np.ascontiguousarray(keys, np.uint64))  # not a view: the shard goes
        self.starts.append(start)
        self.n_rows += len(keys)

    def finish(self) -> tuple[np.ndarray, np.ndarray]:
        """The table (feature id -> where its entries start) and the entries."""
        table = _kernels.key_table(self.keys, self.starts)
        self.keys, self.starts = [], []
        return table, self.entries


class LinearCountModel(TextClassifier):
    """Shared scoring, probabilities and explanations of the models over an accumulator.

    A feature w (one of the accumulator's rows) weighs ``category_term[c] +
    row_default[w] + delta[w, c]`` in category c, where ``delta`` is non-zero only for
    the (feature, category) pairs the accumulator counted, so the weights are as sparse
    as the counts (:func:`accum._kernels.entry_starts` lays them out for scoring); a page
    scores ``log_prior[c]`` plus the weights of its features seen in training, once each
    when ``binary``, else times their count. Subclasses compute a row's two parts from
    its pairs alone (:meth:`_row_parts`) and the rest from sums over every pair
    (:meth:`_finish`), so a model is built from the counts a shard at a time
    (:meth:`_build`): a store builds one from its segments without holding them.

    A model keeps no reference to its accumulator: :meth:`to_arrays` and
    :func:`model_from_arrays` save and restore it whole (``accum.storage`` keeps one per
    snapshot, so that classifying does not load the counts).
    """

    binary = False
    _PARAMS: tuple[str, ...] = ("alpha",)
    _ARRAYS: tuple[str, ...] = ("category_term", "log_prior", "_table", "_entries")

    def __init__(self, accumulator: Accumulator, alpha: float):
        if not alpha > 0:
            raise ValueError(f"alpha must be > 0, got {alpha!r}")
        if accumulator.n_categories == 0:
            raise ValueError("the accumulator has no categories yet: ingest labelled pages first")
        self.alpha = float(alpha)
        self.settings = accumulator.settings
        self.categories = list(accumulator.categories)

    def _build(self, accumulator: Accumulator, shards=None) -> None:
        """Lay out the weights of the counts ``shards`` yields, each as ``(pairs, n_pairs,
        rows)`` in the accumulator's :attr:`~accum.accumulator.Accumulator.raw_pairs` and
        :attr:`~accum.accumulator.Accumulator.raw_rows` layouts, rows numbered from 0 in
        each (None: the accumulator's own counts, one shard); ``accumulator`` gives the
        categories, pages and Gram."""
        if shards is None:
            shards = [(accumulator.raw_pairs, accumulator.n_pairs, accumulator.raw_rows)]
        sums: dict[str, np.ndarray] = {}
        entries = _Entries(accumulator.n_categories)
        for pairs, n_pairs, rows in shards:
            entries.add(pairs, n_pairs, rows[:, 0], *self._row_parts(pairs, n_pairs, rows, sums))
        self._table, self._entries = entries.finish()
        self._finish(accumulator, sums, entries.n_rows)

    def _row_parts(self, pairs, n_pairs: int, rows, sums: dict) -> tuple[np.ndarray, np.ndarray]:
        """``row_default`` float64[n_rows] and ``pair_delta`` float64[n_pairs] of one shard,
        whose sums over the pairs that :meth:`_finish` needs are added to ``sums``
        (:meth:`_add_per_category`)."""
        raise NotImplementedError

    def _add_per_category(self, sums: dict, name: str, pairs, n_pairs: int, column: int) -> None:
        """Add the shard's ``column`` of the pairs, summed per category, to ``sums[name]``
        (fixed-point integers summed in float64: exact below 2**53, in any order)."""
        cats = pairs[:n_pairs, _kernels.P_KEY] & 0xFFFFFFFF
        sums[name] = sums.get(name, 0) + np.bincount(cats, pairs[:n_pairs, column], len(self.categories))

    def _finish(self, accumulator: Accumulator, sums: dict, n_rows: int) -> None:
        """Set ``category_term``, ``log_prior`` and anything else from the sums over every pair."""
        raise NotImplementedError

    def feature_weights(self, feature_ids: np.ndarray) -> np.ndarray:
        """The weight of each feature (ids, e.g. ``Accumulator.row_key``) in every category,
        float64[n, n_categories]; 0 for features never seen (they carry no evidence)."""
        starts = _kernels.linear_starts(np.ascontiguousarray(feature_ids, np.uint64), self._table)
        return _kernels.linear_weights(starts, self._entries, self.category_term)

    def decision_function(self, texts: Sequence[str]) -> np.ndarray:
        """Score of each category (the log posterior for "dm"), float64[n_texts, n_categories]."""
        scores = np.tile(self.log_prior, (len(texts), 1))
        self._score_into(texts, scores)
        return scores

    def _score_into(self, texts: Sequence[str], out: np.ndarray, ridge_coef: np.ndarray = _NO_RIDGE,
                    ridge_out: np.ndarray = _NO_RIDGE) -> None:
        """Add the texts' evidence to ``out`` and their ridge part to ``ridge_out`` (see
        :func:`accum._kernels.score_texts`), a chunk of texts at a time."""
        start = 0
        for stop in _chunk_ends(texts):
            buf, bounds = encode(texts[start:stop], self.settings.lowercase)
            _kernels.score_texts(buf, bounds, self.settings.max_order, self._table, self._entries,
                                 self.category_term, self.binary, out[start:stop], ridge_coef, ridge_out[start:stop])
            start = stop

    def _page_features(self, text: str) -> _PageFeatures:
        """The distinct features of ``text`` and the weights of those seen in training."""
        batch = tokenize([text], self.settings.lowercase)
        order = self.settings.max_order
        fids, tfs, first, _ = _kernels.page_features(batch.ngrams(order), batch.bounds)
        starts = _kernels.linear_starts(fids, self._table)
        seen = np.nonzero(starts >= 0)[0]
        weights = _kernels.linear_weights(starts[seen], self._entries, self.category_term)
        return _PageFeatures(batch, order, fids, tfs, first, seen, weights)

    def explain(self, text: str, n_terms: int = 10) -> Explanation:
        """Decompose the log-odds of the top category against the runner-up, per feature."""
        page = self._page_features(text)
        scores = self.decision_function([text])[0]
        win, second = _top_two(scores)
        x = np.ones(len(page.seen)) if self.binary else page.tfs[page.seen].astype(np.float64)
        terms = x * (page.weights[:, win] - page.weights[:, second])
        return self._explanation(page, terms, scores, win, second, self.log_prior[win] - self.log_prior[second],
                                 n_counted=int(x.sum()), n_terms=n_terms)



class DirichletClassifier(LinearCountModel):
    """The Dirichlet-multinomial posterior predictive of each category (model "dm").

    Parameters
    ----------
    accumulator : Accumulator
        The counts (read, never modified).
    alpha : float
        Dirichlet concentration per feature (Lidstone smoothing); must be > 0.
    beta : float
        Dirichlet concentration per category for the prior ``p(c)``; 0 uses the
        observed document frequencies.

    Examples
    --------
    The multinomial example of Manning, Raghavan & Schütze (IIR, section 13.2):

    >>> from accum import Accumulator, Settings
    >>> acc = Accumulator(Settings(max_order=1))
    >>> acc.partial_fit(["Chinese Beijing Chinese", "Chinese Chinese Shanghai",
    ...                  "Chinese Macao", "Tokyo Japan Chinese"], ["c", "c", "c", "j"])
    >>> clf = DirichletClassifier(acc, alpha=1.0, beta=0.0)
    >>> p = clf.predict_proba(["Chinese Chinese Chinese Tokyo Japan"])[0]
    >>> [round(float(x), 4) for x in p]  # IIR: p(c|d) ~ 0.0003, p(j|d) ~ 0.0001
    [0.6898, 0.3102]
    """

    name = "dm"
    _PARAMS = ("alpha", "beta")

    def __init__(self, accumulator: Accumulator, alpha: float = 0.01, beta: float = 1.0, shards=None):
        super().__init__(accumulator, alpha)
        if not beta >= 0:
            raise ValueError(f"beta must be >= 0, got {beta!r}")
        self.beta = float(beta)
        self._build(accumulator, shards)

    def _row_parts(self, pairs, n_pairs, rows, sums):
        # log p(w | c) = log(alpha) - log_total[c], plus log((n + alpha) / alpha) where n > 0
        self._add_per_category(sums, "count", pairs, n_pairs, _kernels.P_COUNT)
        counts = pairs[:n_pairs, _kernels.P_COUNT]
        return np.zeros(len(rows)), np.log(counts + self.alpha) - np.log(self.alpha)

    def _finish(self, accumulator, sums, n_rows):
        self.category_term = np.log(self.alpha) - np.log(sums["count"] + self.alpha * n_rows)
        docs = accumulator.doc_counts.astype(np.float64)
        self.log_prior = np.log(docs + self.beta) - np.log(docs.sum() + self.beta * len(docs))


class ComplementClassifier(LinearCountModel):
    """Complement naive Bayes over length-normalised log-TF weights (model "complement").

    Parameters
    ----------
    accumulator : Accumulator
        The counts and weights (read, never modified).
    alpha : float
        Smoothing added to every complement weight; must be > 0.
    """

    name = "complement"
    binary = True

    def __init__(self, accumulator: Accumulator, alpha: float = 0.03, shards=None):
        super().__init__(accumulator, alpha)
        self._build(accumulator, shards)

    def _row_parts(self, pairs, n_pairs, rows, sums):
        self._add_per_category(sums, "weight", pairs, n_pairs, _kernels.P_WEIGHT)
        return _kernels.complement_rows(pairs, n_pairs, len(rows), self.alpha)

    def _finish(self, accumulator, sums, n_rows):
        # the normaliser sum_v (W[v] - W[v, c] + alpha) of each category c
        self.category_term = np.log((sums["weight"].sum() - sums["weight"]) / _kernels.WEIGHT_SCALE
                                    + self.alpha * n_rows)
        self.log_prior = np.zeros(accumulator.n_categories)


#: Refinement steps of :func:`_solve_centred_gram` at most, and the relative change
#: below which it stops (measured or extrapolated).
_REFINE_STEPS, _REFINE_TOL = 5, 1e-10


def _solve_centred_gram(accumulator: Accumulator, mean: np.ndarray, lam: float, rhs: np.ndarray) -> np.ndarray:
    """Solve ``(G - n mean meanᵀ + lam I) X = rhs`` for the accumulator's Gram G (n pages).

    Mixed precision, as LAPACK's ``dsposv``: the Cholesky factor in single precision
    (half the time of double), then iterative refinement with residuals in double
    precision, which gives the double-precision solution (measured on 20 Newsgroups:
    2e-6 relative error before refinement, 1e-11 after one step). Refinement stops once
    the next step, extrapolated from how fast the steps shrink, would be below the
    tolerance: after one step on 20 Newsgroups, where checking with a second residual
    took a fifth of the model's time. The residuals multiply
    the system a block of columns at a time, unpacked from the Gram's integers, so no
    double-precision copy of the whole matrix is made. A system too ill-conditioned for
    single precision falls back to a double-precision factor.
    """
    from scipy.linalg import lapack  # here, not at the top: a query of another model need not load it

    n_buckets = accumulator.settings.n_gram_buckets
    gram, n_pages = accumulator.packed_gram(), float(accumulator.n_documents)
    system = np.zeros((n_buckets, n_buckets), np.float32, order="F")
    _gram_kernels.gram_centered_lower(gram, n_buckets, _kernels.GRAM_SCALE**2, mean, n_pages, lam, system)
    factor, info = lapack.spotrf(system, lower=1, overwrite_a=1, clean=0)
    if info == 0:
        x = _solve_with(factor, rhs)
        previous = np.abs(x).max()
        for _ in range(_REFINE_STEPS):
            step = _solve_with(factor, rhs - _centred_gram_times(gram, n_buckets, mean, n_pages, lam, x))
            x += step
            size, bound = np.abs(step).max(), _REFINE_TOL * np.abs(x).max()
            # the steps shrink geometrically, by size / previous: the next would be size² / previous
            if size <= bound or size * size <= bound * previous:
                return x
            previous = size
    del system, factor
    system = np.zeros((n_buckets, n_buckets), order="F")
    _gram_kernels.gram_centered_lower(gram, n_buckets, _kernels.GRAM_SCALE**2, mean, n_pages, lam, system)
    factor, info = lapack.dpotrf(system, lower=1, overwrite_a=1, clean=0)
    if info != 0:
        raise ValueError("the ridge system is not positive definite (a corrupt Gram?)")
    return lapack.dpotrs(factor, rhs, lower=1)[0]


#: Columns of the centred Gram unpacked at a time for a product (4,096 x 512 doubles: 16 MiB).
_PRODUCT_COLUMNS = 512


def _solve_with(factor: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``A⁻¹ b`` from the single-precision Cholesky factor of A, in double precision."""
    from scipy.linalg import lapack

    return lapack.spotrs(factor, b.astype(np.float32), lower=1)[0].astype(np.float64)


def _centred_gram_times(gram, n_buckets, mean, n_pages, lam, x: np.ndarray) -> np.ndarray:
    """``(G - n mean meanᵀ + lam I) x`` in double precision, a block of columns at a time."""
    y = np.zeros_like(x)
    block = np.empty((n_buckets, min(_PRODUCT_COLUMNS, n_buckets)))
    for first in range(0, n_buckets, block.shape[1]):
        cols = block[:, : min(block.shape[1], n_buckets - first)]
        _gram_kernels.gram_centered_columns(gram, n_buckets, _kernels.GRAM_SCALE**2, mean, n_pages, lam, first, cols)
        y += cols @ x[first : first + cols.shape[1]]
    return y


class NoGramError(ValueError):
    """A model that needs the Gram, asked of counts that keep none (``gram_bits`` 0)."""


def _zscore_scale(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-row mean and standard deviation over the categories (std 0 becomes inf: no vote)."""
    mean = scores.mean(axis=1, keepdims=True)
    std = scores.std(axis=1, keepdims=True)
    return mean, np.where(std > 0, std, np.inf)


class RidgeComplementClassifier(ComplementClassifier):
    """Ridge regression on hashed unigram weights, blended with complement NB.

    Two additive parts, each standardised per page over the categories and then added:

    **ridge**: a least-squares linear classifier (targets +1 for the page's category, -1
    for the others, an intercept, L2 penalty ``lam``) on the pages' unigram weights
    ``log(1 + tf) / ||log(1 + tf)||_2`` hashed into ``2 ** bits`` signed buckets. Its
    normal equations need only sums over pages: the Gram ``sum h hᵀ``
    (:attr:`Accumulator.gram <accum.accumulator.Accumulator.gram>`, kept by the
    accumulator beside the counts) and ``sum h y_cᵀ`` per category, which is the
    accumulator's per-category weights summed per bucket; the means come from the
    document counts. Unlike naive Bayes it accounts for features that occur together.

    **complement**: :class:`ComplementClassifier` over all features (every order).

    A page scores ``z(r) + blend * z(n)`` where r and n are the two parts' scores and
    ``z(s) = (s - mean_c s) / std_c s`` over the categories. Features never seen in
    training carry no evidence in either part (their weight still counts in the page's
    norm, as in training). Per page the standard deviations are constants, so the
    log-odds of two categories is a sum of per-feature terms plus the ridge intercepts:
    the explanation stays exact.

    Parameters
    ----------
    accumulator : Accumulator
        Counts, weights and Gram (read, never modified); its settings must keep a Gram
        (``gram_bits`` > 0).
    lam : float
        Ridge penalty (> 0).
    blend : float
        Weight of the complement part (>= 0).
    alpha : float
        Complement smoothing.

    The defaults (``lam`` 0.3, ``blend`` 0.7, 4,096 buckets) maximise the mean 3-fold
    cross-validated accuracy on the *training* pages of 20 Newsgroups and of the WebKB
    folds (grid lam 0.1-3, blend 0.1-3); on the test pages they give 0.868 on 20
    Newsgroups and 0.920 on WebKB-4 leave one university out (complement: 0.862, 0.864).
    """

    name = "ridge-complement"
    binary = True
    _PARAMS = ("alpha", "lam", "blend")
    _ARRAYS = LinearCountModel._ARRAYS + ("ridge_coef", "ridge_intercept")

    def __init__(self, accumulator: Accumulator, lam: float = 0.3, blend: float = 0.7, alpha: float = 0.03,
                 shards=None):
        if not lam > 0:
            raise ValueError(f"lam must be > 0, got {lam!r}")
        if not blend >= 0:
            raise ValueError(f"blend must be >= 0, got {blend!r}")
        if not accumulator.settings.gram_bits:
            raise NoGramError("the ridge-complement model needs the Gram, which these counts do not keep "
                              "(gram_bits 0, or counted before accum kept it): count the pages again with "
                              "gram_bits > 0, or use the complement model")
        self.lam, self.blend = float(lam), float(blend)
        super().__init__(accumulator, alpha, shards)

    def _row_parts(self, pairs, n_pairs, rows, sums):
        # per-category sums of the hashed unigram weights: B[k, c] = sum_{pages of c} h[k]
        sums["buckets"] = sums.get("buckets", 0) + _kernels.unigram_bucket_sums(
            pairs, n_pairs, rows, self.settings.gram_bits, len(self.categories))
        return super()._row_parts(pairs, n_pairs, rows, sums)

    def _finish(self, accumulator, sums, n_rows):
        super()._finish(accumulator, sums, n_rows)
        buckets = sums["buckets"]
        n = float(accumulator.n_documents)
        docs = accumulator.doc_counts.astype(np.float64)
        mean_h = buckets.sum(axis=1) / n
        mean_y = (2 * docs - n) / n
        cross = 2 * buckets - buckets.sum(axis=1, keepdims=True)  # sum_pages h * (+1 own, -1 other)
        coef = _solve_centred_gram(accumulator, mean_h, self.lam, cross - n * np.outer(mean_h, mean_y))
        self.ridge_intercept = mean_y - mean_h @ coef
        #: Ridge coefficients of the hashed unigram buckets, float64[2 ** bits, n_categories]:
        #: a seen unigram's weight is ``sign * ridge_coef[bucket]`` (:func:`accum._kernels.gram_bucket`).
        self.ridge_coef = np.ascontiguousarray(coef)

    def _scores(self, texts: Sequence[str]):
        """Ridge (with intercepts) and complement scores, float64[n_texts, n_categories] each."""
        ridge = np.tile(self.ridge_intercept, (len(texts), 1))
        comp = np.zeros_like(ridge)
        self._score_into(texts, comp, self.ridge_coef, ridge)
        return ridge, comp

    def decision_function(self, texts: Sequence[str]) -> np.ndarray:
        """``z(ridge) + blend * z(complement)`` per category, float64[n_texts, n_categories]."""
        ridge, comp = self._scores(texts)
        (m_r, s_r), (m_c, s_c) = _zscore_scale(ridge), _zscore_scale(comp)
        return (ridge - m_r) / s_r + self.blend * (comp - m_c) / s_c

    def explain(self, text: str, n_terms: int = 10) -> Explanation:
        """The log-odds of the top two categories: ridge intercepts plus one term per feature."""
        page = self._page_features(text)
        ridge, comp = self._scores([text])
        (m_r, s_r), (m_c, s_c) = _zscore_scale(ridge), _zscore_scale(comp)
        scores = ((ridge - m_r) / s_r + self.blend * (comp - m_c) / s_c)[0]
        win, second = _top_two(scores)
        s_r, s_c = float(s_r[0, 0]), float(s_c[0, 0])
        terms = self.blend * (page.weights[:, win] - page.weights[:, second]) / s_c
        fids, tfs = page.fids[page.seen], page.tfs[page.seen]
        unigram = page.first[page.seen] % page.order == 0
        bucket, sign = _kernels.gram_buckets(fids[unigram], self.settings.gram_bits)
        log_tf = np.log1p(page.tfs)
        weight = sign * np.log1p(tfs[unigram]) / np.sqrt(np.sum(log_tf**2))
        coef = self.ridge_coef[bucket]
        terms[unigram] += weight * (coef[:, win] - coef[:, second]) / s_r
        prior = (self.ridge_intercept[win] - self.ridge_intercept[second]) / s_r
        return self._explanation(page, terms, scores, win, second, prior, n_counted=len(page.seen), n_terms=n_terms)


#: The models by name, with their default smoothing.
MODELS = {"dm": DirichletClassifier, "complement": ComplementClassifier,
          "ridge-complement": RidgeComplementClassifier}
DEFAULT_MODEL = "ridge-complement"


def model_from_arrays(state: dict) -> TextClassifier:
    """The model saved by :meth:`~accum.prediction.TextClassifier.to_arrays` (arrays may
    be read-only views)."""
    from .linear import FEATURES, DenseLinearModel

    if state.get("model") in FEATURES:
        return DenseLinearModel.from_arrays(state)
    cls = MODELS.get(state.get("model"))
    if cls is None:
        raise ValueError(f"not a saved model: model {state.get('model')!r}")
    clf = cls.__new__(cls)
    clf.categories = list(state["categories"])
    clf.settings = Settings.from_dict(state["settings"])
    for name in cls._PARAMS:
        setattr(clf, name, float(state[name]))
    for name in cls._ARRAYS:
        setattr(clf, name, np.asarray(state[name.lstrip("_")]))
    return clf


def default_model(settings: Settings) -> str:
    """The model to use when none is named: :data:`DEFAULT_MODEL`, or "complement" for
    accumulators with these settings, which keep no Gram."""
    return DEFAULT_MODEL if settings.gram_bits else "complement"


def model_parameters(name: str, alpha: float | None = None) -> dict:
    """The parameters :func:`make_model` gives model ``name`` (``alpha`` None: its default)."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    signature = inspect.signature(MODELS[name].__init__).parameters
    params = {key: float(p.default) for key, p in signature.items() if key in MODELS[name]._PARAMS}
    return {**params, "alpha": float(alpha)} if alpha is not None else params


def make_model(accumulator: Accumulator, name: str | None = None, alpha: float | None = None,
               shards=None) -> LinearCountModel:
    """The model ``name`` over ``accumulator`` (None: :func:`default_model`; ``alpha`` None:
    the model's default smoothing); with ``shards``, over those counts instead of the
    accumulator's own (see :meth:`LinearCountModel._build`)."""
    name = default_model(accumulator.settings) if name is None else name
    params = model_parameters(name, alpha)  # checks the name
    return MODELS[name](accumulator, **params, shards=shards)

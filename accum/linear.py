"""Discriminative linear models trained over the store's page vectors.

Two families, both one-vs-rest L2-regularised linear SVMs (squared hinge, solved by
dual coordinate descent: :func:`accum._linear_kernels.train_ovr`) over every feature
the training pages hold, unigrams and n-grams, with no cap on their number:

**"svm"**: ``log(1 + tf)`` times the inverse document frequency, each page scaled to
unit L2 norm (a TF-IDF linear SVM, the strong baseline for long documents).

**"nbsvm"**: NBSVM (Wang & Manning 2012, "Baselines and Bigrams"): presence (binary)
features scaled, per class, by naive Bayes' log-count ratio ``r = log((p / |p|_1) /
(q / |q|_1))`` where ``p`` and ``q`` are the document frequencies of the features in the
class and in the other classes plus 1; optionally scaled to unit norm; the learned
weights are interpolated towards their mean magnitude, ``w' = (1 - beta) * mean|w| + beta
* w``, the intercept too, as the weight of a constant feature (beta < 1 trusts naive
Bayes more, which helps short texts).

Both are linear in the page's features (a page's norm is a constant of the page), so
:meth:`DenseLinearModel.explain` decomposes the log-odds of two categories exactly.
The data, the feature maps and which hyper-parameters to use are chosen by
:mod:`accum.selection` from the store's own pages; this module trains and scores.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from . import _kernels, _linear_kernels
from .accumulator import Settings
from .prediction import Explanation, TextClassifier, _chunk_ends, _PageFeatures, _top_two
from .tokens import encode, tokenize
from .vectors import PageVectors

#: Naive Bayes' smoothing in the log-count ratios (Wang & Manning's alpha).
NB_ALPHA = 1.0
#: Dual coordinate descent stops when an epoch's projected gradients span less than
#: this (LIBLINEAR's default for its dual solvers), or after MAX_EPOCHS.
TOLERANCE, MAX_EPOCHS = 0.1, 100
#: The feature maps: (values are presence, scale is per class).
FEATURES = {"svm": (False, False), "nbsvm": (True, True)}


@dataclass(frozen=True)
class PageMatrix:
    """Page vectors as a sparse matrix over *columns*, the distinct features of the
    pages, numbered by decreasing document frequency (the rows of the features most
    pages hold sit together in memory while training).

    Attributes
    ----------
    indptr : int64[n_pages + 1]
    indices : int32[nnz]
        Column of each entry.
    tfs : uint32[nnz]
        Occurrences in the page.
    labels : int32[n_pages]
        Category of each page (an index into ``categories``).
    categories : tuple of str
    fids : uint64[n_cols]
        Feature id of each column.
    df : int64[n_cols]
        Pages holding each column.
    """

    indptr: np.ndarray
    indices: np.ndarray
    tfs: np.ndarray
    labels: np.ndarray
    categories: tuple
    fids: np.ndarray
    df: np.ndarray

    @classmethod
    def from_vectors(cls, vectors: PageVectors) -> "PageMatrix":
        codes, fids, df = _linear_kernels.factorize(vectors.fids)
        order = np.argsort(-df, kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        return cls(vectors.bounds, rank[codes].astype(np.int32), vectors.tfs, vectors.labels,
                   tuple(vectors.categories), fids[order], df[order])

    @property
    def n_pages(self) -> int:
        return len(self.labels)

    @property
    def n_cols(self) -> int:
        return len(self.fids)

    @functools.cached_property
    def n_shared(self) -> int:
        """Columns two pages or more hold: the first ones (the columns go by decreasing
        document frequency)."""
        return int(np.count_nonzero(self.df >= 2))

    def values(self, presence: bool) -> np.ndarray:
        """Each entry's value: 1 for ``presence``, else ``log(1 + tf)`` (float32[nnz], made once)."""
        return self._presence if presence else self._log_tf

    @functools.cached_property
    def _presence(self) -> np.ndarray:
        return np.ones(len(self.tfs), np.float32)

    @functools.cached_property
    def _log_tf(self) -> np.ndarray:
        return np.log1p(self.tfs.astype(np.float32))

    def class_counts(self, rows: np.ndarray, one_class: bool = False) -> np.ndarray:
        """Pages of ``rows`` holding each column, per class (or over all, ``one_class``):
        document frequencies, int32[n_cols, n_classes or 1]."""
        labels = np.zeros(self.n_pages, np.int32) if one_class else self.labels
        return _linear_kernels.class_counts(self.indptr, self.indices, np.asarray(rows, np.int64), labels, self.n_cols,
                                            1 if one_class else len(self.categories))

    def class_sums(self, rows: np.ndarray, values: np.ndarray, row_weight: np.ndarray,
                   n_rows: int) -> tuple[np.ndarray, np.ndarray]:
        """Per column and class, the sum over the pages ``rows`` of ``values`` times
        ``row_weight``: float64[n_rows, n_classes] for the first ``n_rows`` columns, and
        float64[n_classes] over the others."""
        return _linear_kernels.class_sums(self.indptr, self.indices, values, np.asarray(rows, np.int64), row_weight,
                                          self.labels, n_rows, len(self.categories))


@dataclass
class Trained:
    """One fitted SVM family at one C over some training pages (weights times the scale)."""

    family: str
    normalize: bool
    C: float
    ws: np.ndarray  # float32[n_kept, n_problems] (a view of the path's weights); see ``beyond``
    bias: np.ndarray  # float64[n_problems]
    scale: np.ndarray  # float32[n_cols, 1 or n_problems]; 0 for columns the training pages lack
    epochs: int
    # the columns past ws's rows (each held by one page of the store, a training page: no
    # other page reads their weights): sum of |w| and how many, float64[2, n_problems]
    beyond: np.ndarray

    def weights(self, beta: float = 1.0) -> np.ndarray:
        """The scoring weights, float32[n_kept, n_problems]: ``ws``, or for "nbsvm" the
        interpolation ``(1 - beta) * mean|w| * r + beta * ws`` (the mean over the
        columns the training pages hold)."""
        if self.family != "nbsvm" or beta == 1.0:
            return self.ws
        scale = self.scale[: len(self.ws)]
        return (np.float32(1.0 - beta) * self._mean_abs * scale + np.float32(beta) * self.ws).astype(np.float32)

    def intercepts(self, beta: float = 1.0) -> np.ndarray:
        """The intercepts, float64[n_problems]: for "nbsvm" interpolated as the weights
        are, since the solver's intercept is the weight of a constant feature
        (``(1 - beta) * mean|w| + beta * b``)."""
        if self.family != "nbsvm" or beta == 1.0:
            return self.bias
        return (1.0 - beta) * self._mean_abs.astype(np.float64) + beta * self.bias

    @functools.cached_property
    def _mean_abs(self) -> np.ndarray:
        return _linear_kernels.mean_abs_ratio(self.ws, self.scale, self.beyond)


def problem_targets(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """+1/-1 per page and problem: one problem per class (one-vs-rest), or one for two
    classes (class 1 against class 0), int8[n_pages, n_problems]."""
    if n_classes == 2:
        return np.where(labels == 1, 1, -1).astype(np.int8)[:, None]
    return np.where(labels[:, None] == np.arange(n_classes)[None, :], 1, -1).astype(np.int8)


class TrainingPages:
    """The training pages of a model (all, or a fold's) with what every family learns from
    them about the columns, computed once: document frequencies per class, and the
    per-column scale of each family (:meth:`scale`)."""

    def __init__(self, matrix: PageMatrix, rows: np.ndarray):
        self.matrix = matrix
        self.rows = np.asarray(rows, np.int64)
        self._scales: dict[str, np.ndarray] = {}

    @functools.cached_property
    def df(self) -> np.ndarray:
        """Training pages holding each column, int64[n_cols]."""
        return self.matrix.class_counts(self.rows, one_class=True)[:, 0].astype(np.int64)

    @functools.cached_property
    def private(self) -> np.ndarray:
        """The columns exactly one training page holds, bool[n_cols]."""
        return self.df == 1

    def scale(self, family: str) -> np.ndarray:
        """The per-column scale of ``family``: the inverse document frequency ``log((1 +
        n) / (1 + df)) + 1`` (float32[n_cols, 1]) for "svm", naive Bayes' log-count ratio
        per problem (float32[n_cols, n_problems]) for "nbsvm"; 0 for columns no training
        page holds (features unseen in training carry nothing)."""
        if family not in self._scales:
            self._scales[family] = self._idf() if family == "svm" else self._log_count_ratio()
        return self._scales[family]

    def _log_count_ratio(self) -> np.ndarray:
        class_df = self.matrix.class_counts(self.rows)  # not kept: as large as the ratios
        self.__dict__.setdefault("df", class_df.sum(axis=1, dtype=np.int64))
        return _linear_kernels.log_count_ratio(class_df, self.df, NB_ALPHA)

    def _idf(self) -> np.ndarray:
        df = self.df
        idf = np.log((1.0 + len(self.rows)) / (1.0 + df)) + 1.0
        return np.where(df > 0, idf, 0.0).astype(np.float32)[:, None]


def inverse_norms(matrix: PageMatrix, values: np.ndarray, scale: np.ndarray, rows: np.ndarray,
                  normalize: bool) -> np.ndarray:
    """``1 / ||values * scale||_2`` of each page of ``rows`` (float32[n, n_s]), or ones."""
    out = np.ones((len(rows), scale.shape[1]), np.float32)
    if normalize:
        _linear_kernels.inverse_norms(matrix.indptr, matrix.indices, values, scale, np.asarray(rows, np.int64), out)
    return out


def epoch_cost(pages: TrainingPages, family: str) -> int:
    """What one pass of :func:`train_path` over ``pages`` costs, in entry visits per
    problem (twice for a per-problem scale, which doubles what each update reads)."""
    matrix = pages.matrix
    n_problems = problem_targets(matrix.labels[:1], len(matrix.categories)).shape[1]
    nnz = int(np.sum(matrix.indptr[pages.rows + 1] - matrix.indptr[pages.rows]))
    return nnz * n_problems * (2 if FEATURES[family][1] and n_problems > 1 else 1)


class PathSolver:
    """The SVMs of ``family`` on ``pages`` for each C of ``Cs`` (one set of problems per C,
    solved in lockstep), run a few passes at a time (:meth:`run`), so that a search can
    stop a path early and continue the others.

    ``kept_columns``: keep the weights of the first columns only (default all). A search
    keeps those that two pages of the store or more hold: the weight of a column only one
    page holds, a training page, is read by no held-out page (:class:`Trained` keeps what
    the interpolation of NBSVM needs of them)."""

    def __init__(self, pages: TrainingPages, family: str, normalize: bool, Cs: Sequence[float], seed: int = 0,
                 kept_columns: int | None = None):
        matrix, rows = pages.matrix, pages.rows
        self.pages, self.family, self.normalize, self.Cs, self.seed = pages, family, normalize, list(Cs), seed
        self.values = matrix.values(FEATURES[family][0])
        self.scale = pages.scale(family)
        self.inv = inverse_norms(matrix, self.values, self.scale, rows, normalize)
        self.rows_ = _linear_kernels.training_rows(matrix.indptr, matrix.indices, self.values, rows, pages.private,
                                                   self.inv, self.scale)
        targets = problem_targets(matrix.labels[rows], len(matrix.categories))
        self.n_prob = targets.shape[1]
        self.targets = np.tile(targets, (1, len(Cs)))
        self.ws = np.zeros((kept_columns or matrix.n_cols, self.targets.shape[1]), np.float32)
        self.bias, self.alpha = np.zeros(self.targets.shape[1]), np.zeros((len(rows), self.targets.shape[1]))
        self.costs = np.repeat(np.asarray(Cs, np.float64), self.n_prob)
        self.epochs = 0

    def keep(self, Cs: Sequence[float]) -> None:
        """Go on with the problems of ``Cs`` only (a subset of the path's, possibly none):
        each problem is solved on its own, so the ones kept continue exactly as they would
        have. (Weights of the others, and earlier :meth:`run` results, are overwritten.)"""
        n, blocks = self.n_prob, sorted(self.Cs.index(C) for C in Cs)
        cols = np.asarray([b * n + c for b in blocks for c in range(n)], np.int64)
        self.Cs = [self.Cs[b] for b in blocks]
        self.ws = _linear_kernels.keep_columns(self.ws, cols)
        self.targets = np.ascontiguousarray(self.targets[:, cols])
        self.alpha = np.ascontiguousarray(self.alpha[:, cols])
        self.bias, self.costs = self.bias[cols], self.costs[cols]

    def run(self, epochs: int) -> list[Trained]:
        """Up to ``epochs`` more passes (fewer once every problem has converged); then one
        :class:`Trained` per C (views of the path's weights: a later :meth:`run` or
        :meth:`keep` changes them)."""
        indptr, indices, values, q, own = self.rows_
        matrix = self.pages.matrix
        self.epochs += _linear_kernels.train_ovr(indptr, indices, values, self.targets, self.inv, self.scale, q, own,
                                                 self.costs, self.ws, self.bias, self.alpha, epochs, TOLERANCE,
                                                 self.seed + self.epochs)
        beyond = np.zeros((2, self.targets.shape[1]))
        _linear_kernels.private_weights(matrix.indptr, matrix.indices, self.values, self.pages.rows,
                                        self.pages.private, self.targets, self.inv, self.scale, self.alpha, self.ws,
                                        beyond)
        n = self.n_prob
        return [Trained(self.family, self.normalize, float(C), self.ws[:, i * n : (i + 1) * n],
                        self.bias[i * n : (i + 1) * n].copy(), self.scale, self.epochs, beyond[:, i * n : (i + 1) * n])
                for i, C in enumerate(self.Cs)]


def train_path(pages: TrainingPages, family: str, normalize: bool, Cs: Sequence[float], seed: int = 0,
               max_epochs: int = MAX_EPOCHS) -> list[Trained]:
    """Train ``family`` on ``pages`` for each C of ``Cs`` at once (see :class:`PathSolver`)."""
    return PathSolver(pages, family, normalize, Cs, seed).run(max_epochs)


def score_pages(matrix: PageMatrix, rows: np.ndarray, trained: Trained, betas: Sequence[float] = (1.0,)) -> list:
    """Scores of the pages ``rows`` (held out) under ``trained`` for each interpolation
    beta (see :meth:`Trained.weights`), each float64[n, n_categories] (two classes:
    ``[-s / 2, s / 2]`` for the problem's score s, as a model scores them). The sums over
    the pages' features are made once: a beta only mixes the weights' and the scale's."""
    presence, _ = FEATURES[trained.family]
    rows = np.asarray(rows, np.int64)
    values = matrix.values(presence)
    inv = inverse_norms(matrix, values, trained.scale, rows, trained.normalize)

    def sums(weights: np.ndarray) -> np.ndarray:
        out = np.empty((len(rows), weights.shape[1]))
        _linear_kernels.score_rows(matrix.indptr, matrix.indices, values, rows, inv, weights, np.zeros(weights.shape[1]),
                                   out)
        return out

    learned = sums(trained.ws)
    ratio = sums(trained.scale) if any(b != 1.0 for b in betas) else None
    out = []
    for beta in betas:
        scores = trained.intercepts(beta) + (learned if beta == 1.0 else
                                             beta * learned + (1.0 - beta) * trained._mean_abs * ratio)
        out.append(_two_sided(scores) if len(matrix.categories) == 2 else scores)
    return out


def _two_sided(scores: np.ndarray) -> np.ndarray:
    """The two classes' scores ``[-s / 2, s / 2]`` of a one-problem score s."""
    return np.hstack([-scores / 2, scores / 2])


class DenseLinearModel(TextClassifier):
    """A trained "svm" or "nbsvm" model (see the module notes), ready to classify text.

    Each feature seen in training has one row of weights (float32, one per category) and
    one of scales (for the page's norm); a page scores ``bias[c] + sum_w x_w *
    weights[w, c] / norm_c`` over its features seen in training, where ``x`` is presence
    ("nbsvm") or ``log(1 + tf)`` ("svm") and ``norm_c`` the page's L2 norm under the
    scale (1 without normalisation). Built by :meth:`from_trained`; saved and restored
    with :meth:`to_arrays` and :func:`accum.classify.model_from_arrays`.
    """

    _PARAMS = ("C", "beta", "normalize")
    #: The feature table is saved too, so that a saved model is memory-mapped, not rebuilt.
    _ARRAYS = ("fids", "weights", "scale", "bias", "_table")

    @classmethod
    def from_trained(cls, trained: Trained, matrix: PageMatrix, settings: Settings,
                     beta: float = 1.0) -> "DenseLinearModel":
        held = trained.scale.any(axis=1)  # columns the training pages hold (all, trained on every page)
        held = slice(None) if held.all() else np.nonzero(held)[0]
        weights = trained.weights(beta)[held]
        bias = trained.intercepts(beta)
        if len(matrix.categories) == 2:
            weights, bias = _two_sided(weights), _two_sided(bias[None, :])[0]
        model = cls.__new__(cls)
        model.name, model.categories, model.settings = trained.family, list(matrix.categories), settings
        model.C, model.beta, model.normalize = trained.C, float(beta), float(trained.normalize)
        model.fids = np.ascontiguousarray(matrix.fids[held])
        model.weights = np.ascontiguousarray(weights, np.float32)
        scale = trained.scale[held]
        if len(matrix.categories) == 2 and scale.shape[1] == 1 and trained.family == "nbsvm":
            scale = np.hstack([scale, scale])  # one ratio, used by both classes' scores
        model.scale = np.ascontiguousarray(scale, np.float32)
        model.bias = np.asarray(bias, np.float64)
        model._build_table()
        return model

    def _build_table(self) -> None:
        self._table = _kernels.key_table([self.fids], [np.arange(len(self.fids), dtype=np.uint64)])

    @classmethod
    def from_arrays(cls, state: dict) -> "DenseLinearModel":
        missing = [k for k in ("categories", "settings", *cls._PARAMS, *(a.lstrip("_") for a in cls._ARRAYS[:4]))
                   if k not in state]
        if missing:
            raise ValueError(f"not a saved model: a {state.get('model')!r} model needs {', '.join(missing)}")
        model = cls.__new__(cls)
        model.name, model.categories = state["model"], list(state["categories"])
        model.settings = Settings.from_dict(state["settings"])
        for name in cls._PARAMS:
            setattr(model, name, float(state[name]))
        for name in cls._ARRAYS:
            if name.lstrip("_") in state:
                setattr(model, name, np.asarray(state[name.lstrip("_")]))
        if "table" not in state:
            model._build_table()
        return model

    def params(self) -> dict:
        """C, beta (NBSVM only) and whether pages are scaled to unit norm."""
        return {"C": self.C, **({"beta": self.beta} if self.name == "nbsvm" else {}), "normalize": bool(self.normalize)}

    @property
    def presence(self) -> bool:
        return FEATURES[self.name][0]

    def decision_function(self, texts: Sequence[str]) -> np.ndarray:
        """Score of each category, float64[n_texts, n_categories]."""
        out = np.tile(self.bias, (len(texts), 1))
        start = 0
        for stop in _chunk_ends(texts):
            buf, bounds = encode(texts[start:stop], self.settings.lowercase)
            _kernels.score_dense(buf, bounds, self.settings.max_order, self._table, self.weights, self.scale,
                                 self.presence, bool(self.normalize), out[start:stop])
            start = stop
        return out

    def explain(self, text: str, n_terms: int = 10) -> Explanation:
        """The log-odds of the top two categories: their biases plus one exact term per feature."""
        batch = tokenize([text], self.settings.lowercase)
        order = self.settings.max_order
        fids, tfs, first, _ = _kernels.page_features(batch.ngrams(order), batch.bounds)
        rows = _kernels.linear_starts(fids, self._table)
        seen = np.nonzero(rows >= 0)[0]
        rows = rows[seen]
        x = np.ones(len(seen)) if self.presence else np.log1p(tfs[seen].astype(np.float64))
        weights = self.weights[rows].astype(np.float64)
        inv = np.ones(self.scale.shape[1])
        if self.normalize:
            norms = np.sqrt(((x[:, None] * self.scale[rows]) ** 2).sum(axis=0))
            inv = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
        scores = self.decision_function([text])[0]
        win, second = _top_two(scores)
        inv_w, inv_s = (inv[0], inv[0]) if len(inv) == 1 else (inv[win], inv[second])
        terms = x * (weights[:, win] * inv_w - weights[:, second] * inv_s)
        page = _PageFeatures(batch, order, fids, tfs, first, seen, weights)
        return self._explanation(page, terms, scores, win, second, self.bias[win] - self.bias[second],
                                 n_counted=len(seen), n_terms=n_terms)

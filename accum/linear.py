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
import tempfile
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
    log_tf : float32[nnz]
        ``log(1 + occurrences in the page)``.
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
    log_tf: np.ndarray
    labels: np.ndarray
    categories: tuple
    fids: np.ndarray
    df: np.ndarray

    @classmethod
    def from_vectors(cls, vectors: PageVectors) -> "PageMatrix":
        return cls.from_parts(vectors.bounds, vectors.labels, vectors.categories, [vectors.fids], [vectors.tfs])

    @classmethod
    def from_parts(cls, bounds: np.ndarray, labels: np.ndarray, categories: Sequence[str], features,
                   counts) -> "PageMatrix":
        """The matrix of pages (``bounds``, ``labels`` as :class:`PageVectors` has them)
        whose entries' feature ids come in ``features`` and their counts in ``counts``
        (arrays in page order, ``bounds[-1]`` entries in all, each read once). Views of
        memory-mapped segments serve, so that the pages' 64-bit feature ids are never held
        whole."""
        nnz = int(bounds[-1])
        codes, fids, df = _linear_kernels.factorize_parts(features, nnz)
        log_tf, at = np.empty(nnz, np.float32), 0
        for tfs in counts:
            np.log1p(tfs, out=log_tf[at : at + len(tfs)], dtype=np.float32, casting="unsafe")
            at += len(tfs)
        order = np.argsort(-df, kind="stable")
        rank = np.empty(len(fids), np.int32)
        rank[order] = np.arange(len(fids))
        _linear_kernels.renumber(codes, rank)
        return cls(bounds, codes, log_tf, labels, tuple(categories), fids[order], df[order])

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
        """Each entry's value, float32[nnz]: 1 for ``presence`` (a read-only view of one
        value, which takes no memory), else ``log(1 + tf)``."""
        return np.broadcast_to(np.float32(1.0), self.log_tf.shape) if presence else self.log_tf

    def _classes(self, one_class: bool, slots: np.ndarray | None) -> tuple[np.ndarray, int]:
        """Each page's column in a per-class table, and the table's width: one column
        (``one_class``), the classes ``c`` with ``slots[c] >= 0`` in column ``slots[c]``
        (the others' pages left out), or every class."""
        if one_class:
            return np.zeros(self.n_pages, np.int32), 1
        if slots is not None:
            return slots[self.labels], int(slots.max()) + 1
        return self.labels, len(self.categories)

    def slots(self, classes: np.ndarray) -> np.ndarray:
        """The ``slots`` that put the classes ``classes`` in columns 0, 1, … of a per-class
        table and leave the others out (see :meth:`class_counts`)."""
        slots = np.full(len(self.categories), -1, np.int32)
        slots[classes] = np.arange(len(classes))
        return slots

    def class_counts(self, rows: np.ndarray, one_class: bool = False, slots: np.ndarray | None = None) -> np.ndarray:
        """Pages of ``rows`` holding each column, per class (or as :meth:`_classes` says):
        document frequencies, int32[n_cols, width]."""
        labels, width = self._classes(one_class, slots)
        return _linear_kernels.class_counts(self.indptr, self.indices, np.asarray(rows, np.int64), labels, self.n_cols,
                                            width)

    def class_sums(self, rows: np.ndarray, values: np.ndarray, row_weight: np.ndarray, n_rows: int,
                   one_class: bool = False, slots: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Per column and class (or as :meth:`_classes` says), the sum over the pages
        ``rows`` of ``values`` times ``row_weight``: float64[n_rows, width] for the first
        ``n_rows`` columns, and float64[width] over the others."""
        labels, width = self._classes(one_class, slots)
        return _linear_kernels.class_sums(self.indptr, self.indices, values, np.asarray(rows, np.int64), row_weight,
                                          labels, n_rows, width)


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
    # which of the path's problems these are (a path solved in groups of classes yields
    # one Trained per group and C), int64[n_problems]
    problems: np.ndarray

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

    def scale(self, family: str, problems: np.ndarray | None = None) -> np.ndarray:
        """The per-column scale of ``family``: the inverse document frequency ``log((1 +
        n) / (1 + df)) + 1`` (float32[n_cols, 1]) for "svm", naive Bayes' log-count ratio
        per problem (float32[n_cols, n_problems]) for "nbsvm", of the ``problems`` only
        when given (made each time: a path solved in groups of classes holds one group's
        at a time); 0 for columns no training page holds (features unseen in training
        carry nothing)."""
        if family == "nbsvm" and problems is not None and len(problems) < self.n_problems:
            return self._log_count_ratio(problems)
        if family not in self._scales:
            self._scales[family] = self._idf() if family == "svm" else self._log_count_ratio()
        return self._scales[family]

    @property
    def n_problems(self) -> int:
        n = len(self.matrix.categories)
        return 1 if n == 2 else n

    def _log_count_ratio(self, problems: np.ndarray | None = None) -> np.ndarray:
        two = len(self.matrix.categories) == 2
        if problems is None or two:
            class_df = self.matrix.class_counts(self.rows)  # not kept: as large as the ratios
            self.__dict__.setdefault("df", class_df.sum(axis=1, dtype=np.int64))
        else:
            class_df = self.matrix.class_counts(self.rows, slots=self.matrix.slots(problems))
        return _linear_kernels.log_count_ratio(class_df, self.df, NB_ALPHA, two)

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
    the interpolation of NBSVM needs of them).

    ``max_bytes``: the arrays of a set of problems (weights, dual variables, NBSVM's
    per-class scale) may take this much (default: no limit). Past it, the problems are
    solved in groups of classes, one group at a time, each group's arrays kept in a
    temporary file between :meth:`run` calls (in ``scratch``, a directory on the disk the
    memory is spared for: the system's temporary directory may be memory itself; the file
    has no name, so a killed process leaves nothing behind), and the solver reads the
    training pages from the page matrix instead of a compact copy of them. Each problem is solved on its own,
    in the same seeded page order, over the same entries, so the groups' solutions are
    those of one set, bit for bit.
    """

    def __init__(self, pages: TrainingPages, family: str, normalize: bool, Cs: Sequence[float], seed: int = 0,
                 kept_columns: int | None = None, max_bytes: int | None = None, scratch=None):
        matrix, rows = pages.matrix, pages.rows
        self.pages, self.family, self.normalize, self.Cs, self.seed = pages, family, normalize, list(Cs), seed
        self.values = matrix.values(FEATURES[family][0])
        self.kept = kept_columns or matrix.n_cols
        # the training pages' shared entries, copied compact (the solver's reads stay in
        # one block) and kept between runs; with memory bounded there is no copy: the
        # solver reads the page matrix itself and skips the private columns, the same sums
        self._rows = None
        self._bounded = max_bytes is not None
        self.targets = problem_targets(matrix.labels[rows], len(matrix.categories))
        self.n_prob = self.targets.shape[1]
        size = self.n_prob if max_bytes is None else max(1, min(self.n_prob, max_bytes // self._class_bytes()))
        self.groups = [np.arange(a, min(a + size, self.n_prob)) for a in range(0, self.n_prob, size)]
        self._scratch = scratch
        self._spill: dict | None = {} if len(self.groups) > 1 else None  # group -> its unnamed file
        self._state: dict[int, dict] = {}  # a group's weights and dual variables, when held in memory
        self._kept_inputs = None
        self.epochs = 0

    def _class_bytes(self) -> int:
        """Bytes a problem's arrays take at every C of the path (see ``max_bytes``)."""
        n, n_c = len(self.pages.rows), len(self.Cs)
        per_class = 4 * self.kept * n_c + 8 * n * n_c + n * n_c
        if FEATURES[self.family][1]:  # a scale column, its counts, its norms and diagonals
            per_class += 8 * self.pages.matrix.n_cols + 20 * n
        return per_class

    def _inputs(self, problems: np.ndarray) -> tuple:
        """What solving the ``problems`` reads besides the pages: the scale, the pages'
        inverse norms under it and the dual's diagonals (kept for a path of one group)."""
        if self._kept_inputs is not None:
            return self._kept_inputs
        matrix, rows = self.pages.matrix, self.pages.rows
        scale = self.pages.scale(self.family, problems)
        inv = inverse_norms(matrix, self.values, scale, rows, self.normalize)
        q, own = _linear_kernels.dual_diagonal(matrix.indptr, matrix.indices, self.values, rows, self.pages.private,
                                               inv, scale)
        if self._spill is None:
            self._kept_inputs = scale, inv, q, own
        return scale, inv, q, own

    def _load(self, g: int) -> dict:
        """Group ``g``'s weights, intercepts, dual variables and private-column sums
        (zeros before its first pass)."""
        if g in self._state:
            return self._state[g]
        if self._spill is not None and g in self._spill:
            f = self._spill[g]
            f.seek(0)
            return {name: np.load(f) for name in _SPILLED}
        width = len(self.groups[g]) * len(self.Cs)
        return {"ws": np.zeros((self.kept, width), np.float32), "bias": np.zeros(width),
                "alpha": np.zeros((len(self.pages.rows), width)), "beyond": np.zeros((2, width))}

    def _save(self, g: int, state: dict) -> None:
        if self._spill is None:
            self._state[g] = state
            return
        f = self._spill.get(g)
        if f is None:
            f = self._spill[g] = tempfile.TemporaryFile(prefix="accum-solver-", dir=self._scratch)
        f.seek(0)
        f.truncate()
        for name in _SPILLED:
            np.save(f, state[name])

    def keep(self, Cs: Sequence[float]) -> None:
        """Go on with the problems of ``Cs`` only (a subset of the path's, possibly none):
        each problem is solved on its own, so the ones kept continue exactly as they would
        have. (Weights of the others, and earlier results, are overwritten.)"""
        blocks = sorted(self.Cs.index(C) for C in Cs)
        if not blocks:  # the path is done with: let its arrays go
            self._state.clear()
            if self._spill is not None:
                for f in self._spill.values():
                    f.close()
                self._spill.clear()
        for g, problems in enumerate(self.groups if blocks else ()):
            n = len(problems)
            cols = np.asarray([b * n + c for b in blocks for c in range(n)], np.int64)
            state = self._load(g)
            state["ws"] = _linear_kernels.keep_columns(state["ws"], cols)
            for name in ("bias", "alpha", "beyond"):
                state[name] = np.ascontiguousarray(state[name][..., cols])
            self._save(g, state)
        self.Cs = [self.Cs[b] for b in blocks]

    def run(self, epochs: int) -> None:
        """Up to ``epochs`` more passes (fewer once every problem has converged); read the
        results with :meth:`trained`."""
        matrix = self.pages.matrix
        if self._bounded:  # no copy: the solver reads the matrix itself, skipping the private columns
            entries = matrix.indptr, matrix.indices, self.values, self.pages.rows, self.pages.private
        else:
            if self._rows is None:
                indptr, indices, values = _linear_kernels.shared_rows(matrix.indptr, matrix.indices, self.values,
                                                                      self.pages.rows, self.pages.private)
                if FEATURES[self.family][0]:  # presence: every value is 1, a view of one value holds them
                    values = np.broadcast_to(np.float32(1.0), indices.shape)
                self._rows = indptr, indices, values, np.arange(len(self.pages.rows)), np.zeros(0, np.bool_)
            entries = self._rows
        n_c, ran = len(self.Cs), 0
        for g, problems in enumerate(self.groups):
            state = self._load(g)
            scale, inv, q, own = self._inputs(problems)
            targets = np.tile(self.targets[:, problems], (1, n_c))
            costs = np.repeat(np.asarray(self.Cs, np.float64), len(problems))
            ran = max(ran, _linear_kernels.train_ovr(*entries, targets, inv, scale, q, own, costs, state["ws"],
                                                     state["bias"], state["alpha"], epochs, TOLERANCE,
                                                     self.seed + self.epochs))
            state["beyond"][:] = 0.0
            _linear_kernels.private_weights(matrix.indptr, matrix.indices, self.values, self.pages.rows,
                                            self.pages.private, targets, inv, scale, state["alpha"], state["ws"],
                                            state["beyond"])
            self._save(g, state)
        self.epochs += ran

    def trained(self):
        """For each group of problems, one :class:`Trained` per C (a generator: a group's
        arrays are read when it is reached; views of the path's weights, which a later
        :meth:`run` or :meth:`keep` changes when the path is one group)."""
        for g, problems in enumerate(self.groups):
            state, n = self._load(g), len(problems)
            scale = self._kept_inputs[0] if self._kept_inputs else self.pages.scale(self.family, problems)
            yield [Trained(self.family, self.normalize, float(C), state["ws"][:, i * n : (i + 1) * n],
                           state["bias"][i * n : (i + 1) * n].copy(), scale, self.epochs,
                           state["beyond"][:, i * n : (i + 1) * n], problems)
                   for i, C in enumerate(self.Cs)]


#: The arrays of a group of problems spilled between runs, in their order in its file.
_SPILLED = ("ws", "bias", "alpha", "beyond")


def train_path(pages: TrainingPages, family: str, normalize: bool, Cs: Sequence[float], seed: int = 0,
               max_epochs: int = MAX_EPOCHS) -> list[Trained]:
    """Train ``family`` on ``pages`` for each C of ``Cs`` at once (see :class:`PathSolver`)."""
    solver = PathSolver(pages, family, normalize, Cs, seed)
    solver.run(max_epochs)
    return next(solver.trained())


def score_pages(matrix: PageMatrix, rows: np.ndarray, trained: Trained, betas: Sequence[float] = (1.0,)) -> list:
    """Scores of the pages ``rows`` (held out) under ``trained`` for each interpolation
    beta (see :meth:`Trained.weights`), each float64[n, n_problems of trained] (two
    classes: ``[-s / 2, s / 2]`` for the problem's score s, as a model scores them). The
    sums over the pages' features are made once: a beta only mixes the weights' and the
    scale's."""
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


def path_scores(solver: PathSolver, rows: np.ndarray, betas: dict) -> dict:
    """Scores of the held-out pages ``rows`` under each C of ``solver`` that ``betas``
    (C -> interpolation betas) names, at each of its betas: ``{C: [float64[n,
    n_categories] per beta]}``, put together from the solver's groups of classes."""
    matrix = solver.pages.matrix
    n_cat = len(matrix.categories)
    out = {C: [np.empty((len(rows), n_cat)) for _ in betas[C]] for C in solver.Cs if betas.get(C)}
    for group in solver.trained():
        for trained in group:
            if trained.C not in out:
                continue
            cols = slice(None) if n_cat == 2 else trained.problems
            for whole, part in zip(out[trained.C], score_pages(matrix, rows, trained, betas[trained.C])):
                whole[:, cols] = part
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
    def from_trained(cls, parts, matrix: PageMatrix, settings: Settings, beta: float = 1.0,
                     held: np.ndarray | None = None) -> "DenseLinearModel":
        """The model of ``parts``: a :class:`Trained` of every problem, or the groups of a
        path at one C (any iterable of :class:`Trained`, each read once, so that only
        the model's arrays and one group are held at a time). It keeps the columns
        ``held`` (bool[n_cols]; default: those the training pages hold, by the scale)."""
        parts = [parts] if isinstance(parts, Trained) else parts
        two = len(matrix.categories) == 2
        model = cls.__new__(cls)
        model.categories, model.settings, model.beta = list(matrix.categories), settings, float(beta)
        model.bias = np.zeros(len(matrix.categories))
        for part in parts:
            if not hasattr(model, "weights"):
                held = part.scale.any(axis=1) if held is None else held
                held = slice(None) if held.all() else np.nonzero(held)[0]
                n_held = matrix.n_cols if isinstance(held, slice) else len(held)
                model.name, model.C, model.normalize = part.family, part.C, float(part.normalize)
                model.fids = np.ascontiguousarray(matrix.fids[held])
                model.weights = np.empty((n_held, len(matrix.categories)), np.float32)
                per_class = part.family == "nbsvm"  # two classes: one ratio, used by both classes' scores
                model.scale = np.empty((n_held, len(matrix.categories) if per_class else 1), np.float32)
            weights, bias = part.weights(beta)[held], part.intercepts(beta)
            if two:
                model.weights[:], model.bias[:] = _two_sided(weights), _two_sided(bias[None, :])[0]
                model.scale[:] = part.scale[held]
            else:
                model.weights[:, part.problems], model.bias[part.problems] = weights, bias
                model.scale[:, part.problems if model.scale.shape[1] > 1 else slice(None)] = part.scale[held]
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

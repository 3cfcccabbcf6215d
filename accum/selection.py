"""The store chooses its classifier by cross-validation over its own pages.

No constant here is a value tuned on a corpus: the grids below are starting points of
a search, and the search decides, for the data at hand, between complement naive
Bayes (counts only; strong on short texts and small data), a TF-IDF linear SVM
(strong on long documents) and NBSVM (Wang & Manning 2012, strong on both), and their
hyper-parameters.

Protocol
--------
- **Folds.** k folds (5 below 2,000 pages, else 3), the same for every candidate. When
  the pages come from several sites (the registered domain of their URL, or the blogger
  of a ``blog://`` URL), whole sites go to one fold, since pages of one site resemble
  each other more than pages of a new site do (a crawl keeps meeting new sites);
  otherwise pages are dealt to folds class by class in a seeded shuffle.
- **Racing.** All candidates are scored on the first fold; after each fold a candidate
  whose held-out pages the leader gets right significantly more often than it does
  (paired: ``b - c > 2 sqrt(b + c)`` where b counts pages only the leader gets right
  and c pages only the candidate does) drops out, so the others' folds cost nothing.
  Within a fold, every SVM path is scored after :data:`EARLY_EPOCHS` passes first; the
  candidates the leader already beats drop out there if their C is below one that goes on
  (a larger C converges more slowly: its early score understates it), or with their whole
  path, and the C values no other candidate needs stop (successive halving). Once one
  candidate is left and :data:`SETTLED_PAGES` pages have been held out, no further fold
  is started.
- **Budget.** Training is counted in passes of the solver, each weighed by the entries
  and problems it visits, against ``budget_passes`` passes over every page: a unit that
  is deterministic (the same data and seed give the same choice on any machine) and
  proportional to the cost of training one model (with a floor of a fixed number of
  entry visits, so that a small store is cross-validated whole). A path of C values gets the budget
  left (at most :data:`CV_EPOCHS` passes per C); one that cannot afford
  :data:`MIN_PASSES` is not tried, and no fold is started once the budget is spent.
- **Choice.** Among the candidates still in the race, the highest accuracy over the
  held-out pages scored; ties go to the cheaper model. The chosen candidate is then
  trained on every page, and its temperature, confidence map and label-set thresholds
  are fitted on its held-out scores (no separate calibration set needed).
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence
from urllib.parse import urlsplit

import numpy as np

from . import _linear_kernels
from .accumulator import Accumulator, Settings
from .classify import make_model
from .linear import DenseLinearModel, PageMatrix, PathSolver, TrainingPages, epoch_cost, inverse_norms, path_scores
from .prediction import TextClassifier
from .vectors import PageVectors

#: Complement naive Bayes' smoothing tried.
COMPLEMENT_ALPHAS = (0.01, 0.03, 0.1, 0.3, 1.0)
#: The SVM paths tried: (family, normalise, C values ascending, beta values). Each holds
#: the setting its authors recommend (LinearSVC's C 1; NBSVM's C 1 and beta 0.25).
SVM_PATHS = (
    ("svm", True, (0.3, 1.0, 3.0), (1.0,)),
    ("nbsvm", True, (0.3, 1.0), (0.25, 0.5, 1.0)),
    ("nbsvm", False, (0.1, 0.3, 1.0), (0.25, 0.5, 1.0)),
)
#: Solver passes over every page that the search may spend (see the module notes), and
#: the fewest a path of C values must be able to afford per C to be tried.
BUDGET_PASSES, MIN_PASSES = 60, 5
#: Passes per C at most while cross-validating, and for the model trained on every page:
#: a linear SVM's accuracy settles within a few passes, long before the dual meets
#: LIBLINEAR's tolerance, so more would cost the search without changing its choice.
CV_EPOCHS, FINAL_EPOCHS = 10, 10
#: Passes after which every SVM path of a fold is scored a first time (see :func:`_score_fold`).
EARLY_EPOCHS = 3
#: Entry visits the search may spend whatever the store's size: small stores are cheap
#: to cross-validate whole, and their choice needs every held-out page it can get.
MIN_BUDGET_VISITS = 300_000_000
#: Held-out pages after which a search left with one candidate stops: its accuracy is
#: then known within about one point (95 %), and more folds would only narrow the
#: interval of a choice already made.
SETTLED_PAGES = 5_000
#: A candidate drops out when the leader wins this many standard deviations more pages.
DROP_Z = 2.0
#: Bytes the arrays of a family's fold may take (an SVM path's weights, dual variables
#: and NBSVM's per-class scale; complement naive Bayes' per-class weights): past that,
#: its classes are solved and scored in groups (see :class:`accum.linear.PathSolver`),
#: with the same result. With a memory budget, the SVM paths run one at a time, each
#: within a quarter of the budget.
MAX_PATH_BYTES = 1 << 30
#: Cost order of the families, for ties.
CHEAPEST_FIRST = ("complement", "nbsvm", "svm")


class StoreTooLarge(ValueError):
    """No candidate model could be cross-validated within the search's budget of passes."""


@dataclass(frozen=True)
class Candidate:
    """A model family with its hyper-parameters."""

    family: str
    params: tuple  # sorted (name, value) pairs

    @property
    def label(self) -> str:
        return f"{self.family}(" + ", ".join(f"{k}={_fmt(v)}" for k, v in self.params) + ")"

    def param(self, name: str, default=None):
        return dict(self.params).get(name, default)


def _fmt(value) -> str:
    return str(value).lower() if isinstance(value, bool) else f"{value:g}"


@dataclass
class Scored:
    """A candidate's held-out results so far."""

    candidate: Candidate
    correct: list = field(default_factory=list)  # bool[n] per fold scored
    scores: list = field(default_factory=list)  # float64[n, n_categories] per fold scored
    dropped_after: int | None = None  # folds scored when it dropped out
    skipped: str | None = None  # why it was never scored

    @property
    def n(self) -> int:
        return int(sum(len(c) for c in self.correct))

    @property
    def accuracy(self) -> float:
        return float(sum(c.sum() for c in self.correct) / max(self.n, 1))

    def interval(self) -> tuple[float, float]:
        """Wilson 95 % interval of the accuracy over the held-out pages scored."""
        n, p, z = self.n, self.accuracy, 1.96
        if n == 0:
            return 0.0, 1.0
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
        return max(0.0, centre - half), min(1.0, centre + half)

    def to_dict(self) -> dict:
        low, high = self.interval()
        return {"model": self.candidate.family, "params": dict(self.candidate.params),
                "label": self.candidate.label, "accuracy": round(self.accuracy, 5), "ci95": [round(low, 5), round(high, 5)],
                "pages": self.n, "folds": len(self.correct), "dropped_after": self.dropped_after,
                "skipped": self.skipped}


@dataclass
class Selection:
    """What :func:`select_model` chose, why, and the model trained on every page."""

    model: TextClassifier
    chosen: Scored
    results: list
    folds: int
    grouped_by: str
    passes: float
    seconds: float
    calibration: dict

    def summary(self) -> str:
        low, high = self.chosen.interval()
        runner = next((r for r in self.ranking() if r is not self.chosen), None)
        out = f" (out after fold {runner.dropped_after})" if runner and runner.dropped_after else ""
        versus = f"; next best {runner.candidate.label} {runner.accuracy:.3f}{out}" if runner else ""
        return (f"{self.chosen.candidate.label}: {self.chosen.accuracy:.3f} cross-validated accuracy "
                f"(95 % CI {low:.3f}-{high:.3f}, {self.chosen.n:,} held-out pages, {self.folds} folds "
                f"{self.grouped_by}){versus}")

    def ranking(self) -> list:
        return sorted(self.results, key=_rank_key)

    def to_dict(self) -> dict:
        return {"model": self.chosen.candidate.family, "params": dict(self.chosen.candidate.params),
                "label": self.chosen.candidate.label, "accuracy": round(self.chosen.accuracy, 5),
                "ci95": [round(x, 5) for x in self.chosen.interval()], "folds": self.folds,
                "grouped_by": self.grouped_by, "passes": self.passes, "seconds": round(self.seconds, 3),
                "summary": self.summary(), "candidates": [r.to_dict() for r in self.ranking()],
                "calibration": self.calibration}


def _rank_key(result: Scored):
    """Candidates still in the race first (a dropped one lost a paired test to the leader
    on the pages both were scored on, and its accuracy is over fewer folds, or early
    passes), then those dropped, then those never scored; by accuracy within each, ties
    to the cheaper family."""
    stage = 0 if result.dropped_after is None and result.correct else 1 if result.correct else 2
    return (stage, -result.accuracy, CHEAPEST_FIRST.index(result.candidate.family), result.candidate.params)


# -- folds ----------------------------------------------------------------------------

_SECOND_LEVEL = {"ac", "co", "com", "edu", "gov", "net", "org", "or", "ne", "go"}
_IP = re.compile(r"^[\d.]+$|:")


def site_of(url: str) -> str | None:
    """The site a page belongs to: the registered domain of an http(s) URL's host (the
    last two labels, three under a country's second level such as ``.ac.uk``), the
    host of other URLs with one (``blog://<blogger>/...``); None without a host."""
    try:
        host = (urlsplit(url).hostname or "").strip(".").lower()
    except ValueError:
        return None
    if not host:
        return None
    if _IP.search(host):
        return host
    labels = host.split(".")
    keep = 3 if len(labels) >= 3 and len(labels[-1]) == 2 and labels[-2] in _SECOND_LEVEL else 2
    return ".".join(labels[-keep:])


def make_folds(labels: np.ndarray, k: int, sites: Sequence[str | None] | None = None,
               seed: int = 0) -> tuple[np.ndarray, str]:
    """The fold (0..k-1) of each page, and how they were made ("by site" or "stratified").

    Whole sites go to one fold when there are at least ``k`` sites and none holds half the
    pages or more (the largest first, each to the fold with the fewest pages); otherwise
    each class's pages are shuffled with ``seed`` and dealt round-robin.
    """
    n = len(labels)
    rng = np.random.default_rng(seed)
    if sites is not None:
        names = [s if s is not None else "" for s in sites]
        uniq, codes, sizes = np.unique(names, return_inverse=True, return_counts=True)
        if "" not in uniq and len(uniq) >= k and sizes.max() < n / 2:
            fold_of_site = np.empty(len(uniq), np.int64)
            load = np.zeros(k, np.int64)
            tiebreak = rng.permutation(len(uniq))
            for s in np.lexsort((tiebreak, -sizes)):
                f = int(np.argmin(load))
                fold_of_site[s] = f
                load[f] += sizes[s]
            return fold_of_site[codes], "by site"
    folds = np.empty(n, np.int64)
    offset = 0
    for c in np.unique(labels):
        members = rng.permutation(np.nonzero(labels == c)[0])
        folds[members] = (np.arange(len(members)) + offset) % k
        offset += len(members)
    return folds, "stratified"


# -- candidates -----------------------------------------------------------------------


def complement_scores(pages: TrainingPages, test: np.ndarray, alphas: Sequence[float],
                      max_bytes: int = MAX_PATH_BYTES) -> list:
    """Complement naive Bayes' scores of the ``test`` pages, trained on ``pages``, for each
    alpha (as :class:`accum.classify.ComplementClassifier` scores: presence of each
    feature the training pages hold, weights from their length-normalised log-TF), up to
    a constant per page; the classes in groups whose weights fit in ``max_bytes`` (see
    :func:`complement_bytes`)."""
    matrix, train = pages.matrix, pages.rows
    values = matrix.values(presence=False)
    row_weight = inverse_norms(matrix, values, np.ones((matrix.n_cols, 1), np.float32), train, True)[:, 0]
    row_weight = row_weight.astype(np.float64)
    # a column both test and training pages hold is one two pages hold: the weights of the
    # others only count in the per-class totals
    totals = matrix.class_sums(train, values, row_weight, matrix.n_shared, one_class=True)[0][:, 0]
    per_class = matrix.class_sums(train, values, row_weight, 0)[1]
    everything = per_class.sum()
    held = pages.df > 0
    test = np.asarray(test, np.int64)
    presence = matrix.values(presence=True)
    no_norm = np.ones((len(test), 1), np.float32)

    def sums(w: np.ndarray) -> np.ndarray:
        out = np.empty((len(test), w.shape[1]))
        _linear_kernels.score_rows(matrix.indptr, matrix.indices, presence, test, no_norm, w, np.zeros(w.shape[1]),
                                   out)
        return out

    n_held = sums(held[:, None].astype(np.float32))  # features of each test page the training pages hold
    # the logs are needed only for the columns the test pages hold; the normaliser
    # sum_v (W[v] - W[v, c] + alpha) over the held columns is W - W[c] + alpha * held
    used = matrix.class_counts(test, one_class=True)[:, 0] > 0
    cols = np.nonzero(used & held)[0]
    n_classes = len(matrix.categories)
    size = max(1, min(n_classes, max_bytes // complement_bytes(matrix, 1)))
    out = [np.empty((len(test), n_classes)) for _ in alphas]
    for first in range(0, n_classes, size):
        group = np.arange(first, min(first + size, n_classes))
        weights = matrix.class_sums(train, values, row_weight, matrix.n_shared, slots=matrix.slots(group))[0]
        log_other = np.zeros(weights.shape, np.float32)
        for scores, alpha in zip(out, alphas):
            log_norm = np.log(everything - per_class[group] + alpha * held.sum())
            _linear_kernels.complement_logs(weights, totals, cols, alpha, log_other)
            scores[:, group] = n_held * log_norm - sums(log_other)  # sum over the page of log(norm / other)
    return out


def default_candidates(n_classes: int) -> list[Candidate]:
    """Every candidate of the default search."""
    out = [Candidate("complement", (("alpha", a),)) for a in COMPLEMENT_ALPHAS]
    for family, normalize, Cs, betas in SVM_PATHS:
        for C in Cs:
            for beta in betas:
                params = (("C", C), ("normalize", normalize)) + ((("beta", beta),) if family == "nbsvm" else ())
                out.append(Candidate(family, tuple(sorted(params))))
    return out


# -- the search -----------------------------------------------------------------------


def select_model(acc: Accumulator | Callable[[str, float], TextClassifier], vectors: PageVectors | PageMatrix,
                 urls: Sequence[str] | None = None, *, settings: Settings | None = None, seed: int = 0,
                 k: int | None = None, budget_passes: int = BUDGET_PASSES,
                 families: Sequence[str] | None = None, memory: int | None = None, scratch=None) -> Selection:
    """Choose and train the store's classifier (see the module notes).

    Parameters
    ----------
    acc : Accumulator, or a function ``(model name, alpha) -> count model``
        The counts of exactly the pages of ``vectors``: a count model chosen is built from
        them (by the function, called only then: a store builds it from its segments).
    vectors : PageVectors or PageMatrix
        Every page's vector, in any order, labelled (as a matrix: the caller can let the
        vectors' feature ids go before the search).
    urls : sequence of str, optional
        Each page's URL, for folds by site.
    settings : Settings, optional
        How the pages' text became features (default: ``acc``'s; needed when ``acc`` is
        a function), so that the model reads new text the same way.
    seed : int
        Seeds the folds and the solver's page order.
    k : int, optional
        Folds (default: 5 below 2,000 pages, else 3).
    budget_passes : int
        Solver passes the search may spend (see the module notes).
    families : sequence of str, optional
        Only these families (default: all).
    memory : int, optional
        A memory budget in bytes for the SVM paths (see :data:`MAX_PATH_BYTES`); the
        choice does not depend on it.
    scratch : path-like, optional
        Where the SVM paths solved in groups keep a group's arrays meanwhile (default:
        the system's temporary directory; see :class:`accum.linear.PathSolver`).

    Returns
    -------
    Selection
    """
    started = time.perf_counter()
    if vectors.n_pages < 2 or len(set(vectors.labels.tolist())) < 2:
        raise ValueError("choosing a model needs labelled pages of at least two categories")
    matrix = vectors if isinstance(vectors, PageMatrix) else PageMatrix.from_vectors(vectors)
    del vectors
    labels = matrix.labels
    k = k or (5 if matrix.n_pages < 2000 else 3)
    k = max(2, min(k, int(np.bincount(labels).max())))
    sites = [site_of(u) for u in urls] if urls is not None else None
    folds, grouped_by = make_folds(labels, k, sites, seed)
    candidates = [c for c in default_candidates(len(matrix.categories)) if families is None or c.family in families]
    if not candidates:
        raise ValueError(f"no candidate model among families {list(families)}; choose from {list(CHEAPEST_FIRST)}")
    results = {c: Scored(c) for c in candidates}
    everything = TrainingPages(matrix, np.arange(matrix.n_pages))
    unit = epoch_cost(everything, "svm")  # one pass over every page
    budget = Budget(max(budget_passes * unit, MIN_BUDGET_VISITS))
    last_fold = 0
    for f in range(k):
        alive = [r for r in results.values() if r.dropped_after is None and r.skipped is None]
        if f > 0 and budget.left < last_fold:  # a fold of the survivors costs at most the last one
            break
        if len(alive) == 1 and alive[0].n >= SETTLED_PAGES:
            break
        train, test = TrainingPages(matrix, np.nonzero(folds != f)[0]), np.nonzero(folds == f)[0]
        before = budget.spent
        _score_fold(train, test, [r.candidate for r in alive], results, labels[test], seed, budget, f, memory,
                    scratch)
        last_fold = budget.spent - before
        _drop_losers([r for r in alive if r.correct], f + 1)
    scored = [r for r in results.values() if r.correct]
    if not scored:  # only SVM families were asked for, and the budget afforded no path
        raise StoreTooLarge(f"no candidate of {sorted({c.family for c in candidates})} could be cross-validated "
                            f"within a budget of {budget_passes} passes; raise --budget or search complement too")
    chosen = sorted(scored, key=_rank_key)[0]
    settings = settings if settings is not None else acc.settings
    model = train_chosen(chosen.candidate, acc, everything, settings, seed, memory, scratch)
    calibration = _calibrate(model, chosen, matrix, folds)
    return Selection(model, chosen, list(results.values()), k, grouped_by, round(budget.spent / unit, 1),
                     time.perf_counter() - started, calibration)


@dataclass
class Budget:
    """Entry visits the search may still spend (see the module notes)."""

    total: int
    spent: int = 0

    @property
    def left(self) -> int:
        return self.total - self.spent


def _score_fold(train: TrainingPages, test, candidates, results, truth, seed, budget: Budget, fold: int,
                memory: int | None = None, scratch=None) -> None:
    """Score ``candidates`` on one fold, spending from ``budget``: complement naive Bayes,
    then each SVM path (its C values solved in lockstep), the paths side by side on
    :func:`accum.config.threads` threads. Each path's passes are allotted from the budget
    in a fixed order before any runs, so the outcome does not depend on the threads
    (one at a time under a ``memory`` budget, see :data:`MAX_PATH_BYTES`).
    Every path first runs :data:`EARLY_EPOCHS` passes; the candidates the leader then
    beats significantly drop out (see the module notes), and a C value none of the others
    needs stops there (successive halving), the others go on."""
    from concurrent.futures import ThreadPoolExecutor

    from .config import threads

    alphas = [c.param("alpha") for c in candidates if c.family == "complement"]
    if alphas:
        for alpha, scores in zip(alphas, complement_scores(train, test, alphas, path_cap(memory))):
            _record(results[Candidate("complement", (("alpha", alpha),))], scores, truth)
    jobs = []
    for family, normalize, Cs, betas in SVM_PATHS:
        wanted = [c for c in candidates if c.family == family and c.param("normalize") == normalize]
        needed = sorted({c.param("C") for c in wanted})
        if not needed:
            continue
        unit = epoch_cost(train, family)  # one pass of one C
        epochs = min(CV_EPOCHS, budget.left // (unit * len(needed)))
        if epochs < MIN_PASSES:
            for c in wanted:
                if not results[c].correct:
                    results[c].skipped = "budget"
            continue
        budget.spent += epochs * unit * len(needed)  # allotted now; what a path leaves unused is returned
        jobs.append(_Job(PathSolver(train, family, normalize, needed, seed, kept_columns=train.matrix.n_shared,
                                    max_bytes=path_cap(memory), scratch=scratch), wanted, int(epochs), unit))

    def run(stage):
        def step(job):
            return job.solver.run(min(EARLY_EPOCHS, job.epochs) if stage == 0 else job.epochs - job.solver.epochs)
        return step

    with ThreadPoolExecutor(1 if memory is not None else max(1, min(threads(), len(jobs)))) as pool:
        for stage in (0, 1):
            live = [job for job in jobs if stage == 0 or (job.solver.Cs and job.solver.epochs < job.epochs)]
            for job, _ in zip(live, pool.map(run(stage), live)):
                betas = {C: [c.param("beta", 1.0) for c in job.wanted if c.param("C") == C] for C in job.solver.Cs}
                for C, scores in path_scores(job.solver, test, betas).items():
                    for c, s in zip([c for c in job.wanted if c.param("C") == C], scores):
                        _record(results[c], s, truth, replace=stage == 1)
            if stage == 0:
                scored = [r for r in results.values() if r.correct and r.dropped_after is None]
                leader = sorted(scored, key=_rank_key)[0]
                for job in jobs:
                    beaten = [c for c in job.wanted if _beaten(leader, results[c])]
                    going = [c.param("C") for c in job.wanted if c not in beaten]
                    # a larger C converges more slowly, so its early score understates it:
                    # a beaten candidate stops only below a C value that goes on (or with
                    # its whole path)
                    for c in beaten:
                        if not going or c.param("C") < max(going):
                            results[c].dropped_after = fold + 1
                    job.wanted = [c for c in job.wanted if results[c].dropped_after is None]
                    job.keep(sorted({c.param("C") for c in job.wanted}), budget)
    for job in jobs:
        job.keep([], budget)


@dataclass
class _Job:
    """One SVM path of a fold's search."""

    solver: PathSolver
    wanted: list
    epochs: int  # passes allotted
    unit: int  # cost of one pass of one C

    def keep(self, Cs: list, budget: Budget) -> None:
        """Go on with the C values ``Cs`` only, returning to ``budget`` the passes allotted
        to the others that they will not run (``[]``: all that is left unused)."""
        dropped = len(self.solver.Cs) - len(Cs)
        budget.spent -= (self.epochs - self.solver.epochs) * self.unit * dropped
        if dropped:
            self.solver.keep(Cs)


def complement_bytes(matrix: PageMatrix, n_classes: int) -> int:
    """Bytes complement naive Bayes' weights and logs of ``n_classes`` classes take per
    fold, over the columns two pages hold."""
    return 12 * n_classes * matrix.n_shared


def path_cap(memory: int | None) -> int:
    """Bytes an SVM path's arrays may take (see :data:`MAX_PATH_BYTES`)."""
    return MAX_PATH_BYTES if memory is None else max(memory // 4, 1)


def _record(result: Scored, scores: np.ndarray, truth: np.ndarray, replace: bool = False) -> None:
    """Keep a candidate's held-out scores of a fold (``replace``: instead of its last ones)."""
    if replace:
        result.scores.pop()
        result.correct.pop()
    result.scores.append(scores)
    result.correct.append(scores.argmax(axis=1) == truth)


def _beaten(leader: Scored, other: Scored) -> bool:
    """Whether ``leader`` gets significantly more of the pages both were scored on right:
    ``b - c > DROP_Z * sqrt(b + c)``, b the pages only the leader gets right, c those
    only the other does."""
    if other is leader:
        return False
    n = min(len(leader.correct), len(other.correct))
    mine, theirs = np.concatenate(leader.correct[:n]), np.concatenate(other.correct[:n])
    b, c = int(np.sum(mine & ~theirs)), int(np.sum(theirs & ~mine))
    return b - c > DROP_Z * math.sqrt(b + c)


def _drop_losers(alive: list, folds_done: int) -> None:
    """Drop the candidates the leader beats significantly on the pages scored so far."""
    leader = sorted(alive, key=_rank_key)[0]
    for r in alive:
        if r.dropped_after is None and _beaten(leader, r):
            r.dropped_after = folds_done


def train_chosen(candidate: Candidate, acc, pages: TrainingPages, settings: Settings, seed: int = 0,
                 memory: int | None = None, scratch=None) -> TextClassifier:
    """``candidate`` trained on ``pages`` (every page; ``acc`` as :func:`select_model` takes
    it), its classes in groups under a ``memory`` budget as in the search."""
    if candidate.family == "complement":
        alpha = candidate.param("alpha")
        return acc("complement", alpha) if callable(acc) else make_model(acc, "complement", alpha)
    solver = PathSolver(pages, candidate.family, candidate.param("normalize"), [candidate.param("C")], seed,
                        max_bytes=path_cap(memory), scratch=scratch)
    solver.run(FINAL_EPOCHS)
    return DenseLinearModel.from_trained((group for [group] in solver.trained()), pages.matrix, settings,
                                         candidate.param("beta", 1.0), held=pages.df > 0)


def _calibrate(model: TextClassifier, chosen: Scored, matrix: PageMatrix, folds: np.ndarray) -> dict:
    """Fit the model's temperature, confidence map and label-set thresholds on the
    chosen candidate's held-out scores; the record kept with the choice."""
    from .evaluate import calibrate

    scores = np.concatenate(chosen.scores)
    held = np.concatenate([np.nonzero(folds == f)[0] for f in range(len(chosen.scores))])
    # the held-out scores are in the order of matrix.categories; the model's may differ
    index = [list(matrix.categories).index(c) for c in model.categories]
    record, _, _ = calibrate(model, scores[:, index], np.array([model.categories.index(matrix.categories[y])
                                                                 for y in matrix.labels[held]]))
    return record

"""accum against its peers on text classification, side by side, in one run.

Protocols
---------
20 Newsgroups
    The official bydate split: train on ``20news-bydate-train`` (11,314 posts), test on
    ``20news-bydate-test`` (7,532), headers kept.
WebKB
    The four classes student, faculty, course and project, leave one university out:
    for each of cornell, texas, washington and wisconsin, train on the other three plus
    misc and test on it; scores are the mean of the four folds.

Every corpus is read once with ``accum.sources.open_source(path, "dir", "dir")`` (the
label is the first directory level; a WebKB page's university is the second level of
its ``meta["source"]`` path), so every system gets exactly the same texts: headers kept,
HTML already reduced to text, records the reader skips (a binary file, empty pages)
left out. The training pages are shuffled once with a fixed seed (the corpora list
them grouped by class, which one-pass online learners cannot cope with); every system
sees that same order.

Systems
-------
- accum: ``Accumulator`` + ``make_model`` with the default settings (unigrams and
  bigrams, the hashed Gram kept beside the counts) and the default model, ridge +
  complement NB (lam 0.3, blend 0.7, alpha 0.03); the models "complement" and "dm" with
  their default alpha; the default with unigrams only (``Settings(max_order=1)``);
  complement with alpha chosen by 3-fold cross-validation on the training pages (one
  accumulator per fold, merged by addition) and with alpha chosen on the *test* pages
  from a grid, labelled optimistic because it peeks at the answers.
- scikit-learn: ``CountVectorizer`` + ``MultinomialNB`` and ``TfidfVectorizer`` +
  ``ComplementNB`` (alpha of each chosen by 3-fold CV on train over the same grid and
  the same folds as accum's), ``TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)``
  + ``LinearSVC`` (C = 1).
- fastText (``fasttext-numpy2-wheel``): supervised, ``wordNgrams=2``, ``lr=1.0``, 5 and
  25 epochs, ``thread=1``, other settings default (``dim=100``, 2 M hash buckets).
- Vowpal Wabbit (``vowpalwabbit.Workspace``): ``--oaa K``, one pass, ``-b 24``, with
  and without ``--ngram 2``.
- River: ``feature_extraction.BagOfWords`` + ``naive_bayes.MultinomialNB`` (alpha 1),
  ``learn_one`` per page, ``predict_one`` per page.

fastText and Vowpal Wabbit split text on spaces only (fastText's documentation asks for
pre-processed input), so they get each text lowercased with its tokens (runs of letters
and digits, as accum and scikit-learn tokenise) joined by single spaces; that
pre-processing is counted in their train and predict times.

Metrics
-------
accuracy; macro-F1 (over the classes of the test set); train seconds (text to a model
ready to predict: tokenising, counting, fitting; a CV search is reported separately as
tune seconds); predict seconds and pages per second; train MB/s (UTF-8 bytes of the
training texts / train seconds); peak RSS Δ (peak resident memory above the process's
RSS before training, over training and prediction); model bytes (accum: the
classifier's arrays, as a snapshot saves them, ``LinearCountModel.nbytes``; scikit-learn
and River: pickled size; fastText: saved ``.bin``;
Vowpal Wabbit: saved model). The tables add accum's default minus each system's
accuracy in points and accum's train speed over each system's.

How
---
Single-threaded throughout (numba, OpenMP and BLAS pinned to one thread; fastText
``thread=1``; scikit-learn ``n_jobs=1``). Each system runs on each split in a fresh
``spawn``-ed process, which first loads its split and (for accum) runs a tiny warm-up so
that numba's compile and cache-load time is not counted; the parent compiles the cache
before anything is measured.

Usage
-----
From the repository root, with the peers installed (``pip install -e '.[bench]'``)::

    .venv/bin/python benchmarks/classify_peers.py                 # writes results/
    .venv/bin/python benchmarks/classify_peers.py --quick         # smoke run, prints only
    .venv/bin/python benchmarks/classify_peers.py --corpus 20ng --json raw.json
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import pickle
import random
import re
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import (  # noqa: E402  (pins threads before numpy is imported)
    CONTENTION_NOTE,
    RESULTS_DIR,
    command_line,
    contention_mark,
    corpus_path,
    fmt,
    machine_info,
    markdown_table,
    measure,
    package_versions,
    report_header,
    run_isolated,
    warm_accum,
    write_report,
)
from benchmarks import calibration_sets  # noqa: E402  (after common: numpy threads pinned)

SEED = 0
ALPHA_GRID = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0)
CV_FOLDS = 3
WEBKB_CLASSES = ("student", "faculty", "course", "project")
WEBKB_TEST_UNIVERSITIES = ("cornell", "texas", "washington", "wisconsin")
QUICK_TRAIN, QUICK_TEST = 2000, 1000
FASTTEXT_LR = 1.0
VW_BITS = 24
VERSIONS = ("accum", "numpy", "numba", "scikit-learn", "fasttext-numpy2-wheel", "vowpalwabbit", "river")
REPORT = RESULTS_DIR / "classify_peers.md"
TOKEN = re.compile(r"[^\W_]+")


# -- corpora and splits (in the parent) ---------------------------------------------------


@dataclass
class Split:
    """One train/test split; the training pages in the shuffled order every system sees
    (``train_urls``, when known, name them: model selection can group pages by site)."""

    name: str
    train_texts: list[str]
    train_labels: list[str]
    test_texts: list[str]
    test_labels: list[str]
    train_urls: list[str] = field(default_factory=list)

    @property
    def train_bytes(self) -> int:
        return sum(len(t.encode("utf-8", "surrogatepass")) for t in self.train_texts)


def read_pages(path: Path) -> tuple[list, int]:
    """The pages ``open_source(path, "dir", "dir")`` yields, and how many records it skipped."""
    from accum.pages import Page
    from accum.sources import open_source

    pages, skipped = [], 0
    for record in open_source(path, "dir", "dir"):
        if isinstance(record, Page):
            pages.append(record)
        else:
            skipped += 1
    return pages, skipped


def make_split(name: str, train: list, test: list, quick: bool) -> Split:
    """A split of pages (anything with ``url``, ``label`` and ``text``): training pages
    shuffled (seeded); both capped when ``quick``."""
    rng = random.Random(SEED)
    train = list(train)
    rng.shuffle(train)
    if quick:
        train = train[:QUICK_TRAIN]
        test = rng.sample(list(test), min(QUICK_TEST, len(test)))
    return Split(name, [p.text for p in train], [p.label for p in train],
                 [p.text for p in test], [p.label for p in test], [p.url for p in train])


def newsgroups_splits(quick: bool) -> tuple[list[Split], str]:
    """The bydate split of 20 Newsgroups, and a line describing it."""
    root = corpus_path("20news-bydate")
    train, skip_train = read_pages(root / "20news-bydate-train")
    test, skip_test = read_pages(root / "20news-bydate-test")
    split = make_split("bydate", train, test, quick)
    about = (f"`{root}`: official bydate split, headers kept; {len(split.train_texts):,} train / "
             f"{len(split.test_texts):,} test posts, {split.train_bytes / 1e6:,.1f} MB of training text; "
             f"{skip_train + skip_test} records skipped by the reader.")
    return [split], about


def webkb_university(page, root: Path) -> str:
    """The university of a WebKB page: the second directory level of its source path."""
    return Path(page.meta["source"]).relative_to(root).parts[1]


def webkb_splits(quick: bool) -> tuple[list[Split], str]:
    """Leave-one-university-out splits of WebKB's four classes, and a line describing them."""
    root = corpus_path("webkb").resolve()  # so that every page's source path lies under it
    pages, skipped = read_pages(root)
    pages = [p for p in pages if p.label in WEBKB_CLASSES]
    splits = []
    for held_out in WEBKB_TEST_UNIVERSITIES:
        train = [p for p in pages if webkb_university(p, root) != held_out]
        test = [p for p in pages if webkb_university(p, root) == held_out]
        splits.append(make_split(held_out, train, test, quick))
    sizes = ", ".join(f"{s.name} {len(s.test_texts):,}" for s in splits)
    about = (f"`{root}`: classes {', '.join(WEBKB_CLASSES)} ({len(pages):,} pages; {skipped} records "
             f"of all classes skipped by the reader), leave one university out: train on the other three "
             f"+ misc, test on {sizes} pages; scores are means over the four folds.")
    return splits, about


CORPORA = {
    "20ng": ("20 Newsgroups", newsgroups_splits),
    "webkb": ("WebKB, 4 classes, leave one university out", webkb_splits),
}


# -- helpers of the systems ---------------------------------------------------------------


class Clock:
    """Wall and CPU seconds per phase (``train``, ``tune``, ``predict``), summed over blocks."""

    PHASES = ("train", "tune", "predict")

    def __init__(self):
        self.seconds = dict.fromkeys(self.PHASES, 0.0)
        self.cpu_seconds = dict.fromkeys(self.PHASES, 0.0)

    @contextmanager
    def __call__(self, phase: str):
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self.seconds[phase] += time.perf_counter() - wall
            self.cpu_seconds[phase] += time.process_time() - cpu

    def add(self, other: "Clock") -> None:
        """Add ``other``'s seconds to this clock's."""
        for phase in self.PHASES:
            self.seconds[phase] += other.seconds[phase]
            self.cpu_seconds[phase] += other.cpu_seconds[phase]


@dataclass
class Outcome:
    """What a system returns: predicted labels, a way to size its model, its settings
    (``params["measure_after"]``, when given, is called once time and memory are
    measured, and its dict joins the settings)."""

    predictions: list[str]
    model_bytes: Callable[[], int]
    params: dict = field(default_factory=dict)


def pretokenize(text: str) -> str:
    """Lowercased runs of letters and digits, joined by single spaces (one line)."""
    return " ".join(TOKEN.findall(text.lower()))


def fold_ids(n: int) -> list[int]:
    """CV fold of each (already shuffled) training page: 0, 1, 2, 0, 1, 2, ..."""
    return [i % CV_FOLDS for i in range(n)]


def accuracy(truth: list[str], predictions: list[str]) -> float:
    return sum(t == p for t, p in zip(truth, predictions)) / len(truth)


class _ByteCounter:
    """A file-like sink that only counts the bytes written to it."""

    def __init__(self):
        self.n = 0

    def write(self, data) -> int:
        size = memoryview(data).nbytes
        self.n += size
        return size


def pickled_size(obj) -> int:
    """Bytes of ``obj`` pickled, counted as they stream out (no copy of a large model)."""
    sink = _ByteCounter()
    pickle.dump(obj, sink, protocol=pickle.HIGHEST_PROTOCOL)
    return sink.n


def saved_size(save: Callable[[str], object]) -> int:
    """Bytes of the file that ``save(path)`` writes (into a temporary directory)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model"
        save(str(path))
        return path.stat().st_size


# -- accum ---------------------------------------------------------------------------------


ACCUM_BATCH = 1000


def count_pages(texts, labels, settings=None, **options):
    """An accumulator of the pages, counted with ``partial_fit`` in batches (``options``
    go to :class:`accum.accumulator.Accumulator`, e.g. ``keep_vectors=True``)."""
    from accum.accumulator import Accumulator

    acc = Accumulator(settings, **options)
    for i in range(0, len(texts), ACCUM_BATCH):
        acc.partial_fit(texts[i : i + ACCUM_BATCH], labels[i : i + ACCUM_BATCH])
    return acc


def merged(parts, settings):
    """A new accumulator holding the sum of ``parts``."""
    from accum.accumulator import Accumulator

    total = Accumulator(settings)
    for part in parts:
        total.merge(part)
    return total


#: Settings of the count-only models' accumulators: no Gram (only ridge-complement reads it).
NO_GRAM = 0


def run_accum(split: Split, clock: Clock, max_order: int = 2, model: str | None = None, gram_bits: int = 12) -> Outcome:
    """accum with the model's default alpha (model None: accum's default). Model bytes
    are the classifier's, as a snapshot saves it; the counts it came from are in params."""
    from accum.accumulator import Settings
    from accum.classify import make_model

    with clock("train"):
        started = time.perf_counter()
        acc = count_pages(split.train_texts, split.train_labels, Settings(max_order=max_order, gram_bits=gram_bits))
        counted = time.perf_counter()
        clf = make_model(acc, model)
        modelled = time.perf_counter()
    with clock("predict"):
        predictions = clf.predict(split.test_texts)
    params = {"model": clf.name, "alpha": clf.alpha, "counts_bytes": acc.nbytes,
              "count_seconds": counted - started, "model_seconds": modelled - counted}
    if model is None:  # the default: what bounds its times (measured after the clocks and memory)
        params["measure_after"] = lambda: bounds(split, acc.settings.n_gram_buckets)
    return Outcome(predictions, lambda: clf.nbytes, params)


def bounds(split: Split, n_buckets: int) -> dict:
    """Fixed costs under accum's default model, each the best of 3: the single-precision
    Cholesky factor of a ``n_buckets``-square system (its solve's core; the time does not
    depend on the values), and tokenising the test pages alone (prediction's first step)."""
    import numpy as np
    import scipy.linalg

    from accum.tokens import tokenize

    def best(step) -> float:
        seconds = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            step()
            seconds = min(seconds, time.perf_counter() - t0)
        return seconds

    system = np.asfortranarray(np.eye(n_buckets, dtype=np.float32))
    cholesky = best(lambda: scipy.linalg.lapack.spotrf(system, lower=1, overwrite_a=0, clean=0))
    return {"cholesky_seconds": cholesky, "tokenise_test_seconds": best(lambda: tokenize(split.test_texts))}


def run_accum_cv(split: Split, clock: Clock, model: str = "complement") -> Outcome:
    """accum with alpha chosen by 3-fold CV on train: one accumulator per fold, merged."""
    from accum.accumulator import Settings
    from accum.classify import make_model

    settings = Settings(gram_bits=NO_GRAM)
    folds = fold_ids(len(split.train_texts))
    members = [[i for i, f in enumerate(folds) if f == k] for k in range(CV_FOLDS)]
    with clock("train"):
        parts = [count_pages([split.train_texts[i] for i in idx], [split.train_labels[i] for i in idx], settings)
                 for idx in members]
    with clock("tune"):
        scores = [0.0] * len(ALPHA_GRID)
        for k, idx in enumerate(members):
            rest = merged([p for j, p in enumerate(parts) if j != k], settings)
            held_texts = [split.train_texts[i] for i in idx]
            held_labels = [split.train_labels[i] for i in idx]
            for a, alpha in enumerate(ALPHA_GRID):
                scores[a] += accuracy(held_labels, make_model(rest, model, alpha).predict(held_texts))
        best = ALPHA_GRID[max(range(len(ALPHA_GRID)), key=scores.__getitem__)]
    with clock("train"):
        acc = merged(parts, settings)
        clf = make_model(acc, model, best)
    with clock("predict"):
        predictions = clf.predict(split.test_texts)
    return Outcome(predictions, lambda: clf.nbytes, {"alpha": best, "counts_bytes": acc.nbytes})


def run_accum_best_on_test(split: Split, clock: Clock, model: str = "complement") -> Outcome:
    """accum with the grid's alpha that scores best *on the test pages* (optimistic)."""
    from accum.accumulator import Settings
    from accum.classify import make_model

    with clock("train"):
        acc = count_pages(split.train_texts, split.train_labels, Settings(gram_bits=NO_GRAM))
    trials = []
    for alpha in ALPHA_GRID:
        trial = Clock()
        with trial("train"):
            clf = make_model(acc, model, alpha)
        with trial("predict"):
            predictions = clf.predict(split.test_texts)
        trials.append((accuracy(split.test_labels, predictions), alpha, predictions, trial, clf.nbytes))
        del clf
    score, alpha, predictions, trial, model_bytes = max(trials, key=lambda t: t[0])
    clock.add(trial)
    by_alpha = {t[1]: round(t[0], 4) for t in trials}
    return Outcome(predictions, lambda: model_bytes,
                   {"alpha": alpha, "test_accuracy_by_alpha": by_alpha, "counts_bytes": acc.nbytes})


# -- scikit-learn --------------------------------------------------------------------------


def cv_best_alpha(estimator, features, labels) -> float:
    """The alpha of ``ALPHA_GRID`` with the best 3-fold CV accuracy (folds of :func:`fold_ids`)."""
    from sklearn.model_selection import GridSearchCV, PredefinedSplit

    search = GridSearchCV(estimator, {"alpha": list(ALPHA_GRID)}, cv=PredefinedSplit(fold_ids(len(labels))),
                          scoring="accuracy", n_jobs=1, refit=False)
    search.fit(features, labels)
    return search.best_params_["alpha"]


def run_sklearn_nb(split: Split, clock: Clock, vectorizer, model_class) -> Outcome:
    """A naive Bayes model on vectorised text, alpha tuned by CV on the training matrix.

    The vectoriser is fitted once on all training pages; the CV search reuses its
    matrix (its vocabulary includes the held-out fold's words, a negligible leak).
    """
    with clock("train"):
        features = vectorizer.fit_transform(split.train_texts)
    with clock("tune"):
        alpha = cv_best_alpha(model_class(), features, split.train_labels)
    with clock("train"):
        model = model_class(alpha=alpha).fit(features, split.train_labels)
    with clock("predict"):
        predictions = model.predict(vectorizer.transform(split.test_texts)).tolist()
    return Outcome(predictions, lambda: pickled_size((vectorizer, model)), {"alpha": alpha})


def run_multinomial_nb(split: Split, clock: Clock) -> Outcome:
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.naive_bayes import MultinomialNB

    return run_sklearn_nb(split, clock, CountVectorizer(), MultinomialNB)


def run_complement_nb(split: Split, clock: Clock) -> Outcome:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.naive_bayes import ComplementNB

    return run_sklearn_nb(split, clock, TfidfVectorizer(), ComplementNB)


def run_linear_svc(split: Split, clock: Clock) -> Outcome:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.svm import LinearSVC

    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
    with clock("train"):
        model = LinearSVC(C=1.0, random_state=SEED).fit(vectorizer.fit_transform(split.train_texts),
                                                         split.train_labels)
    with clock("predict"):
        predictions = model.predict(vectorizer.transform(split.test_texts)).tolist()
    return Outcome(predictions, lambda: pickled_size((vectorizer, model)), {"C": 1.0})


# -- fastText, Vowpal Wabbit, River --------------------------------------------------------


def run_fasttext(split: Split, clock: Clock, epoch: int) -> Outcome:
    import fasttext

    prefix = "__label__"
    with tempfile.TemporaryDirectory() as tmp, clock("train"):
        path = Path(tmp) / "train.txt"
        with open(path, "w", encoding="utf-8") as f:
            for text, label in zip(split.train_texts, split.train_labels):
                f.write(f"{prefix}{label} {pretokenize(text)}\n")
        model = fasttext.train_supervised(input=str(path), epoch=epoch, lr=FASTTEXT_LR, wordNgrams=2,
                                          thread=1, seed=SEED, verbose=0)
    with clock("predict"):
        labels, _ = model.predict([pretokenize(t) for t in split.test_texts], k=1)
        predictions = [found[0][len(prefix):] if found else "" for found in labels]
    return Outcome(predictions, lambda: saved_size(model.save_model),
                   {"epoch": epoch, "lr": FASTTEXT_LR, "wordNgrams": 2})


def vw_features(text: str) -> str:
    """Text as one VW feature list: pre-tokenised, with VW's ``|`` and ``:`` escaped.

    Pre-tokenised text holds neither character; the escape keeps the example format
    valid should the tokenisation change.
    """
    return pretokenize(text).replace("|", "¦").replace(":", ";")


def run_vowpal_wabbit(split: Split, clock: Clock, ngram: int = 1) -> Outcome:
    from vowpalwabbit import Workspace

    classes = sorted(set(split.train_labels))
    number = {c: i + 1 for i, c in enumerate(classes)}
    args = f"--oaa {len(classes)} -b {VW_BITS} --random_seed {SEED} --quiet"
    if ngram > 1:
        args += f" --ngram {ngram}"
    with clock("train"):
        workspace = Workspace(args)
        for text, label in zip(split.train_texts, split.train_labels):
            workspace.learn(f"{number[label]} | {vw_features(text)}")
    with clock("predict"):
        predictions = [classes[workspace.predict(f"| {vw_features(t)}") - 1] for t in split.test_texts]

    def model_bytes() -> int:
        size = saved_size(workspace.save)
        workspace.finish()
        return size

    return Outcome(predictions, model_bytes, {"args": args})


def run_river(split: Split, clock: Clock) -> Outcome:
    from river import compose, feature_extraction, naive_bayes

    model = compose.Pipeline(feature_extraction.BagOfWords(lowercase=True), naive_bayes.MultinomialNB(alpha=1.0))
    with clock("train"):
        for text, label in zip(split.train_texts, split.train_labels):
            model.learn_one(text, label)
    with clock("predict"):
        predictions = [model.predict_one(text) for text in split.test_texts]
    return Outcome(predictions, lambda: pickled_size(model), {"alpha": 1.0})


@dataclass(frozen=True)
class System:
    """A row of the tables: how to run it, and the module it needs (``warm``, when
    given, runs in the system's process before anything is measured, after accum's
    own warm-up: to load numba kernels that :func:`warm_accum` does not reach)."""

    key: str
    label: str
    run: Callable[..., Outcome]
    kwargs: dict = field(default_factory=dict)
    module: str = "accum"
    package: str = "accum"
    warm: Callable[[], None] | None = None


SYSTEMS = (
    System("accum", "**accum** (default: ridge + complement)", run_accum),
    System("accum-complement", "accum, complement NB (default α, no Gram)", run_accum,
           {"model": "complement", "gram_bits": NO_GRAM}),
    System("accum-dm", "accum, Dirichlet-multinomial (default α, no Gram)", run_accum, {"model": "dm", "gram_bits": NO_GRAM}),
    System("accum-unigram", "accum, unigrams only (max_order=1)", run_accum, {"max_order": 1}),
    System("accum-cv", "accum complement, α by 3-fold CV on train", run_accum_cv),
    System("accum-best", "accum complement (best α on test, optimistic)", run_accum_best_on_test),
    System("mnb", "sklearn CountVectorizer + MultinomialNB (α by CV)", run_multinomial_nb, module="sklearn",
           package="scikit-learn"),
    System("cnb", "sklearn TfidfVectorizer + ComplementNB (α by CV)", run_complement_nb, module="sklearn",
           package="scikit-learn"),
    System("svm", "sklearn Tfidf(1,2, sublinear) + LinearSVC", run_linear_svc, module="sklearn",
           package="scikit-learn"),
    System("fasttext-5", "fastText wordNgrams=2, 5 epochs", run_fasttext, {"epoch": 5}, "fasttext",
           "fasttext-numpy2-wheel"),
    System("fasttext-25", "fastText wordNgrams=2, 25 epochs", run_fasttext, {"epoch": 25}, "fasttext",
           "fasttext-numpy2-wheel"),
    System("vw", "Vowpal Wabbit --oaa, 1 pass", run_vowpal_wabbit, {}, "vowpalwabbit", "vowpalwabbit"),
    System("vw-ngram2", "Vowpal Wabbit --oaa --ngram 2, 1 pass", run_vowpal_wabbit, {"ngram": 2},
           "vowpalwabbit", "vowpalwabbit"),
    System("river", "River BagOfWords + MultinomialNB", run_river, {}, "river", "river"),
)
SYSTEM_BY_KEY = {s.key: s for s in SYSTEMS}


# -- one system on one split (in a fresh process) ------------------------------------------


def macro_f1(truth: list[str], predictions: list[str]) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(truth, predictions, labels=sorted(set(truth)), average="macro", zero_division=0))


def load_split(source) -> Split:
    """The split ``source`` names: the path of a pickled :class:`Split`, or an object
    whose ``load()`` builds it (e.g. one fold of a corpus pickled once for all folds)."""
    if hasattr(source, "load"):
        return source.load()
    with open(source, "rb") as f:
        return pickle.load(f)


def evaluate_on_split(system: System, source) -> dict:
    """Train and test ``system`` on the split ``source`` names (see :func:`load_split`);
    its scores, times and sizes. Run in a fresh process (:func:`run_system`): the system
    travels by reference to its module-level ``run`` function."""
    split = load_split(source)
    if system.module == "accum":
        warm_accum()
    if system.warm is not None:
        system.warm()
    clock = Clock()
    with measure() as memory:
        outcome = system.run(split, clock, **system.kwargs)
    after = outcome.params.pop("measure_after", None)
    if after is not None:
        outcome.params.update(after())
    return {
        "fold": split.name,
        "n_train": len(split.train_texts),
        "n_test": len(split.test_texts),
        "train_bytes": split.train_bytes,
        "accuracy": accuracy(split.test_labels, outcome.predictions),
        "macro_f1": macro_f1(split.test_labels, outcome.predictions),
        **{f"{phase}_seconds": clock.seconds[phase] for phase in Clock.PHASES},
        **{f"{phase}_cpu_seconds": clock.cpu_seconds[phase] for phase in Clock.PHASES},
        "peak_rss_delta": memory.peak_rss_delta,
        "memory_method": memory.memory_method,
        "model_bytes": outcome.model_bytes(),
        "params": outcome.params,
    }


# -- running every system (in the parent) --------------------------------------------------


def missing_reason(system: System) -> str | None:
    """Why a system cannot run here (its package is not installed), or None."""
    if importlib.util.find_spec(system.module) is None:
        return f"not installed: pip install -e '.[bench]' ({system.package})"
    return None


def run_system(system: System, split_files: list) -> dict:
    """Every split of one system, each in its own process; its status and fold results.

    ``split_files`` are what :func:`load_split` takes. With several, each fold's
    accuracy and times go to stderr as it ends.
    """
    reason = missing_reason(system)
    if reason:
        return {"label": system.label, "status": reason, "folds": []}
    folds = []
    for split_file in split_files:
        try:
            folds.append(run_isolated(evaluate_on_split, system, split_file))
        except Exception as exc:  # a peer that crashes is reported, not fatal
            return {"label": system.label, "status": f"failed: {type(exc).__name__}: {exc}", "folds": folds}
        if len(split_files) > 1:
            fold = folds[-1]
            print(f"    {fold['fold']}: accuracy {fold['accuracy']:.3f}, train {fold['train_seconds']:.1f} s"
                  f" (+ tune {fold['tune_seconds']:.1f} s), predict {fold['predict_seconds']:.1f} s, "
                  f"peak RSS Δ {fold['peak_rss_delta'] / 1e6:,.0f} MB", file=sys.stderr, flush=True)
        gc.collect()
    return {"label": system.label, "status": "ok", "folds": folds, "summary": summarise(folds)}


def summarise(folds: list[dict]) -> dict:
    """Means over folds (scores, seconds, model bytes), rates over totals, the largest peak."""
    n = len(folds)

    def total(key):
        return sum(f[key] for f in folds)

    return {
        "accuracy": total("accuracy") / n,
        "macro_f1": total("macro_f1") / n,
        **{f"{phase}_seconds": total(f"{phase}_seconds") / n for phase in Clock.PHASES},
        **{f"{phase}_cpu_seconds": total(f"{phase}_cpu_seconds") / n for phase in Clock.PHASES},
        "train_mb_per_s": total("train_bytes") / total("train_seconds") / 1e6,
        "predict_docs_per_s": total("n_test") / total("predict_seconds"),
        "peak_rss_delta": max(f["peak_rss_delta"] for f in folds),
        "model_bytes": total("model_bytes") / n,
    }


def run_corpus(key: str, systems: list[System], quick: bool, workdir: Path, with_calibration: bool) -> dict:
    """Read the corpus once, pickle its splits, and run every system on them (and, with
    ``with_calibration``, :mod:`benchmarks.calibration_sets`)."""
    title, make_splits = CORPORA[key]
    splits, about = make_splits(quick)
    split_files = []
    for split in splits:
        path = workdir / f"{key}-{split.name}.pickle"
        with open(path, "wb") as f:
            pickle.dump(split, f, protocol=pickle.HIGHEST_PROTOCOL)
        split_files.append(path)
    results = {}
    for system in systems:
        print(f"  {system.label} ...", file=sys.stderr, flush=True)
        started = time.perf_counter()
        results[system.key] = run_system(system, split_files)
        print(f"    {results[system.key]['status']} in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    calibration = []
    if with_calibration:
        print("  calibration and multi-label sets ...", file=sys.stderr, flush=True)
        calibration = [run_isolated(calibration_sets.run_split, path) for path in split_files]
    for path in split_files:
        path.unlink()
    return {"title": title, "about": about, "folds": [s.name for s in splits], "systems": results,
            "calibration": calibration}


# -- reporting -----------------------------------------------------------------------------


HEADERS = ["system", "accuracy", "macro-F1", "accum − system (points)", "train s", "train CPU s", "tune s",
           "train MB/s", "accum train speed ÷ system", "predict s", "predict docs/s", "peak RSS Δ MB", "model MB",
           "chosen"]


def params_text(result: dict) -> str:
    """The settings a system chose (alpha per fold, ...), short."""
    folds = result["folds"]
    if not folds or "alpha" not in folds[0]["params"]:
        return ""
    alphas = [f["params"]["alpha"] for f in folds]
    text = "α " + ", ".join(f"{a:g}" for a in alphas)
    if "lam" in folds[0]["params"]:
        text = f"λ {folds[0]['params']['lam']:g}, blend {folds[0]['params']['blend']:g}, " + text
    return text


def system_row(result: dict, reference: dict | None) -> list[str]:
    """One table row: scores, the comparison with accum's default, speeds, sizes."""
    if result["status"] != "ok":
        return [result["label"], result["status"]] + [""] * (len(HEADERS) - 2)
    s = result["summary"]
    if reference is None or result is reference:
        diff, speed = "—", "—"
    else:
        ref = reference["summary"]
        diff = f"{100 * (ref['accuracy'] - s['accuracy']):+.1f}"
        speed = f"{ref['train_mb_per_s'] / s['train_mb_per_s']:.1f}×"

    def seconds(phase):
        return fmt(s[f"{phase}_seconds"]) + contention_mark(s[f"{phase}_seconds"], s[f"{phase}_cpu_seconds"])

    return [
        result["label"], fmt(s["accuracy"], 3), fmt(s["macro_f1"], 3), diff,
        seconds("train"), fmt(s["train_cpu_seconds"]), seconds("tune") if s["tune_seconds"] else "—",
        fmt(s["train_mb_per_s"]), speed, seconds("predict"), fmt(s["predict_docs_per_s"], 0),
        fmt(s["peak_rss_delta"] / 1e6, 0), fmt(s["model_bytes"] / 1e6, 1), params_text(result),
    ]


def fold_table(corpus: dict) -> str:
    """Accuracy per fold (for corpora with several folds)."""
    rows = []
    for result in corpus["systems"].values():
        if result["status"] == "ok":
            rows.append([result["label"]] + [fmt(f["accuracy"], 3) for f in result["folds"]]
                        + [fmt(result["summary"]["accuracy"], 3)])
    return markdown_table(["system"] + [f"test on {name}" for name in corpus["folds"]] + ["mean"], rows)


def corpus_section(corpus: dict) -> str:
    reference = corpus["systems"].get("accum")
    if reference is not None and reference["status"] != "ok":
        reference = None
    rows = [system_row(result, reference) for result in corpus["systems"].values()]
    parts = [f"## {corpus['title']}", "", corpus["about"], "", markdown_table(HEADERS, rows), ""]
    if len(corpus["folds"]) > 1:
        parts += ["Accuracy per held-out university:", "", fold_table(corpus), ""]
    parts += bounds_paragraph(corpus["systems"])
    if corpus.get("calibration"):
        parts += [calibration_sets.section(corpus["calibration"])]
    return "\n".join(parts)


def bounds_paragraph(systems: dict) -> list[str]:
    """What bounds accum's default against the goals of issue 3 (trains as fast as
    Vowpal Wabbit's one pass, predicts 10x MultinomialNB's docs/s), when all three ran."""
    results = [systems.get(key) for key in ("accum", "vw", "mnb")]
    if any(r is None or r["status"] != "ok" for r in results):
        return []
    accum, vw, mnb = results
    n = len(accum["folds"])

    def mean(key):
        return sum(f["params"][key] for f in accum["folds"]) / n

    pages = sum(f["n_test"] for f in accum["folds"]) / n
    budget = pages / (10 * mnb["summary"]["predict_docs_per_s"])
    return [
        f"What bounds accum's default here (means per fold): training is counting {mean('count_seconds'):.2f} s "
        f"plus building the model {mean('model_seconds'):.2f} s (it first adds the pages still waiting for the "
        f"Gram), whose single-precision Cholesky factor of the "
        f"4,096 x 4,096 ridge system alone takes {mean('cholesky_seconds'):.2f} s (one core, at any size of "
        f"corpus); Vowpal Wabbit's one pass trains in {vw['summary']['train_seconds']:.2f} s. Prediction: "
        f"tokenising the {pages:,.0f} test pages alone takes {mean('tokenise_test_seconds'):.3f} s of accum's "
        f"{accum['summary']['predict_seconds']:.3f} s, while 10x MultinomialNB's pages per second leaves "
        f"{budget:.3f} s for all of it.",
        "",
    ]


NOTES = """\
Notes:

- "train s" is text to a model ready to predict (tokenising, counting or vectorising,
  fitting; for accum also deriving the log-probabilities); a cross-validated alpha
  search is in "tune s" (3 folds on the training pages, grid {grid}). Means per fold;
  train MB/s and predict docs/s divide totals over folds. "accum − system" is accum's
  default accuracy minus the system's, in points; "accum train speed ÷ system" > 1
  means accum trains faster.
- "accum complement (best α on test, optimistic)" picks α from the grid by *test*
  accuracy: an upper bound, not a result. "accum complement, α by 3-fold CV on train" is
  the honest tuned one. The default, ridge + complement, uses its fixed λ 0.3, blend 0.7
  and α 0.03 (chosen once by 3-fold CV on training pages of both corpora).
- Peak RSS Δ: peak resident memory above the process's RSS before training, over
  training and prediction, each system and split in a fresh spawned process ({method}).
  Model MB: accum the classifier's arrays as a snapshot saves them (sparse weights:
  a table slot per feature, a header per feature and an entry per counted (feature,
  category) pair; the ridge part's 4,096 x categories coefficients); the counts it is
  derived from, which stay additive, are in the JSON dump (`counts_bytes`).
  scikit-learn and River pickled; fastText the saved .bin (dominated by its 2 M hash
  buckets × 100 dims); Vowpal Wabbit the saved model. "no Gram": the count-only models'
  accumulators keep no Gram (`--gram-bits 0`), which only ridge-complement reads.
- fastText and Vowpal Wabbit get lowercased, pre-tokenised text (they split on spaces
  only); the pre-processing is in their times. Vowpal Wabbit uses `-b {bits}` (the
  default 18 bits collide on these vocabularies). Training order is shuffled once
  (seed {seed}) and the same for every system.
- Single-threaded; numba compile and cache-load time excluded (warm-up before measuring).
  Seconds are wall-clock ("train CPU s": CPU time of the process, all threads, which
  other load on the machine disturbs less); the machine is shared, so they vary
  between runs. {contention}
"""


def render(corpora: dict, versions: dict, machine: dict, quick: bool) -> str:
    methods = {f["memory_method"] for c in corpora.values() for r in c["systems"].values() for f in r["folds"]}
    title = "accum and its peers: text classification" + (" (--quick smoke run: subsets)" if quick else "")
    return "\n".join([
        report_header(title, versions, machine),
        *(corpus_section(c) for c in corpora.values()),
        NOTES.format(grid=", ".join(f"{a:g}" for a in ALPHA_GRID), method=", ".join(sorted(methods)) or "n/a",
                     bits=VW_BITS, seed=SEED, contention=CONTENTION_NOTE),
    ])


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", choices=["20ng", "webkb", "all"], default="all")
    parser.add_argument("--quick", action="store_true",
                        help=f"smoke run on subsets ({QUICK_TRAIN} train / {QUICK_TEST} test pages per split); "
                             "prints the report without writing it unless --output is given")
    parser.add_argument("--only", default=None,
                        help="comma-separated systems to run: " + ", ".join(SYSTEM_BY_KEY))
    parser.add_argument("--output", type=Path, default=None,
                        help=f"markdown report to write (default {REPORT}, none with --quick)")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH",
                        help="also dump the raw numbers as JSON")
    args = parser.parse_args(argv)
    if args.only:
        unknown = set(args.only.split(",")) - set(SYSTEM_BY_KEY)
        if unknown:
            parser.error(f"unknown system(s) {', '.join(sorted(unknown))}; choose from {', '.join(SYSTEM_BY_KEY)}")
    if args.output is None and not args.quick:
        args.output = REPORT
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    machine = machine_info()
    systems = [s for s in SYSTEMS if not args.only or s.key in args.only.split(",")]
    warm_accum()  # compile numba's on-disk cache here, never in a measurement
    chosen = list(CORPORA) if args.corpus == "all" else [args.corpus]
    corpora = {}
    with tempfile.TemporaryDirectory() as tmp:
        for key in chosen:
            print(f"{CORPORA[key][0]}:", file=sys.stderr, flush=True)
            corpora[key] = run_corpus(key, systems, args.quick, Path(tmp), with_calibration=not args.only)
    versions = package_versions(VERSIONS)
    report = render(corpora, versions, machine, args.quick)
    print(report)
    if args.output:
        write_report(args.output, report)
    if args.json:
        raw = {"machine": machine, "versions": versions, "command": command_line(), "quick": args.quick,
               "alpha_grid": ALPHA_GRID, "corpora": corpora}
        args.json.write_text(json.dumps(raw, indent=2, default=str) + "\n")
        print(f"wrote {args.json}", file=sys.stderr)


if __name__ == "__main__":
    main()

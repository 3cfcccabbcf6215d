"""accum against its peers on the whole public classification suite, side by side, in one run.

Issue #18's benchmark: every corpus of ``../shared/data/README.md`` that has labels,
every system on the same texts, the same splits and the same training order, and a
summary of where accum stands against the goals.

Corpora (read in place from ``$ACCUM_CORPORA``, default ``../shared/data``)
--------------------------------------------------------------------------
20 Newsgroups
    The official bydate split (11,314 / 7,532 posts, headers kept), read as
    ``classify_peers.py`` reads it.
WebKB-4
    student, faculty, course, project; leave one university out (train on the other
    three plus misc, test on cornell, texas, washington, wisconsin; means over the four
    folds), read as ``classify_peers.py`` reads it.
IMDB
    ``imdb/train.jsonl.gz`` / ``test.jsonl.gz``, the official 25k / 25k split (24,999
    training reviews in our copy), labels pos / neg, the raw review text (``<br />``
    kept, for every system alike).
TREC
    ``trec/train.jsonl.gz`` / ``test.jsonl.gz``, the official 5,452 / 500 split, the 6
    coarse labels.
Blogs (gender; age group)
    ``blogs/posts-a.jsonl.gz``: one document per blogger, the blogger's posts joined by
    a blank line in file order and cut at :data:`BLOG_CAP_BYTES` bytes of UTF-8 (on a
    character boundary) for every system; two tasks, ``gender`` and ``age_group``.
    10-fold cross-validation split by blogger: a blogger's fold is a hash of the
    blogger id (BLAKE2b, modulo 10), the same folds for every system and both tasks;
    ``--folds N`` runs the first N folds only. Scores are means over the folds run.

The JSON Lines corpora are read with :mod:`json` (their ``text`` field as is); the two
directory corpora with accum's reader, as ``classify_peers.py`` does. Every split's
training pages are shuffled once (seed 0) and every system sees that order.

Systems
-------
- **accum**, the product's default with model selection: ``Accumulator(Settings(),
  keep_vectors=True)`` counts the training pages in batches of 1,000, then
  ``accum.selection.select_model(acc, vectors, urls=..., seed=0)`` chooses and fits the
  model by cross-validation over the page vectors; its ``summary()`` is reported. Until
  ``accum.selection`` exists the row falls back to ``make_model(acc)`` and says so.
  Train time is everything from texts to a ready model: counting + selection + final fit.
- accum's ridge-complement count model (``make_model(acc)`` over counts that keep the Gram,
  ``--gram-bits 12``), no selection: the default before model selection existed.
- TF-IDF + LinearSVC, the standard baseline: ``TfidfVectorizer(ngram_range=(1, 2),
  sublinear_tf=True)``, ``LinearSVC(C=1)``.
- NBSVM (Wang & Manning 2012): binarised unigram + bigram counts; per class the
  log-count ratio ``r = log((p / |p|_1) / (q / |q|_1))`` with ``p = 1 + sum`` of the
  class's binarised rows and ``q`` the same over the other classes; ``LinearSVC(C=1)`` on
  the r-scaled rows; weights interpolated ``w' = (1 - beta) mean|w| + beta w`` with
  beta 0.25, the bias too, as the weight of a constant feature (how liblinear's ``-B 1``
  holds a bias; keeping the fitted bias unscaled instead scored 89.8 % against 91.0 % on
  IMDB, published 91.22 %, and 4-5 points less on WebKB-4 and TREC); one-vs-rest over
  more than two classes (argmax of the interpolated scores).
- MultinomialNB on binarised unigrams + bigrams (``CountVectorizer(binary=True,
  ngram_range=(1, 2))``, alpha 1).
- ComplementNB on TF-IDF unigrams + bigrams, alpha by 3-fold CV on the training pages
  (the grid and folds of ``classify_peers.py``).
- fastText, ``wordNgrams=2``, 5 epochs, lr 1.0, one thread.
- Vowpal Wabbit, ``--oaa K --ngram 2``, one pass, ``-b 24``.

scikit-learn's vectorisers use their default token pattern, lowercased; fastText and
Vowpal Wabbit get the text lowercased and pre-tokenised (runs of letters and digits
joined by spaces), the pre-processing counted in their times (``classify_peers.py``'s
conventions).

Measurement
-----------
Each system runs on each split in its own ``spawn``-ed process (the process ends, and
frees its memory, before the next one starts), single-threaded (``benchmarks.common``
pins numba, OpenMP and BLAS to one thread), after a warm-up that keeps numba's compile
and cache-load time out of the numbers. Metrics: accuracy, macro-F1, train seconds
(text to a model ready to predict: vectorising, counting, model selection and CV
included for every system), predict seconds and pages per second, peak resident memory
above the process's RSS before training, model bytes.

Usage
-----
From the repository root, with the peers installed (``pip install -e '.[test,bench]'``)::

    .venv/bin/python benchmarks/classify_suite.py                    # everything; writes results/
    .venv/bin/python benchmarks/classify_suite.py --quick            # smoke run on slices, prints only
    .venv/bin/python benchmarks/classify_suite.py --corpus trec,webkb --json raw.json
    .venv/bin/python benchmarks/classify_suite.py --corpus blogs --folds 1

The full suite is long (the blogs' 10 folds dominate: scikit-learn's bigram vocabulary of
about 9,000 whole blogs takes minutes and several GB per fold and system): run it on a
quiet machine.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import pickle
import sys
import tempfile
import time
from collections import Counter, namedtuple
from dataclasses import dataclass
from pathlib import Path

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
    package_versions,
    report_header,
    warm_accum,
    write_report,
)
from benchmarks.classify_peers import (  # noqa: E402
    ALPHA_GRID,
    QUICK_TEST,
    QUICK_TRAIN,
    SEED,
    VW_BITS,
    Clock,
    Outcome,
    Split,
    System,
    count_pages,
    make_split,
    newsgroups_splits,
    pickled_size,
    run_accum,
    run_fasttext,
    run_linear_svc,
    run_sklearn_nb,
    run_system,
    run_vowpal_wabbit,
    webkb_splits,
)

REPORT = RESULTS_DIR / "classify_suite.md"
VERSIONS = ("accum", "numpy", "numba", "scipy", "scikit-learn", "fasttext-numpy2-wheel", "vowpalwabbit")
#: Each blogger's text is cut at this many bytes of UTF-8 (200 KB), for every system.
BLOG_CAP_BYTES = 200_000
BLOG_FOLDS = 10
#: A --quick run reads the posts of this many bloggers (the first in the file, cut at
#: this many bytes each) and runs this many folds unless --folds says otherwise.
QUICK_BLOGGERS, QUICK_BLOG_CAP_BYTES, QUICK_FOLDS = 1000, 20_000, 1
NBSVM_ALPHA, NBSVM_BETA, NBSVM_C = 1.0, 0.25, 1.0
MNB_ALPHA = 1.0

Doc = namedtuple("Doc", "url label text")


# -- corpora (in the parent) ---------------------------------------------------------------


def read_jsonl(path: Path) -> list[Doc]:
    """The records of a gzipped JSON Lines file as documents (``url``, ``label``, ``text``)."""
    docs = []
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            if line.strip():
                record = json.loads(line)
                docs.append(Doc(record["url"], record["label"], record["text"]))
    return docs


def jsonl_split(folder: str, name: str, quick: bool) -> tuple[Split, str]:
    """The official train/test split of a JSON Lines corpus, and a line describing it."""
    root = corpus_path(folder)
    train, test = read_jsonl(root / "train.jsonl.gz"), read_jsonl(root / "test.jsonl.gz")
    split = make_split(name, train, test, quick)
    labels = Counter(split.train_labels)
    about = (f"`{root}`: official split, {len(split.train_texts):,} train / {len(split.test_texts):,} test "
             f"documents, {split.train_bytes / 1e6:,.1f} MB of training text; training labels "
             + ", ".join(f"{label} {n:,}" for label, n in sorted(labels.items())) + ".")
    return split, about


def cap_utf8(text: str, cap: int) -> str:
    """``text`` cut to at most ``cap`` bytes of UTF-8, on a character boundary."""
    data = text.encode("utf-8", "surrogatepass")
    if len(data) <= cap:
        return text
    while cap > 0 and data[cap] & 0xC0 == 0x80:  # a continuation byte: back up to the character's start
        cap -= 1
    return data[:cap].decode("utf-8", "surrogatepass")


def blog_fold(blogger: str, n_folds: int = BLOG_FOLDS) -> int:
    """The cross-validation fold of a blogger: a hash of its id (stable across runs and machines)."""
    digest = hashlib.blake2b(blogger.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % n_folds


def read_blogs(quick: bool) -> dict:
    """One document per blogger of ``blogs/posts-a.jsonl.gz``: the posts in file order,
    joined by a blank line and capped at :data:`BLOG_CAP_BYTES` (``quick``: the first
    :data:`QUICK_BLOGGERS`, capped at :data:`QUICK_BLOG_CAP_BYTES`); labels and folds."""
    path = corpus_path("blogs") / "posts-a.jsonl.gz"
    cap = QUICK_BLOG_CAP_BYTES if quick else BLOG_CAP_BYTES
    parts: dict[str, list[str]] = {}
    sizes: dict[str, int] = {}
    labels: dict[str, tuple[str, str]] = {}
    n_posts = 0
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            record = json.loads(line)
            blogger = record["blogger"]
            if blogger not in parts:
                if quick and len(parts) >= QUICK_BLOGGERS:
                    break
                parts[blogger], sizes[blogger] = [], 0
                labels[blogger] = (record["gender"], record["age_group"])
            n_posts += 1
            if sizes[blogger] < cap:  # posts past the cap are never read
                parts[blogger].append(record["text"])
                sizes[blogger] += len(record["text"].encode("utf-8", "surrogatepass")) + 2
    bloggers = list(parts)
    texts = [cap_utf8("\n\n".join(parts.pop(b)), cap) for b in bloggers]
    return {
        "path": str(path),
        "urls": [f"blog://{b}" for b in bloggers],
        "texts": texts,
        "gender": [labels[b][0] for b in bloggers],
        "age_group": [labels[b][1] for b in bloggers],
        "fold": [blog_fold(b) for b in bloggers],
        "n_posts": n_posts,
        "cap_bytes": cap,
        "n_capped": sum(size > cap for size in sizes.values()),
        "n_bytes": sum(len(t.encode("utf-8", "surrogatepass")) for t in texts),
    }


@dataclass(frozen=True)
class BlogFold:
    """One fold of a blogs task, built in the system's own process from the documents
    pickled once for every fold and both tasks (see :func:`classify_peers.load_split`)."""

    docs_file: str
    task: str
    fold: int
    quick: bool

    def load(self) -> Split:
        with open(self.docs_file, "rb") as f:
            docs = pickle.load(f)
        rows = zip(docs["urls"], docs[self.task], docs["texts"], docs["fold"])
        train, test = [], []
        for url, label, text, fold in rows:
            (test if fold == self.fold else train).append(Doc(url, label, text))
        return make_split(f"fold {self.fold + 1}", train, test, self.quick)


@dataclass(frozen=True)
class Corpus:
    """A section of the report: how to make its splits, and accum's goal on it (an
    accuracy, or None: at least TF-IDF + LinearSVC's on the same folds)."""

    key: str
    title: str
    goal: float | None
    task: str = ""


CORPORA = {c.key: c for c in (
    Corpus("20ng", "20 Newsgroups (bydate)", 0.868),
    Corpus("webkb", "WebKB-4, leave one university out", 0.920),
    Corpus("imdb", "IMDB (25k / 25k)", 0.912),
    Corpus("trec", "TREC question classification (6 coarse labels)", 0.90),
    Corpus("blogs-gender", "Blogs: gender (10-fold CV by blogger)", None, "gender"),
    Corpus("blogs-age", "Blogs: age group (10-fold CV by blogger)", None, "age_group"),
)}


def pickled_splits(key: str, splits: list[Split], workdir: Path) -> list[Path]:
    paths = []
    for split in splits:
        path = workdir / f"{key}-{split.name.replace(' ', '-')}.pickle"
        with open(path, "wb") as f:
            pickle.dump(split, f, protocol=pickle.HIGHEST_PROTOCOL)
        paths.append(path)
    return paths


def prepare(corpus: Corpus, quick: bool, n_folds: int, workdir: Path, cache: dict) -> tuple[list, list[str], str]:
    """The split sources of ``corpus`` (what :func:`classify_peers.load_split` takes), their
    names and a line describing them. The blogs are read once, for both tasks (``cache``)."""
    if corpus.key == "20ng":
        splits, about = newsgroups_splits(quick)
    elif corpus.key == "webkb":
        splits, about = webkb_splits(quick)
    elif corpus.key in ("imdb", "trec"):
        split, about = jsonl_split(corpus.key, corpus.key, quick)
        splits = [split]
    else:
        if "blogs" not in cache:
            print("  reading the blogs ...", file=sys.stderr, flush=True)
            docs = read_blogs(quick)
            docs_file = workdir / "blogs.pickle"
            with open(docs_file, "wb") as f:
                pickle.dump(docs, f, protocol=pickle.HIGHEST_PROTOCOL)
            meta = {k: v for k, v in docs.items() if k not in ("urls", "texts")}
            cache["blogs"] = (str(docs_file), meta)
            del docs
        docs_file, meta = cache["blogs"]
        sources = [BlogFold(docs_file, corpus.task, k, quick) for k in range(min(n_folds, BLOG_FOLDS))]
        sizes = Counter(meta["fold"])
        labels = Counter(meta[corpus.task])
        about = (f"`{meta['path']}`: {len(meta['fold']):,} bloggers ({meta['n_posts']:,} posts), one document "
                 f"each, capped at {meta['cap_bytes']:,} bytes of UTF-8 ({meta['n_capped']:,} bloggers cut), "
                 f"{meta['n_bytes'] / 1e6:,.1f} MB of text; labels "
                 + ", ".join(f"{label} {n:,}" for label, n in sorted(labels.items()))
                 + f". {BLOG_FOLDS} folds by a hash of the blogger id (test bloggers per fold: "
                 + ", ".join(f"{sizes[k]:,}" for k in range(BLOG_FOLDS)) + f"); folds run here: {len(sources)}"
                 + (" (a partial run)" if len(sources) < BLOG_FOLDS else "") + ".")
        if quick:
            about += f" Quick run: the first {QUICK_BLOGGERS:,} bloggers of the file, {QUICK_BLOG_CAP_BYTES:,} bytes each at most."
        return sources, [f"fold {s.fold + 1}" for s in sources], about
    return pickled_splits(corpus.key, splits, workdir), [s.name for s in splits], about


# -- the systems (each in its own process) ------------------------------------------------


WARM_TEXTS = [
    "the goalie stopped the puck in the third period", "a late goal won the hockey game on ice",
    "the power play ended with a slapshot goal", "skaters and a goalie on the rink",
    "a disk drive and a SCSI controller card", "the motherboard has memory and a fast bus",
    "install the hard drive with a new controller", "the graphics card needs more memory",
    "the orbit of the moon around the earth", "a rocket launch carried the satellite to orbit",
    "astronauts on the space station saw the moon", "the shuttle reached orbit after launch",
]
WARM_LABELS = ["hockey"] * 4 + ["hardware"] * 4 + ["space"] * 4


def warm_selection() -> None:
    """Run ``accum.selection.select_model`` once on tiny pages (when it exists), so that
    its numba kernels are compiled or loaded before anything is measured."""
    try:
        from accum.selection import select_model
    except ImportError:
        return
    from accum.accumulator import Accumulator

    texts, labels = WARM_TEXTS * 3, WARM_LABELS * 3
    acc = Accumulator(keep_vectors=True)
    acc.partial_fit(texts, labels)
    urls = [f"http://warm{i % 6}.example/{i}" for i in range(len(texts))]
    try:
        select_model(acc, acc.take_vectors(), urls=urls, seed=SEED).model.predict(texts[:3])
    except Exception as exc:  # noqa: BLE001  tiny pages may be refused; the measured run reports real errors
        print(f"warm-up of accum.selection failed ({type(exc).__name__}: {exc}); numba may compile in the "
              "first measurement", file=sys.stderr)


def run_accum_selected(split: Split, clock: Clock) -> Outcome:
    """accum's default with model selection: count with page vectors, select, fit.

    Falls back to ``make_model(acc)`` while ``accum.selection`` does not exist.
    """
    from accum.accumulator import Settings
    from accum.classify import make_model

    try:
        from accum.selection import select_model
    except ImportError:
        select_model = None
    with clock("train"):
        started = time.perf_counter()
        acc = count_pages(split.train_texts, split.train_labels, Settings(), keep_vectors=True)
        vectors = acc.take_vectors()
        counted = time.perf_counter()
    params = {"count_seconds": counted - started, "counts_bytes": acc.nbytes, "vectors_nnz": int(vectors.nnz),
              "vectors_bytes": int(vectors.fids.nbytes + vectors.tfs.nbytes + vectors.bounds.nbytes)}
    if select_model is not None:
        with clock("tune"):
            started = time.perf_counter()
            selection = select_model(acc, vectors, urls=split.train_urls or None, seed=SEED)
            clf = selection.model
            params["selection_seconds"] = time.perf_counter() - started
        params["chosen"] = str(selection.summary())
        params["selected"] = True
        if hasattr(selection, "to_dict"):  # the ranking of every candidate, for the JSON dump
            detail = selection.to_dict()
            detail.pop("calibration", None)
            params["selection"] = detail
    else:
        with clock("train"):
            started = time.perf_counter()
            clf = make_model(acc)
            params["model_seconds"] = time.perf_counter() - started
        params["chosen"] = f"{clf.name} (no selection yet)"
        params["selected"] = False
    del vectors
    params["model"] = str(clf.name)
    with clock("predict"):
        predictions = [str(p) for p in clf.predict(split.test_texts)]
    return Outcome(predictions, lambda: int(clf.nbytes), params)


def run_accum_count_only(split: Split, clock: Clock) -> Outcome:
    """accum's ridge-complement count model, ``make_model(acc)`` over counts with the Gram
    (``classify_peers.run_accum``)."""
    outcome = run_accum(split, clock)
    outcome.params.pop("measure_after", None)  # classify_peers' bounds paragraph is not reported here
    outcome.params["chosen"] = outcome.params["model"]
    return outcome


def run_nbsvm(split: Split, clock: Clock, alpha: float = NBSVM_ALPHA, beta: float = NBSVM_BETA,
              C: float = NBSVM_C) -> Outcome:
    """NBSVM (Wang & Manning 2012) with scikit-learn; one-vs-rest for more than two classes.

    The bias is interpolated like the weights, as the weight of a constant feature:
    ``b' = (1 - beta) mean|w| + beta b`` (``mean|w|`` over the features). The rows are binary, so a class's r-scaled matrix shares the indices of the binary
    one and only needs new values (``r`` of each entry's feature).
    """
    import warnings

    import numpy as np
    import scipy.sparse as sp
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.svm import LinearSVC

    vectorizer = CountVectorizer(binary=True, ngram_range=(1, 2), dtype=np.float64)
    with clock("train"):
        X = vectorizer.fit_transform(split.train_texts).tocsr()
        X.sort_indices()
        y = np.asarray(split.train_labels)
        classes = np.unique(y)
        targets = classes[1:] if len(classes) == 2 else classes  # binary: one model, for classes[1]
        total = np.asarray(X.sum(axis=0)).ravel()
        weights = np.empty((X.shape[1], len(targets)))
        bias = np.empty(len(targets))
        iterations = []
        for k, target in enumerate(targets):
            positive = y == target
            p = alpha + X.T @ positive.astype(np.float64)
            q = alpha + total - (p - alpha)
            r = np.log((p / p.sum()) / (q / q.sum()))
            scaled = sp.csr_matrix((r[X.indices], X.indices, X.indptr), shape=X.shape)
            with warnings.catch_warnings():  # counted in params (n_iter) instead of printed per fit
                warnings.simplefilter("ignore", ConvergenceWarning)
                svm = LinearSVC(C=C, random_state=SEED).fit(scaled, positive)
            iterations.append(int(svm.n_iter_))
            del scaled
            w = svm.coef_.ravel()
            mean_abs = np.abs(w).mean()
            weights[:, k] = r * ((1 - beta) * mean_abs + beta * w)  # r folded in: score = x . (r w') + b'
            bias[k] = (1 - beta) * mean_abs + beta * svm.intercept_[0]
        del X
    with clock("predict"):
        scores = vectorizer.transform(split.test_texts) @ weights + bias
        if len(classes) == 2:
            predictions = classes[(scores[:, 0] > 0).astype(int)].tolist()
        else:
            predictions = classes[scores.argmax(axis=1)].tolist()
    params = {"alpha": alpha, "beta": beta, "C": C, "n_features": int(weights.shape[0]), "n_iter": iterations,
              "max_iter": svm.max_iter, "unconverged": sum(n >= svm.max_iter for n in iterations)}
    return Outcome(predictions, lambda: pickled_size((vectorizer, weights, bias, classes)), params)


def run_binary_mnb(split: Split, clock: Clock, alpha: float = MNB_ALPHA) -> Outcome:
    """MultinomialNB on binarised unigram + bigram counts."""
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.naive_bayes import MultinomialNB

    vectorizer = CountVectorizer(binary=True, ngram_range=(1, 2))
    with clock("train"):
        model = MultinomialNB(alpha=alpha).fit(vectorizer.fit_transform(split.train_texts), split.train_labels)
    with clock("predict"):
        predictions = model.predict(vectorizer.transform(split.test_texts)).tolist()
    return Outcome(predictions, lambda: pickled_size((vectorizer, model)), {"alpha": alpha})


def run_complement_nb_bigrams(split: Split, clock: Clock) -> Outcome:
    """ComplementNB on TF-IDF unigrams + bigrams, alpha by 3-fold CV on the training pages."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.naive_bayes import ComplementNB

    return run_sklearn_nb(split, clock, TfidfVectorizer(ngram_range=(1, 2)), ComplementNB)


SKLEARN = {"module": "sklearn", "package": "scikit-learn"}
SYSTEMS = (
    System("accum", "**accum** (default, model selection)", run_accum_selected, warm=warm_selection),
    System("accum-count", "accum ridge-complement (count model, no selection)", run_accum_count_only),
    System("svm", "TF-IDF 1-2 grams + LinearSVC", run_linear_svc, **SKLEARN),
    System("nbsvm", "NBSVM 1-2 grams (β 0.25)", run_nbsvm, **SKLEARN),
    System("mnb", "MultinomialNB, binary 1-2 grams", run_binary_mnb, **SKLEARN),
    System("cnb", "ComplementNB, TF-IDF 1-2 grams (α by CV)", run_complement_nb_bigrams, **SKLEARN),
    System("fasttext", "fastText wordNgrams=2, 5 epochs", run_fasttext, {"epoch": 5}, "fasttext",
           "fasttext-numpy2-wheel"),
    System("vw", "Vowpal Wabbit --oaa --ngram 2, 1 pass", run_vowpal_wabbit, {"ngram": 2}, "vowpalwabbit",
           "vowpalwabbit"),
)
SYSTEM_BY_KEY = {s.key: s for s in SYSTEMS}
#: The peers: every system that is not accum.
PEERS = tuple(s.key for s in SYSTEMS if not s.key.startswith("accum"))


# -- running (in the parent) ---------------------------------------------------------------


def run_corpus(corpus: Corpus, systems: list[System], quick: bool, n_folds: int, workdir: Path,
               cache: dict) -> dict:
    """Every system on every split of ``corpus``, each run in its own process."""
    sources, names, about = prepare(corpus, quick, n_folds, workdir, cache)
    results = {}
    for system in systems:
        print(f"  {system.label} ...", file=sys.stderr, flush=True)
        started = time.perf_counter()
        results[system.key] = run_system(system, sources)
        result = results[system.key]
        score = f", accuracy {result['summary']['accuracy']:.3f}" if result["status"] == "ok" else ""
        print(f"    {result['status']}{score} in {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    for source in sources:
        if isinstance(source, Path):
            source.unlink()
    return {"key": corpus.key, "title": corpus.title, "goal": corpus.goal, "about": about, "folds": names,
            "n_splits": len(sources), "systems": results}


# -- reporting -----------------------------------------------------------------------------


def ok(result: dict | None) -> bool:
    return result is not None and result["status"] == "ok"


def train_total(s: dict, cpu: bool = False) -> float:
    """Seconds from texts to a ready model: training plus model selection or CV search."""
    kind = "cpu_seconds" if cpu else "seconds"
    return s[f"train_{kind}"] + s[f"tune_{kind}"]


def best_peer(systems: dict) -> tuple[str, dict] | None:
    """The peer with the best mean accuracy (key, result), or None when none ran."""
    ran = [(key, systems[key]) for key in PEERS if ok(systems.get(key))]
    return max(ran, key=lambda kr: kr[1]["summary"]["accuracy"]) if ran else None


def fold_wins(accum: dict, other: dict) -> tuple[int, int, int]:
    """Folds where accum's accuracy is above, equal to, below ``other``'s (same folds)."""
    pairs = list(zip((f["accuracy"] for f in accum["folds"]), (f["accuracy"] for f in other["folds"])))
    return (sum(a > b for a, b in pairs), sum(a == b for a, b in pairs), sum(a < b for a, b in pairs))


def chosen_text(result: dict) -> str:
    """The settings a system chose, short (per fold when they differ)."""
    folds = result["folds"]
    params = [f["params"] for f in folds]
    if not params:
        return ""
    if "model" in params[0]:
        names = list(dict.fromkeys(p["model"] for p in params))
        return ", ".join(names)
    if "alpha" in params[0] and result["label"].startswith("ComplementNB"):
        return "α " + ", ".join(f"{p['alpha']:g}" for p in params)
    if "unconverged" in params[0]:
        stopped = sum(p["unconverged"] for p in params)
        fits = sum(len(p["n_iter"]) for p in params)
        return f"liblinear at its {params[0]['max_iter']:,}-iteration limit in {stopped} of {fits} fits" if stopped else ""
    return ""


HEADERS = ["system", "accuracy", "macro-F1", "accum − system (points)", "train s", "of which selection / CV s",
           "train CPU s", "predict s", "predict pages/s", "peak RSS Δ MB", "model MB", "chosen"]


def system_row(result: dict, reference: dict | None) -> list[str]:
    if result["status"] != "ok":
        return [result["label"], result["status"]] + [""] * (len(HEADERS) - 2)
    s = result["summary"]
    diff = "—"
    if reference is not None and result is not reference:
        diff = f"{100 * (reference['summary']['accuracy'] - s['accuracy']):+.1f}"
    train, train_cpu = train_total(s), train_total(s, cpu=True)
    return [
        result["label"], fmt(s["accuracy"], 3), fmt(s["macro_f1"], 3), diff,
        fmt(train) + contention_mark(train, train_cpu), fmt(s["tune_seconds"]) if s["tune_seconds"] else "—",
        fmt(train_cpu), fmt(s["predict_seconds"]) + contention_mark(s["predict_seconds"], s["predict_cpu_seconds"]),
        fmt(s["predict_docs_per_s"], 0), fmt(s["peak_rss_delta"] / 1e6, 0), fmt(s["model_bytes"] / 1e6, 1),
        chosen_text(result),
    ]


def fold_table(corpus: dict) -> str:
    rows = []
    for result in corpus["systems"].values():
        if ok(result):
            accuracy = {f["fold"]: fmt(f["accuracy"], 3) for f in result["folds"]}
            rows.append([result["label"]] + [accuracy.get(name, "—") for name in corpus["folds"]]
                        + [fmt(result["summary"]["accuracy"], 3)])
    return markdown_table(["system"] + [str(name) for name in corpus["folds"]] + ["mean"], rows)


def comparison_lines(corpus: dict) -> list[str]:
    """accum − best peer; accum's train time ÷ TF-IDF + LinearSVC's; pages/s ÷ MultinomialNB's."""
    systems = corpus["systems"]
    accum = systems.get("accum")
    if not ok(accum):
        return []
    a = accum["summary"]
    lines = []
    best = best_peer(systems)
    if best:
        _, peer = best
        lines.append(f"- accum − best peer: **{100 * (a['accuracy'] - peer['summary']['accuracy']):+.1f} points** "
                     f"({a['accuracy']:.3f} against {peer['label']} {peer['summary']['accuracy']:.3f}).")
    if ok(systems.get("svm")):
        svm = systems["svm"]["summary"]
        lines.append(f"- accum's train time ÷ TF-IDF + LinearSVC's: **{train_total(a) / train_total(svm):.2f}** "
                     f"({train_total(a):,.2f} s against {train_total(svm):,.2f} s; CPU "
                     f"{train_total(a, cpu=True):,.2f} s against {train_total(svm, cpu=True):,.2f} s).")
    if ok(systems.get("mnb")):
        mnb = systems["mnb"]["summary"]
        lines.append(f"- accum's prediction pages/s ÷ MultinomialNB's: **{a['predict_docs_per_s'] / mnb['predict_docs_per_s']:.1f}×** "
                     f"({a['predict_docs_per_s']:,.0f} against {mnb['predict_docs_per_s']:,.0f} pages/s).")
    if corpus["key"].startswith("blogs") and ok(systems.get("svm")):
        above, tied, below = fold_wins(accum, systems["svm"])
        n = above + tied + below
        verdict = "yes" if above == n else "no"
        lines.append(f"- Better than TF-IDF + LinearSVC in every fold? **{verdict}**: above in {above} of {n} folds, "
                     f"tied in {tied}, below in {below}.")
    return lines + [""]


def selection_lines(corpus: dict) -> list[str]:
    """What accum's model selection chose, per split."""
    accum = corpus["systems"].get("accum")
    if not accum or not accum["folds"]:
        return []
    lines = ["accum's choice" + (" per fold" if len(accum["folds"]) > 1 else "") + ":", ""]
    for fold in accum["folds"]:
        text = " ".join(str(fold["params"].get("chosen", "")).split())  # one line, whatever the summary's layout
        prefix = f"{fold['fold']}: " if len(accum["folds"]) > 1 else ""
        lines.append(f"- {prefix}{text}")
    return lines + [""]


def corpus_section(corpus: dict) -> str:
    reference = corpus["systems"].get("accum")
    reference = reference if ok(reference) else None
    rows = [system_row(result, reference) for result in corpus["systems"].values()]
    parts = [f"## {corpus['title']}", "", corpus["about"], "", markdown_table(HEADERS, rows), ""]
    parts += comparison_lines(corpus)
    parts += selection_lines(corpus)
    if corpus["n_splits"] > 1:
        parts += ["Accuracy per fold:", "", fold_table(corpus), ""]
    return "\n".join(parts)


def summary_rows(corpora: dict) -> list[list[str]]:
    rows = []
    for corpus in corpora.values():
        systems = corpus["systems"]
        accum, count_only, svm = systems.get("accum"), systems.get("accum-count"), systems.get("svm")
        best = best_peer(systems)
        accum_acc = accum["summary"]["accuracy"] if ok(accum) else None
        if corpus["goal"] is not None:
            goal_text = f"≥ {corpus['goal']:.3f}"
            met = None if accum_acc is None else accum_acc >= corpus["goal"]
        elif ok(svm):
            svm_acc = svm["summary"]["accuracy"]
            above, tied, below = fold_wins(accum, svm) if ok(accum) else (0, 0, 0)
            goal_text = f"≥ TF-IDF + LinearSVC ({svm_acc:.3f}), same folds"
            if ok(accum):
                goal_text += f"; above in {above} of {above + tied + below} folds"
            met = None if accum_acc is None else accum_acc >= svm_acc
        else:
            goal_text, met = "≥ TF-IDF + LinearSVC, same folds", None
        rows.append([
            corpus["title"], fmt(accum_acc, 3), fmt(count_only["summary"]["accuracy"], 3) if ok(count_only) else "—",
            fmt(best[1]["summary"]["accuracy"], 3) if best else "—", best[1]["label"] if best else "—",
            goal_text, "—" if met is None else ("yes" if met else "**no**"),
        ])
    return rows


NOTES = """\
Notes:

- "train s" is texts to a model ready to predict, for every system: vectorising (or
  counting), model selection or the CV search of α, and the final fit; "of which
  selection / CV s" is the selection's share (accum: `select_model`, which ends with the
  fitted model; ComplementNB: its 3-fold search over α in {grid}). Means per fold;
  "predict pages/s" divides the test pages by the predict seconds over all folds.
  "accum − system" is accum's (with selection) accuracy minus the system's, in points.
- Peak RSS Δ: the peak resident memory above the process's RSS before training, over
  training and prediction, each system and split in a fresh spawned process ({method}).
  Model MB: accum the classifier's arrays as a snapshot saves them (its counts and page
  vectors are in the JSON dump: `counts_bytes`, `vectors_bytes`); scikit-learn models
  pickled with their vectoriser; fastText the saved .bin; Vowpal Wabbit the saved model.
- NBSVM: binarised uni+bigram counts, r with α {nb_alpha:g}, LinearSVC(C={nb_c:g}) on
  r-scaled rows, w' = (1 − β)·mean|w| + β·w with β {beta:g}, the bias interpolated as
  the weight of a constant feature (liblinear's `-B 1`), one-vs-rest above two classes;
  liblinear's default limit of 1,000 iterations (where it stops, "chosen" says so; on
  IMDB, 10,000 allowed converged at 1,107 with the same accuracy). MultinomialNB:
  binarised uni+bigram counts, α {mnb_alpha:g}. Vowpal Wabbit `-b {bits}`. Training
  order shuffled once (seed {seed}), the same for every system.
- Tokens: scikit-learn's default pattern (two or more letters, digits or underscores),
  lowercased; fastText and Vowpal Wabbit get lowercased runs of letters and digits
  joined by spaces (they split on spaces only), the pre-processing in their times.
- Single-threaded; numba compile and cache-load time excluded (warm-up in each process
  before measuring). Seconds are wall-clock ("train CPU s" is the process's CPU time,
  which other load on the machine disturbs less); the machine is shared, so they vary
  between runs. {contention}
"""


def render(corpora: dict, versions: dict, machine: dict, args: argparse.Namespace) -> str:
    methods = {f["memory_method"] for c in corpora.values() for r in c["systems"].values() for f in r["folds"]}
    title = "accum and its peers: the public classification suite"
    if args.quick:
        title += f" (--quick smoke run: at most {QUICK_TRAIN:,} train / {QUICK_TEST:,} test pages per split)"
    partial = []
    if set(corpora) != set(CORPORA):
        partial.append("corpora " + ", ".join(corpora))
    if any(c["key"].startswith("blogs") and c["n_splits"] < BLOG_FOLDS for c in corpora.values()):
        partial.append(f"blogs folds {min(args.folds, BLOG_FOLDS)} of {BLOG_FOLDS}")
    if args.only:
        partial.append("systems " + args.only)
    summary = markdown_table(["corpus", "accum (selection)", "accum ridge-complement", "best peer", "which peer", "goal",
                              "goal met"], summary_rows(corpora), "lrrrlll")
    return "\n".join([
        report_header(title, versions, machine),
        *([f"**Partial run**: {'; '.join(partial)}.", ""] if partial else []),
        "## Summary", "",
        ("Mean accuracy of accum's default with model selection, its ridge-complement count model (no selection) and the best peer; "
         "the goals of issue #18."), "",
        summary, "",
        *(corpus_section(c) for c in corpora.values()),
        NOTES.format(grid=", ".join(f"{a:g}" for a in ALPHA_GRID), method=", ".join(sorted(methods)) or "n/a",
                     nb_alpha=NBSVM_ALPHA, nb_c=NBSVM_C, beta=NBSVM_BETA, mnb_alpha=MNB_ALPHA, bits=VW_BITS,
                     seed=SEED, contention=CONTENTION_NOTE),
    ])


def corpus_keys(text: str) -> list[str]:
    """Corpus keys from a comma-separated list (``blogs``: both blogs tasks; ``all``: every one)."""
    keys = []
    for name in text.split(","):
        name = name.strip()
        if name == "all":
            keys += list(CORPORA)
        elif name == "blogs":
            keys += ["blogs-gender", "blogs-age"]
        elif name in CORPORA:
            keys.append(name)
        else:
            raise argparse.ArgumentTypeError(
                f"unknown corpus {name!r}; choose from {', '.join(CORPORA)}, blogs (both tasks) or all")
    return [key for key in CORPORA if key in keys]  # the report's order, each once


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=corpus_keys, default=list(CORPORA), metavar="LIST",
                        help="comma-separated corpora: " + ", ".join(CORPORA) + ", blogs (both tasks), all (default)")
    parser.add_argument("--folds", type=int, default=None,
                        help=f"run only the first N of the blogs' {BLOG_FOLDS} folds (default all; {QUICK_FOLDS} "
                             "with --quick)")
    parser.add_argument("--quick", action="store_true",
                        help=f"smoke run on slices ({QUICK_TRAIN} train / {QUICK_TEST} test pages per split, the "
                             f"first {QUICK_BLOGGERS} bloggers cut at {QUICK_BLOG_CAP_BYTES:,} bytes); prints the "
                             "report without writing it unless --output is given")
    parser.add_argument("--only", default=None, help="comma-separated systems to run: " + ", ".join(SYSTEM_BY_KEY))
    parser.add_argument("--output", type=Path, default=None,
                        help=f"markdown report to write (default {REPORT.relative_to(RESULTS_DIR.parents[1])}, "
                             "none with --quick)")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH",
                        help="also dump the raw numbers as JSON (rewritten after each corpus)")
    args = parser.parse_args(argv)
    if args.folds is None:
        args.folds = QUICK_FOLDS if args.quick else BLOG_FOLDS
    if not 1 <= args.folds <= BLOG_FOLDS:
        parser.error(f"--folds must be from 1 to {BLOG_FOLDS}, got {args.folds}")
    if args.only:
        unknown = set(args.only.split(",")) - set(SYSTEM_BY_KEY)
        if unknown:
            parser.error(f"unknown system(s) {', '.join(sorted(unknown))}; choose from {', '.join(SYSTEM_BY_KEY)}")
    if args.output is None and not args.quick:
        args.output = REPORT
    return args


def dump_json(path: Path, machine: dict, versions: dict, args: argparse.Namespace, corpora: dict) -> None:
    raw = {"machine": machine, "versions": versions, "command": command_line(), "quick": args.quick,
           "blog_folds": args.folds, "blog_cap_bytes": BLOG_CAP_BYTES, "alpha_grid": ALPHA_GRID, "corpora": corpora}
    path.write_text(json.dumps(raw, indent=2, default=str) + "\n")


def main(argv=None) -> None:
    args = parse_args(argv)
    machine = machine_info()
    versions = package_versions(VERSIONS)
    systems = [s for s in SYSTEMS if not args.only or s.key in args.only.split(",")]
    warm_accum()  # compile numba's on-disk cache here, never in a measurement
    warm_selection()
    corpora: dict = {}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="classify_suite-") as tmp:
        cache: dict = {}
        for key in args.corpus:
            print(f"{CORPORA[key].title}:", file=sys.stderr, flush=True)
            corpora[key] = run_corpus(CORPORA[key], systems, args.quick, args.folds, Path(tmp), cache)
            if args.json:
                dump_json(args.json, machine, versions, args, corpora)
    print(f"suite done in {time.perf_counter() - started:,.0f} s", file=sys.stderr)
    report = render(corpora, versions, machine, args)
    print(report)
    if args.output:
        write_report(args.output, report)
    if args.json:
        print(f"wrote {args.json}", file=sys.stderr)


if __name__ == "__main__":
    main()

"""Evaluate a classifier on labelled pages: accuracy, macro-F1, per category, confusion,
calibration, label sets; and the held-out scores that calibration is fitted on.

No corpus here labels a page with several categories, so label sets are also scored on
*two-topic pages*: two labelled pages of different categories joined into one, whose
true label set is both (:func:`two_topic_pages`).
"""

from __future__ import annotations

from collections import Counter
from typing import Callable, Iterable

import numpy as np

from .calibration import (apply_confidence_map, confidence_reliability, fit_confidence_map, fit_label_thresholds,
                          fit_temperature, label_set_scores, negative_log_likelihood, reliability, softmax)
from .prediction import TextClassifier
from .pages import Record, Skipped


def score_labelled(records: Iterable[Record], clf: TextClassifier, batch_pages: int = 500,
                   exclude: Callable[[str], bool] | None = None,
                   keep: list | None = None) -> tuple[np.ndarray, np.ndarray, Counter]:
    """Scores and true category indices of every usable labelled page.

    Pages whose label the classifier has never seen are skipped as "unknown-label"
    (they could never be right); ``exclude(text)`` true skips a page as "in-training";
    unreadable records are counted by reason. ``keep``, a list, receives the text of
    every page scored, in order.

    Returns
    -------
    scores : float64[n_pages, n_categories]
    y : int64[n_pages]
    skipped : Counter
    """
    index = {c: i for i, c in enumerate(clf.categories)}
    y: list[int] = []
    chunks: list[np.ndarray] = []
    skipped: Counter = Counter()
    texts: list[str] = []

    def flush():
        if texts:
            chunks.append(clf.decision_function(texts))
            texts.clear()

    for record in records:
        if isinstance(record, Skipped):
            skipped[record.reason] += 1
        elif record.label is None:
            skipped["no-label"] += 1
        elif record.label not in index:
            skipped["unknown-label"] += 1
        elif not record.text.strip():
            skipped["empty"] += 1
        elif exclude is not None and exclude(record.text):
            skipped["in-training"] += 1
        else:
            y.append(index[record.label])
            texts.append(record.text)
            if keep is not None:
                keep.append(record.text)
            if len(texts) >= batch_pages:
                flush()
    flush()
    if not y:
        raise ValueError(
            "no labelled page to score: check the label spec and that the labels "
            f"match the store's categories ({', '.join(clf.categories[:5])}...); skipped: {dict(skipped)}"
        )
    return np.vstack(chunks), np.array(y, np.int64), skipped


def two_topic_pages(texts: list[str], y: np.ndarray, n: int, seed: int = 0) -> tuple[list[str], list[set]]:
    """``n`` pages each made of two of ``texts`` from different categories (drawn
    uniformly, seeded), joined by a blank line, with their true category sets."""
    if len(set(y.tolist())) < 2:
        raise ValueError("two-topic pages need labelled pages of at least two categories")
    rng = np.random.default_rng(seed)
    pages, truth = [], []
    while len(pages) < n:
        i, j = rng.integers(len(texts), size=2)
        if y[i] != y[j]:
            pages.append(texts[i] + "\n\n" + texts[j])
            truth.append({int(y[i]), int(y[j])})
    return pages, truth


def membership(sets: list[set], n_categories: int) -> np.ndarray:
    """bool[n_pages, n_categories]: whether each page's set holds each category index."""
    out = np.zeros((len(sets), n_categories), bool)
    for i, s in enumerate(sets):
        out[i, list(s)] = True
    return out


def fit_set_thresholds(clf: TextClassifier, probs: np.ndarray, y: np.ndarray, texts: list[str],
                       pairs: int = 0, seed: int = 0) -> np.ndarray:
    """Per-category thresholds (:func:`accum.calibration.fit_label_thresholds`) fitted on
    held-out pages (probabilities ``probs``, categories ``y``) and on ``pairs`` two-topic
    pages made from their ``texts``, so that the thresholds also see pages of two topics."""
    truth = [{int(c)} for c in y]
    if pairs:
        pages, pair_truth = two_topic_pages(texts, y, pairs, seed)
        probs = np.vstack([probs, clf.predict_proba(pages)])
        truth += pair_truth
    return fit_label_thresholds(probs, membership(truth, len(clf.categories)))


def calibrate(clf: TextClassifier, scores: np.ndarray, y: np.ndarray, texts: list[str] = (),
              pairs: int = 0, seed: int = 0) -> tuple[dict, dict, dict]:
    """Fit ``clf``'s temperature, confidence map and label-set thresholds on held-out pages
    (scores ``scores`` at temperature 1, categories ``y``, and ``texts`` when ``pairs``
    two-topic pages are to join the thresholds' fit), and set them on ``clf``.

    Returns the calibration record (temperature, page count, ECE and negative
    log-likelihood before and after, the map's breakpoints, the thresholds by category)
    and the reliability of the top probability before and of the confidence after.
    """
    clf.temperature = fit_temperature(scores, y)
    probs = softmax(scores, clf.temperature)
    correct = probs.argmax(axis=1) == y
    clf.confidence_map = fit_confidence_map(probs.max(axis=1), correct)
    clf.label_thresholds = fit_set_thresholds(clf, probs, y, list(texts), pairs, seed)
    before = reliability(softmax(scores), y)
    after = confidence_reliability(apply_confidence_map(probs.max(axis=1), clf.confidence_map), correct)
    after["temperature"] = clf.temperature
    record = {
        "temperature": clf.temperature, "n": int(len(y)),
        "ece_before": before["ece"], "ece_after": after["ece"],
        "nll_before": negative_log_likelihood(scores, y, 1.0),
        "nll_after": negative_log_likelihood(scores, y, clf.temperature),
        "confidence_x": clf.confidence_map[0], "confidence_y": clf.confidence_map[1],
        "label_thresholds": dict(zip(clf.categories, clf.label_thresholds.tolist())), "threshold_pairs": pairs,
    }
    return record, before, after


def label_set_report(clf: TextClassifier, probs: np.ndarray, y: np.ndarray, texts: list[str],
                     pairs: int, seed: int = 0) -> dict:
    """Scores of the classifier's label sets (:meth:`~accum.prediction.TextClassifier.predict_label_sets`)
    on the single pages (probabilities ``probs``, categories ``y``) and on ``pairs``
    two-topic pages made from them."""
    names = list(range(len(clf.categories)))

    def sets(p):
        return [set(clf.label_set(row)) for row in p]

    report = {"single": label_set_scores([{int(c)} for c in y], sets(probs), names)}
    if pairs:
        pages, truth = two_topic_pages(texts, y, pairs, seed)
        report["two_topic"] = label_set_scores(truth, sets(clf.predict_proba(pages)), names) | {"seed": seed}
    return report


def evaluate(records: Iterable[Record], clf: TextClassifier, batch_pages: int = 500,
             min_confidence: float = 0.0, pairs: int = 0, seed: int = 0) -> dict:
    """Classify every labelled page and compare with its label.

    Returns
    -------
    dict
        ``accuracy``, ``macro_f1``, ``n``, ``per_category`` (precision, recall, f1,
        support), ``confusion`` (``labels`` and ``matrix[true][predicted]``),
        ``calibration`` (temperature, ECE, NLL), ``abstention`` (with
        ``min_confidence``: coverage and accuracy of the pages answered), ``skipped``;
        with the classifier's multi-label thresholds also ``multi_label``
        (:func:`label_set_report`, with ``pairs`` two-topic pages drawn with ``seed``).
    """
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    texts: list[str] | None = [] if pairs and clf.label_thresholds is not None else None
    scores, y_true, skipped = score_labelled(records, clf, batch_pages, keep=texts)
    y_pred = scores.argmax(axis=1)
    probs = softmax(scores, clf.temperature)
    labels = list(range(len(clf.categories)))
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    present = np.asarray(s) > 0
    rel = reliability(probs, y_true)
    confidence = apply_confidence_map(probs.max(axis=1), clf.confidence_map)
    answered = confidence >= min_confidence
    report = {
        "n": int(len(y_true)),
        "accuracy": float(np.mean(y_true == y_pred)),
        "macro_f1": float(np.mean(f[present])),
        "per_category": {
            c: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
            for i, c in enumerate(clf.categories)
        },
        "confusion": {
            "labels": list(clf.categories),
            "matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
        },
        "calibration": {
            "temperature": clf.temperature,
            "ece": rel["ece"],
            "confidence_ece": confidence_reliability(confidence, y_true == y_pred)["ece"],
            "calibrated_confidence": clf.confidence_map is not None,
            "nll": negative_log_likelihood(scores, y_true, clf.temperature),
        },
        "abstention": {
            "min_confidence": min_confidence,
            "coverage": float(answered.mean()),
            "accuracy_answered": float(np.mean(y_true[answered] == y_pred[answered])) if answered.any() else None,
        },
        "skipped": dict(sorted(skipped.items())),
    }
    if clf.label_thresholds is not None:
        report["multi_label"] = label_set_report(clf, probs, y_true, texts or [], pairs if texts else 0, seed)
    return report

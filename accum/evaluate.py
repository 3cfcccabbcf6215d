"""Evaluate a classifier on labelled pages: accuracy, macro-F1, per category, confusion,
calibration; and the held-out scores that calibration is fitted on."""

from __future__ import annotations

from collections import Counter
from typing import Callable, Iterable

import numpy as np

from .calibration import apply_confidence_map, confidence_reliability, negative_log_likelihood, reliability, softmax
from .classify import LinearCountModel
from .pages import Record, Skipped


def score_labelled(records: Iterable[Record], clf: LinearCountModel, batch_pages: int = 500,
                   exclude: Callable[[str], bool] | None = None) -> tuple[np.ndarray, np.ndarray, Counter]:
    """Scores and true category indices of every usable labelled page.

    Pages whose label the classifier has never seen are skipped as "unknown-label"
    (they could never be right); ``exclude(text)`` true skips a page as "in-training";
    unreadable records are counted by reason.

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
            if len(texts) >= batch_pages:
                flush()
    flush()
    if not y:
        raise ValueError(
            "no labelled page to score: check the --label spec and that the labels "
            f"match the store's categories ({', '.join(clf.categories[:5])}...); skipped: {dict(skipped)}"
        )
    return np.vstack(chunks), np.array(y, np.int64), skipped


def evaluate(records: Iterable[Record], clf: LinearCountModel, batch_pages: int = 500,
             min_confidence: float = 0.0) -> dict:
    """Classify every labelled page and compare with its label.

    Returns
    -------
    dict
        ``accuracy``, ``macro_f1``, ``n``, ``per_category`` (precision, recall, f1,
        support), ``confusion`` (``labels`` and ``matrix[true][predicted]``),
        ``calibration`` (temperature, ECE, NLL), ``abstention`` (with
        ``min_confidence``: coverage and accuracy of the pages answered), ``skipped``.
    """
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    scores, y_true, skipped = score_labelled(records, clf, batch_pages)
    y_pred = scores.argmax(axis=1)
    probs = softmax(scores, clf.temperature)
    labels = list(range(len(clf.categories)))
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    present = np.asarray(s) > 0
    rel = reliability(probs, y_true)
    confidence = apply_confidence_map(probs.max(axis=1), clf.confidence_map)
    answered = confidence >= min_confidence
    return {
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

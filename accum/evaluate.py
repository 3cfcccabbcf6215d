"""Evaluate a classifier on labelled pages: accuracy, macro-F1, per category, confusion."""

from __future__ import annotations

from collections import Counter
from typing import Iterable

import numpy as np

from .classify import LinearCountModel
from .pages import Record, Skipped


def evaluate(records: Iterable[Record], clf: LinearCountModel, batch_pages: int = 500) -> dict:
    """Classify every labelled page and compare with its label.

    Pages whose label the classifier has never seen are skipped as "unknown-label"
    (they could never be right); unreadable records are counted by reason.

    Returns
    -------
    dict
        ``accuracy``, ``macro_f1``, ``n``, ``per_category`` (precision, recall, f1,
        support), ``confusion`` (``labels`` and ``matrix[true][predicted]``), ``skipped``.
    """
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    index = {c: i for i, c in enumerate(clf.categories)}
    y_true: list[int] = []
    y_pred: list[int] = []
    skipped: Counter = Counter()
    texts: list[str] = []

    def flush():
        if texts:
            y_pred.extend(clf.decision_function(texts).argmax(axis=1).tolist())
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
        else:
            y_true.append(index[record.label])
            texts.append(record.text)
            if len(texts) >= batch_pages:
                flush()
    flush()
    if not y_true:
        raise ValueError(
            "no labelled page to evaluate: check the --label spec and that the labels "
            f"match the store's categories ({', '.join(clf.categories[:5])}...); skipped: {dict(skipped)}"
        )
    labels = list(range(len(clf.categories)))
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    present = np.asarray(s) > 0
    return {
        "n": len(y_true),
        "accuracy": float(np.mean(np.array(y_true) == np.array(y_pred))),
        "macro_f1": float(np.mean(f[present])),
        "per_category": {
            c: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
            for i, c in enumerate(clf.categories)
        },
        "confusion": {
            "labels": list(clf.categories),
            "matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
        },
        "skipped": dict(sorted(skipped.items())),
    }

"""Probabilities that mean something: temperature scaling and calibration error.

A model's scores become probabilities as ``softmax(scores / T)``. The temperature T is
fitted on labelled pages the model was not trained on, by minimising their negative
log-likelihood (Guo et al. 2017); it changes no decision, only how sure the model says
it is. A single temperature cannot straighten every model's reliability curve (naive
Bayes scores are over-confident on some pages and under-confident on others), so a
second, monotone map fitted by isotonic regression turns the top category's probability
into its **confidence**: the estimated chance that the answer is right. Abstention uses
the confidence. The expected calibration error (ECE) is the page-weighted mean gap
between confidence and accuracy over equal-width confidence bins.

For pages that belong to several categories, each category gets its own threshold on
its probability, fitted on the same held-out pages (:func:`fit_label_thresholds`); a
page's label set is every category at or above its threshold, scored by
:func:`label_set_scores`.
"""

from __future__ import annotations

import numpy as np


def softmax(scores: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax of ``scores / temperature``."""
    z = scores / temperature
    z = z - z.max(axis=1, keepdims=True)
    p = np.exp(z)
    return p / p.sum(axis=1, keepdims=True)


def negative_log_likelihood(scores: np.ndarray, y: np.ndarray, temperature: float) -> float:
    """Mean -log p(true category) at ``temperature``."""
    z = scores / temperature
    z = z - z.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(z).sum(axis=1))
    return float(np.mean(log_norm - z[np.arange(len(y)), y]))


def fit_temperature(scores: np.ndarray, y: np.ndarray) -> float:
    """The temperature that minimises the negative log-likelihood of ``y``.

    Parameters
    ----------
    scores : float64[n_pages, n_categories]
    y : int[n_pages]
        Index of each page's true category.
    """
    from scipy.optimize import minimize_scalar

    if len(y) == 0:
        raise ValueError("no labelled pages to fit a temperature on")
    spread = float(np.std(scores)) or 1.0
    result = minimize_scalar(
        lambda log_t: negative_log_likelihood(scores, y, float(np.exp(log_t))),
        bounds=(np.log(spread) - 12, np.log(spread) + 12), method="bounded",
    )
    return float(np.exp(result.x))


def reliability(probs: np.ndarray, y: np.ndarray, bins: int = 15) -> dict:
    """ECE and the per-bin confidence, accuracy and page counts of the top category."""
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == y
    edges = np.linspace(0, 1, bins + 1)
    index = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    count = np.bincount(index, minlength=bins)
    conf = np.bincount(index, confidence, minlength=bins)
    acc = np.bincount(index, correct.astype(float), minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf, mean_acc = conf / count, acc / count
    ece = float(np.nansum(np.abs(mean_conf - mean_acc) * count) / max(len(y), 1))
    return {"ece": ece, "edges": edges.tolist(), "count": count.tolist(),
            "confidence": [None if np.isnan(v) else float(v) for v in mean_conf],
            "accuracy": [None if np.isnan(v) else float(v) for v in mean_acc]}


def fit_confidence_map(top_probs: np.ndarray, correct: np.ndarray) -> tuple[list[float], list[float]]:
    """Isotonic map from the top probability to the chance of being right: breakpoints (x, y).

    The least-squares non-decreasing fit by pool adjacent violators (as scikit-learn's
    ``IsotonicRegression``, which a test compares it with; written here because importing
    scikit-learn costs a second of every model fit): equal probabilities are pooled
    first, then adjacent blocks whose means decrease, and each block gives its first and
    last probability as breakpoints, so that :func:`apply_confidence_map` is a step
    function with linear ramps between blocks.
    """
    x = np.asarray(top_probs, np.float64)
    order = np.argsort(x, kind="stable")
    xs, start, weight = np.unique(x[order], return_index=True, return_counts=True)
    means = np.add.reduceat(np.asarray(correct, np.float64)[order], start) / weight
    values, weights, firsts = [], [], []  # the blocks so far: mean, pages, index of their first x
    for i, (m, w) in enumerate(zip(means.tolist(), weight.tolist())):
        values.append(m)
        weights.append(w)
        firsts.append(i)
        while len(values) > 1 and values[-2] > values[-1]:
            w2, w1 = weights.pop(), weights.pop()
            m2, m1 = values.pop(), values.pop()
            firsts.pop()
            values.append((m1 * w1 + m2 * w2) / (w1 + w2))
            weights.append(w1 + w2)
        # (a block keeps the first x of the earliest block it absorbed)
    lasts = firsts[1:] + [len(xs)]
    bx, by = [], []
    for value, first, end in zip(values, firsts, lasts):
        value = min(max(value, 0.0), 1.0)
        for k in sorted({first, end - 1}):
            bx.append(float(xs[k]))
            by.append(value)
    return bx, by


def apply_confidence_map(top_probs: np.ndarray, mapping: tuple[list[float], list[float]] | None) -> np.ndarray:
    """Confidence of each top answer (the top probability itself without a map)."""
    if mapping is None:
        return np.asarray(top_probs, np.float64)
    return np.interp(top_probs, mapping[0], mapping[1])


def confidence_reliability(confidence: np.ndarray, correct: np.ndarray, bins: int = 15) -> dict:
    """:func:`reliability` of confidences of the top answers."""
    probs = np.stack([confidence, np.zeros_like(confidence)], axis=1)
    return reliability(probs, np.where(correct, 0, 1), bins)


def fit_label_thresholds(probs: np.ndarray, truth: np.ndarray, default: float = 0.5) -> np.ndarray:
    """Per category, the probability threshold that maximises the F1 of "the page is in
    this category" over held-out pages: float64[n_categories].

    A page's label set is then every category whose probability reaches its threshold
    (:meth:`accum.prediction.TextClassifier.predict_label_sets`): each category decides
    on its own, so a page can get several. The threshold lies halfway between the lowest
    probability kept and the next one below it; a category without held-out pages keeps
    ``default``.

    Parameters
    ----------
    probs : float64[n_pages, n_categories]
        Calibrated probabilities of held-out pages.
    truth : bool[n_pages, n_categories]
        Whether each page belongs to each category.
    """
    n_pages, n_cats = probs.shape
    thresholds = np.full(n_cats, float(default))
    for c in range(n_cats):
        positive = truth[:, c]
        n_pos = int(positive.sum())
        if n_pos == 0:
            continue
        order = np.argsort(-probs[:, c], kind="stable")
        p, hit = probs[order, c], positive[order]
        tp = np.cumsum(hit)
        f1 = 2 * tp / (np.arange(1, n_pages + 1) + n_pos)
        last = np.flatnonzero(np.r_[p[1:] < p[:-1], True])  # cut only between distinct values
        k = int(last[np.argmax(f1[last])])
        thresholds[c] = float(p[k] if k + 1 == n_pages else (p[k] + p[k + 1]) / 2)
    return thresholds


def label_set_scores(truth: list[set], predicted: list[set], categories: list[str]) -> dict:
    """Multi-label scores of predicted label sets against true ones: example-based
    precision, recall and F1 (means over pages), micro and macro F1 over categories,
    subset accuracy (the whole set right), Hamming loss (wrong yes/no decisions per
    page and category) and the mean number of labels predicted and true."""
    if len(truth) != len(predicted) or not truth:
        raise ValueError("label_set_scores needs as many predicted sets as true ones, at least one")
    inter = np.array([len(t & p) for t, p in zip(truth, predicted)], np.float64)
    n_true = np.array([len(t) for t in truth], np.float64)
    n_pred = np.array([len(p) for p in predicted], np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(n_pred > 0, inter / n_pred, 0.0)
        recall = np.where(n_true > 0, inter / n_true, 0.0)
        f1 = np.where(n_pred + n_true > 0, 2 * inter / (n_pred + n_true), 1.0)
    per_cat = []
    for c in categories:
        tp = sum(c in t and c in p for t, p in zip(truth, predicted))
        fp = sum(c not in t and c in p for t, p in zip(truth, predicted))
        fn = sum(c in t and c not in p for t, p in zip(truth, predicted))
        per_cat.append((tp, fp, fn))
    tp, fp, fn = (sum(x[i] for x in per_cat) for i in range(3))
    macro = [2 * a / (2 * a + b + d) for a, b, d in per_cat if 2 * a + b + d > 0]
    return {
        "pages": len(truth),
        "example_precision": float(precision.mean()),
        "example_recall": float(recall.mean()),
        "example_f1": float(f1.mean()),
        "micro_f1": float(2 * tp / (2 * tp + fp + fn)) if tp + fp + fn else 1.0,
        "macro_f1": float(np.mean(macro)) if macro else 1.0,
        "subset_accuracy": float(np.mean([t == p for t, p in zip(truth, predicted)])),
        "hamming_loss": float((fp + fn) / (len(truth) * max(len(categories), 1))),
        "labels_per_page": float(n_pred.mean()),
        "true_labels_per_page": float(n_true.mean()),
    }


def apply_calibration(clf, record: dict) -> None:
    """Set on ``clf`` (a :class:`~accum.prediction.TextClassifier`) the temperature,
    confidence map and label-set thresholds of a calibration ``record`` (as
    :func:`accum.evaluate.calibrate` returns it); a category missing from the record's
    thresholds joins a label set only as the top category."""
    clf.temperature = record["temperature"]
    if "confidence_x" in record:
        clf.confidence_map = (record["confidence_x"], record["confidence_y"])
    if "label_thresholds" in record:
        thresholds = record["label_thresholds"]
        clf.label_thresholds = np.array([thresholds.get(c, np.inf) for c in clf.categories])

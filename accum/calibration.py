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
    """Isotonic map from the top probability to the chance of being right: breakpoints (x, y)."""
    from sklearn.isotonic import IsotonicRegression

    iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0, increasing=True)
    iso.fit(top_probs, correct.astype(float))
    return iso.X_thresholds_.tolist(), iso.y_thresholds_.tolist()


def apply_confidence_map(top_probs: np.ndarray, mapping: tuple[list[float], list[float]] | None) -> np.ndarray:
    """Confidence of each top answer (the top probability itself without a map)."""
    if mapping is None:
        return np.asarray(top_probs, np.float64)
    return np.interp(top_probs, mapping[0], mapping[1])


def confidence_reliability(confidence: np.ndarray, correct: np.ndarray, bins: int = 15) -> dict:
    """:func:`reliability` of confidences of the top answers."""
    probs = np.stack([confidence, np.zeros_like(confidence)], axis=1)
    return reliability(probs, np.where(correct, 0, 1), bins)

"""Predictions of a page classifier: top categories, probabilities, exact explanations.

:class:`TextClassifier` holds what every model shares (the softmax of its linear scores,
calibration, label sets, the shape of an explanation); the models themselves are in
:mod:`accum.classify` (from the counts alone) and :mod:`accum.linear` (trained over the
page vectors).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from .calibration import apply_confidence_map, softmax
from .tokens import TokenBatch

@dataclass(frozen=True)
class Prediction:
    """Top categories of one page, with probabilities (best first)."""

    labels: list[str]
    probabilities: list[float]
    explanation: "Explanation | None" = None
    confidence: float | None = None
    abstained: bool = False
    #: With multi-label thresholds: every category at or above its threshold, as
    #: (category, probability, threshold), most probable first.
    label_set: list[tuple[str, float, float]] | None = None

    @property
    def label(self) -> str | None:
        """The top category, or None when the prediction abstained."""
        return None if self.abstained else self.labels[0]

    def to_dict(self) -> dict:
        out = {
            "label": self.label,
            "confidence": self.confidence,
            "abstained": self.abstained,
            "top": [{"label": c, "probability": p} for c, p in zip(self.labels, self.probabilities)],
        }
        if self.label_set is not None:
            out["labels"] = [{"label": c, "probability": p, "threshold": t} for c, p, t in self.label_set]
        if self.explanation is not None:
            out["explanation"] = self.explanation.to_dict()
        return out


@dataclass(frozen=True)
class Explanation:
    """Why ``winner`` beat ``runner_up``: an exact decomposition of their log-odds.

    ``log_odds == prior + sum(f["contribution"] for f in features) + rest`` holds to
    rounding, where ``features`` are the strongest terms (either sign) and ``rest`` sums
    the others.
    """

    winner: str
    runner_up: str
    log_odds: float
    prior: float
    features: list[dict] = field(default_factory=list)
    rest: float = 0.0
    n_features: int = 0
    n_unseen: int = 0

    def to_dict(self) -> dict:
        return {
            "winner": self.winner,
            "runner_up": self.runner_up,
            "log_odds": self.log_odds,
            "prior": self.prior,
            "features": self.features,
            "rest": self.rest,
            "n_features": self.n_features,
            "n_unseen": self.n_unseen,
        }


def _top_two(scores: np.ndarray) -> tuple[int, int]:
    """Indices of the best and second-best score (the same one when there is one)."""
    if len(scores) == 1:
        return 0, 0
    win, second = np.argsort(-scores, kind="stable")[:2]
    return int(win), int(second)


#: Characters of text encoded and scored at a time: the encoded copy of a large batch
#: stays small (the kernel itself works one document at a time in reused scratch).
CHUNK_CHARS = 1 << 18


def _chunk_ends(texts: Sequence[str]) -> list[int]:
    """Ends of consecutive slices of ``texts`` of about :data:`CHUNK_CHARS` characters."""
    ends, size = [], 0
    for i, text in enumerate(texts):
        size += len(text)
        if size >= CHUNK_CHARS:
            ends.append(i + 1)
            size = 0
    return ends if ends and ends[-1] == len(texts) else ends + [len(texts)]


@dataclass(frozen=True)
class _PageFeatures:
    """The distinct features of one page, as an explanation needs them."""

    batch: TokenBatch  # the page's tokens
    order: int  # the accumulator's max_order
    fids: np.ndarray  # feature ids, uint64[n], in order of first occurrence
    tfs: np.ndarray  # occurrences in the page, int64[n]
    first: np.ndarray  # where each first occurs: t * order + (n-gram order - 1)
    seen: np.ndarray  # indices of the features seen in training
    weights: np.ndarray  # their weights per category, float64[n_seen, n_categories]

    def words(self, i: int) -> tuple[str, int]:
        """The text of feature ``i`` and its n-gram order."""
        t, k = divmod(int(self.first[i]), self.order)
        return " ".join(self.batch.token_text(j) for j in range(t - k, t + 1)), k + 1


class TextClassifier:
    """What every classifier of pages shares: probabilities, predictions, label sets,
    calibration and the form of an exact explanation.

    Subclasses score pages (:meth:`decision_function`: one linear score per category, so
    that the log-odds of two categories decomposes exactly over the page's features),
    explain a page (:meth:`explain`) and name the parameters and arrays that
    :meth:`to_arrays` saves (``_PARAMS``, ``_ARRAYS``); ``categories`` and ``settings``
    (the accumulator's :class:`~accum.settings.Settings`, which say how text becomes
    features) are set by each.
    """

    name = ""
    #: Smoothing of a count model (None for models without one).
    alpha = None
    #: Parameters and arrays that :meth:`to_arrays` saves (subclasses set theirs).
    _PARAMS: tuple[str, ...] = ()
    _ARRAYS: tuple[str, ...] = ()
    #: Divides the scores before the softmax; fitted by :func:`accum.calibration.fit_temperature`.
    temperature = 1.0
    #: Isotonic map of the top probability to a confidence (:mod:`accum.calibration`).
    confidence_map = None
    #: Per-category probability thresholds for label sets, float64[n_categories]
    #: (:func:`accum.calibration.fit_label_thresholds`); None until calibrated.
    label_thresholds = None

    def params(self) -> dict:
        """The model's hyper-parameters by name."""
        return {name: getattr(self, name) for name in self._PARAMS}

    def decision_function(self, texts: Sequence[str]) -> np.ndarray:
        """Score of each category, float64[n_texts, n_categories]."""
        raise NotImplementedError

    def explain(self, text: str, n_terms: int = 10) -> Explanation:
        """Decompose the log-odds of the top category against the runner-up, per feature."""
        raise NotImplementedError

    @property
    def nbytes(self) -> int:
        """Bytes of the model's arrays."""
        return int(sum(getattr(self, name).nbytes for name in self._ARRAYS))

    def to_arrays(self) -> dict:
        """The model as plain values and arrays (views: the model never changes them);
        :func:`model_from_arrays` restores it."""
        return {"model": self.name, "categories": list(self.categories), "settings": self.settings.to_dict(),
                **{name: getattr(self, name) for name in self._PARAMS},
                **{name.lstrip("_"): getattr(self, name) for name in self._ARRAYS}}

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Probability of each category, ``softmax(scores / temperature)``,
        float64[n_texts, n_categories] (see :mod:`accum.calibration`)."""
        return softmax(self.decision_function(texts), self.temperature)

    def predict(self, texts: Sequence[str]) -> list[str]:
        """The most probable category of each text."""
        return [self.categories[i] for i in self.decision_function(texts).argmax(axis=1)]

    def predict_label_sets(self, texts: Sequence[str]) -> list[list[str]]:
        """The label set of each text: every category whose probability reaches its
        threshold (:attr:`label_thresholds`), most probable first, or the top category
        alone when none does."""
        return [[self.categories[i] for i in self.label_set(p)] for p in self.predict_proba(texts)]

    def label_set(self, probs: np.ndarray) -> list[int]:
        """Indices of the categories in the label set of a page with probabilities
        ``probs`` (float64[n_categories]), most probable first (see :meth:`predict_label_sets`)."""
        if self.label_thresholds is None:
            raise ValueError("no multi-label thresholds: fit them with accum calibrate on held-out labelled pages")
        order = np.argsort(-probs, kind="stable")
        return [int(i) for i in order if probs[i] >= self.label_thresholds[i]] or [int(order[0])]

    def predict_one(self, text: str, top: int = 3, explain: bool = False, n_terms: int = 10,
                    min_confidence: float = 0.0, multi_label: bool = False) -> Prediction:
        """Top categories of one page, optionally with an exact explanation.

        Below ``min_confidence`` (the calibrated chance that the top category is right),
        the prediction abstains: its ``label`` is None (the ranking is still given).
        ``multi_label`` adds the page's label set (see :meth:`predict_label_sets`).
        """
        probs = self.predict_proba([text])[0]
        order = np.argsort(-probs, kind="stable")[: max(1, top)]
        explanation = self.explain(text, n_terms) if explain else None
        confidence = float(apply_confidence_map(probs[order[:1]], self.confidence_map)[0])
        return Prediction(
            [self.categories[i] for i in order], [float(probs[i]) for i in order], explanation,
            confidence=confidence, abstained=confidence < min_confidence,
            label_set=[(self.categories[i], float(probs[i]), float(self.label_thresholds[i]))
                       for i in self.label_set(probs)] if multi_label else None,
        )

    def _explanation(self, page: _PageFeatures, terms: np.ndarray, scores: np.ndarray, win: int, second: int,
                     prior: float, n_counted: int, n_terms: int) -> Explanation:
        """The :class:`Explanation` whose per-feature contributions are ``terms`` (one per
        seen feature of ``page``)."""
        items = []
        for i, term in zip(page.seen, terms):
            words, order = page.words(i)
            items.append({"feature": words, "order": order, "count": int(page.tfs[i]), "contribution": float(term)})
        items.sort(key=lambda f: -abs(f["contribution"]))
        unseen = np.ones(len(page.fids), bool)
        unseen[page.seen] = False
        return Explanation(
            winner=self.categories[win],
            runner_up=self.categories[second],
            log_odds=float(scores[win] - scores[second]),
            prior=float(prior),
            features=items[:n_terms],
            rest=float(sum(f["contribution"] for f in items[n_terms:])),
            n_features=n_counted,
            n_unseen=int(page.tfs[unseen].sum()),
        )

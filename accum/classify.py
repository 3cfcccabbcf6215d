"""Classify pages from an accumulator's counts: linear models that stay exact and additive.

Every model here scores a page as ``prior[c] + sum_w x[w] * weight[w, c]`` over the
features w it shares with training (features never seen carry no evidence), so the
explanation of a decision is exact. Two models are built from the same accumulator:

**"dm": the Dirichlet-multinomial posterior predictive** of each category.

Each category c has counts ``n[w, c]`` of features w (unigrams and n-grams) and a
symmetric Dirichlet prior ``alpha`` over the V features seen in training. The posterior
predictive probability of feature w in category c is

    p(w | c) = (n[w, c] + alpha) / (N[c] + alpha * V),      N[c] = sum_w n[w, c],

and a page scores ``log p(c) + sum_w x[w] * log p(w | c)`` over its features w with
counts x[w]. The category prior is itself a Dirichlet posterior predictive:
``p(c) = (D[c] + beta) / (D + beta * C)`` from documents per category. Features never
seen in training carry no evidence about the categories and are left out (as
scikit-learn's ``MultinomialNB`` does over a fixed vocabulary); on identical counts the
scores equal ``MultinomialNB``'s joint log-likelihood.

**"complement": complement naive Bayes over normalised document weights** (Rennie,
Shih, Teevan & Karger 2003). Each training page adds ``log(1 + tf) / ||log(1 + tf)||_2``
per feature to its category (accumulated beside the counts, in fixed point, so it stays
additive and merges exactly); a category is scored against the weights of all *other*
categories, ``weight[w, c] = -log((W[w] - W[w, c] + alpha) / sum_v (W[v] - W[v, c] + alpha))``,
and a page's features count once (presence). On identical weights its scores equal
scikit-learn's ``ComplementNB`` on binary test rows. Complement estimates use the data of
every other category, which helps the small ones; length normalisation removes the pull
of long pages. No inverse document frequency: it is not additive (the benchmark shows it
adds nothing here).

Because the score is a sum, explanations are exact: the log-odds between the top two
categories is the prior term plus one term per feature, and the terms add up to it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from . import _kernels
from .accumulator import Accumulator
from .calibration import apply_confidence_map, softmax
from .tokens import tokenize


@dataclass(frozen=True)
class Prediction:
    """Top categories of one page, with probabilities (best first)."""

    labels: list[str]
    probabilities: list[float]
    explanation: "Explanation | None" = None
    confidence: float | None = None
    abstained: bool = False

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


class LinearCountModel:
    """Shared scoring, probabilities and explanations of the models over an accumulator.

    Subclasses set ``log_prob`` (float64[n_features, n_categories]), ``log_prior``
    (float64[n_categories]) and ``binary`` (count each feature once per page).
    """

    name = ""
    binary = False
    #: Divides the scores before the softmax; fitted by :func:`accum.calibration.fit_temperature`.
    temperature = 1.0
    #: Isotonic map of the top probability to a confidence (:mod:`accum.calibration`).
    confidence_map = None

    def __init__(self, accumulator: Accumulator, alpha: float):
        if not alpha > 0:
            raise ValueError(f"alpha must be > 0, got {alpha!r}")
        if accumulator.n_categories == 0:
            raise ValueError("the accumulator has no categories yet: ingest labelled pages first")
        self.acc = accumulator
        self.alpha = float(alpha)

    @property
    def categories(self) -> list[str]:
        return self.acc.categories

    def decision_function(self, texts: Sequence[str]) -> np.ndarray:
        """Score of each category (the log posterior for "dm"), float64[n_texts, n_categories]."""
        batch = tokenize(texts, self.acc.settings.lowercase)
        scores = np.tile(self.log_prior, (batch.n_docs, 1))
        _kernels.score_docs(
            batch.ngrams(self.acc.settings.max_order), batch.bounds,
            self.acc._keys, self.acc._slots, self.log_prob, self.binary, scores,
        )
        return scores

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Probability of each category, ``softmax(scores / temperature)``,
        float64[n_texts, n_categories] (see :mod:`accum.calibration`)."""
        return softmax(self.decision_function(texts), self.temperature)

    def predict(self, texts: Sequence[str]) -> list[str]:
        """The most probable category of each text."""
        return [self.categories[i] for i in self.decision_function(texts).argmax(axis=1)]

    def predict_one(self, text: str, top: int = 3, explain: bool = False, n_terms: int = 10,
                    min_confidence: float = 0.0) -> Prediction:
        """Top categories of one page, optionally with an exact explanation.

        Below ``min_confidence`` (the calibrated chance that the top category is right),
        the prediction abstains: its ``label`` is None (the ranking is still given).
        """
        probs = self.predict_proba([text])[0]
        order = np.argsort(-probs, kind="stable")[: max(1, top)]
        explanation = self.explain(text, n_terms) if explain else None
        confidence = float(apply_confidence_map(probs[order[:1]], self.confidence_map)[0])
        return Prediction(
            [self.categories[i] for i in order], [float(probs[i]) for i in order], explanation,
            confidence=confidence, abstained=confidence < min_confidence,
        )

    def explain(self, text: str, n_terms: int = 10) -> Explanation:
        """Decompose the log-odds of the top category against the runner-up, per feature."""
        batch = tokenize([text], self.acc.settings.lowercase)
        grams = batch.ngrams(self.acc.settings.max_order)
        rows = _kernels.lookup_rows(grams, self.acc._keys, self.acc._slots)
        seen = rows >= 0
        if self.binary:  # only the first occurrence of each feature counts
            first = np.zeros_like(seen)
            _, index = np.unique(rows[seen], return_index=True)
            first[tuple(a[index] for a in np.nonzero(seen))] = True
            seen = first
        scores = self.log_prior + self.log_prob[rows[seen]].sum(axis=0)
        if len(scores) == 1:
            win, second = 0, 0
        else:
            win, second = np.argsort(-scores, kind="stable")[:2]
        diff = self.log_prob[:, win] - self.log_prob[:, second]
        terms: dict[int, list] = {}
        for t, k in zip(*np.nonzero(seen)):
            row = int(rows[t, k])
            if row not in terms:
                words = " ".join(batch.token_text(i) for i in range(t - k, t + 1))
                terms[row] = [words, int(k) + 1, 0]
            terms[row][2] += 1
        items = [
            {"feature": w, "order": o, "count": n, "contribution": float(n * diff[row])}
            for row, (w, o, n) in terms.items()
        ]
        items.sort(key=lambda f: -abs(f["contribution"]))
        shown = items[:n_terms]
        return Explanation(
            winner=self.categories[win],
            runner_up=self.categories[second],
            log_odds=float(scores[win] - scores[second]),
            prior=float(self.log_prior[win] - self.log_prior[second]),
            features=shown,
            rest=float(sum(f["contribution"] for f in items[n_terms:])),
            n_features=int(seen.sum()),
            n_unseen=int(((grams != 0) & ~seen).sum()),
        )


class DirichletClassifier(LinearCountModel):
    """The Dirichlet-multinomial posterior predictive of each category (model "dm").

    Parameters
    ----------
    accumulator : Accumulator
        The counts (read, never modified).
    alpha : float
        Dirichlet concentration per feature (Lidstone smoothing); must be > 0.
    beta : float
        Dirichlet concentration per category for the prior ``p(c)``; 0 uses the
        observed document frequencies.

    Examples
    --------
    The multinomial example of Manning, Raghavan & Schütze (IIR, section 13.2):

    >>> from accum import Accumulator, Settings
    >>> acc = Accumulator(Settings(max_order=1))
    >>> acc.partial_fit(["Chinese Beijing Chinese", "Chinese Chinese Shanghai",
    ...                  "Chinese Macao", "Tokyo Japan Chinese"], ["c", "c", "c", "j"])
    >>> clf = DirichletClassifier(acc, alpha=1.0, beta=0.0)
    >>> p = clf.predict_proba(["Chinese Chinese Chinese Tokyo Japan"])[0]
    >>> [round(float(x), 4) for x in p]  # IIR: p(c|d) ~ 0.0003, p(j|d) ~ 0.0001
    [0.6898, 0.3102]
    """

    name = "dm"

    def __init__(self, accumulator: Accumulator, alpha: float = 0.01, beta: float = 1.0):
        super().__init__(accumulator, alpha)
        if not beta >= 0:
            raise ValueError(f"beta must be >= 0, got {beta!r}")
        self.beta = float(beta)
        counts = accumulator.counts
        log_total = np.log(counts.sum(axis=0, dtype=np.float64) + self.alpha * counts.shape[0])
        # most counts are 0: fill with the zero-count value, then take logs of the rest
        self.log_prob = np.empty(counts.shape, np.float64)
        self.log_prob[:] = np.log(self.alpha) - log_total
        rows, cats = np.nonzero(counts)
        self.log_prob[rows, cats] = np.log(counts[rows, cats] + self.alpha) - log_total[cats]
        docs = accumulator.doc_counts.astype(np.float64)
        self.log_prior = np.log(docs + self.beta) - np.log(docs.sum() + self.beta * len(docs))


class ComplementClassifier(LinearCountModel):
    """Complement naive Bayes over length-normalised log-TF weights (model "complement").

    Parameters
    ----------
    accumulator : Accumulator
        The counts and weights (read, never modified).
    alpha : float
        Smoothing added to every complement weight; must be > 0.
    """

    name = "complement"
    binary = True

    def __init__(self, accumulator: Accumulator, alpha: float = 0.03):
        super().__init__(accumulator, alpha)
        weights = accumulator.weights
        complement = weights.sum(axis=1, keepdims=True) - weights + self.alpha
        self.log_prob = -(np.log(complement) - np.log(complement.sum(axis=0)))
        self.log_prior = np.zeros(accumulator.n_categories)


#: The models by name, with their default smoothing.
MODELS = {"dm": DirichletClassifier, "complement": ComplementClassifier}
DEFAULT_MODEL = "complement"


def make_model(accumulator: Accumulator, name: str = DEFAULT_MODEL, alpha: float | None = None) -> LinearCountModel:
    """The model ``name`` over ``accumulator`` (``alpha`` None: the model's default)."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    return MODELS[name](accumulator) if alpha is None else MODELS[name](accumulator, alpha=alpha)

"""How many new features more pages would bring, from an incidence profile.

A category's *incidence profile* after n pages is Φ_1, Φ_2, ...: how many features are
held by exactly 1, 2, ... of those pages (see :mod:`accum.profiles`). Pages are the
samples: if pages came in random order, a feature held by a share θ of a category's
pages shows up in each new page with chance θ, and the features the next t·n pages
would add are predicted from the profile alone:

- **Good–Toulmin** (1956): ``U = -Σ_i (-t)^i Φ_i``. For pages drawn at random it is
  exact in expectation (a feature held by m of (1 + t)·n pages is missed by the first n
  with chance (1 − p)^m, p = 1 / (1 + t), and ``-Σ_i (-t)^i C(m, i) p^i (1 − p)^(m − i)``
  is that chance), but for t > 1 its terms grow like t^i and it is useless.
- **Smoothed Good–Toulmin** (Orlitsky, Suresh & Wu 2016, "Optimal prediction of the
  number of unseen species", PNAS 113:13283): each term weighted by ``P(L >= i)`` for a
  binomial L (k trials, chance 2 / (t + 2), k = ⌈½ log₃(n t² / (t − 1))⌉ with n the
  sample size), which bounds the variance; accurate up to t of about log n. n is the
  incidences (Σ i Φ_i): the paper's samples each carry one unit of probability, and a
  page carries one per feature it holds.
- **Second-order tangent**: the growth curve expanded to second order in log-log space
  around the cutoff. Its slope there is β = Φ_1 / V (the rarefaction curve rises by
  Φ_1 / n per page) and the slope's own change per e-fold of pages is
  γ = β − β² − 2 Φ_2 / V (its second derivative is −2 Φ_2 / n²), so
  ``V(r·n) = V · exp(β ln r + ½ γ ln² r)``, held flat past the top of that parabola.
- **Tangent**: ``V · r^β`` (the first-order term alone).

:func:`smoothed_good_toulmin_interval` puts an interval around the smoothed Good–Toulmin
estimate from a bound on its variance. None of these can know pages that differ from
the ones seen (a crawl that moves to new sites): they are validated in both the order
of ingest and shuffled orders.
"""

from __future__ import annotations

import math

import numpy as np

#: The forecasts :func:`forecast` can make, in the order reports list them.
METHODS = ("smoothed_good_toulmin", "second_order", "tangent")
#: Their names in reports.
METHOD_NAMES = {"smoothed_good_toulmin": "smoothed Good–Toulmin", "second_order": "second-order tangent",
                "tangent": "tangent"}


def good_toulmin_terms(terms: int, t: float) -> np.ndarray:
    """Good–Toulmin's coefficients ``-(-t)^i``, i = 1..terms: ``U = Σ_i h_i Φ_i``."""
    return -((-float(t)) ** np.arange(1, terms + 1))


def good_toulmin(phi: np.ndarray, t: float) -> float:
    """New features in t·n more pages: ``-Σ_i (-t)^i Φ_i`` over the profile given
    (``phi[i - 1]`` = Φ_i); only meaningful for t <= 1."""
    return float(np.sum(good_toulmin_terms(len(phi), t) * np.asarray(phi, np.float64)))


def smoothing_trials(n: float, t: float) -> int:
    """The binomial smoothing's number of trials k for sample size n and ratio t > 1."""
    return max(1, math.ceil(0.5 * math.log(n * t * t / (t - 1)) / math.log(3)))


def smoothed_weights(phi: np.ndarray, t: float, n: float | None = None) -> np.ndarray:
    """The coefficients h_i of the smoothed Good–Toulmin estimate ``Σ_i h_i Φ_i`` for the
    profile ``phi``: Good–Toulmin's, each times ``P(L >= i)`` (binomial L, k trials, chance
    2 / (t + 2)) when t > 1. ``n`` defaults to the incidences of the profile.

    Raises ValueError when the profile is shorter than the smoothing needs (k terms).
    """
    phi = np.asarray(phi, np.float64)
    terms = good_toulmin_terms(len(phi), t)
    if t <= 1:
        return terms
    if n is None:
        n = float(np.sum(np.arange(1, len(phi) + 1) * phi))
    if n <= 0:
        return np.zeros(len(phi))
    k = smoothing_trials(n, t)
    if k > len(phi):
        raise ValueError(f"smoothing for t = {t:g} and n = {n:g} needs a profile of {k} terms, got {len(phi)}")
    q = 2.0 / (t + 2.0)
    pmf = np.array([math.comb(k, j) * q**j * (1 - q) ** (k - j) for j in range(k + 1)])
    tail = np.zeros(len(phi))
    tail[:k] = np.cumsum(pmf[::-1])[::-1][1:]  # P(L >= i) for i = 1..k, zero beyond
    return terms * tail


def smoothed_good_toulmin(phi: np.ndarray, t: float, n: float | None = None) -> float:
    """New features in t·n more pages (Orlitsky, Suresh & Wu 2016, binomial smoothing
    with chance 2 / (t + 2)); plain Good–Toulmin for t <= 1. ``n`` defaults to the
    incidences of the profile.

    Raises ValueError when the profile is shorter than the smoothing needs (k terms).
    """
    return float(np.sum(smoothed_weights(phi, t, n) * np.asarray(phi, np.float64)))


def smoothed_good_toulmin_interval(phi: np.ndarray, t: float, n: float | None = None,
                                   z: float = 1.96) -> tuple[float, float, float]:
    """:func:`smoothed_good_toulmin` and an interval around it: ``(estimate, low, high)``,
    ``estimate ± z·s`` (low end at 0 at least), z = 1.96 for 95 %.

    s² bounds the variance of the estimate's error from the profile alone, under the
    model the estimate rests on (features independent, pages drawn at random). With
    X_s the pages holding feature s so far and U_s = 1 when s is unseen now and seen in
    the next t·n pages, the error is ``Σ_s (h(X_s) − U_s)``; h(0) = 0, so
    ``h(X_s)·U_s = 0`` and ``E[(h(X_s) − U_s)²] = E[h(X_s)²] + E[U_s]``. Summed over the
    features, ``Var(estimate − U) <= E[Σ_i h_i² Φ_i] + E[U]``, estimated by
    ``s² = Σ_i h_i² Φ_i + estimate`` (the kind of bound Orlitsky, Suresh & Wu use). It
    costs no pass over the pages. On a sampled Zipfian population s is the error's
    spread and the interval holds the truth 95 % of the time at t = 1 and 2 (tests); by
    t = 4 the smoothing's bias, which s leaves out, is as large as s. It cannot know
    pages unlike those seen, which the checks in the order of ingest show (see
    :mod:`accum.profiles`).
    """
    phi = np.asarray(phi, np.float64)
    weights = smoothed_weights(phi, t, n)
    estimate = float(np.sum(weights * phi))
    spread = z * math.sqrt(max(0.0, float(np.sum(weights * weights * phi)) + estimate))
    return estimate, max(0.0, estimate - spread), estimate + spread


def second_order(distinct: int, phi1: int, phi2: int, ratio: float) -> float:
    """Distinct features after ``ratio`` times the pages (see the module docstring)."""
    if distinct <= 0:
        return 0.0
    beta = phi1 / distinct
    gamma = beta - beta * beta - 2.0 * phi2 / distinct
    u = math.log(ratio)
    if gamma < 0:
        u = min(u, -beta / gamma)  # past the parabola's top the curve is held flat
    return distinct * math.exp(beta * u + 0.5 * gamma * u * u)


def tangent(distinct: int, phi1: int, ratio: float) -> float:
    """Distinct features after ``ratio`` times the pages, at the cutoff's log-log slope Φ_1 / V."""
    return distinct * ratio ** (phi1 / distinct) if distinct > 0 else 0.0


def forecast(profile: np.ndarray, ratio: float, method: str) -> float:
    """Distinct features after ``ratio`` (>= 1) times the pages of an incidence profile
    (int[k + 1]: Φ_1..Φ_k, then the features held by more than k pages)."""
    profile = np.asarray(profile)
    distinct = int(profile.sum())
    if method == "smoothed_good_toulmin":
        return distinct + smoothed_good_toulmin(profile[:-1], ratio - 1.0)
    if method == "second_order":
        return second_order(distinct, int(profile[0]), int(profile[1]), ratio)
    if method == "tangent":
        return tangent(distinct, int(profile[0]), ratio)
    raise ValueError(f"unknown forecast method {method!r}; known: {', '.join(METHODS)}")

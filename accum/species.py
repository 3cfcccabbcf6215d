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

None of these can know pages that differ from the ones seen (a crawl that moves to new
sites): they are validated in both the order of ingest and shuffled orders.
"""

from __future__ import annotations

import math

import numpy as np

#: The forecasts :func:`forecast` can make, in the order reports list them.
METHODS = ("smoothed_good_toulmin", "second_order", "tangent")


def good_toulmin(phi: np.ndarray, t: float) -> float:
    """New features in t·n more pages: ``-Σ_i (-t)^i Φ_i`` over the profile given
    (``phi[i - 1]`` = Φ_i); only meaningful for t <= 1."""
    i = np.arange(1, len(phi) + 1)
    return float(-np.sum((-t) ** i * np.asarray(phi, np.float64)))


def smoothing_trials(n: float, t: float) -> int:
    """The binomial smoothing's number of trials k for sample size n and ratio t > 1."""
    return max(1, math.ceil(0.5 * math.log(n * t * t / (t - 1)) / math.log(3)))


def smoothed_good_toulmin(phi: np.ndarray, t: float, n: float | None = None) -> float:
    """New features in t·n more pages (Orlitsky, Suresh & Wu 2016, binomial smoothing
    with chance 2 / (t + 2)); plain Good–Toulmin for t <= 1. ``n`` defaults to the
    incidences of the profile.

    Raises ValueError when the profile is shorter than the smoothing needs (k terms).
    """
    phi = np.asarray(phi, np.float64)
    if t <= 1:
        return good_toulmin(phi, t)
    if n is None:
        n = float(np.sum(np.arange(1, len(phi) + 1) * phi))
    if n <= 0:
        return 0.0
    k = smoothing_trials(n, t)
    if k > len(phi):
        raise ValueError(f"smoothing for t = {t:g} and n = {n:g} needs a profile of {k} terms, got {len(phi)}")
    q = 2.0 / (t + 2.0)
    pmf = np.array([math.comb(k, j) * q**j * (1 - q) ** (k - j) for j in range(k + 1)])
    tail = np.zeros(len(phi))
    tail[:k] = np.cumsum(pmf[::-1])[::-1][1:]  # P(L >= i) for i = 1..k, zero beyond
    i = np.arange(1, len(phi) + 1)
    return float(-np.sum((-t) ** i * tail * phi))


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

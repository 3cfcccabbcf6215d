"""Incidence profiles of a store's pages, and forecasts checked against them.

A category's incidence profile after some of its pages (see :mod:`accum.species`) is
computed from the page vectors the store keeps (:mod:`accum.vectors`), in any order of
the pages: the order of ingest, or seeded shuffles. That makes the forecasts checkable
on the store's own pages: from the first 10, 25, 50 % of a category's pages in an
order, forecast the distinct features of all its pages, and compare. Nothing is
tracked while ingesting: the vectors already hold what a profile needs, and a profile
of all pages has as many distinct features as the counts (tests check it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import _linear_kernels, _profile_kernels, species
from .vectors import PageVectors

#: Profile length: features held by 1..K pages, then one entry for more. The smoothed
#: Good–Toulmin sums fewer terms than this up to 10^11 incidences at t = 100.
PROFILE_TERMS = 30
#: Fractions of a category's pages the forecasts are made from when checked.
CHECK_FRACTIONS = (0.1, 0.25, 0.5)


@dataclass(frozen=True)
class PageFeatures:
    """Page vectors with each entry's feature numbered (a column) and each column's n-gram order."""

    vectors: PageVectors
    cols: np.ndarray  # int32[nnz]
    col_order: np.ndarray  # int64[n_cols]: n-gram order - 1
    n_orders: int

    @classmethod
    def of(cls, vectors: PageVectors, feature_ids: np.ndarray, feature_orders: np.ndarray) -> "PageFeatures":
        """Number the features of ``vectors``; ``feature_ids`` (sorted) and ``feature_orders``
        give every feature's order (those of the store's counts)."""
        cols, fids, _ = _linear_kernels.factorize(vectors.fids)
        where = np.searchsorted(feature_ids, fids)
        where = np.minimum(where, len(feature_ids) - 1)
        if len(fids) and not np.array_equal(feature_ids[where], fids):
            raise ValueError("page vectors hold features the counts do not: the store is inconsistent")
        orders = np.asarray(feature_orders, np.int64)[where] - 1
        return cls(vectors, cols, orders, int(orders.max()) + 1 if len(orders) else 1)

    def profiles(self, sequence: np.ndarray, cutoffs: np.ndarray, terms: int = PROFILE_TERMS) -> np.ndarray:
        """:func:`accum._profile_kernels.incidence_profiles` of the pages in ``sequence``."""
        v = self.vectors
        return _profile_kernels.incidence_profiles(v.bounds, self.cols, self.col_order, v.labels,
                                                   np.asarray(sequence, np.int64), np.asarray(cutoffs, np.int64),
                                                   self.n_orders, terms)

    @property
    def group_pages(self) -> np.ndarray:
        """Pages of each category, then of all pages: int64[n_categories + 1]."""
        v = self.vectors
        per = np.bincount(v.labels, minlength=len(v.categories)).astype(np.int64)
        return np.append(per, v.n_pages)


def check_forecasts(pages: PageFeatures, shuffles: int = 0, seed: int = 0, fractions=CHECK_FRACTIONS,
                    methods=species.METHODS, progress=None) -> tuple[list[dict], np.ndarray]:
    """Forecast each category's (and all pages') distinct features at all its pages
    from the first ``fractions`` of them, in the order of ingest and in ``shuffles``
    seeded random orders, by every method.

    Returns one dict per (order of pages, category, n-gram order, fraction, method):
    ``pages_order`` ("ingest" or "shuffle <i>"), ``category`` (None: all pages),
    ``order``, ``fraction``, ``fit_pages``, ``pages``, ``method``, ``predicted``,
    ``actual`` and ``relative_error``; and the profiles of all the pages, which every
    order ends with: int64[n_categories + 1, n_orders, PROFILE_TERMS + 1].
    ``progress(done, total)`` is called after each order.
    """
    n = pages.group_pages
    fits = np.maximum(1, (np.outer(n, fractions)).astype(np.int64))
    cutoffs = np.concatenate([fits, n.reshape(-1, 1)], axis=1)
    rng = np.random.default_rng(seed)
    sequences = [("ingest", np.arange(pages.vectors.n_pages))]
    sequences += [(f"shuffle {i + 1}", rng.permutation(pages.vectors.n_pages)) for i in range(shuffles)]
    names = list(pages.vectors.categories) + [None]
    rows = []
    for done, (label, sequence) in enumerate(sequences, 1):
        prof = pages.profiles(sequence, cutoffs)
        whole = prof[:, -1]
        for g, name in enumerate(names):
            if n[g] < 2:
                continue
            for order in range(pages.n_orders):
                actual = int(whole[g, order].sum())
                for j, fraction in enumerate(fractions):
                    part = prof[g, j, order]
                    if fits[g, j] >= n[g] or not part.sum():
                        continue
                    ratio = float(n[g] / fits[g, j])
                    for method in methods:
                        predicted = species.forecast(part, ratio, method)
                        rows.append({"pages_order": label, "category": name, "order": order + 1,
                                     "fraction": fraction, "fit_pages": int(fits[g, j]), "pages": int(n[g]),
                                     "method": method, "predicted": predicted, "actual": actual,
                                     "relative_error": (predicted - actual) / actual if actual else None})
        if progress is not None:
            progress(done, len(sequences))
    return rows, whole


def error_table(rows: list[dict], min_pages: int = 1) -> list[dict]:
    """Median and largest |relative error| over the categories with at least
    ``min_pages`` pages (all pages left out), per n-gram order, shuffled or not,
    fraction and method: what the forecast goals are stated in."""
    groups: dict = {}
    for r in rows:
        if r["category"] is None or r["pages"] < min_pages or r["relative_error"] is None:
            continue
        kind = "ingest" if r["pages_order"] == "ingest" else "shuffled"
        groups.setdefault((r["order"], kind, r["fraction"], r["method"]), []).append(r["relative_error"])
    out = []
    for (order, kind, fraction, method), errors in sorted(groups.items()):
        e = np.abs(errors)
        out.append({"order": order, "pages_order": kind, "fraction": fraction, "method": method,
                    "forecasts": len(e), "median_abs_error": float(np.median(e)), "max_abs_error": float(e.max()),
                    "mean_error": float(np.mean(errors))})
    return out


def choose_methods(errors: list[dict], ratios) -> dict[float, dict | None]:
    """For each ratio of pages ahead, the method whose checks from the fraction of pages
    nearest ``1 / ratio`` erred least in median, at the worse of the n-gram orders
    (:func:`error_table` rows; shuffled orders when there are any, where pages come as a
    sample would): the store picks its forecast from its own pages. None for a ratio
    without checks."""
    kind = "shuffled" if any(e["pages_order"] == "shuffled" for e in errors) else "ingest"
    rows = [e for e in errors if e["pages_order"] == kind]
    chosen = {}
    for ratio in ratios:
        if not rows:
            chosen[ratio] = None
            continue
        fraction = min({e["fraction"] for e in rows}, key=lambda f: abs(np.log(f * ratio)))
        by_method: dict = {}
        for e in rows:
            if e["fraction"] == fraction:
                by_method.setdefault(e["method"], []).append(e["median_abs_error"])
        method = min(by_method, key=lambda m: (max(by_method[m]), species.METHODS.index(m)))
        chosen[ratio] = {"method": method, "fraction": fraction, "pages_order": kind,
                         "median_abs_error": max(by_method[method])}
    return chosen

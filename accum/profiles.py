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

import json
import os
from dataclasses import dataclass
from pathlib import Path

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
    """Pages (bounds and labels as :class:`PageVectors` has them) with each entry's feature
    numbered (a column) and each column's n-gram order."""

    bounds: np.ndarray  # int64[n_pages + 1]
    labels: np.ndarray  # int32[n_pages]
    categories: tuple
    cols: np.ndarray  # int32[nnz]
    col_order: np.ndarray  # int64[n_cols]: n-gram order - 1
    n_orders: int

    @classmethod
    def of(cls, vectors: PageVectors, feature_ids: np.ndarray, feature_orders: np.ndarray) -> "PageFeatures":
        """Number the features of ``vectors``; ``feature_ids`` (sorted) and ``feature_orders``
        give every feature's order (those of the store's counts)."""
        return cls.from_parts(vectors.bounds, vectors.labels, vectors.categories, [vectors.fids], feature_ids,
                              feature_orders)

    @classmethod
    def from_parts(cls, bounds: np.ndarray, labels: np.ndarray, categories, features, feature_ids: np.ndarray,
                   feature_orders: np.ndarray) -> "PageFeatures":
        """:meth:`of` the pages whose entries' feature ids come in ``features`` (arrays in
        page order, ``bounds[-1]`` entries in all): views of memory-mapped segments serve,
        so that the 64-bit ids are never held whole."""
        cols, fids, _ = _linear_kernels.factorize_parts(features, int(bounds[-1]))
        where = np.minimum(np.searchsorted(feature_ids, fids), max(len(feature_ids) - 1, 0))
        if len(fids) and not np.array_equal(feature_ids[where], fids):
            raise ValueError("page vectors hold features the counts do not: the store is inconsistent")
        orders = np.asarray(feature_orders, np.int64)[where] - 1
        return cls(bounds, labels, tuple(categories), cols, orders, int(orders.max()) + 1 if len(orders) else 1)

    @property
    def n_pages(self) -> int:
        return len(self.labels)

    def profiles(self, sequence: np.ndarray, cutoffs: np.ndarray, terms: int = PROFILE_TERMS) -> np.ndarray:
        """:func:`accum._profile_kernels.incidence_profiles` of the pages in ``sequence``."""
        return _profile_kernels.incidence_profiles(self.bounds, self.cols, self.col_order, self.labels,
                                                   np.asarray(sequence, np.int64), np.asarray(cutoffs, np.int64),
                                                   self.n_orders, terms)

    @property
    def group_pages(self) -> np.ndarray:
        """Pages of each category, then of all pages: int64[n_categories + 1]."""
        per = np.bincount(self.labels, minlength=len(self.categories)).astype(np.int64)
        return np.append(per, self.n_pages)


def check_cutoffs(pages: np.ndarray, fractions=CHECK_FRACTIONS) -> np.ndarray:
    """The pages a check forecasts from: ``fractions`` of each group's ``pages`` (at least
    one), int64[n_groups, len(fractions)]."""
    return np.maximum(1, np.outer(pages, fractions).astype(np.int64))


def _cutoffs(pages: np.ndarray, fractions) -> np.ndarray:
    """:func:`check_cutoffs`, then all of each group's pages."""
    return np.concatenate([check_cutoffs(pages, fractions), pages.reshape(-1, 1)], axis=1)


def check_forecasts(pages: PageFeatures, shuffles: int = 0, seed: int = 0, fractions=CHECK_FRACTIONS,
                    methods=species.METHODS, progress=None) -> tuple[list[dict], np.ndarray]:
    """Forecast each category's (and all pages') distinct features at all its pages
    from the first ``fractions`` of them, in the order of ingest and in ``shuffles``
    seeded random orders, by every method.

    Returns one dict per (order of pages, category, n-gram order, fraction, method):
    ``pages_order`` ("ingest" or "shuffle <i>"), ``category`` (None: all pages), then
    :func:`group_checks`' keys; and the profiles of all the pages, which every order ends
    with: int64[n_categories + 1, n_orders, PROFILE_TERMS + 1].
    ``progress(done, total)`` is called after each order.
    """
    n = pages.group_pages
    cutoffs = _cutoffs(n, fractions)
    rng = np.random.default_rng(seed)
    sequences = [("ingest", np.arange(pages.n_pages))]
    sequences += [(f"shuffle {i + 1}", rng.permutation(pages.n_pages)) for i in range(shuffles)]
    names = list(pages.categories) + [None]
    rows = []
    for done, (label, sequence) in enumerate(sequences, 1):
        prof = pages.profiles(sequence, cutoffs)
        for g, name in enumerate(names):
            rows += [{"pages_order": label, "category": name, **r}
                     for r in group_checks(prof[g], int(n[g]), fractions, methods)]
        if progress is not None:
            progress(done, len(sequences))
    return rows, prof[:, -1]


def group_checks(profiles: np.ndarray, pages: int, fractions=CHECK_FRACTIONS, methods=species.METHODS) -> list[dict]:
    """The checks of one group of ``pages`` pages from its ``profiles`` at the cutoffs of
    :func:`check_forecasts` (int64[len(fractions) + 1, n_orders, K + 1]): one dict per
    n-gram order, fraction and method, with ``order``, ``fraction``, ``fit_pages``,
    ``pages``, ``method``, ``predicted``, ``actual`` and ``relative_error``; none for a
    group of one page, nor from a cutoff that holds no feature or every page."""
    if pages < 2:
        return []
    fits = check_cutoffs(np.array([pages]), fractions)[0]
    rows = []
    for order in range(profiles.shape[1]):
        actual = int(profiles[-1, order].sum())
        for j, fraction in enumerate(fractions):
            part = profiles[j, order]
            if fits[j] >= pages or not part.sum():
                continue
            for method in methods:
                predicted = species.forecast(part, float(pages / fits[j]), method)
                rows.append({"order": order + 1, "fraction": fraction, "fit_pages": int(fits[j]), "pages": pages,
                             "method": method, "predicted": predicted, "actual": actual,
                             "relative_error": (predicted - actual) / actual if actual else None})
    return rows


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


#: The file in a snapshot's directory where ``accum forecast`` records its checks.
RECORD_FILE = "forecast-checks.json"
#: Version of that file's layout (a record of another is ignored).
RECORD_FORMAT = 1


@dataclass(frozen=True)
class CheckRecord:
    """What ``accum forecast`` keeps of its checks of a snapshot, in that snapshot's
    directory (a cache of what the page vectors determine, like its saved classifiers):
    the method it picked at each multiple of the pages (:func:`choose_methods`), how
    the checks were made, and every group's profiles in the order of ingest at the
    checks' cutoffs, from which :meth:`checks` makes the checks in that order again.
    Other reports forecast with the store's pick from it without the page vectors and
    the shuffles (on posts-a a second instead of the forecast's minute)."""

    chosen: dict  # multiple ("2x", "10x") -> choose_methods' entry or None
    shuffles: int
    seed: int
    min_pages: int
    names: list  # the categories, then None (all pages)
    pages: list  # pages of each
    ingest: np.ndarray  # check_forecasts' profiles in the order of ingest
    fractions: tuple = CHECK_FRACTIONS

    @classmethod
    def of(cls, pages: PageFeatures, chosen: dict, shuffles: int, seed: int, min_pages: int,
           fractions=CHECK_FRACTIONS) -> "CheckRecord":
        """The record of checks made on ``pages`` (:func:`check_forecasts`) with the pick
        ``chosen`` from them: its profiles in the order of ingest are one more pass over the
        pages (a few seconds on posts-a, against a minute for the checks)."""
        n = pages.group_pages
        ingest = pages.profiles(np.arange(pages.n_pages), _cutoffs(n, fractions))
        return cls(chosen, shuffles, seed, min_pages, list(pages.categories) + [None], n.tolist(), ingest,
                   tuple(fractions))

    def checks(self, category: str | None, pages: int, order: int, method: str) -> list[dict] | None:
        """:func:`group_checks` of ``category`` (None: all pages) at n-gram ``order`` by
        ``method``; None when the record does not hold that group at ``pages`` pages
        (the pages changed since)."""
        g = self._group(category, pages)
        if g is None:
            return None
        return [r for r in group_checks(self.ingest[g], pages, self.fractions, (method,)) if r["order"] == order]

    def profile(self, category: str | None, pages: int, order: int, fraction: float) -> np.ndarray | None:
        """The profile of ``category`` (None: all pages) at n-gram ``order`` after the first
        ``fraction`` of its ``pages`` in the order of ingest; None as for :meth:`checks`."""
        g = self._group(category, pages)
        return None if g is None else self.ingest[g, self.fractions.index(fraction), order - 1]

    def _group(self, category, pages: int) -> int | None:
        if category not in self.names:
            return None
        g = self.names.index(category)
        return g if self.pages[g] == pages else None

    @staticmethod
    def file(snapshot_dir) -> Path:
        """Where the record of the snapshot in ``snapshot_dir`` is kept."""
        return Path(snapshot_dir) / RECORD_FILE

    def save(self, snapshot_dir) -> None:
        """Write the record into ``snapshot_dir`` atomically; a store that cannot be written
        keeps none (reports then forecast as without it)."""
        path = self.file(snapshot_dir)
        tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
        state = {"format": RECORD_FORMAT, "chosen": self.chosen, "shuffles": self.shuffles, "seed": self.seed,
                 "min_pages": self.min_pages, "names": self.names, "pages": self.pages,
                 "fractions": list(self.fractions), "ingest": self.ingest.tolist()}
        try:
            tmp.write_text(json.dumps(state), encoding="utf-8")
            os.replace(tmp, path)
        except OSError:
            tmp.unlink(missing_ok=True)

    @classmethod
    def load(cls, snapshot_dir) -> "CheckRecord | None":
        """The record in ``snapshot_dir``; None when there is none (or of another format)."""
        try:
            state = json.loads(cls.file(snapshot_dir).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if state.get("format") != RECORD_FORMAT:
            return None
        return cls(state["chosen"], state["shuffles"], state["seed"], state["min_pages"], state["names"],
                   state["pages"], np.array(state["ingest"], np.int64), tuple(state["fractions"]))

"""The asymptote, measured: features per page as a category's pages accumulate, where
new ones stop coming, and how many more pages would still bring.

Blekko's per-topic accumulators "added vectors rapidly for the first 10,000 pages and
then added fewer and fewer as we got deeper", approaching "maybe a decimal order wider
than the number of documents" (issue #21). :func:`asymptote` measures that on a store,
for every category and for all pages:

- **features per page at each scale**: after the first 10, 100, 1,000, ... pages of the
  category in the order of ingest, and after all of them, the features held by at least
  k of those pages, divided by the pages (k = 1: every distinct feature, the "decimal
  order wider" being 10 per page; k = 2, 5, 10: the features an accumulator pruned at k
  would keep). Pages, not occurrences, are counted, as the incidence profiles of
  :mod:`accum.profiles` count them: a word repeated within a page is seen once.
- **where the rate falls**: for each threshold, the page count from which every later
  stretch of the growth log adds fewer new distinct features per page than that
  (:func:`accum.saturation.saturation_point` on the growth log's curve of distinct
  features, the one ``accum saturation`` draws).
- **the unseen**: the smoothed Good–Toulmin estimate of the new features as many pages
  again would bring (t = 1, where it is Good–Toulmin, exact in expectation for pages in
  random order), with a 95 % interval from a bound on the estimate's variance
  (:func:`accum.species.smoothed_good_toulmin_interval`): it takes nothing but the
  profile, and on a sampled population it held the truth 95 % of the time. It is the
  error of pages drawn at random; pages unlike those seen (a crawl that moves on to new
  sites) bring more, as ``accum forecast``'s checks in the order of ingest measure.

Every number comes from one pass of the profile kernel over the page vectors, in the
order of ingest, and from the growth log.
"""

from __future__ import annotations

import numpy as np

from . import saturation as sat
from . import species
from .profiles import PROFILE_TERMS, PageFeatures

#: The estimator of the unseen features, by :data:`accum.species.METHODS`' name.
UNSEEN_METHOD = "smoothed_good_toulmin"


def scales(pages: int) -> list[int]:
    """The page counts a group of ``pages`` pages is measured at: 10, 100, 1,000, ...
    below ``pages``, then ``pages`` (none for no pages)."""
    out, scale = [], 10
    while scale < pages:
        out.append(scale)
        scale *= 10
    return out + [pages] if pages else out


def asymptote(pages: PageFeatures, curves: dict, categories: list, order: int = 1, thresholds=(1.0, 0.1),
              levels=(1, 2, 5, 10)) -> list[dict]:
    """Features per page at growing scales, where new features per page fall below
    ``thresholds`` for good, and the features a doubling would add (see the module
    notes), for all pages and each category, at n-gram ``order``: from the store's
    pages (``pages``, in the order of ingest) and its growth curves at that order
    (``curves``: :func:`accum.saturation.growth_curves` of every category and None).
    ``levels`` are the k of "held by at least k pages", 1 to ``PROFILE_TERMS + 1``.

    Returns, all pages (``category`` None) first, then each of ``categories`` in order::

        {"category": str | None, "pages": int, "distinct": int,
         "scales": [{"pages": int, "at_least": {"1": float, ...}}],  # per k in levels
         "rate_below": {"1.0": int | None, ...},                     # per threshold
         "unseen": {"method": str, "pages": int, "estimate": float, "low": float, "high": float}}

    Raises ValueError for an order the pages do not hold or a level out of range.
    """
    if not 1 <= order <= pages.n_orders:
        raise ValueError(f"these pages hold n-grams up to order {pages.n_orders}, not {order}")
    if any(not 1 <= k <= PROFILE_TERMS + 1 for k in levels):
        raise ValueError(f"levels are pages holding a feature, 1 to {PROFILE_TERMS + 1}; got {list(levels)}")
    names = list(pages.categories) + [None]
    points = [scales(n) for n in pages.group_pages.tolist()]
    profiles = pages.profiles(np.arange(pages.n_pages), _cutoffs(points))[:, :, order - 1]
    rows = {name: _row(name, points[g], profiles[g], curves[name], thresholds, levels)
            for g, name in enumerate(names)}
    return [rows[name] for name in [None, *categories]]


def _cutoffs(points: list[list[int]]) -> np.ndarray:
    """Each group's scales as the rows of one array, the shorter ones padded with their
    last (the profile kernel copies a profile at each cutoff it reaches)."""
    width = max(1, max(map(len, points)))
    return np.array([p + [p[-1] if p else 0] * (width - len(p)) for p in points], np.int64)


def _row(name, points: list[int], profiles: np.ndarray, curve: sat.Curve, thresholds, levels) -> dict:
    """One group's entry of :func:`asymptote`, from its profiles at ``points`` (int64[n_points
    (padded), K + 1]) and its growth curve."""
    pages = points[-1] if points else 0
    whole = profiles[len(points) - 1] if points else np.zeros(profiles.shape[1], np.int64)
    estimate, low, high = species.smoothed_good_toulmin_interval(whole[:-1], 1.0)
    return {
        "category": name, "pages": pages, "distinct": int(whole.sum()),
        "scales": [{"pages": s, "at_least": {str(k): int(profile[k - 1:].sum()) / s for k in levels}}
                   for s, profile in zip(points, profiles)],
        "rate_below": {str(float(t)): sat.saturation_point(curve.pages, curve.distinct, t) for t in thresholds},
        "unseen": {"method": UNSEEN_METHOD, "pages": pages, "estimate": estimate, "low": low, "high": high},
    }

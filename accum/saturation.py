"""Saturation: how the growth of distinct features levels off as pages accumulate.

The growth log (recorded during ingest, see :mod:`accum.accumulator`) gives, at
log-spaced page counts of a category, its pages, tokens and per n-gram order the
distinct features, singletons N1, doubletons N2 and features seen at least k times.
From it this module derives:

- **Heaps' law** ``V = K * n**beta`` in tokens n, fitted by least squares in log-log
  space on the stable part of the curve (pages >= max(10, 1 % of the last));
- **new features per page** over the last stretch of the curve, raw and pruned;
- **Good-Turing's** ``N1 / N``: the chance that the next n-gram is new;
- **Chao1**, ``S + N1**2 / (2 * N2)``: a floor for the number of distinct features the
  category would show with unlimited pages, with Chao's log-normal 95 % interval;
- the **saturation point**: the page count after which the category adds fewer than
  ``threshold`` new pruned (count >= 2) features per page, for good;
- a **validated forecast**: from the first 10, 25, 50 % of the pages only (in the order
  of ingest), predict the distinct features at 100 % of the pages, and report the error
  (extrapolations past 2x the fitted pages are flagged). The forecast is the store's
  own: the method ``accum forecast`` picked for twice the pages from its checks on the
  store's pages (:class:`accum.profiles.CheckRecord`, kept in the snapshot), made from
  the incidence profile at each cutoff. Before ``accum forecast`` has checked the
  snapshot it is the **Good-Turing tangent** ``V * (pages / P) ** (N1 / V)`` from the
  last log row at the cutoff (P pages, V distinct, N1 singletons): Good-Turing's chance
  that the next n-gram is new, N1 / N, is the slope dV/dN, so N1 / V is the local Heaps
  exponent d log V / d log N, and n-gram occurrences N grow in proportion to pages at
  the observed rate. ``forecast_method`` names the one used. A Heaps fit of the same
  rows (target tokens from the tokens per page up to the cutoff) is kept for
  comparison: on 20 Newsgroups and WebKB it over-predicts, because the exponent of the
  whole curve is steeper than its end.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import species
from .counts import GROWTH_FIELDS

#: Fractions of a category's pages used to fit when validating the forecast.
FORECAST_FRACTIONS = (0.1, 0.25, 0.5)

#: What the ``predicted`` numbers of ``forecast`` come from without the store's pick
#: (see :func:`good_turing_forecast`).
FORECAST_METHOD = "good_turing_tangent"
#: The multiple of the pages whose pick (``accum forecast``'s ``chosen``) the forecast
#: uses: checked from half the pages, as the table and the figure show it.
PICK_AHEAD = "2x"
#: Names of the forecast methods in figures and tables.
FORECAST_NAMES = {FORECAST_METHOD: "Good–Turing tangent", **species.METHOD_NAMES}


@dataclass(frozen=True)
class Curve:
    """A growth curve of one category (or all pages) at one n-gram order.

    All arrays are int64[n_points], sorted by pages; ``at_least_2 = distinct - singletons``.
    """

    name: str
    order: int
    pages: np.ndarray
    tokens: np.ndarray
    distinct: np.ndarray
    singletons: np.ndarray
    doubletons: np.ndarray
    at_least_k: np.ndarray
    prune_k: int

    @property
    def at_least_2(self) -> np.ndarray:
        return self.distinct - self.singletons

    def head(self, max_pages: int) -> "Curve":
        """The curve up to ``max_pages`` pages."""
        keep = self.pages <= max_pages
        return Curve(self.name, self.order, *(a[keep] for a in self._arrays()), prune_k=self.prune_k)

    def _arrays(self):
        return (self.pages, self.tokens, self.distinct, self.singletons, self.doubletons, self.at_least_k)


def curve_from_rows(name: str, rows: list[dict], order: int, prune_k: int, final: dict | None = None) -> Curve:
    """Build a :class:`Curve` from growth-log rows (``Store.growth``) for one order.

    ``final`` (same keys) is the current state, appended when it is past the last row.
    """
    rows = [r for r in rows if r["order"] == order]
    if final is not None and (not rows or final["pages"] > rows[-1]["pages"]):
        rows = rows + [final]
    if not rows:
        raise ValueError(f"no growth log for {name!r} at order {order}: ingest pages first")
    cols = ("pages", "tokens", *GROWTH_FIELDS)
    arrays = [np.array([r[c] for r in rows], np.int64) for c in cols]
    return Curve(name, order, *arrays, prune_k=prune_k)


def heaps_fit(tokens: np.ndarray, values: np.ndarray, pages: np.ndarray) -> dict | None:
    """Fit ``V = K * tokens**beta`` on the stable part; None when too few points.

    Returns ``K``, ``beta``, ``r2`` (in log space), ``points`` used and ``from_pages``.
    """
    start = max(10, int(0.01 * pages[-1])) if len(pages) else 10
    keep = (pages >= start) & (tokens > 0) & (values > 0)
    if keep.sum() < 3:
        keep = (tokens > 0) & (values > 0)
        if keep.sum() < 3:
            return None
        start = int(pages[keep][0])
    x, y = np.log(tokens[keep]), np.log(values[keep])
    beta, log_k = np.polyfit(x, y, 1)
    residual = y - (log_k + beta * x)
    spread = ((y - y.mean()) ** 2).sum()
    r2 = 1.0 - (residual**2).sum() / spread if spread > 0 else 1.0
    return {"K": float(np.exp(log_k)), "beta": float(beta), "r2": float(r2),
            "points": int(keep.sum()), "from_pages": start}


def heaps_predict(fit: dict, tokens) -> np.ndarray:
    """Distinct features predicted by a :func:`heaps_fit` at ``tokens``."""
    return fit["K"] * np.asarray(tokens, np.float64) ** fit["beta"]


def rates(pages: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """New values per page between consecutive points: (segment end pages, rate)."""
    dp = np.diff(pages)
    ok = dp > 0
    return pages[1:][ok], (np.diff(values)[ok] / dp[ok]).astype(np.float64)


def recent_rate(pages: np.ndarray, values: np.ndarray, span: float = 0.1) -> float | None:
    """New values per page over the last ``span`` of the pages (at least one segment)."""
    if len(pages) < 2:
        return None
    start = pages[-1] * (1 - span)
    i = max(0, min(int(np.searchsorted(pages, start, side="right")) - 1, len(pages) - 2))
    return float((values[-1] - values[i]) / (pages[-1] - pages[i]))


def saturation_point(pages: np.ndarray, values: np.ndarray, threshold: float) -> int | None:
    """First page count from which every later segment adds fewer than ``threshold`` per page."""
    ends, r = rates(pages, values)
    if not len(r) or r[-1] >= threshold:
        return None
    above = np.nonzero(r >= threshold)[0]
    if not len(above):
        return int(pages[0])
    return int(ends[above[-1]])


def chao1(distinct: int, n1: int, n2: int) -> dict:
    """Chao1 lower bound on distinct features, with its log-normal 95 % interval (Chao 1987)."""
    if n2 > 0:
        extra = n1 * n1 / (2.0 * n2)
        ratio = n1 / n2
        var = n2 * (ratio**4 / 4 + ratio**3 + ratio**2 / 2)
    else:  # the bias-corrected form, for no doubletons
        extra = n1 * (n1 - 1) / 2.0
        var = extra + n1 * (2 * n1 - 1) ** 2 / 4 - n1**4 / (4 * (distinct + extra)) if distinct + extra else 0.0
    estimate = distinct + extra
    if extra <= 0 or var <= 0:
        return {"estimate": float(estimate), "low": float(estimate), "high": float(estimate)}
    c = np.exp(1.96 * np.sqrt(np.log(1 + var / extra**2)))
    return {"estimate": float(estimate), "low": float(distinct + extra / c), "high": float(distinct + extra * c)}


def good_turing_elasticity(distinct: int, singletons: int) -> float | None:
    """``N1 / V``: the local Heaps exponent d log V / d log N that Good-Turing implies.

    Good-Turing's chance that the next n-gram is new is N1 / N, the slope dV/dN of the
    growth curve; times N / V it is the slope in log-log space. None without features.
    """
    return singletons / distinct if distinct > 0 else None


def good_turing_forecast(pages, distinct, singletons, target_pages):
    """Distinct features at ``target_pages``, from one growth-log row (the Good-Turing tangent).

    ``distinct * (target_pages / pages) ** (singletons / distinct)``: the straight line in
    log-log space through the row with the Good-Turing slope :func:`good_turing_elasticity`.
    n-gram occurrences are taken to grow in proportion to pages (at the rate up to the
    row), so the rate cancels and only pages are needed. ``target_pages`` may be an array.
    """
    beta = good_turing_elasticity(distinct, singletons)
    if beta is None or pages <= 0:
        raise ValueError(f"a Good-Turing forecast needs pages and features, got {pages} pages, {distinct} features")
    return distinct * (np.asarray(target_pages, np.float64) / pages) ** beta


def forecast_validation(curve: Curve, fractions=FORECAST_FRACTIONS, method: str = FORECAST_METHOD) -> list[dict]:
    """Forecast the last point of ``curve`` from the first fractions of its pages.

    Each forecast sees only the log rows up to ``fraction`` of the pages (the cutoff, at
    ``fit_pages``) and the target page count; never the tokens or features past the
    cutoff. ``method`` is ``"good_turing_tangent"`` (:func:`good_turing_forecast` of the
    cutoff row) or ``"heaps"`` (:func:`heaps_fit` of the rows up to the cutoff, evaluated
    at ``target_tokens``: the target pages times the tokens per page up to the cutoff).
    A fraction whose rows allow no forecast is left out.
    """
    if method not in ("good_turing_tangent", "heaps"):
        raise ValueError(f"unknown forecast method {method!r}")
    out = []
    total_pages, actual = int(curve.pages[-1]), int(curve.distinct[-1])
    for fraction in fractions:
        part = curve.head(int(fraction * total_pages))
        if not len(part.pages) or part.distinct[-1] <= 0:
            continue
        fit_pages = int(part.pages[-1])
        extra = {}
        if method == "heaps":
            fit = heaps_fit(part.tokens, part.distinct, part.pages)
            if fit is None:
                continue
            target_tokens = float(part.tokens[-1]) / fit_pages * total_pages
            predicted = float(heaps_predict(fit, target_tokens))
            extra = {"target_tokens": target_tokens, "heaps": fit}
        else:
            predicted = float(good_turing_forecast(fit_pages, int(part.distinct[-1]), int(part.singletons[-1]),
                                                   total_pages))
        out.append(_forecast_entry(fraction, fit_pages, predicted, actual, total_pages) | extra)
    return out


def _forecast_entry(fraction: float, fit_pages: int, predicted: float, actual: int, total_pages: int) -> dict:
    factor = float(total_pages / fit_pages)
    return {"fraction": fraction, "fit_pages": fit_pages, "predicted": predicted, "actual": actual,
            "relative_error": (predicted - actual) / actual if actual else None,
            "extrapolation": factor, "beyond_2x": factor > 2}


def picked_forecast(curve: Curve, record) -> dict:
    """The validated forecast of ``curve`` by the store's pick, from ``record`` (an
    :class:`accum.profiles.CheckRecord` of the store's snapshot, or None), as the keys
    of :func:`summarize` it fills: ``forecast`` (as :func:`forecast_validation`'s, from
    the first fractions of the pages in the order of ingest), ``forecast_method``,
    ``forecast_pick`` (``accum forecast``'s pick and how it was checked) and
    ``forecast_profile`` (the incidence profile at half the pages, which the forecast
    from there is made from). Without a record that holds the curve's pages, the
    Good-Turing tangent of the growth log, with no pick and no profile.
    """
    chosen = None if record is None else record.chosen.get(PICK_AHEAD)
    pages = int(curve.pages[-1])
    rows = None if chosen is None else record.checks(curve.name, pages, curve.order, chosen["method"])
    if rows is None:
        return {"forecast": forecast_validation(curve), "forecast_method": FORECAST_METHOD, "forecast_pick": None,
                "forecast_profile": None}
    half = record.profile(curve.name, pages, curve.order, 0.5) if 0.5 in record.fractions else None
    return {
        "forecast": [_forecast_entry(r["fraction"], r["fit_pages"], r["predicted"], r["actual"], pages) for r in rows],
        "forecast_method": chosen["method"],
        "forecast_pick": {"ahead": PICK_AHEAD, **chosen, "shuffles": record.shuffles, "seed": record.seed,
                          "min_pages": record.min_pages},
        "forecast_profile": None if half is None else half.tolist(),
    }


def summarize(curve: Curve, occurrences: int | None = None, threshold: float = 1.0, record=None) -> dict:
    """The saturation numbers of one curve (see the module docstring).

    Parameters
    ----------
    curve : Curve
    occurrences : int, optional
        n-gram occurrences N at the last point, for Good-Turing's N1/N; defaults to
        the tokens (exact for unigrams).
    threshold : float
        New pruned features per page below which a category counts as saturated.
    record : accum.profiles.CheckRecord, optional
        ``accum forecast``'s record of the store's snapshot: the forecast is its pick
        (see :func:`picked_forecast`).
    """
    pages = int(curve.pages[-1])
    distinct, n1, n2 = int(curve.distinct[-1]), int(curve.singletons[-1]), int(curve.doubletons[-1])
    n = occurrences if occurrences is not None else int(curve.tokens[-1])
    fit = heaps_fit(curve.tokens, curve.distinct, curve.pages)
    fit_pruned = heaps_fit(curve.tokens, curve.at_least_2, curve.pages)
    return {
        "category": curve.name,
        "order": curve.order,
        "pages": pages,
        "tokens": int(curve.tokens[-1]),
        "distinct": distinct,
        "at_least_2": int(curve.at_least_2[-1]),
        f"at_least_{curve.prune_k}": int(curve.at_least_k[-1]),
        "singletons": n1,
        "doubletons": n2,
        "features_per_page": distinct / pages if pages else None,
        "pruned_features_per_page": int(curve.at_least_2[-1]) / pages if pages else None,
        "new_per_page": recent_rate(curve.pages, curve.distinct),
        "new_pruned_per_page": recent_rate(curve.pages, curve.at_least_2),
        "good_turing_new_rate": n1 / n if n else None,
        "heaps": fit,
        "heaps_pruned": fit_pruned,
        "chao1": chao1(distinct, n1, n2),
        "saturation_threshold": threshold,
        "saturated_at_pages": saturation_point(curve.pages, curve.at_least_2, threshold),
        "good_turing_elasticity": good_turing_elasticity(distinct, n1),
        **picked_forecast(curve, record),
        "forecast_heaps": forecast_validation(curve, method="heaps"),
    }


def final_states(summary, order: int) -> dict[str | None, tuple[dict, int]]:
    """Current growth numbers of every category (and None: all pages) at ``order``, each
    with its n-gram occurrences N (for Good-Turing), from a
    :class:`~accum.counts.CountsSummary`."""
    cat_stats, all_stats = summary.growth_stats()
    occurrences = summary.occurrences[:, order - 1]
    def state(pages, tokens, stats):
        return {"pages": int(pages), "tokens": int(tokens), "order": order,
                **{k: int(v) for k, v in zip(GROWTH_FIELDS, stats)}}

    out = {None: (state(summary.n_documents, summary.n_tokens, all_stats[order - 1]), int(occurrences.sum()))}
    for c, name in enumerate(summary.categories):
        out[name] = (state(summary.doc_counts[c], summary.token_counts[c], cat_stats[c, order - 1]),
                     int(occurrences[c]))
    return out


def analyse(summary, growth_of, order: int, names: list, threshold: float = 1.0,
            record=None) -> tuple[dict, dict]:
    """Curves and :func:`summarize` results of categories ``names`` (None: all pages).

    ``growth_of(name)`` returns the growth-log rows of a category (``Store.growth``);
    the current state (a :class:`~accum.counts.CountsSummary`) closes each curve;
    ``record`` is ``accum forecast``'s of the same snapshot, if any (see :func:`summarize`).
    """
    curves = growth_curves(summary, growth_of, order, names)
    finals = final_states(summary, order)
    summaries = {name: summarize(curves[name], finals[name][1], threshold, record) for name in names}
    return curves, summaries


def growth_curves(summary, growth_of, order: int, names: list) -> dict:
    """The :class:`Curve` of each category of ``names`` (None: all pages) at ``order``, from
    its growth-log rows (``growth_of(name)``, as ``Store.growth``) closed by the current
    state (a :class:`~accum.counts.CountsSummary`)."""
    finals = final_states(summary, order)
    return {name: curve_from_rows(name, growth_of(name), order, summary.settings.prune_k, finals[name][0])
            for name in names}


def shuffle_band(texts: list[str], labels: list[str], settings, shuffles: int, seed: int,
                 order: int) -> dict[str | None, dict]:
    """Growth curves of the same pages in ``shuffles`` random orders (seeded).

    Returns, per category (and None for all pages), ``pages`` and the ``low``, ``high``
    and ``mean`` of distinct features (raw and pruned) at each logged page count.
    """
    from .accumulator import Accumulator

    if shuffles < 1:
        raise ValueError(f"shuffles must be >= 1, got {shuffles}")
    rng = np.random.default_rng(seed)
    per_run: dict = {}
    for _ in range(shuffles):
        perm = rng.permutation(len(texts))
        acc = Accumulator(settings)
        for start in range(0, len(perm), 1000):
            chunk = perm[start : start + 1000]
            acc.partial_fit([texts[i] for i in chunk], [labels[i] for i in chunk])
        events = acc.take_growth()
        for cat_index in np.unique(events[:, 0]):
            name = None if cat_index < 0 else acc.categories[cat_index]
            rows = events[events[:, 0] == cat_index]
            distinct = rows[:, 3 + 4 * (order - 1)]
            pruned = distinct - rows[:, 4 + 4 * (order - 1)]
            per_run.setdefault(name, []).append((rows[:, 1], distinct, pruned))
    band = {}
    for name, runs in per_run.items():
        pages = runs[0][0]  # checkpoints depend only on page counts: the same in every run
        raw = np.array([r[1] for r in runs])
        pruned = np.array([r[2] for r in runs])
        band[name] = {"pages": pages, "low": raw.min(0), "high": raw.max(0), "mean": raw.mean(0),
                      "pruned_low": pruned.min(0), "pruned_high": pruned.max(0)}
    return band

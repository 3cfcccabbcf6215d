"""Figures, drawn with matplotlib's object API on the Agg backend (no global pyplot state)."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from . import species
from .saturation import FORECAST_METHOD, FORECAST_NAMES, Curve, good_turing_forecast, heaps_predict, rates

#: The file name endings a figure may be written to (the format follows the ending).
FIGURE_SUFFIXES = (".png", ".svg")


def figure_path(path) -> Path:
    """``path`` as a Path, when it names a figure file this module can write (see
    :data:`FIGURE_SUFFIXES`); else ValueError."""
    path = Path(path)
    if path.suffix.lower() not in FIGURE_SUFFIXES:
        raise ValueError(f"a figure's file name must end in .png or .svg, got {path.name!r}")
    return path

OVERALL = "all pages"


def saturation_figure(curves: dict, summaries: dict, bands: dict | None, path) -> list[Path]:
    """Draw growth curves as small multiples plus a panel of new features per page.

    Parameters
    ----------
    curves : dict
        Name (None for all pages) -> :class:`~accum.saturation.Curve`.
    summaries : dict
        Name -> :func:`~accum.saturation.summarize` output (for fits and saturation points).
    bands : dict or None
        Name -> :func:`~accum.saturation.shuffle_band` output, drawn as shaded bands.
    path : path-like
        ``.png`` or ``.svg``; the plotted points go to a ``.csv`` beside it.

    Returns
    -------
    list of Path
        The image and the CSV written.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    path = figure_path(path)
    names = [None] + sorted(n for n in curves if n is not None) if None in curves else sorted(curves)
    ncols = min(4, len(names))
    nrows = math.ceil(len(names) / ncols)
    width, height = 4.2 * max(ncols, 2), 3.2 * nrows + 5.0  # two panels wide at least: room for the titles
    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    # margins in inches, fixed: constrained layout measured every tick label and took
    # most of the drawing time (20 Newsgroups, under the profiler: 5.8 of the figure's 9.4 s;
    # with fixed margins and no minor ticks, accum saturation --plot takes 2.8 s end to end)
    grid = fig.add_gridspec(nrows + 1, ncols, height_ratios=[1] * nrows + [1.3], left=0.75 / width,
                            right=1 - 0.25 / width, top=1 - 1.35 / height, bottom=1.9 / height,
                            hspace=0.75, wspace=0.35)
    first = curves[names[0]]
    fig.suptitle(f"Growth of distinct {_order_name(first.order)} features as pages accumulate", fontsize=14)
    for i, name in enumerate(names):
        ax = fig.add_subplot(grid[i // ncols, i % ncols])
        _growth_panel(ax, curves[name], summaries.get(name), (bands or {}).get(name), legend=(i == 0))
    ax = fig.add_subplot(grid[nrows, :])
    _rate_panel(ax, curves, names)
    fig.savefig(path, dpi=110)
    csv_path = path.with_suffix(".csv")
    _write_points(csv_path, curves, summaries, bands or {})
    return [path, csv_path]


def _order_name(order: int) -> str:
    return {1: "unigram", 2: "bigram", 3: "trigram"}.get(order, f"{order}-gram")


def _growth_panel(ax, curve: Curve, summary: dict | None, band: dict | None, legend: bool) -> None:
    label = OVERALL if curve.name is None else curve.name
    x = curve.pages
    if band is not None:
        ax.fill_between(band["pages"], band["low"], band["high"], color="C0", alpha=0.18, lw=0,
                        label="raw, shuffled orders")
        ax.fill_between(band["pages"], band["pruned_low"], band["pruned_high"], color="C1", alpha=0.18, lw=0,
                        label="≥2, shuffled orders")
    ax.plot(x, curve.distinct, color="C0", lw=1.8, label="raw (all features)")
    ax.plot(x, _positive(curve.at_least_2), color="C1", lw=1.5, label="seen ≥ 2 times")
    ax.plot(x, _positive(curve.at_least_k), color="C2", lw=1.2, label=f"seen ≥ {curve.prune_k} times")
    ax.plot(x, 10 * x, color="0.5", lw=0.8, ls=":", label="10 features per page")
    if summary and summary.get("heaps"):
        fit = summary["heaps"]
        keep = x >= fit["from_pages"]
        ax.plot(x[keep], heaps_predict(fit, curve.tokens[keep]), color="k", ls="--", lw=1,
                label="Heaps fit (raw)")
    line = _forecast_line(curve, summary)
    if line is not None:
        fx, fy = line
        method = summary["forecast_method"]
        ax.plot(fx, fy, color="C3", ls=":", lw=1.4, label=f"forecast from 50 % ({FORECAST_NAMES.get(method, method)})")
        ax.plot(fx[-1:], fy[-1:], "o", color="C3", ms=3.5, mfc="none")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.minorticks_off()  # small multiples: decades suffice, and minor ticks are most of the drawing time
    title = label
    if summary:
        sat = summary.get("saturated_at_pages")
        title += f"\n{summary['pages']:,} pages, " + (f"saturated at {sat:,}" if sat else "not saturated")
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("pages", fontsize=8)
    ax.set_ylabel("distinct features", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.grid(True, which="major", alpha=0.3)
    if legend:
        ax.legend(fontsize=7, loc="upper left")


def _rate_panel(ax, curves: dict, names: list) -> None:
    import matplotlib

    cmap = matplotlib.colormaps["tab20"]
    for i, name in enumerate(n for n in names if n is not None):
        ends, r = rates(curves[name].pages, curves[name].distinct)
        keep = r > 0
        ax.plot(ends[keep], r[keep], color=cmap(i % 20), lw=1, label=name)
    if None in curves:
        c = curves[None]
        ends, r = rates(c.pages, c.distinct)
        ax.plot(ends[r > 0], r[r > 0], color="k", lw=2.5, label=f"{OVERALL} (raw)")
        ends, r = rates(c.pages, c.at_least_2)
        ax.plot(ends[r > 0], r[r > 0], color="k", lw=2, ls="--", label=f"{OVERALL} (seen ≥ 2 times)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("pages of the category")
    ax.set_ylabel("new features per page")
    ax.set_title("New distinct features per page (rate between log-spaced checkpoints)", fontsize=11)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=7, ncol=min(6, len(names) + 1), loc="upper center", bbox_to_anchor=(0.5, -0.22))


def _forecast_line(curve: Curve, summary: dict | None):
    """The forecast from half the pages (the summary's 0.5 entry): (pages, predicted) from
    its cutoff to the last point, or None; it ends at ``predicted``. The store's pick is
    drawn from the profile at the cutoff (``forecast_profile``); the Good–Turing tangent
    from the growth log's row there, straight in log-log space."""
    summary = summary or {}
    fc = {f["fraction"]: f for f in summary.get("forecast", [])}.get(0.5)
    if fc is None:
        return None
    method = summary.get("forecast_method")
    if summary.get("forecast_profile") is not None:
        fit = fc["fit_pages"]
        x = np.append(fit, curve.pages[curve.pages > fit])
        profile = np.asarray(summary["forecast_profile"])
        return x, np.array([species.forecast(profile, p / fit, method) for p in x])
    if method != FORECAST_METHOD:
        return None
    at = np.nonzero(curve.pages == fc["fit_pages"])[0]
    if not len(at):
        return None
    i = int(at[0])
    x = curve.pages[i:]
    return x, good_turing_forecast(int(curve.pages[i]), int(curve.distinct[i]), int(curve.singletons[i]), x)


def _positive(values: np.ndarray) -> np.ndarray:
    """Values with zeros masked (log axes cannot show them)."""
    out = values.astype(np.float64)
    out[out <= 0] = np.nan
    return out


def _write_points(path: Path, curves: dict, summaries: dict, bands: dict) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["category", "order", "pages", "tokens", "distinct", "singletons", "doubletons",
                         "at_least_2", "at_least_k", "heaps_fit", "new_per_page", "band_low", "band_high",
                         "forecast_from_50pct"])
        for name, c in curves.items():
            fit = (summaries.get(name) or {}).get("heaps")
            predicted = heaps_predict(fit, c.tokens) if fit else [None] * len(c.pages)
            ends, r = rates(c.pages, c.distinct)
            rate_at = dict(zip(ends.tolist(), r.tolist()))
            line = _forecast_line(c, summaries.get(name))
            forecast_at = {} if line is None else dict(zip(line[0].tolist(), line[1].tolist()))
            band = bands.get(name)
            band_at = {} if band is None else {
                p: (lo, hi) for p, lo, hi in zip(band["pages"].tolist(), band["low"].tolist(), band["high"].tolist())}
            for j, p in enumerate(c.pages.tolist()):
                lo, hi = band_at.get(p, (None, None))
                writer.writerow([OVERALL if name is None else name, c.order, p, int(c.tokens[j]),
                                 int(c.distinct[j]), int(c.singletons[j]), int(c.doubletons[j]),
                                 int(c.at_least_2[j]), int(c.at_least_k[j]),
                                 None if predicted[j] is None else round(float(predicted[j]), 1),
                                 rate_at.get(p), lo, hi,
                                 None if p not in forecast_at else round(forecast_at[p], 1)])


def reliability_figure(before: dict, after: dict, title: str, path) -> Path:
    """Reliability diagram: accuracy against confidence per bin, before and after calibration.

    ``before`` and ``after`` are :func:`accum.calibration.reliability` outputs.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    path = figure_path(path)
    fig = Figure(figsize=(10, 4.6), layout="constrained")
    FigureCanvasAgg(fig)
    fig.suptitle(title, fontsize=12)
    panels = (("top probability, before", before),
              (f"confidence, after (T = {after['temperature']:.3g} + isotonic map)", after))
    for i, (name, rel) in enumerate(panels):
        ax = fig.add_subplot(1, 2, i + 1)
        edges = np.array(rel["edges"])
        centers = (edges[:-1] + edges[1:]) / 2
        acc = np.array([np.nan if a is None else a for a in rel["accuracy"]])
        conf = np.array([np.nan if c is None else c for c in rel["confidence"]])
        ax.bar(centers, acc, width=np.diff(edges), edgecolor="k", color="C0", alpha=0.7, label="accuracy")
        ax.plot(centers, conf, "o", color="C3", ms=4, label="mean confidence")
        ax.plot([0, 1], [0, 1], color="0.4", ls="--", lw=1, label="perfect calibration")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("confidence of the top category")
        ax.set_ylabel("accuracy")
        ax.set_title(f"{name}: ECE {rel['ece']:.3f}", fontsize=10)
        ax.legend(fontsize=8, loc="upper left")
        twin = ax.twinx()
        twin.step(edges[:-1], rel["count"], where="post", color="0.5", lw=0.8)
        twin.set_ylabel("pages per bin", color="0.5", fontsize=8)
        twin.tick_params(labelsize=7, colors="0.5")
    fig.savefig(path, dpi=110)
    return path


def capacity_figure(measured: list[dict], extrapolated: list[dict], llms: list[dict], path) -> Path:
    """Parameters against pages: the accumulator (measured, extrapolated) and the LLMs."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    path = figure_path(path)
    fig = Figure(figsize=(10, 6.5), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.plot([m["pages"] for m in measured], [m["parameters"] for m in measured], color="C0", lw=2.2,
            label="accumulator, measured")
    last = measured[-1]
    ax.plot([last["pages"]] + [e["pages"] for e in extrapolated],
            [last["parameters"]] + [e["parameters"] for e in extrapolated],
            color="C0", ls="--", lw=1.5, label="accumulator, extrapolated (Heaps' law)")
    import matplotlib

    cmap = matplotlib.colormaps["tab20"]
    for i, row in enumerate(sorted(llms, key=lambda r: r["parameters"])):
        ax.axhline(row["parameters"], color="0.75", lw=0.7, zorder=0)
        ax.plot(row["pages_verbatim_at_capacity"], row["parameters"], "o", color=cmap(i % 20),
                label=f"{row['model']}: pages it could hold verbatim")
    ax.axvline(40e9, color="C3", ls=":", lw=1.2, label="40B documents")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("pages")
    ax.set_ylabel("parameters (accumulator: non-zero counts)")
    ax.set_title("Parameters against pages: an accumulator, and LLMs at 3.6 bits per parameter", fontsize=11)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.savefig(path, dpi=110)
    return path

"""``accum forecast``: the features more pages would add, and how well that was forecast before."""

from __future__ import annotations

import click

from .common import data_errors, emit_json, json_option, open_store, printable, store_options, unknown_category

#: Page multiples each category's vocabulary is forecast at.
AHEAD = (2.0, 10.0)


def check_options(func):
    """``--shuffles``, ``--seed`` and ``--min-pages``: how the forecasts are checked (also
    by ``accum report``)."""
    for option in reversed((
        click.option("--shuffles", default=5, show_default=True, type=click.IntRange(min=0),
                     help="Seeded random page orders the forecasts are checked in, besides the order of ingest."),
        click.option("--seed", default=0, show_default=True, type=int, help="Seed of the shuffles."),
        click.option("--min-pages", default=1000, show_default=True, type=click.IntRange(min=2),
                     help="Categories with fewer pages are left out of the error summary."),
    )):
        func = option(func)
    return func


@click.command("forecast")
@click.option("--category", "category", default=None, help="One category (default: all, plus all pages).")
@click.option("--order", default=1, show_default=True, type=click.IntRange(1, 8),
              help="n-gram order of the features in the tables (--json has every order).")
@check_options
@store_options
@json_option
@data_errors
def forecast_command(category, order, shuffles, seed, min_pages, store, db, as_json):
    """Forecast each category's distinct features at 2x and 10x its pages from its
    incidence profile (smoothed Good-Toulmin, second-order tangent, tangent), and check
    every method on the store's own pages: from the first 10/25/50 % of each category,
    in the order of ingest and in shuffled orders, against all its pages. At each
    multiple the store's forecast is the method that erred least there; the store keeps
    that pick with the checks in the order of ingest, and accum saturation forecasts by it."""
    import numpy as np

    st = open_store(store, db)
    snapshot, pages = store_page_features(st, category)
    if order > pages.n_orders:
        raise click.BadParameter(f"this store counts n-grams up to order {pages.n_orders}", param_hint="--order")
    with click.progressbar(length=shuffles + 1, label="checking forecasts", file=click.get_text_stream("stderr"),
                           hidden=as_json) as bar:
        result = kept_forecasts(st, snapshot, pages, shuffles, seed, min_pages,
                                progress=lambda done, total: bar.update(1))
    current = [c for c in result["current"] if category is None or c["category"] == category]
    if as_json:
        emit_json({"snapshot": snapshot, **result, "current": current,
                   "checks": [c for c in result["checks"] if category is None or c["category"] == category]})
        return
    _echo_current([c for c in current if c["order"] == order])
    _echo_errors(result["errors"], min_pages, shuffles, int(np.sum(pages.group_pages[:-1] >= min_pages)))
    lines = [f"at {ahead} the pages the store forecasts by {c['method']} (\"predicted\" in --json): "
             f"{c['median_abs_error']:.1%} median |error| from {c['fraction']:.0%} of the pages ({c['pages_order']})"
             for ahead, c in result["chosen"].items() if c]
    if lines:
        click.echo("\n" + "\n".join(lines))


def store_page_features(st, category: str | None = None):
    """The newest snapshot's name and its pages' features numbered with their n-gram
    orders (:class:`accum.profiles.PageFeatures`), what every forecast is made and checked
    on. A ``category`` the store lacks is a usage error, raised before the features are
    numbered (a few seconds on a large store)."""
    from accum.storage.fits import training_pages

    summary = st.summary() if category is not None else None
    if summary is not None and category not in summary.categories:
        raise unknown_category(category, list(summary.categories))
    snapshot, _, pages, _ = training_pages(st, form="features")
    if category is not None and category not in pages.categories:
        raise unknown_category(category, list(pages.categories))
    return snapshot, pages


def kept_forecasts(st, snapshot: str, pages, shuffles: int, seed: int, min_pages: int, progress=None) -> dict:
    """:func:`forecasts` of the store's ``snapshot``, whose pick and profiles the store then
    keeps in that snapshot (:class:`accum.profiles.CheckRecord`), so that accum saturation,
    the service and accum report forecast by the pick without checking again."""
    from accum.profiles import CheckRecord

    result = forecasts(pages, shuffles, seed, min_pages, progress)
    CheckRecord.of(pages, result["chosen"], shuffles, seed, min_pages).save(st.snapshot_dir(snapshot))
    return result


def forecasts(pages, shuffles: int, seed: int, min_pages: int, progress=None) -> dict:
    """Every check of every forecast method (:func:`accum.profiles.check_forecasts`), their
    error summary over the categories with ``min_pages`` pages or more, the store's pick
    at each multiple of :data:`AHEAD`, and each category's (and all pages') profile with
    its forecasts: what ``accum forecast --json`` writes for all categories and
    ``accum report`` lays out. ``progress(done, total)`` is called after each page order."""
    from accum import profiles as pf
    from accum import species

    checks, now = pf.check_forecasts(pages, shuffles, seed, progress=progress)
    errors = pf.error_table(checks, min_pages)
    chosen = {f"{r:g}x": c for r, c in pf.choose_methods(errors, AHEAD).items()}
    current = []
    for g, name in enumerate(list(pages.categories) + [None]):
        for k in range(pages.n_orders):
            profile = now[g, k]
            forecast = {m: {f"{r:g}x": species.forecast(profile, r, m) for r in AHEAD} for m in species.METHODS}
            current.append({
                "category": name, "order": k + 1, "pages": int(pages.group_pages[g]), "distinct": int(profile.sum()),
                "profile": profile.tolist(), "forecast": forecast,
                "predicted": {a: forecast[c["method"]][a] if c else None for a, c in chosen.items()},
            })
    return {"shuffles": shuffles, "seed": seed, "min_pages": min_pages, "methods": list(species.METHODS),
            "profile_terms": pf.PROFILE_TERMS, "chosen": chosen, "current": current, "errors": errors,
            "checks": checks}


def _echo_current(rows: list[dict]) -> None:
    click.echo(f"{'category':<26} {'pages':>8} {'features':>10} {'Φ1':>9} {'Φ2':>9}   "
               + "  ".join(f"{'SGT ' + k:>10} {'2nd ' + k:>10}" for k in (f"{r:g}x" for r in AHEAD)))
    for c in rows:
        f = c["forecast"]
        click.echo(
            f"{printable(c['category'] or 'ALL PAGES'):<26.26} {c['pages']:>8,} {c['distinct']:>10,} "
            f"{c['profile'][0]:>9,} {c['profile'][1]:>9,}   "
            + "  ".join(f"{f['smoothed_good_toulmin'][k]:>10,.0f} {f['second_order'][k]:>10,.0f}"
                        for k in (f"{r:g}x" for r in AHEAD)))
    click.echo("\nΦ1, Φ2: features held by exactly 1 and 2 pages; SGT: smoothed Good–Toulmin; 2nd: the growth "
               "curve's second-order expansion in log-log space (see accum.species)")


def _echo_errors(errors: list[dict], min_pages: int, shuffles: int, n_categories: int) -> None:
    if not errors:
        click.echo(f"\nno category has {min_pages:,} pages or more: no forecast was checked (see --min-pages)")
        return
    click.echo(f"\nForecasts of all of a category's pages from its first 10/25/50 %, checked on the "
               f"{n_categories} categories with ≥ {min_pages:,} pages: median (largest) |error|; "
               f"shuffled: {shuffles} orders")
    click.echo(f"{'order':>5} {'pages in':<9} {'method':<22} " + " ".join(f"{'from ' + format(f, '.0%'):>16}"
                                                                     for f in sorted({e['fraction'] for e in errors})))
    rows: dict = {}
    for e in errors:
        rows.setdefault((e["order"], e["pages_order"], e["method"]), {})[e["fraction"]] = e
    for (order, kind, method), by_fraction in rows.items():
        cells = " ".join(f"{e['median_abs_error']:>7.1%} ({e['max_abs_error']:>5.1%})" for _, e in
                         sorted(by_fraction.items()))
        click.echo(f"{order:>5} {kind:<9} {method:<22} {cells}")

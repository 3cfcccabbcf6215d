"""``accum saturation``: how far along its growth curve each category is; ``accum
asymptote``: where it is heading (features per page at growing scales, the unseen ones)."""

from __future__ import annotations

import click

from .common import (data_errors, emit_json, figure_name, json_option, open_store, printable, store_options,
                     unknown_category)


@click.command("saturation")
@click.option("--category", "category", default=None, help="One category (default: all, plus all pages).")
@click.option("--order", default=1, show_default=True, type=click.IntRange(1, 8), help="n-gram order of the features.")
@click.option("--threshold", default=1.0, show_default=True, type=click.FloatRange(min=0, min_open=True),
              help="Saturated when fewer new features seen >= 2 times than this arrive per page.")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False), default=None, callback=figure_name,
              help="Write the figure (.png or .svg) and its points (.csv beside it).")
@click.option("--shuffles", default=0, show_default=True, type=click.IntRange(min=0),
              help="Also draw the band of R shuffled page orders (re-reads the store's sources).")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the shuffles.")
@store_options
@json_option
@data_errors
def saturation_command(category, order, threshold, plot_path, shuffles, seed, store, db, as_json):
    """Growth of distinct features per category: fit, forecast, saturation point, plot.
    The forecast is the one accum forecast picked for the store, once it has checked the
    store as it is (else the growth log's Good-Turing tangent)."""
    from accum import saturation as sat

    st = open_store(store, db)
    acc = _summary(st, store, order, category)
    names = [category] if category is not None else [None] + list(acc.categories)
    curves, summaries = sat.analyse(acc, st.growth, order, names, threshold, st.forecast_record())
    bands = _bands(st, acc, shuffles, seed, order) if shuffles else None
    written = []
    if plot_path:
        from accum.plots import saturation_figure

        written = [str(p) for p in saturation_figure(curves, summaries, bands, plot_path)]
    if as_json:
        emit_json({
            "order": order, "threshold": threshold, "shuffles": shuffles,
            "overall": summaries.get(None),
            "categories": [summaries[n] for n in names if n is not None],
            "bands": None if bands is None else {
                "all pages" if k is None else k: {f: v.tolist() for f, v in b.items()} for k, b in bands.items()},
            "files": written,
        })
        return
    _echo_table([summaries[n] for n in names], acc.settings.prune_k)
    for path in written:
        click.echo(f"wrote {path}", err=True)


def _summary(st, store, order: int, category: str | None):
    """The store's :class:`~accum.counts.CountsSummary`, once ``--order`` and ``--category``
    are known to fit it (else a usage error; an empty store is an error)."""
    acc = st.summary()
    if acc is None or acc.n_categories == 0:
        raise click.ClickException(f"the store at {store} is empty: run accum ingest first")
    if order > acc.settings.max_order:
        raise click.BadParameter(f"this store counts n-grams up to order {acc.settings.max_order}", param_hint="--order")
    if category is not None and category not in acc.categories:
        raise unknown_category(category, acc.categories)
    return acc


def _bands(st, acc, shuffles, seed, order):
    """Shuffled-order bands over the store's own pages, re-read from its recorded sources."""
    from accum import saturation as sat
    from accum.storage.recorded import recorded_pages

    texts, cats = recorded_pages(st)
    return sat.shuffle_band(texts, cats, acc.settings, shuffles, seed, order)


def _echo_table(rows: list[dict], prune_k: int) -> None:
    click.echo(f"{'category':<26} {'pages':>8} {'features':>10} {'≥2':>9} {'new/page':>9} {'≥2 new/pg':>9} "
               f"{'N1/N':>6} {'Heaps K':>8} {'β':>5} {'R²':>6} {'Chao1':>11} {'50%→100%':>9}  saturation")
    for s in rows:
        h = s["heaps"] or {}
        fc = {f["fraction"]: f for f in s["forecast"]}.get(0.5)
        error = f"{fc['relative_error']:+.1%}" if fc else "-"
        sat = s["saturated_at_pages"]
        click.echo(
            f"{printable(s['category'] or 'ALL PAGES'):<26.26} {s['pages']:>8,} {s['distinct']:>10,} "
            f"{s['at_least_2']:>9,} "
            f"{_num(s['new_per_page'], 9, 2)} {_num(s['new_pruned_per_page'], 9, 2)} "
            f"{_num(s['good_turing_new_rate'], 6, 3)} {_num(h.get('K'), 8, 1)} {_num(h.get('beta'), 5, 2)} "
            f"{_num(h.get('r2'), 6, 3)} {s['chao1']['estimate']:>11,.0f} "
            f"{error:>9}  "
            + (f"saturated at page {sat:,}" if sat else "not saturated")
        )
    click.echo(f"\nnew/page: new distinct features per page over the last 10 % of pages; ≥2: features seen at "
               f"least twice (seen ≥ {prune_k} times: see --json); N1/N: Good-Turing chance the next n-gram is new;\n"
               "Heaps: V = K·tokens^β; Chao1: floor of the asymptote; 50%→100%: error of the forecast made from the "
               f"first half of the pages only\n({_forecast_note(rows)}; --json also has the Heaps forecast); "
               "saturation: fewer than --threshold new ≥2 features per page from then on.")


def _forecast_note(rows: list[dict]) -> str:
    """What the table's forecasts were made by."""
    from accum.saturation import FORECAST_NAMES

    picked = next((s for s in rows if s["forecast_pick"]), None)
    if picked is None:
        return ("Good–Turing tangent V·(pages/P)^(N1/V) at the cutoff; run accum forecast to have the store pick "
                "its forecast")
    pick = picked["forecast_pick"]
    return (f"{FORECAST_NAMES[picked['forecast_method']]} from the profile at the cutoff: the store's pick for "
            f"{pick['ahead']} the pages from accum forecast's checks ({pick['shuffles']} shuffles)")


def _num(value, width, digits):
    return f"{value:>{width},.{digits}f}" if value is not None else f"{'-':>{width}}"


@click.command("asymptote")
@click.option("--category", "category", default=None, help="One category (default: all, plus all pages).")
@click.option("--order", default=1, show_default=True, type=click.IntRange(1, 8), help="n-gram order of the features.")
@store_options
@json_option
@data_errors
def asymptote_command(category, order, store, db, as_json):
    """Where each category's features are heading: per page, the features held by at
    least 1, 2, 5 and 10 of its first 10, 100, 1,000, ... pages (in the order of ingest)
    and of all of them; the page from which fewer than 1 and 0.1 new features arrive per
    page, for good; and the smoothed Good-Toulmin estimate of the new features as many
    pages again would bring, with a 95 % interval. Reads every page vector once (about
    half a minute on 300,000 pages)."""
    st = open_store(store, db)
    rows = [r for r in store_asymptote(st, _summary(st, store, order, category), order)
            if category is None or r["category"] == category]
    if as_json:
        emit_json({"order": order, "asymptote": rows})
        return
    _echo_asymptote(rows)


def store_asymptote(st, summary, order: int, pages=None, **options) -> list[dict]:
    """:func:`accum.asymptote.asymptote` of the store ``st`` (``summary``: its counts'
    summary) at n-gram ``order``, with that function's ``options``, from its page vectors
    (``pages``: their :class:`~accum.profiles.PageFeatures` when already read).
    Raises ValueError for an order the store does not count and StoreError when the
    store changed while it was read."""
    from accum import saturation as sat
    from accum.asymptote import asymptote
    from accum.storage.failures import StoreError

    from .forecast_cmd import store_page_features

    if not 1 <= order <= summary.settings.max_order:
        raise ValueError(f"this store counts n-grams up to order {summary.settings.max_order}, not {order}")
    if pages is None:
        _, pages = store_page_features(st)
    names = list(pages.categories) + [None]
    curves = sat.growth_curves(summary, st.growth, order, names)
    if set(summary.categories) != set(pages.categories) or any(
            int(curves[name].pages[-1]) != n for name, n in zip(names, pages.group_pages.tolist())):
        raise StoreError(f"the store at {st.path} changed while it was read; run the command again")
    return asymptote(pages, curves, list(summary.categories), order, **options)


def _echo_asymptote(rows: list[dict]) -> None:
    levels = list(rows[0]["scales"][-1]["at_least"]) if rows and rows[0]["scales"] else []
    thresholds = list(rows[0]["rate_below"]) if rows else []
    click.echo(f"{'category':<26} {'pages':>9} " + " ".join(f"{'≥' + k:>7}" for k in levels) + " "
               + " ".join(f"{'<' + t + '/pg':>10}" for t in thresholds) + f"  {'unseen in as many pages again':>38}")
    for r in rows:
        for i, scale in enumerate(r["scales"]):
            last = i == len(r["scales"]) - 1
            cells = " ".join(f"{scale['at_least'][k]:>7.2f}" for k in levels)
            line = f"{printable(r['category'] or 'ALL PAGES') if i == 0 else '':<26.26} {scale['pages']:>9,} {cells}"
            if last:
                u = r["unseen"]
                line += (" " + " ".join(f"{_page(r['rate_below'][t]):>10}" for t in thresholds)
                         + f"  {u['estimate']:>12,.0f} ({u['low']:,.0f}–{u['high']:,.0f})")
            click.echo(line)
    click.echo("\n≥k: features held by at least k of the first pages (in the order of ingest), per page; "
               "<t/pg: the page from which fewer than t new features\nper page arrived, for good (growth log); "
               "unseen: smoothed Good–Toulmin estimate of the new features as many pages again would bring, "
               "with a 95 % interval\n(pages drawn at random: pages unlike those seen would bring more).")


def _page(value) -> str:
    return "not yet" if value is None else f"{value:,}"

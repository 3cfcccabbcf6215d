"""``accum forget``: take pages out of a store, exactly."""

from __future__ import annotations

import click

from .common import data_errors, emit_json, fit_after, json_option, open_store, printable, store_options


@click.command("forget")
@click.argument("urls", nargs=-1)
@click.option("--file", "url_file", type=click.File("r", encoding="utf-8"),
              help="Also forget the URLs in this file, one a line ('-': standard input).")
@click.option("--fit/--no-fit", "refit", default=None,
              help="Afterwards, choose the store's classifier again (default: when the store has a fit, since it "
                   "was trained on the forgotten pages too).")
@store_options
@json_option
@data_errors
def forget_command(urls, url_file, refit, store, db, as_json):
    """Take the pages at URLS out of the store: every count, weight and growth statistic
    becomes what an ingest without them would give, and their documents go.

    Pages are known by the URL they were ingested with (accum categories and the catalog
    show them); a page ingested again under the same URL with other text already
    replaces the old one, so forget is for pages that are gone.
    """
    wanted = list(urls) + ([line.strip() for line in url_file if line.strip()] if url_file else [])
    if not wanted:
        raise click.UsageError("give the URLs of the pages to forget (arguments or --file)")
    st = open_store(store, db)
    result = st.forget(wanted)
    from accum.storage.fits import latest_fit

    due = refit if refit is not None else latest_fit(st) is not None
    result["fit"] = fit_after(st, force=True) if due and result["forgotten"] else None
    if as_json:
        emit_json(result)
        return
    click.echo(f"forgot {result['forgotten']:,} pages of {printable(st.path)}; {result['documents']:,} documents left")
    for url in result["unknown"][:10]:
        click.echo(f"  not in the store: {printable(url)}")
    if len(result["unknown"]) > 10:
        click.echo(f"  ... and {len(result['unknown']) - 10:,} more URLs not in the store")
    fit = result["fit"]
    if fit is not None and "error" not in fit:
        click.echo(f"  model        {printable(fit['summary'])} (chosen in {fit['seconds']:.1f} s)")

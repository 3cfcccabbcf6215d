"""``accum ingest``: read sources into a store."""

from __future__ import annotations

import os

import click

from .common import (ByteSize, data_errors, emit_json, fit_after, json_option, open_store, printable, progress_bar,
                     read_sources, source_options, store_options)


def _valid_label(ctx, param, value):
    """``--default-label`` checked by the engine's label rule, before anything is read."""
    from accum.pages import check_label

    if value is None:
        return None
    try:
        return check_label(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


#: What a user can do about records skipped for these reasons, shown with their example.
SKIP_HINTS = {"no-label": "--default-label gives such pages a label",
              "outside-root": "--follow-links reads files that links lead to"}


@click.command("ingest")
@click.argument("sources", nargs=-1, required=True, type=click.Path(exists=True))
@source_options
@click.option("--default-label", default=None, callback=_valid_label,
              help="Category for pages the label spec gives no label.")
@click.option("--max-order", default=2, show_default=True, type=click.IntRange(1, 8),
              help="Highest n-gram order counted (fixed at a store's first ingest).")
@click.option("--checkpoint-seconds", default=60.0, show_default=True, type=click.FloatRange(min=0),
              help="Commit a snapshot at least this often (and always at the end).")
@click.option("--markov-order", default=0, show_default=True, type=click.IntRange(0, 32),
              help="Also build a text generator of this n-gram order from the same pages, for accum generate "
                   "and recall (0: none; 4 is a good start; fixed at a store's first ingest).")
@click.option("--gram-bits", default=0, show_default=True, type=click.IntRange(0, 14),
              help="Also keep the Gram of the pages' unigrams hashed into 2^N buckets, which only the "
                   "ridge-complement model reads (0: none; 12 takes 64 MiB; fixed at a store's first ingest).")
@click.option("--memory", default=None, type=ByteSize(), metavar="SIZE",
              help="Memory budget of the ingest, e.g. 1GiB: past a share of it the counts are written to runs "
                   "on disk and merged into the store at each checkpoint, with the same result (default: no "
                   "budget, all counts in memory); with --dask, each worker counts in its share of it and writes "
                   "its runs into the store (the workers must share its file system). The model chosen after the "
                   "ingest keeps to it as accum fit --memory does.")
@click.option("--batch-pages", default=500, show_default=True, type=click.IntRange(min=1),
              help="Pages tokenised and counted together.")
@click.option("--dask", "dask_address", default=None, metavar="local:N|tcp://HOST:PORT",
              help="Count on a Dask cluster: local:N starts N worker processes here; an address joins "
                   "a running scheduler. Same result as without.")
@click.option("--part-mb", default=64.0, show_default=True, type=click.FloatRange(min=0, min_open=True),
              help="With --dask: directories are split into parts of about this many MB.")
@click.option("--fit/--no-fit", "refit", default=None,
              help="Afterwards, choose the store's classifier again by cross-validation on its pages (accum fit). "
                   "Default: when the store has no fit yet or its pages grew by 10 % since the last one.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@store_options
@json_option
@data_errors
def ingest_command(sources, fmt, label, text_field, url_field, max_page_bytes, follow_links, default_label,
                   max_order, checkpoint_seconds, markov_order, gram_bits, memory, batch_pages, dask_address, part_mb,
                   refit, quiet, store, db, as_json):
    """Add the pages of SOURCE... (directories, WARC, JSONL, Parquet, text) to the store.

    Pages already in the store (same text) are counted as duplicates and add nothing,
    so re-running an interrupted ingest resumes it. Unreadable records are skipped and
    counted by reason.
    """
    from accum.settings import Settings

    st = open_store(store, db, create=True)
    settings = st.settings() or Settings(max_order=max_order, markov_order=markov_order, gram_bits=gram_bits)
    ctx = click.get_current_context()
    for option, wanted in (("max_order", max_order), ("markov_order", markov_order), ("gram_bits", gram_bits)):
        explicit = ctx.get_parameter_source(option) != click.core.ParameterSource.DEFAULT
        if explicit and wanted != getattr(settings, option):
            raise click.UsageError(
                f"this store was built with {option.replace('_', '-')} {getattr(settings, option)}; "
                f"--{option.replace('_', '-')} {wanted} needs a new --store"
            )
    command = {"sources": [os.path.abspath(s) for s in sources], "format": fmt, "label": label,
               "default_label": default_label, "text_field": text_field, "url_field": url_field,
               "max_page_bytes": max_page_bytes, "follow_links": follow_links}
    options = {"checkpoint_seconds": checkpoint_seconds, "batch_pages": batch_pages, "default_label": default_label}
    if dask_address is None:
        records = read_sources(sources, fmt, label, text_field, url_field, max_page_bytes, follow_links)
        with progress_bar("ingest", quiet) as bar:
            result = st.ingest(records, command, settings, progress=lambda record: bar.update(1), memory=memory,
                               **options)
    else:
        from accum.distributed import DaskError, connect, n_workers
        from accum.sources.partition import plan_parts

        try:
            with connect(dask_address) as client:
                parts = plan_parts(sources, fmt, label, part_bytes=max(1, int(part_mb * 1e6)),
                                   min_parts=n_workers(client), text_field=text_field, url_field=url_field,
                                   max_page_bytes=max_page_bytes, follow_links=follow_links)
                with progress_bar("ingest", quiet) as bar:
                    bar.unit, bar.total = " files", sum(p.n_inputs for p in parts)
                    result = st.ingest(parts, command, settings, client=client, progress=bar.update, memory=memory,
                                       **options)
        except DaskError as exc:
            raise click.ClickException(f"--dask {dask_address}: {exc}") from exc
        result["dask"] = {"scheduler": dask_address, "parts": len(parts)}
    result["fit"] = None if refit is False else fit_after(st, force=bool(refit), memory=memory)
    if as_json:
        emit_json(result)
        return
    skipped = result["skipped"]
    click.echo(f"ingested into {printable(st.path)} (run {result['run']}): {result['documents']:,} documents in "
               f"{result['categories']} categories")
    click.echo(f"  pages added  {result['pages_added']:>10,}")
    click.echo(f"  duplicates   {result['duplicates']:>10,}")
    click.echo(f"  skipped      {sum(skipped.values()):>10,}"
               + (f"  ({', '.join(f'{k}: {v:,}' for k, v in skipped.items())})" if skipped else ""))
    for reason, example in result["skip_examples"].items():
        hint = f" ({SKIP_HINTS[reason]})" if reason in SKIP_HINTS else ""
        click.echo(f"    e.g. {reason}: {printable(example)}{hint}")
    notes = result.get("notes", {})
    if notes:  # pages kept, but read another way (a deeply nested page's tags stripped)
        click.echo(f"  notes        {sum(notes.values()):>10,}  ({', '.join(f'{k}: {v:,}' for k, v in notes.items())})")
        for how, example in result["note_examples"].items():
            click.echo(f"    e.g. {how}: {printable(example)}")
    click.echo(f"  read {result['bytes_read'] / 1e6:,.1f} MB in {result['seconds']:.1f} s: "
               f"{result['mb_per_s']:.2f} MB/s, {result['tokens_per_s']:,.0f} tokens/s")
    fit = result["fit"]
    if fit is not None and "error" not in fit:
        click.echo(f"  model        {printable(fit['summary'])} (chosen in {fit['seconds']:.1f} s)")


"""``accum compact``: merge the segments of a store's counts into one."""

from __future__ import annotations

import click

from .common import ByteSize, data_errors, emit_json, json_option, open_store, printable, store_options


@click.command("compact")
@click.option("--memory", default="1GiB", show_default=True, type=ByteSize(), metavar="SIZE",
              help="Memory budget of the merge, as for accum ingest --memory.")
@store_options
@json_option
@data_errors
def compact_command(memory, store, db, as_json):
    """Write the store's counts as one segment.

    An ingest with --memory writes at each checkpoint only what changed, as a new segment
    beside the earlier ones, and merges them once they outweigh the first; queries add
    the segments up. Compacting merges them now (for instance after a crawl, before the
    store is served): counts, growth log and documents stay the same.
    """
    st = open_store(store, db)
    result = st.compact(memory)
    if as_json:
        emit_json(result)
    elif result["snapshot"] is None:
        click.echo(f"{printable(st.path)}: counts already in {result['segments']} segment(s); nothing to do")
    else:
        click.echo(f"{printable(st.path)}: {result['segments']} segments merged into one (snapshot "
                   f"{result['snapshot']})")

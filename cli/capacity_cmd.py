"""``accum capacity``: the store's parameters and recall against LLMs."""

from __future__ import annotations

import click

from .common import data_errors, emit_json, figure_name, json_option, open_store, printable, store_options


@click.command("capacity")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False), default=None, callback=figure_name,
              help="Log-log figure (.png or .svg): parameters against pages, with the LLMs.")
@click.option("--report", "report_path", type=click.Path(dir_okay=False), default=None,
              help="Markdown report answering the 400B / 40B question with its numbers.")
@click.option("--llm-table", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Your own LLM table (CSV: model, parameters, active_parameters, training_tokens, source).")
@store_options
@json_option
@data_errors
def capacity_command(plot_path, report_path, llm_table, store, db, as_json):
    """Parameters, bits and pages of the store, extrapolated and set against LLM capacities.

    Re-reads the store's recorded sources to measure the compressed size of its pages.
    """
    from accum import capacity as cap
    from accum.storage.recorded import recorded_pages

    st = open_store(store, db)
    acc = st.load()
    if acc.n_documents == 0:
        raise click.ClickException(f"the store at {store} is empty: run accum ingest first")
    texts, _ = recorded_pages(st)
    result = cap.capacity_result(acc, st.load_markov(), texts, st.growth, cap.load_llm_table(llm_table))
    if plot_path:
        from accum.plots import capacity_figure

        capacity_figure(result["accumulator_growth"], result["extrapolated"], result["llms"], plot_path)
    if report_path:
        with open(report_path, "w", encoding="utf-8") as f:
            f.write(cap.markdown_report(result, store))
    if as_json:
        emit_json(result)
        return
    click.echo(cap.markdown_report(result, printable(store)))

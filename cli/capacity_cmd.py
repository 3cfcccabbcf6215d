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
    from accum import saturation as sat
    from accum.counts import CountsSummary
    from accum.storage.recorded import recorded_pages

    st = open_store(store, db)
    acc = st.load()
    if acc.n_documents == 0:
        raise click.ClickException(f"the store at {store} is empty: run accum ingest first")
    markov = st.load_markov()
    accounting = cap.store_accounting(acc, markov)
    texts, _ = recorded_pages(st)
    pages = cap.page_bits(texts)
    if "generator" in accounting:
        accounting["generator"]["recall"] = cap.recall_bits(markov, texts, pages["compressed_bits_per_page"],
                                                            accounting["generator"]["parameters"])
    per_feature = accounting["classifier"]["parameters"] / accounting["classifier"]["features"]
    summary = CountsSummary.of(acc)
    curves = {k: sat.analyse(summary, st.growth, k, [None])[0][None] for k in range(1, acc.settings.max_order + 1)}
    measured, fits = cap.accumulator_growth(curves, per_feature)
    if any(f is None for f in fits.values()):
        raise click.ClickException("too few growth-log points to fit Heaps' law: ingest more pages")
    tokens_per_page = acc.n_tokens / acc.n_documents
    extrapolated = cap.extrapolate_orders(fits, tokens_per_page, acc.n_documents, per_feature)
    llms = cap.llm_capacity(cap.load_llm_table(llm_table), pages["compressed_bits_per_page"])
    at_40b = extrapolated[-1]
    answer = cap.answer_400b(pages["compressed_bits_per_page"], at_40b)
    result = {"measured": accounting | {"page_bits": pages}, "fitted": {str(k): v for k, v in fits.items()},
              "accumulator_growth": measured, "extrapolated": extrapolated, "llms": llms, "answer": answer,
              "bits_per_parameter": cap.BITS_PER_PARAMETER}
    if plot_path:
        from accum.plots import capacity_figure

        capacity_figure(measured, extrapolated, llms, plot_path)
    if report_path:
        with open(report_path, "w", encoding="utf-8") as f:
            f.write(cap.markdown_report(result, store))
    if as_json:
        emit_json(result)
        return
    click.echo(cap.markdown_report(result, printable(store)))

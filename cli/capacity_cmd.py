"""``accum capacity``: the store's parameters and recall against LLMs."""

from __future__ import annotations

import click

from .common import data_errors, emit_json, figure_name, json_option, open_store, printable, store_options
from .report_cmd import report_name, write_report


@click.command("capacity")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False), default=None, callback=figure_name,
              help="Log-log figure (.png or .svg): parameters against pages, with the LLMs.")
@click.option("--report", "report_path", type=click.Path(dir_okay=False), default=None, callback=report_name,
              help="The answer to the 400B / 40B question with its numbers, as report.md (its figure written "
                   "beside it) or report.html (self-contained); accum report adds the growth curves and forecasts.")
@click.option("--llm-table", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Your own LLM table (CSV: model, parameters, active_parameters, training_tokens, source).")
@click.option("--neural", is_flag=True,
              help="Also train small transformers on the pages and measure their bits per parameter and recall "
                   "(needs accum[neural]); recorded in the store.")
@click.option("--neural-sizes", default="300k,2M,10M", show_default=True,
              help="Model sizes in parameters (300k, 2M, 10000000), or oN for the generator's up to order N.")
@click.option("--neural-tokens", default=200_000, show_default=True, type=click.IntRange(min=1),
              help="Training budget of each model, in tokens.")
@click.option("--neural-protocol", default="document", show_default=True, type=click.Choice(["document", "stream"]),
              help="Recall prompts as accum recall --protocol draws them.")
@click.option("--neural-sample", default=1000, show_default=True, type=click.IntRange(min=1),
              help="Recall prompts (accum recall --sample).")
@click.option("--neural-seed", default=0, show_default=True, type=click.IntRange(min=0),
              help="Seed of the prompts (accum recall --seed), the weights and the data order.")
@store_options
@json_option
@data_errors
def capacity_command(plot_path, report_path, llm_table, neural, neural_sizes, neural_tokens, neural_protocol,
                     neural_sample, neural_seed, store, db, as_json):
    """Parameters, bits and pages of the store, extrapolated and set against LLM capacities.

    Re-reads the store's recorded sources to measure the compressed size of its pages.
    With --neural, also trains a transformer of each size on them (see accum.neural).
    """
    from accum import capacity as cap
    from accum import report
    from accum.storage.neural import read_neural_capacity

    if neural:
        from accum.neural import torch_version

        try:
            torch_version()
        except ImportError as exc:
            raise click.ClickException(str(exc)) from None
    st = open_store(store, db)
    snapshot, summary = st.latest_snapshot(), st.summary()
    if snapshot is None or summary is None or summary.n_documents == 0:
        raise click.ClickException(f"the store at {store} is empty: run accum ingest first")
    markov = st.load_markov()
    sizes = neural_sizes_of(st, markov, neural_sizes) if neural else None  # refused before the long work
    result, texts = store_capacity(st, snapshot, summary, markov, cap.load_llm_table(llm_table))
    if neural:
        result["neural"] = neural_capacity(st, markov, texts, result["measured"], sizes, neural_tokens,
                                           neural_protocol, neural_sample, neural_seed)
    if plot_path:
        from accum.plots import capacity_figure

        capacity_figure(result["accumulator_growth"], result["extrapolated"], result["llms"], plot_path)
    # the transformers of an earlier --neural run, when this one trained none
    trained = result.get("neural") or read_neural_capacity(st.path)
    if report_path:
        write_report(report.capacity_report(printable(store), snapshot["name"], result, trained), report_path)
    if as_json:
        emit_json(result)
        return
    text, _ = report.render_markdown(report.capacity_report(printable(store), snapshot["name"], result, trained,
                                                            figures=False), None)
    click.echo(text)


def store_capacity(st, snapshot: dict, summary, markov, llms: list[dict]) -> tuple[dict, list[str] | None]:
    """:func:`accum.capacity.capacity_result` of the store ``st`` at ``snapshot`` (its
    catalog row; ``summary``: its counts' summary; ``markov``: its generator or None), and
    the pages' texts when the generator's recall needed them (else None).

    The counts are read a hash shard at a time and the pages re-read from their sources
    one at a time, held only for the generator's recall: a large store is measured in
    the memory of one shard.
    """
    from accum import capacity as cap
    from accum.storage.recorded import iter_recorded_pages, recorded_pages

    generator = markov if markov is not None and markov.n_rows else None
    texts = recorded_pages(st)[0] if generator is not None else None
    pages = cap.page_bits(texts if texts is not None else (text for text, _ in iter_recorded_pages(st)))
    classifier = cap.count_accounting(st.count_shards(snapshot["name"])) | {"bytes": int(snapshot["bytes"])}
    return cap.capacity_result(summary, classifier, pages, st.growth, llms, generator, texts), texts


def neural_sizes_of(st, markov, spec: str) -> list[tuple[str, int]]:
    """The model sizes ``--neural-sizes`` names (:func:`accum.neural.parse_sizes`), or a
    usage error; an error when the store keeps no generator to train on."""
    from accum import neural

    if markov is None or not markov.n_rows:
        raise click.ClickException(f"--neural reads the store's generator, and the store at {printable(st.path)} "
                                   "keeps none: ingest with --markov-order 4 (or higher) into a new --store")
    try:
        return neural.parse_sizes(spec, markov)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--neural-sizes") from None


def neural_capacity(st, markov, texts, measured, sizes, tokens, protocol, sample, seed) -> dict:
    """``accum.neural.measure`` of models of ``sizes`` on the store's pages, recorded in the store."""
    from accum import neural
    from accum.storage.neural import write_neural_capacity

    result = neural.measure(markov, texts, measured["generator"]["parameters"], sizes, tokens, protocol=protocol,
                            sample=sample, seed=seed, log=lambda m: click.echo(m, err=True))
    write_neural_capacity(st.path, result)
    return result

"""``accum report``: one document that answers the 400B / 40B question for a store."""

from __future__ import annotations

import json
from pathlib import Path

import click

from .common import data_errors, open_store, printable, store_options
from .forecast_cmd import check_options, kept_forecasts, store_page_features
from .saturation_cmd import store_asymptote

#: The file endings a report may be written to, and the format each one means.
FORMATS = {".html": "html", ".htm": "html", ".md": "markdown"}


def report_name(ctx, param, value):
    """Callback of a report's file option: the ending names the format (checked before any work)."""
    if value is None:
        return None
    if Path(value).suffix.lower() not in FORMATS:
        raise click.BadParameter(f"takes a .html or .md file name, got {Path(value).name!r}")
    return Path(value)


@click.command("report")
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False), callback=report_name,
              help="report.html (self-contained: figures embedded, nothing fetched) or report.md (figures written "
                   "beside it as <name>.<figure>.png).")
@click.option("--forecast", "forecast_path", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Take the forecasts' checks from this 'accum forecast --json' output (made without --category "
                   "on the store as it is now) instead of checking them again, a minute or more on a large store.")
@check_options
@click.option("--llm-table", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Your own LLM table, as for accum capacity (CSV: model, parameters, active_parameters, "
                   "training_tokens, source).")
@store_options
@data_errors
def report_command(out_path, forecast_path, shuffles, seed, min_pages, llm_table, store, db):
    """One document that answers, for this store: would a 400B-parameter model that worked
    like its accumulators recall 40B documents? Growth curves and their validated
    forecasts, where growth levels off, the parameters needed at 10^6 to 4*10^10 pages,
    recall per stored parameter, the LLM table and the answer; every number marked
    measured, fitted, extrapolated or cited.

    Re-reads the store's recorded sources (as accum capacity does) and checks the
    forecasts on its page vectors (as accum forecast does, unless --forecast).
    """
    from accum import report

    inputs = gather(store, db, forecast_path, shuffles, seed, min_pages, llm_table)
    write_report(report.build(inputs), out_path)


def write_report(doc, out_path: Path) -> None:
    """Write the :class:`accum.report.Report` ``doc`` in the format ``out_path``'s ending
    names (see :func:`report_name`), its figures beside a Markdown file."""
    from accum import report

    if FORMATS[out_path.suffix.lower()] == "html":
        files = {out_path: report.render_html(doc).encode("utf-8")}
    else:
        text, figures = report.render_markdown(doc, f"{out_path.stem}.")
        files = {out_path: text.encode("utf-8"), **{out_path.with_name(name): png for name, png in figures.items()}}
    for path, data in files.items():
        path.write_bytes(data)
        click.echo(f"wrote {printable(path)}", err=True)


def gather(store: str, db: str | None, forecast_path: str | None, shuffles: int, seed: int, min_pages: int,
           llm_table: str | None):
    """What :func:`accum.report.build` needs of the store, with progress on stderr.

    The pages' features are read once, for the forecasts' checks and the features per
    page at growing scales; the counts are read a hash shard at a time and the pages
    re-read from their sources one at a time (see
    :func:`~accum.cli.capacity_cmd.store_capacity`). Every part comes from one snapshot:
    snapshots only advance, so when the newest is still the first one read at the end,
    every read in between saw it too.
    """
    from accum import capacity as cap
    from accum import saturation as sat
    from accum.report import Inputs
    from accum.storage.neural import read_neural_capacity

    from .capacity_cmd import store_capacity

    st = open_store(store, db)
    snapshot = st.latest_snapshot()
    summary = st.summary()
    if snapshot is None or summary is None or summary.n_documents == 0:
        raise click.ClickException(f"the store at {store} is empty: run accum ingest first")
    _step("reading the page vectors")
    read, pages = store_page_features(st)
    if read != snapshot["name"]:
        raise _changed()
    if forecast_path:
        checked = _recorded_forecasts(forecast_path, snapshot["name"], summary)
    else:
        checked = _check_forecasts(st, snapshot["name"], pages, shuffles, seed, min_pages)
    record = st.forecast_record()  # the pick accum saturation forecasts by
    saturation = {k: sat.analyse(summary, st.growth, k, [None, *summary.categories], record=record)
                  for k in range(1, summary.settings.max_order + 1)}
    _step("measuring features per page at growing scales")
    scales = store_asymptote(st, summary, 1, pages=pages)
    del pages
    _step("measuring the counts, the pages' bits (re-read from their recorded sources), the fits and the "
          "generator's recall")
    capacity, _ = store_capacity(st, snapshot, summary, st.load_markov(), cap.load_llm_table(llm_table))
    if st.latest_snapshot()["name"] != snapshot["name"]:
        raise _changed()
    return Inputs(printable(store), snapshot["name"], capacity, saturation, checked, scales,
                  read_neural_capacity(st.path))


def _changed() -> click.ClickException:
    return click.ClickException("the store changed while the report was being made: run accum report again")


def _step(message: str) -> None:
    click.echo(f"accum report: {message}", err=True)


def _check_forecasts(st, snapshot: str, pages, shuffles: int, seed: int, min_pages: int) -> dict:
    """``accum forecast``'s checks of the store's forecasts on its ``pages`` (of
    ``snapshot``), with its progress bar; the store keeps the pick, as after accum forecast."""
    with click.progressbar(length=shuffles + 1, label="accum report: checking forecasts",
                           file=click.get_text_stream("stderr")) as bar:
        return kept_forecasts(st, snapshot, pages, shuffles, seed, min_pages,
                              progress=lambda done, total: bar.update(1))


def _recorded_forecasts(path: str, snapshot: str, summary) -> dict:
    """``accum forecast --json`` output, when it describes every category of ``snapshot``
    of this store (its name, and each category's pages, as the store's ``summary`` has them)."""
    try:
        with open(path, encoding="utf-8") as f:
            recorded = json.load(f)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"{path} is not JSON ({exc}): give it 'accum forecast --json' output",
                                 param_hint="--forecast") from None
    if not isinstance(recorded, dict) or not {"snapshot", "checks", "errors", "chosen", "current"} <= set(recorded):
        raise click.BadParameter(f"{path} is not 'accum forecast --json' output", param_hint="--forecast")
    pages = {c["category"]: c["pages"] for c in recorded["current"]}
    if None not in pages:
        raise click.BadParameter(f"{path} was made with --category: the report needs every category",
                                 param_hint="--forecast")
    if recorded["snapshot"] != snapshot or pages != {None: summary.n_documents, **dict(zip(
            summary.categories, summary.doc_counts.tolist()))}:
        raise click.BadParameter(f"{path} was made on another store or snapshot than this store's {snapshot}: run "
                                 "accum forecast --json again (or leave --forecast out)", param_hint="--forecast")
    return recorded

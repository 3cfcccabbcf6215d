"""``accum evaluate``: accuracy of the store's classifier on labelled pages."""

from __future__ import annotations

import click

from .common import model_options, data_errors, emit_json, json_option, load_classifier, read_sources, source_options, store_options


@click.command("evaluate")
@click.argument("sources", nargs=-1, required=True, type=click.Path(exists=True))
@source_options
@model_options
@store_options
@json_option
@data_errors
def evaluate_command(sources, fmt, label, text_field, url_field, max_page_bytes, model, alpha, store, db,
                     as_json):
    """Classify the labelled pages of SOURCE... and report accuracy, macro-F1 and confusion."""
    from accum.evaluate import evaluate

    clf = load_classifier(store, db, model, alpha)
    report = evaluate(read_sources(sources, fmt, label, text_field, url_field, max_page_bytes), clf)
    report = {"model": clf.name, "alpha": clf.alpha} | report
    if as_json:
        emit_json(report)
    else:
        echo_report(report)


def echo_report(report: dict) -> None:
    """Print an evaluation report as a table."""
    click.echo(f"accuracy {report['accuracy']:.4f}   macro-F1 {report['macro_f1']:.4f}   n = {report['n']:,}")
    if report["skipped"]:
        click.echo("skipped: " + ", ".join(f"{k}: {v:,}" for k, v in report["skipped"].items()))
    click.echo(f"\n{'category':<28} {'precision':>9} {'recall':>7} {'f1':>7} {'support':>8}")
    for name, m in report["per_category"].items():
        if m["support"]:
            click.echo(f"{name:<28} {m['precision']:>9.3f} {m['recall']:>7.3f} {m['f1']:>7.3f} {m['support']:>8,}")

"""``accum evaluate``: accuracy of the store's classifier on labelled pages."""

from __future__ import annotations

import click

from .common import (data_errors, emit_json, figure_name, json_option, load_classifier, model_options, open_store,
                     printable, read_sources, source_options, store_options)


@click.command("evaluate")
@click.argument("sources", nargs=-1, required=True, type=click.Path(exists=True))
@source_options
@model_options
@click.option("--min-confidence", default=0.0, show_default=True, type=click.FloatRange(0, 1),
              help="Also report coverage and accuracy when answers below this confidence abstain.")
@click.option("--pairs", default=0, show_default=True, type=click.IntRange(min=0),
              help="Also score multi-label sets on this many two-topic pages: two of the pages, of different "
                   "categories, joined (needs accum calibrate first).")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the two-topic pages.")
@store_options
@json_option
@data_errors
def evaluate_command(sources, fmt, label, text_field, url_field, max_page_bytes, follow_links, model, alpha,
                     min_confidence, pairs, seed, store, db, as_json):
    """Classify the labelled pages of SOURCE... and report accuracy, macro-F1, confusion and calibration;
    after accum calibrate, also multi-label scores of the label sets."""
    from accum.evaluate import evaluate

    clf = load_classifier(store, db, model, alpha)
    if pairs and clf.label_thresholds is None:
        raise click.UsageError(f"--pairs scores multi-label sets, which need thresholds: run accum calibrate "
                               f"for model {clf.name} on held-out pages first")
    records = read_sources(sources, fmt, label, text_field, url_field, max_page_bytes, follow_links)
    report = evaluate(records, clf, min_confidence=min_confidence, pairs=pairs, seed=seed)
    report = {"model": clf.name, "alpha": clf.alpha} | report
    if as_json:
        emit_json(report)
    else:
        echo_report(report)


def echo_report(report: dict) -> None:
    """Print an evaluation report as a table."""
    cal = report["calibration"]
    click.echo(f"accuracy {report['accuracy']:.4f}   macro-F1 {report['macro_f1']:.4f}   n = {report['n']:,}")
    click.echo(f"calibration: ECE of the top probability {cal['ece']:.3f} (temperature {cal['temperature']:.3g}), "
               f"of the confidence {cal['confidence_ece']:.3f}"
               + ("" if cal["calibrated_confidence"] else " (uncalibrated: run accum calibrate on held-out pages)"))
    ab = report["abstention"]
    if ab["min_confidence"] > 0:
        click.echo(f"answering only at confidence >= {ab['min_confidence']}: coverage {ab['coverage']:.3f}, "
                   f"accuracy {ab['accuracy_answered'] or 0:.4f}")
    for name, m in report.get("multi_label", {}).items():
        click.echo(f"multi-label sets, {name.replace('_', '-')} pages ({m['pages']:,}): "
                   f"example F1 {m['example_f1']:.3f} "
                   f"(precision {m['example_precision']:.3f}, recall {m['example_recall']:.3f}), micro-F1 "
                   f"{m['micro_f1']:.3f}, exact sets {m['subset_accuracy']:.3f}, {m['labels_per_page']:.2f} labels "
                   f"per page (true {m['true_labels_per_page']:.2f})")
    if report["skipped"]:
        click.echo("skipped: " + ", ".join(f"{k}: {v:,}" for k, v in report["skipped"].items()))
    click.echo(f"\n{'category':<28} {'precision':>9} {'recall':>7} {'f1':>7} {'support':>8}")
    for name, m in report["per_category"].items():
        if m["support"]:
            click.echo(f"{printable(name):<28} {m['precision']:>9.3f} {m['recall']:>7.3f} {m['f1']:>7.3f} "
                       f"{m['support']:>8,}")


@click.command("calibrate")
@click.argument("sources", nargs=-1, required=True, type=click.Path(exists=True))
@source_options
@model_options
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False), default=None, callback=figure_name,
              help="Write a reliability diagram (.png or .svg), before and after.")
@click.option("--pairs", default=0, show_default=True, type=click.IntRange(min=0),
              help="Fit the multi-label thresholds also on this many two-topic pages (two of the pages, of "
                   "different categories, joined), so that a page gets its second category more often.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the two-topic pages.")
@store_options
@json_option
@data_errors
def calibrate_command(sources, fmt, label, text_field, url_field, max_page_bytes, follow_links, model, alpha,
                      plot_path, pairs, seed, store, db, as_json):
    """Fit the temperature that makes probabilities honest, on held-out labelled pages.

    Pages the store was trained on are left out (counted as in-training). The fitted
    temperature, confidence map and per-category multi-label thresholds are kept in the
    store and used by classify and evaluate for this model and alpha.
    """
    from accum.evaluate import calibrate, score_labelled
    from accum.ingest import content_hash

    st = open_store(store, db)
    clf = load_classifier(store, db, model, alpha)
    trained = set(st.document_labels())
    records = read_sources(sources, fmt, label, text_field, url_field, max_page_bytes, follow_links)
    texts: list[str] = []
    scores, y, skipped = score_labelled(records, clf, exclude=lambda text: content_hash(text) in trained,
                                        keep=texts if pairs else None)
    fitted, before, after = calibrate(clf, scores, y, texts, pairs, seed)
    record = {"alpha": clf.alpha, **fitted, "snapshot": (st.latest_snapshot() or {}).get("name"),
              "skipped": dict(sorted(skipped.items()))}
    st.set_calibration(clf.name, record)
    if plot_path:
        from accum.plots import reliability_figure

        reliability_figure(before, after, f"Reliability of model {clf.name} on {len(y):,} held-out pages", plot_path)
    if as_json:
        emit_json({"model": clf.name} | {k: v for k, v in record.items() if not k.startswith("confidence_")})
        return
    click.echo(f"model {clf.name} (alpha {clf.alpha}): temperature {clf.temperature:.4g} fitted on {len(y):,} pages")
    click.echo(f"  ECE of the top answer {record['ece_before']:.3f} -> {record['ece_after']:.3f} "
               f"(confidence map, in-sample; check it with accum evaluate on other pages)")
    click.echo(f"  NLL {record['nll_before']:.3f} -> {record['nll_after']:.3f} (temperature)")
    click.echo(f"  multi-label thresholds per category: {clf.label_thresholds.min():.3f} to "
               f"{clf.label_thresholds.max():.3f} "
               "(accum classify --multi-label; accum evaluate --pairs N scores them)")
    if skipped:
        click.echo("  skipped: " + ", ".join(f"{k}: {v:,}" for k, v in sorted(skipped.items())))

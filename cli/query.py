"""Commands that read a store: ``classify``, ``categories``, ``info``."""

from __future__ import annotations

import sys

import click

from .common import (data_errors, emit_json, json_option, load_classifier, model_options, open_store, printable,
                     store_options)


@click.command("classify")
@click.argument("text", required=False)
@click.option("--file", "path", type=click.Path(exists=True, dir_okay=False), help="Classify this file's text.")
@click.option("--top", default=3, show_default=True, type=click.IntRange(min=1), help="Categories to show.")
@click.option("--explain", is_flag=True, help="Show the features that decided it, with exact contributions.")
@click.option("--terms", default=10, show_default=True, type=click.IntRange(min=1), help="Features shown by --explain.")
@click.option("--min-confidence", default=0.0, show_default=True, type=click.FloatRange(0, 1),
              help="Abstain (label null) when the top category is less probable than this.")
@click.option("--multi-label", is_flag=True,
              help="Also give the label set: every category at or above its threshold (fitted by accum calibrate).")
@model_options
@store_options
@json_option
@data_errors
def classify_command(text, path, top, explain, terms, min_confidence, multi_label, model, alpha, store, db, as_json):
    """Classify TEXT (or --file PATH, or - for standard input)."""
    if sum(x is not None for x in (text, path)) != 1:
        raise click.UsageError("give exactly one of TEXT, --file PATH or - (standard input)")
    if path is not None:
        with open(path, "rb") as f:
            text = f.read().decode("utf-8", "replace")
    elif text == "-":
        text = sys.stdin.read()
    clf = load_classifier(store, db, model, alpha)
    if multi_label and clf.label_thresholds is None:
        raise click.UsageError(f"--multi-label needs per-category thresholds: run accum calibrate for model "
                               f"{clf.name} on held-out labelled pages first")
    pred = clf.predict_one(text, top=top, explain=explain, n_terms=terms, min_confidence=min_confidence,
                           multi_label=multi_label)
    if as_json:
        emit_json(pred.to_dict() | {"model": clf.name, "alpha": clf.alpha})
        return
    if pred.abstained:
        click.echo(f"no answer: the top category is below --min-confidence {min_confidence}")
    for label, p in zip(pred.labels, pred.probabilities):
        click.echo(f"{p:8.4f}  {printable(label)}")
    if pred.label_set is not None:
        click.echo("labels: " + ", ".join(f"{printable(c)} ({p:.3f}, threshold {t:.3f})" for c, p, t in pred.label_set))
    if pred.explanation is not None:
        echo_explanation(pred.explanation)


def echo_explanation(exp) -> None:
    """Print an explanation: the log-odds of the winner over the runner-up, term by term."""
    click.echo(f"\nwhy {printable(exp.winner)} and not {printable(exp.runner_up)}: log-odds {exp.log_odds:+.3f} = "
               f"prior {exp.prior:+.3f} + {exp.n_features} features")
    for f in exp.features:
        click.echo(f"  {f['contribution']:+8.3f}  {f['feature']!r} x{f['count']}")
    click.echo(f"  {exp.rest:+8.3f}  (all other features)")
    if exp.n_unseen:
        click.echo(f"  ({exp.n_unseen} feature{'s' if exp.n_unseen != 1 else ''} never seen in training: no evidence)")


@click.command("categories")
@store_options
@json_option
@data_errors
def categories_command(store, db, as_json):
    """List the store's categories with documents, tokens and distinct features."""
    rows = open_store(store, db).categories()
    if as_json:
        emit_json(rows)
        return
    click.echo(f"{'category':<32} {'documents':>10} {'tokens':>12} {'features':>12}")
    for r in rows:
        click.echo(f"{printable(r['name']):<32} {r['documents']:>10,} {r['tokens']:>12,} {r['features']:>12,}")


@click.command("info")
@store_options
@json_option
@data_errors
def info_command(store, db, as_json):
    """Documents, tokens, distinct features, parameters and bytes of the store."""
    info = open_store(store, db).info()
    if as_json:
        emit_json(info)
        return
    click.echo(f"store       {printable(info['store'])}")
    click.echo(f"catalog     {printable(info['catalog'])}")
    click.echo(f"documents   {info['documents']:,}")
    click.echo(f"categories  {info['categories']:,}")
    click.echo(f"tokens      {info['tokens']:,}")
    click.echo(f"features    {info['distinct_features']:,} distinct (n-grams up to order "
               f"{(info['settings'] or {}).get('max_order', '-')})")
    click.echo(f"parameters  {info['parameters']:,} non-zero counts")
    click.echo(f"bytes       {info['bytes']:,} on disk (snapshot {info['snapshot']})")
    model = info["model_choice"]
    if model is not None:
        click.echo(f"model       {printable(model['why'] if model['chosen_by'] != 'default' else model['model'])}")
        if model["chosen_by"] == "default":
            click.echo(f"            ({model['why']})")
        elif model["documents_since"]:
            click.echo(f"            ({model['documents_since']:,} pages added since: accum fit chooses again)")
    click.echo(f"runs        {len(info['runs'])}"
               + "".join(f"\n  #{r['id']} {r['status']:<11} {r['started_at']}  "
                         f"{printable(', '.join(r['command']['sources']))}"
                         for r in info["runs"][-5:]))

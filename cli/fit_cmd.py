"""``accum fit``: the store chooses and trains its classifier by cross-validation."""

from __future__ import annotations

import click

from .common import ByteSize, data_errors, emit_json, json_option, open_store, printable, store_options

#: Families the search can try (``--model``, repeatable).
SEARCHED = ("complement", "svm", "nbsvm")


@click.command("fit")
@click.option("--model", "families", multiple=True, type=click.Choice(SEARCHED),
              help="Search only these model families (repeatable; default: all).")
@click.option("--budget", type=click.IntRange(min=1), default=None,
              help="Solver passes over every page the search may spend (default 60); the same budget gives "
                   "the same choice on any machine.")
@click.option("--seed", default=0, show_default=True, help="Seeds the folds and the solver's page order.")
@click.option("--memory", default=None, type=ByteSize(), metavar="SIZE",
              help="Memory budget of the solvers, e.g. 1GiB: the SVM paths run one at a time, each solving "
                   "its classes in groups whose arrays fit in a quarter of SIZE (kept on disk between passes). "
                   "The same choice whatever SIZE; the page vectors are held besides, about 8 bytes per "
                   "distinct feature of each page (default: paths side by side, groups within 2 GiB).")
@store_options
@json_option
@data_errors
def fit_command(families, budget, seed, memory, store, db, as_json):
    """Choose the store's classifier by k-fold cross-validation over its own pages, train
    it on every page and keep it: accum classify, evaluate and serve then use it.

    The search tries complement naive Bayes, a TF-IDF linear SVM and NBSVM with several
    smoothing and regularisation values; accum info shows what it chose and why.
    """
    from accum.storage.fits import fit_store

    record = fit_store(open_store(store, db), seed=seed, budget_passes=budget, families=families or None,
                       memory=memory)
    if as_json:
        emit_json(record)
        return
    echo_fit(record)


def echo_fit(record: dict, top: int = 8) -> None:
    """Print a fit: the choice, then the best candidates with their cross-validated accuracy."""
    click.echo(f"model: {printable(record['summary'])}")
    click.echo(f"  chosen in {record['seconds']:.1f} s ({record['passes']:g} solver passes over the pages); "
               f"{len(record['candidates'])} candidates:")
    for c in record["candidates"][:top]:
        if c["skipped"]:
            continue
        note = f"  dropped after fold {c['dropped_after']}" if c["dropped_after"] else ""
        click.echo(f"    {c['accuracy']:.4f}  [{c['ci95'][0]:.3f}-{c['ci95'][1]:.3f}]  {c['label']}{note}")


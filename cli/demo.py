"""``accum demo``: the main job on a default corpus (20 Newsgroups, bydate split)."""

from __future__ import annotations

from pathlib import Path

import click

from .common import data_errors, fit_after, progress_bar
from .evaluate_cmd import echo_report
from .query import echo_explanation

EXAMPLES = (
    "The goalie made a great save in overtime and the Leafs won the playoff game.",
    "My SCSI controller will not boot after I installed a second IDE hard drive.",
    "Does the shuttle launch schedule depend on the orbit of the space station?",
)


@click.command("demo")
@click.option("--corpus", type=click.Path(file_okay=False), default=None, envvar="ACCUM_CORPORA",
              help="Folder laid out like ../shared/data (env ACCUM_CORPORA); default: ../shared/data "
                   "beside the working directory or beside accum's checkout when it holds 20 Newsgroups, "
                   "else 20 Newsgroups comes from scikit-learn's fetch_20newsgroups.")
@click.option("--store", default="accum-demo-store", show_default=True, type=click.Path(file_okay=False),
              help="Store the demo builds (re-running reuses it: nothing is counted twice).")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@data_errors
def demo_command(corpus, store, quiet):
    """Ingest 20 Newsgroups train, evaluate on test, classify a few texts with explanations."""
    from accum.settings import Settings
    from accum.evaluate import evaluate
    from accum.storage import Store

    train, test, where = _twenty_newsgroups(corpus)
    click.echo(f"20 Newsgroups (bydate split) from {where}")
    st = Store(store, create=True)
    settings = st.settings() or Settings()
    with progress_bar("ingest train", quiet) as bar:
        s = st.ingest(train, {"sources": [where], "demo": True}, settings,
                      progress=lambda record: bar.update(1))
    info = st.info()
    click.echo(f"ingested {s['pages_added']:,} new pages ({s['duplicates']:,} already in {store}), "
               f"{info['documents']:,} documents, {info['distinct_features']:,} distinct unigram+bigram features, "
               f"{s['mb_per_s']:.1f} MB/s")
    fit = fit_after(st, force=False)
    if fit is not None and "error" not in fit:
        click.echo(f"model chosen by cross-validation on the training posts in {fit['seconds']:.1f} s: "
                   f"{fit['summary']}")
    clf = st.classifier()  # the store's choice, kept with the store, so accum classify afterwards is quick
    params = ", ".join(f"{k} {str(v).lower() if isinstance(v, bool) else f'{v:g}'}" for k, v in clf.params().items())
    click.echo(f"\nevaluation on the test split (model {clf.name}, {params}):")
    echo_report(evaluate(test, clf))
    click.echo("\na few classifications:")
    for text in EXAMPLES:
        pred = clf.predict_one(text, top=3, explain=True, n_terms=5)
        click.echo(f"\n> {text}")
        click.echo("  " + "   ".join(f"{lab} {p:.3f}" for lab, p in zip(pred.labels, pred.probabilities)))
        echo_explanation(pred.explanation)
    click.echo(f"\nthe store stays in {store}: try  accum classify --store {store} --explain 'some text'")


def _twenty_newsgroups(corpus):
    """Train and test records, from the corpus folder or scikit-learn's downloader."""
    from accum.sources import open_source

    corpus = corpus or _shared_corpora()
    if corpus:
        root = Path(corpus) / "20news-bydate"
        if not (root / "20news-bydate-train").is_dir():
            raise click.ClickException(
                f"{corpus} has no 20news-bydate/20news-bydate-train folder; pass --corpus pointing "
                "at the shared data folder, or no --corpus to download through scikit-learn"
            )
        return (open_source(root / "20news-bydate-train", "dir", "dir"),
                open_source(root / "20news-bydate-test", "dir", "dir"), str(root))
    return _fetched("train"), _fetched("test"), "scikit-learn fetch_20newsgroups"


def _shared_corpora() -> Path | None:
    """``../shared/data`` beside the working directory, else beside this checkout (an
    editable install), when it holds 20 Newsgroups; None otherwise."""
    checkout = Path(__file__).resolve().parents[1]
    for base in (Path.cwd(), checkout):
        shared = base.parent / "shared" / "data"
        if (shared / "20news-bydate" / "20news-bydate-train").is_dir():
            return shared
    return None


def _fetched(subset):
    from sklearn.datasets import fetch_20newsgroups

    from accum.pages import Page

    try:
        data = fetch_20newsgroups(subset=subset, remove=(), download_if_missing=True)
    except OSError as exc:
        raise click.ClickException(
            f"could not download 20 Newsgroups ({exc}); pass --corpus or set ACCUM_CORPORA"
        ) from exc
    for i, (text, target) in enumerate(zip(data.data, data.target)):
        yield Page(f"sklearn:20newsgroups/{subset}/{i}", data.target_names[target], text, {"bytes": len(text)})

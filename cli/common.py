"""Shared pieces of the commands: store options, JSON output, errors, progress."""

from __future__ import annotations

import functools
import json
import sys

import click

from accum.names import MODEL_NAMES
from accum.pages import CONTROL_CHARACTERS, DEFAULT_MAX_PAGE_BYTES

STORE_HELP = "Store directory (env ACCUM_STORE)."
DB_HELP = "SQLAlchemy URL of the catalog (env ACCUM_DB); default: SQLite inside the store."


def store_options(func):
    """Add ``--store`` and ``--db`` to a command."""
    func = click.option("--db", default=None, envvar="ACCUM_DB", help=DB_HELP)(func)
    func = click.option(
        "--store", default="accum-store", envvar="ACCUM_STORE", show_default=True,
        type=click.Path(file_okay=False), help=STORE_HELP,
    )(func)
    return func


def json_option(func):
    return click.option("--json", "as_json", is_flag=True, help="Write one JSON document to stdout.")(func)


def data_errors(func):
    """Turn the engine's ValueError/TypeError/OSError, and a database error the store did not
    explain, into a clean exit 1 with the message."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except BrokenPipeError:
            raise
        except (ValueError, TypeError, OSError) as exc:
            raise click.ClickException(str(exc)) from exc
        except Exception as exc:
            if not type(exc).__module__.startswith("sqlalchemy."):
                raise
            reason = " ".join(str(getattr(exc, "orig", None) or exc).split())
            raise click.ClickException(f"catalog error: {reason}") from exc

    return wrapper


def printable(value) -> str:
    """``value`` as text that is safe to print for a human: every control character and
    line break (:data:`accum.pages.CONTROL_CHARACTERS`) becomes its Python escape
    (``\\x1b``, ``\\n``, ``\\u2028``).

    Labels, URLs and file names come from crawled data: an ESC in one would let a page
    retitle the terminal or hide lines (``\\x1b]0;...\\x07``, ``\\x1b[2J``), a newline would
    forge rows of a table. Every human-readable printer passes such values through this;
    ``--json`` needs nothing, JSON escapes them already.
    """
    text = str(value)
    if CONTROL_CHARACTERS.search(text) is None:
        return text
    return CONTROL_CHARACTERS.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def unknown_category(category: str, categories) -> click.BadParameter:
    """The usage error of a ``--category`` the store does not have (listing those it has)."""
    return click.BadParameter(f"no category {category!r}; the store has {printable(', '.join(categories))}",
                              param_hint="--category")


def emit_json(obj) -> None:
    """Write ``obj`` as one JSON document to stdout."""
    json.dump(obj, sys.stdout, indent=2, ensure_ascii=False, default=_default)
    sys.stdout.write("\n")


def _default(obj):
    import numpy as np

    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def open_store(store: str, db: str | None, create: bool = False):
    from accum.storage import Store

    return Store(store, db=db, create=create)


def load_classifier(store: str, db: str | None, model: str, alpha: float | None, save: bool = True):
    """The classifier ``model`` over the newest snapshot of a store, calibrated as the
    store keeps it (see :meth:`accum.storage.Store.classifier`, also for ``save``)."""
    from accum.classify import NoGramError

    try:
        clf = open_store(store, db).classifier(model, alpha, save=save)
    except NoGramError as exc:
        raise click.ClickException(
            "the ridge-complement model needs the Gram, which this store does not keep (made with --gram-bits 0 "
            "or before accum kept it): re-ingest into a new --store, or use --model complement") from exc
    if clf is None:
        raise click.ClickException(f"the store at {store} has no categories yet: run accum ingest first")
    return clf


def figure_name(ctx, param, value):
    """Callback of the ``--plot`` options: a figure's file name must end in .png or .svg
    (checked before the command does any work)."""
    from pathlib import Path

    from accum.plots import FIGURE_SUFFIXES

    if value is not None and Path(value).suffix.lower() not in FIGURE_SUFFIXES:
        raise click.BadParameter(f"takes a .png or .svg file name, got {Path(value).name!r}")
    return value


def model_options(func):
    """``--model`` and ``--alpha``."""
    func = click.option(
        "--alpha", type=click.FloatRange(min=0, min_open=True), default=None,
        help="Smoothing per feature (default: the model's, 0.03 complement and ridge-complement, 0.01 dm).",
    )(func)
    return click.option(
        "--model", type=click.Choice(MODEL_NAMES), default=None,
        help="Default: the store's choice (accum fit: by cross-validation on its pages; before any fit "
             "complement, or ridge-complement in a store made with --gram-bits 12). svm: TF-IDF linear SVM; "
             "nbsvm: NBSVM (both trained by accum fit); ridge-complement: ridge regression on hashed unigrams "
             "blended with complement naive Bayes; complement: complement naive Bayes; dm: Dirichlet-multinomial.",
    )(func)


def source_options(func):
    """Options that say how to read sources: format, labels, fields, size cap."""
    opts = [
        click.option("--format", "fmt", default="auto", show_default=True,
                     type=click.Choice(["auto", "dir", "warc", "jsonl", "parquet", "text", "lines"]),
                     help="Input format; auto detects it from the path; lines: one page per line."),
        click.option("--label", "label", default=None,
                     help="Where labels come from: dir (first directory level), dir:N, "
                          "field:NAME (JSONL/Parquet), rules:FILE (URL patterns), none."),
        click.option("--text-field", default="text", show_default=True, help="JSONL/Parquet text field."),
        click.option("--url-field", default="url", show_default=True, help="JSONL/Parquet URL field."),
        click.option("--max-page-bytes", default=DEFAULT_MAX_PAGE_BYTES, show_default=True, type=click.IntRange(min=1),
                     help="Skip pages larger than this (counted as too-large)."),
        click.option("--follow-links", is_flag=True,
                     help="Directories: also read files that symbolic links lead to outside the directory "
                          "given (by default they are skipped as outside-root)."),
    ]
    for opt in reversed(opts):
        func = opt(func)
    return func


def read_sources(sources, fmt, label, text_field, url_field, max_page_bytes, follow_links=False):
    """Records from every source, with the reader options of :func:`source_options`."""
    from accum.sources import iter_sources

    return iter_sources(
        list(sources), fmt=fmt, label=label, text_field=text_field, url_field=url_field,
        max_page_bytes=max_page_bytes, follow_links=follow_links,
    )


def progress_bar(desc: str, quiet: bool):
    """A tqdm bar on stderr counting pages and MB (hidden when quiet or not a terminal)."""
    from tqdm import tqdm

    return tqdm(desc=desc, unit=" pages", file=sys.stderr, disable=True if quiet else None,
                dynamic_ncols=True, mininterval=0.5)


def fit_after(st, force: bool, memory: int | None = None) -> dict | None:
    """Choose the store's model again after its pages changed (ingest, forget) when due
    (see :func:`accum.storage.fits.fit_if_due`), within the command's ``memory`` budget
    (bytes; None: none). The pages are committed whatever happens
    here: a fit that fails (a full disk) is reported, on stderr and as ``{"error": ...}``,
    without failing the command; ``accum fit`` tries again."""
    from accum.selection import StoreTooLarge
    from accum.storage import StoreError
    from accum.storage.fits import fit_if_due

    try:
        fit = fit_if_due(st, force=force, memory=memory)
    except StoreTooLarge as exc:  # not a failure: the count models serve such a store
        click.echo(f"accum: no model fitted: {exc}", err=True)
        return {"error": str(exc)}
    except (StoreError, OSError) as exc:
        click.echo(f"accum: the pages are committed, but choosing the model failed: {exc}; "
                   "run accum fit once the cause is fixed", err=True)
        return {"error": str(exc)}
    return None if fit is None else {k: fit[k] for k in ("model", "params", "accuracy", "ci95", "summary",
                                                         "seconds", "name")}


class ByteSize(click.ParamType):
    """A size in bytes: a number with an optional unit, K/M/G/T (powers of 1000) or
    KiB/MiB/GiB/TiB (powers of 1024), e.g. ``1GiB`` or ``256M``."""

    name = "size"
    _UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9, "gb": 10**9,
              "t": 10**12, "tb": 10**12, "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40}

    def convert(self, value, param, ctx):
        if isinstance(value, int):
            return value
        text = str(value).strip().lower().replace(" ", "")
        number = text.rstrip("kmgtib")
        unit = text[len(number):]
        try:
            size = float(number) * self._UNITS[unit]
        except (ValueError, KeyError):
            self.fail(f"expected a size such as 1GiB, 512MiB or 2G, got {value!r}", param, ctx)
        if size < 1:
            self.fail(f"a size must be positive, got {value!r}", param, ctx)
        return int(size)

"""The store's chosen classifier: chosen on its own pages, kept beside the snapshots.

:func:`fit_store` reads the newest snapshot's counts and every page's vector from the
segments, lets :func:`accum.selection.select_model` choose and train the model, and
keeps the result: a catalog row in ``fits`` (the choice, every candidate's
cross-validated accuracy, the calibration) and, for models trained over the page
vectors, their arrays in ``models/<name>/`` (written atomically; a cache of what the
page vectors determine, like a snapshot's saved classifiers). Count models (complement
naive Bayes) keep only their parameters: they are built from the newest snapshot, so
they follow every later ingest; a trained model answers as trained until the next fit.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import sqlalchemy as sa

from accum.calibration import apply_calibration
from accum.names import COUNT_MODELS

from . import catalog as cat
from .failures import StoreError, os_reason, unwritable_message
from .segments import SEGMENT_DIR, read_matrix, read_page_features, read_vectors
from .snapshots import feature_orders, read_model, read_snapshot, write_model

#: Directory of a store holding fitted models, and how many are kept.
MODEL_DIR, KEEP_FITS = "models", 2


def training_pages(store, form: str = "vectors"):
    """The newest snapshot and every page's vector and URL, consistently (one catalog
    read), as ``(snapshot name, a function that reads its accumulator, pages, urls)`` (the
    accumulator is read only when a count model needs it). The pages come in ``form``:
    "vectors" (:class:`~accum.vectors.PageVectors`), "matrix" (an
    :class:`accum.linear.PageMatrix`, what a fit trains on) or "features" (an
    :class:`accum.profiles.PageFeatures`, what forecasts are checked on); the last two are
    numbered from the mapped segments, never holding the pages' 64-bit feature ids.

    Raises
    ------
    StoreError
        When the store has no pages, or pages ingested before it kept page vectors.
    """
    for _ in range(3):
        with store.engine.connect() as conn:
            snap = conn.execute(sa.select(cat.snapshots).order_by(cat.snapshots.c.id.desc()).limit(1)).mappings().first()
            names = list(conn.execute(sa.select(cat.segments.c.name).where(cat.segments.c.kind == "vectors")
                                      .order_by(cat.segments.c.id)).scalars())
            urls = dict(conn.execute(sa.select(cat.documents.c.content_hash, cat.documents.c.url)).all())
        if snap is None:
            raise StoreError(f"the store at {store.path} has no pages yet: ingest labelled pages first")
        snapshot = store.snapshot_dir(snap["name"])
        if not snapshot.exists():  # pruned by a checkpoint meanwhile: read again
            continue
        paths = [store.path / SEGMENT_DIR / n for n in names]
        if form == "features":
            vectors, hashes = read_page_features(paths, set(urls), *feature_orders(snapshot))
        else:
            vectors, hashes = (read_matrix if form == "matrix" else read_vectors)(paths, keep=set(urls))
        if vectors.n_pages != snap["n_documents"]:
            raise StoreError(
                f"the store at {store.path} has {snap['n_documents']:,} pages but page vectors of "
                f"{vectors.n_pages:,}: pages ingested before accum kept page vectors cannot train or choose a model; "
                "ingest the sources again into a new --store"
            )
        return snap["name"], lambda: read_snapshot(snapshot), vectors, [urls[h] for h in hashes]
    raise StoreError(f"the store at {store.path} changed while its pages were read; run the command again")


def fit_store(store, *, seed: int = 0, budget_passes: int | None = None, families=None,
              memory: int | None = None) -> dict:
    """Choose, train and keep the store's classifier (see the module notes) within a
    ``memory`` budget for its solvers (see :func:`accum.selection.select_model`); returns
    the fit's record (:meth:`accum.selection.Selection.to_dict` plus ``name``,
    ``snapshot`` and ``documents``)."""
    from accum.runs import give_back_memory
    from accum.selection import BUDGET_PASSES, select_model

    if store.read_only:
        raise StoreError(unwritable_message(store.path, store.read_only, "no model can be fitted"))
    give_back_memory()  # the search frees arrays of every size: back to the system, not kept in the heap
    snapshot, _, matrix, urls = training_pages(store, form="matrix")
    def count_model(name: str, alpha: float):  # a shard of the counts at a time, kept for the queries
        return store.snapshot_count_model(snapshot, name, alpha)

    selection = select_model(count_model, matrix, urls, settings=store.settings(), seed=seed,
                             budget_passes=BUDGET_PASSES if budget_passes is None else budget_passes, families=families,
                             memory=memory, scratch=store.path)  # on the store's disk, not in a tmpfs
    record = selection.to_dict()
    name = f"fit-{snapshot}"
    record.update(name=name, snapshot=snapshot, documents=int(matrix.n_pages), seed=seed,
                  families=None if families is None else list(families))
    if record["model"] not in COUNT_MODELS:
        try:
            write_model(selection.model.to_arrays(), store.path / MODEL_DIR / name)
        except OSError as exc:
            raise StoreError(f"cannot keep the fitted model in {store.path / MODEL_DIR}: {os_reason(exc)}") from exc
    with store.engine.begin() as conn:
        conn.execute(sa.delete(cat.fits).where(cat.fits.c.name == name))
        conn.execute(sa.insert(cat.fits).values(name=name, snapshot=snapshot, n_documents=record["documents"],
                                                model=record["model"], record=json.dumps(record)))
        kept = set(conn.execute(sa.select(cat.fits.c.name).order_by(cat.fits.c.id.desc()).limit(KEEP_FITS)).scalars())
    model_dir = store.path / MODEL_DIR
    for entry in model_dir.iterdir() if model_dir.is_dir() else ():
        if entry.name not in kept and not entry.name.endswith(".tmp"):
            shutil.rmtree(entry, ignore_errors=True)
    return record


def latest_fit(store) -> dict | None:
    """The record of the store's newest fit (None before the first)."""
    with store.engine.connect() as conn:
        value = conn.execute(sa.select(cat.fits.c.record).order_by(cat.fits.c.id.desc()).limit(1)).scalar()
    return None if value is None else json.loads(value)


def fitted_classifier(store, record: dict, save: bool = True):
    """The classifier of a fit ``record``, calibrated on its held-out pages: a count model
    built from the newest snapshot with the chosen parameters, or the trained model kept
    in ``models/``."""
    from accum.classify import model_from_arrays

    if record["model"] in COUNT_MODELS:
        clf = store.count_model(record["model"], record["params"].get("alpha"), save=save)
    else:
        clf = model_from_arrays(read_model(Path(store.path) / MODEL_DIR / record["name"]))
    if clf is not None:
        apply_calibration(clf, record["calibration"])
    return clf



#: An ingest chooses the model again once the pages grew by this fraction since the last fit.
REFIT_GROWTH = 0.1


def fit_if_due(store, force: bool = False, **options) -> dict | None:
    """:func:`fit_store` when ``force``, when the store has no fit yet, or when its pages
    grew by :data:`REFIT_GROWTH` or more since the last fit; None otherwise, and None for
    a store with fewer than two categories (nothing to choose between)."""
    fit = latest_fit(store)
    info = store.info()
    if info["categories"] < 2 or info["documents"] == 0:
        return None
    if not force and fit is not None and info["documents"] < fit["documents"] * (1 + REFIT_GROWTH):
        return None
    return fit_store(store, **options)

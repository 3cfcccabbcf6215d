"""A store directory: the SQL catalog plus accumulator snapshots.

``<store>/catalog.sqlite`` (unless ``db`` names another SQLAlchemy URL) lists ingest
runs, categories, documents (URL and content hash) and snapshots;
``<store>/snapshots/<name>/`` holds the arrays (see :mod:`accum.storage.snapshots`).
The newest registered snapshot is the model. A checkpoint writes the snapshot first and
then, in one transaction, registers it with the documents it adds, so what a reader
sees (the newest registered snapshot and the documents) is always consistent.

A catalog belongs to one store directory: the first ingest writes a random id to
``<store>/store-id`` and to the catalog, and a writer refuses a directory and a catalog
whose ids differ (two stores sharing one ``--db`` would otherwise count each other's
pages as duplicates and delete each other's snapshots). One writer at a time: a file lock
in the store directory, plus a session advisory lock on a PostgreSQL catalog (so that
writers on different hosts cannot overlap either).

A write that fails (full disk, read-only directory or database, lost connection) raises
:class:`StoreError` and leaves what the store had committed as it was: the snapshot being
written is removed, the catalog transaction rolls back, and the run is recorded as failed
when the catalog can still be written. A store on a read-only file system opens for
reading (its SQLite catalog read as immutable).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import sqlalchemy as sa

from accum.accumulator import Accumulator
from accum.calibration import apply_calibration
from accum.counts import Counts, CountsSummary
from accum.ingest import IngestSummary
from accum.names import TRAINED_MODELS
from accum.settings import Settings
from accum.vectors import PageVectors

from . import catalog as cat
from .catalog import STORE_ID_FILE, catalog_url
from .failures import StoreError, db_reason, os_reason, other_store_message, unwritable_message, unwritable_reason
from .generators import open_generator
from .runs import count_shards, shard_pairs
from .segments import SEGMENT_DIR, read_vectors
from .snapshots import read_counts, read_markov, read_model, read_snapshot, read_state, segment_names, write_model



#: Share of an ingest's memory budget its counts may take before they are spilled: the
#: rest is the interpreter and libraries, the Gram, page vectors waiting for their
#: segment, and sorting the counts when they are spilled.
SPILL_SHARE = 0.45


class Store:
    """Open (or create) the store at ``path``.

    Parameters
    ----------
    path : path-like
        The store directory.
    db : str, optional
        SQLAlchemy URL of the catalog (default: SQLite inside the store).
    create : bool
        Create the store when it does not exist; otherwise a missing store is an error.
    """

    def __init__(self, path, db: str | None = None, create: bool = False):
        self.path = Path(path)
        #: Where each snapshot's directory is (see :meth:`snapshot_dir`).
        self.snapshots = self.path / "snapshots"
        catalog_file = self.path / "catalog.sqlite"
        if not create and db is None and not catalog_file.exists():
            raise StoreError(
                f"no accum store at {self.path}: ingest pages first (accum ingest SOURCE "
                f"--store {self.path}) or point --store / ACCUM_STORE at an existing store"
            )
        #: Why this store can only be read (None: it can be written).
        self.read_only: str | None = None
        if create:
            _check_new_store_place(self.path)
            try:
                self.snapshots.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"cannot create the store at {self.path}: {os_reason(exc)}") from exc
        self.db_url = db or f"sqlite:///{catalog_file}"
        try:
            self.engine = cat.connect(self.db_url)
        except sa.exc.SQLAlchemyError as exc:
            # SQLite cannot open a WAL catalog on a read-only file system, nor on a full disk
            # (it cannot create or grow the WAL index): such a store is still read
            reason = unwritable_reason(self.path) if db is None and self.path.is_dir() else None
            if reason is not None and create:  # a writing command: say why up front
                raise StoreError(unwritable_message(self.path, reason)) from exc
            if reason is None or not catalog_file.exists():
                raise StoreError(f"cannot open the catalog {self.db_url}: {db_reason(exc)}") from exc
            self.engine = _connect_read_only(catalog_file)
            self.read_only = reason
        if db is not None:
            self._check_store_id()

    def _check_store_id(self) -> None:
        """Refuse a catalog that belongs to another store directory (see the module docstring)."""
        try:
            with self.engine.connect() as conn:
                catalog_id = cat.get_meta(conn, "store_id")
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"cannot read the catalog {self.catalog_name}: {db_reason(exc)}") from exc
        directory_id = self._directory_id()
        if catalog_id is not None and directory_id is not None and catalog_id != directory_id:
            raise StoreError(other_store_message(self.catalog_name, self.path / STORE_ID_FILE))

    @property
    def catalog_name(self) -> str:
        """The catalog URL without its password (``(read-only)`` after it when opened so)."""
        if self.read_only:
            return f"{self.db_url} (read-only)"
        return self.engine.url.render_as_string(hide_password=True)

    def _directory_id(self) -> str | None:
        try:
            return (self.path / STORE_ID_FILE).read_text(encoding="utf-8").strip() or None
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise StoreError(f"cannot read {self.path / STORE_ID_FILE}: {exc}") from exc

    # -- reading ---------------------------------------------------------------------

    def settings(self) -> Settings | None:
        """The feature settings fixed at the store's first ingest (None before it)."""
        with self.engine.connect() as conn:
            value = cat.get_meta(conn, "settings")
        return None if value is None else Settings.from_dict(value)

    def calibration(self, model: str) -> dict | None:
        """The calibration fitted for ``model`` by ``accum calibrate`` (None when none)."""
        with self.engine.connect() as conn:
            return (cat.get_meta(conn, "calibration") or {}).get(model)

    def set_calibration(self, model: str, record: dict) -> None:
        """Keep ``record`` (alpha, temperature, fit statistics) as the calibration of ``model``."""
        if self.read_only:
            raise StoreError(unwritable_message(self.path, self.read_only, "the calibration cannot be kept"))
        try:
            with self.engine.begin() as conn:
                value = cat.get_meta(conn, "calibration") or {}
                value[model] = record
                cat.set_meta(conn, "calibration", value)
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(
                f"cannot keep the calibration in the catalog {self.catalog_name}: {db_reason(exc)}; "
                "the store is unchanged"
            ) from exc

    def calibration_stamp(self) -> str | None:
        """A fingerprint of the calibrations and the newest fit kept (None when none): it
        changes whenever ``accum calibrate`` keeps a calibration or ``accum fit`` (or an
        ingest) chooses a model, so a running service reloads on it."""
        import hashlib

        with self.engine.connect() as conn:
            value = conn.execute(sa.select(cat.meta.c.value).where(cat.meta.c.key == "calibration")).scalar()
            fit = conn.execute(sa.select(cat.fits.c.name, cat.fits.c.created_at)
                               .order_by(cat.fits.c.id.desc()).limit(1)).first()
        if value is None and fit is None:
            return None
        return hashlib.sha256(f"{value}|{fit}".encode()).hexdigest()[:16]

    def latest_snapshot(self) -> dict | None:
        """Catalog row of the newest snapshot, as a dict (None when there is none)."""
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(cat.snapshots).order_by(cat.snapshots.c.id.desc()).limit(1)
            ).mappings().first()
        return None if row is None else dict(row)

    def load(self, settings: Settings | None = None) -> Accumulator:
        """The classifier's accumulator of the newest snapshot (empty, with ``settings``, when none)."""
        acc = self._read_latest(read_snapshot)
        return Accumulator(self.settings() or settings) if acc is None else acc

    def load_counts(self) -> Counts | None:
        """The classifier's counts of the newest snapshot, without the tables, Gram and
        lexicon a whole accumulator builds (see :class:`~accum.counts.Counts`); None
        when there is no snapshot yet."""
        return self._read_latest(read_counts)

    def classifier(self, model: str | None = None, alpha: float | None = None, save: bool = True):
        """The classifier ``model`` with smoothing ``alpha`` (None: the model's default)
        over the newest snapshot, calibrated as the store keeps it; None when the store has
        no categories yet.

        ``model`` None is the store's choice: the model of its newest fit
        (:func:`~accum.storage.fits.fit_store`, calibrated on its held-out pages), or,
        before any fit, the count model its settings allow
        (:func:`accum.classify.default_model`). "svm" and "nbsvm" are trained models: the
        newest fit's when it chose that family. A calibration ``accum calibrate`` kept for
        the model and alpha (:meth:`calibration`) replaces the fit's. ``save``: see
        :meth:`count_model`.
        """
        from .fits import fitted_classifier, latest_fit

        settings = self.settings()
        if settings is None:
            return None
        fit = latest_fit(self) if alpha is None else None
        if fit is not None and model in (None, fit["model"]):
            clf = fitted_classifier(self, fit, save)
        elif model in TRAINED_MODELS:
            raise StoreError(f"model {model!r} is trained over the page vectors: run accum fit --model {model} "
                             f"first (the store's newest fit chose {fit['model'] if fit else 'nothing yet'})")
        else:
            from accum.classify import default_model

            clf = self.count_model(default_model(settings) if model is None else model, alpha, save)
        kept = None if clf is None else self.calibration(clf.name)
        if kept is not None and kept.get("alpha") == getattr(clf, "alpha", None):
            apply_calibration(clf, kept)
        return clf

    def count_model(self, name: str, alpha: float | None = None, save: bool = True):
        """The count model ``name`` (:data:`accum.names.COUNT_MODELS`) with smoothing
        ``alpha`` (None: its default) over the newest snapshot, uncalibrated; None when the
        store has no categories yet.

        The first call for a snapshot and model builds it from the counts and, with
        ``save``, saves it in the snapshot's directory (see
        :func:`~accum.storage.snapshots.write_model`); later calls memory-map the saved
        one. A store that cannot be written (read-only, full) builds the model each time
        instead. ``save=False`` still memory-maps a saved model but never writes one: a
        reader that answers untrusted requests (``accum serve``) must not turn them into
        files, since every set of parameters is another model as large as the counts.
        """
        params, saved = _saved_count_model(name, alpha)
        return self._read_latest(lambda snapshot: _open_count_model(snapshot, saved, name, params, alpha, save))

    def snapshot_count_model(self, snapshot: str, name: str, alpha: float | None = None):
        """:meth:`count_model` of the snapshot named ``snapshot``, built a shard of its
        counts at a time and kept there (unless the store is read-only): a fit that
        chooses a count model builds it so, and the first query then memory-maps it."""
        params, saved = _saved_count_model(name, alpha)
        return _open_count_model(self.snapshot_dir(snapshot), saved, name, params, alpha, not self.read_only)

    def count_shards(self, snapshot: str):
        """The counts of the snapshot named ``snapshot`` a merged hash shard at a time
        (:func:`~accum.storage.runs.count_shards`): what ``accum capacity`` measures, never
        holding the counts whole."""
        path = self.snapshot_dir(snapshot)
        meta = read_state(path, "classifier", ())  # the settings and categories; not the Gram
        return count_shards(path, Settings.from_dict(meta["settings"]), len(meta["categories"]))

    def load_markov(self, settings: Settings | None = None):
        """The generator (:class:`~accum.markov.MarkovAccumulator`) of the newest snapshot;
        a new empty one when there is no snapshot yet; None when the store keeps none."""
        from accum.markov import MarkovAccumulator

        settings = self.settings() or settings or Settings()
        if self.latest_snapshot() is None:
            return MarkovAccumulator(order=settings.markov_order) if settings.markov_order else None
        return self._read_latest(read_markov)

    def generator(self, whole: bool = False, save: bool = True):
        """The text generator of the newest snapshot for a query: with ``whole`` its
        :class:`~accum.markov.MarkovAccumulator` (a query about one category, recall), else
        one that may hold only the chain of all categories (see
        :func:`~accum.storage.generators.open_generator`, also for ``save``). Raises
        :class:`StoreError` when the store keeps no generator."""
        markov = self._read_latest(lambda snapshot: open_generator(snapshot, whole, save))
        if markov is None or markov.n_documents == 0:
            raise StoreError(f"the store at {self.path} keeps no text generator: ingest with --markov-order 4 "
                             "(or higher) into a new --store")
        return markov

    def _read_latest(self, reader):
        """``reader(path)`` of the newest snapshot (None without one), retrying when a
        concurrent checkpoint prunes the snapshot just chosen."""
        for _ in range(3):
            row = self.latest_snapshot()
            if row is None:
                return None
            try:
                return reader(self.snapshot_dir(row["name"]))
            except FileNotFoundError:
                continue
        raise StoreError(f"snapshot {row['name']} is registered but missing from {self.snapshots}")

    def snapshot_dir(self, name: str) -> Path:
        """The directory of the snapshot ``name``."""
        return self.snapshots / name

    def forecast_record(self):
        """What ``accum forecast`` recorded of the newest snapshot (its pick and profiles,
        :class:`~accum.profiles.CheckRecord`), or None: it has not checked the store as
        it is now."""
        from accum.profiles import CheckRecord

        latest = self.latest_snapshot()
        return None if latest is None else CheckRecord.load(self.snapshot_dir(latest["name"]))

    def info(self) -> dict:
        """Documents, tokens, features, parameters, bytes and runs of the store."""
        snap = self.latest_snapshot() or {}
        with self.engine.connect() as conn:
            n_docs = conn.execute(sa.select(sa.func.count()).select_from(cat.documents)).scalar()
            run_rows = conn.execute(sa.select(cat.runs).order_by(cat.runs.c.id)).mappings().all()
        settings = self.settings()
        return {
            "store": str(self.path),
            "catalog": self.catalog_name,
            "settings": None if settings is None else settings.to_dict(),
            "documents": int(n_docs),
            "categories": int(snap.get("n_categories", 0)),
            "tokens": int(snap.get("n_tokens", 0)),
            "distinct_features": int(snap.get("n_features", 0)),
            "parameters": int(snap.get("n_parameters", 0)),
            "bytes": int(snap.get("bytes", 0)),
            "snapshot": snap.get("name"),
            "model_choice": self._model_info(settings, int(n_docs)),
            "runs": [_run_dict(r) for r in run_rows],
        }

    def _model_info(self, settings: Settings | None, n_documents: int) -> dict | None:
        """The model ``classify`` uses by default and why (:meth:`info`'s ``model_choice``)."""
        from accum.classify import default_model

        from .fits import latest_fit

        fit = latest_fit(self)
        if fit is None:
            return None if settings is None else {"model": default_model(settings), "chosen_by": "default",
                                                  "why": "no fit yet: run accum fit (or ingest) to choose by "
                                                         "cross-validation"}
        return {"model": fit["model"], "params": fit["params"], "chosen_by": "cross-validation",
                "expected_accuracy": fit["accuracy"], "ci95": fit["ci95"], "why": fit["summary"],
                "fit": fit["name"], "fitted_documents": fit["documents"],
                "documents_since": n_documents - fit["documents"], "candidates": fit["candidates"]}

    def summary(self) -> CountsSummary | None:
        """What reports need of the newest snapshot's counts (:class:`~accum.counts.CountsSummary`),
        read from the catalog (computed from the counts for snapshots made before the
        catalog kept it); None when there is no snapshot yet."""
        for _ in range(3):
            row = self.latest_snapshot()
            if row is None:
                return None
            with self.engine.connect() as conn:
                value = conn.execute(sa.select(cat.summaries.c.summary)
                                     .where(cat.summaries.c.snapshot == row["name"])).scalar()
            if value is not None:
                return CountsSummary.from_dict(json.loads(value))
            try:
                return CountsSummary.of(read_counts(self.snapshot_dir(row["name"])))
            except FileNotFoundError:
                continue
        raise StoreError(f"snapshot {row['name']} is registered but missing from {self.snapshots}")

    def categories(self) -> list[dict]:
        """Each category with its documents, tokens and distinct features (from the newest
        snapshot's summary: the counts are not read)."""
        summary = self.summary()
        if summary is None:
            return []
        return [
            {"name": name, "documents": int(d), "tokens": int(t), "features": int(f)}
            for name, d, t, f in zip(summary.categories, summary.doc_counts, summary.token_counts, summary.features)
        ]

    def page_vectors(self, hashes: list[str]) -> tuple[PageVectors, list[str]]:
        """The vectors of the pages with these content hashes (those the store holds),
        and their hashes, read from the segments."""
        with self.engine.connect() as conn:
            names = list(conn.execute(sa.select(cat.segments.c.name).where(cat.segments.c.kind == "vectors")
                                      .order_by(cat.segments.c.id)).scalars())
        return read_vectors([self.path / SEGMENT_DIR / n for n in names], keep=set(hashes))

    def forget(self, urls: list[str]) -> dict:
        """Take the pages at ``urls`` out of the store, exactly: every count, weight and
        growth statistic becomes what an ingest without them gives (see
        :meth:`Accumulator.subtract <accum.accumulator.Accumulator.subtract>`); their
        documents go, in one checkpoint. URLs the store does not hold are reported as
        ``unknown``. The text generator, when the store keeps one, keeps their text.

        Returns
        -------
        dict
            ``forgotten`` (pages), ``unknown`` (URLs), ``documents`` left, ``run``.
        """
        wanted = {catalog_url(u): u for u in urls}
        d = cat.documents
        found = []
        with self.engine.connect() as conn:
            chunk = list(wanted)
            for i in range(0, len(chunk), 500):
                found.extend(conn.execute(sa.select(d.c.url, d.c.content_hash)
                                          .where(d.c.url.in_(chunk[i : i + 500]))).all())
        hashes = [h for _, h in found]
        unknown = sorted(set(wanted) - {u for u, _ in found})
        settings = self.settings()
        if not hashes:
            return {"forgotten": 0, "unknown": [wanted[u] for u in unknown], "documents": self.info()["documents"],
                    "run": None}
        with self.writer({"sources": [], "forget": len(hashes)}, settings) as writer:
            vectors, held = self.page_vectors(hashes)
            if len(held) != len(hashes):
                raise StoreError(
                    f"{len(hashes) - len(held)} of the pages to forget have no page vector (ingested before accum kept "
                    "them): they cannot be taken back exactly; ingest the sources again into a new --store")
            writer.acc.subtract(vectors)
            summary = IngestSummary(replaced=len(held))
            writer.checkpoint(writer.acc, [], writer.acc.take_growth(), summary, markov=writer.markov,
                              vectors=PageVectors.empty(), forgotten=held)
        return {"forgotten": len(held), "unknown": [wanted[u] for u in unknown],
                "documents": int(writer.acc.n_documents), "run": writer.run_id}

    def compact(self, memory: int) -> dict:
        """Write the newest snapshot's counts as one segment (a checkpoint of no pages
        that merges its segments, within the memory budget ``memory``); the counts, growth
        log and documents stay what they are. Returns ``segments`` before, ``run`` and
        ``snapshot`` (None and None when there was one segment or no snapshot)."""
        latest = self.latest_snapshot()
        before = segment_names(self.snapshot_dir(latest["name"])) if latest else []
        if len(before) <= 1:
            return {"segments": len(before), "run": None, "snapshot": None}
        with self.writer({"sources": [], "compact": True}, self.settings(), memory) as writer:
            writer.compact = True
            writer.checkpoint(writer.acc, [], writer.acc.take_growth(), IngestSummary(), markov=writer.markov,
                              vectors=PageVectors.empty())
        return {"segments": len(before), "run": writer.run_id, "snapshot": self.latest_snapshot()["name"]}

    def document_labels(self) -> dict[str, str]:
        """Content hash -> category name of every document in the store."""
        d, c = cat.documents, cat.categories
        with self.engine.connect() as conn:
            return dict(conn.execute(
                sa.select(d.c.content_hash, c.c.name).join(c, c.c.id == d.c.category_id)).all())

    def growth(self, category: str | None = None) -> list[dict]:
        """The growth log of one category (None: all pages), by pages then order.

        Each row: ``pages``, ``tokens``, ``order``, ``distinct``, ``singletons``,
        ``doubletons``, ``at_least_k`` (k is the store's ``prune_k`` setting), ``run_id``.
        """
        g, c = cat.growth, cat.categories
        query = sa.select(g.c.run_id, g.c.pages, g.c.tokens, g.c.order, g.c.distinct,
                          g.c.singletons, g.c.doubletons, g.c.at_least_k)
        if category is None:
            query = query.where(g.c.category_id.is_(None))
        else:
            query = query.join(c, c.c.id == g.c.category_id).where(c.c.name == category)
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(g.c.pages, g.c.order)).mappings().all()
        return [dict(r) for r in rows]

    # -- writing ---------------------------------------------------------------------

    def writer(self, command: dict, settings: Settings, memory: int | None = None):
        """A writer for one ingest run (a context manager; see
        :class:`~accum.storage.writer.StoreWriter`)."""
        from .writer import StoreWriter

        return StoreWriter(self, command, settings, memory)

    def ingest(self, records, command: dict, settings: Settings, client=None, memory: int | None = None,
               **options) -> dict:
        """Ingest ``records`` (one run, under the write lock) and return the ``accum ingest
        --json`` summary; ``options`` go to :func:`accum.ingest.ingest`. With a Dask
        ``client``, ``records`` are source parts counted on its cluster
        (:func:`accum.distributed.ingest_parts`, same result). With ``memory`` (bytes),
        the counts are spilled to runs on disk whenever they take a share of it
        (:data:`SPILL_SHARE`) and merged into the snapshot at each checkpoint, so that
        the ingest's memory does not grow with the store; with ``client`` too, each
        worker counts within its share of the budget and writes its runs into the store
        (see :mod:`accum.storage.part_counter`)."""
        from accum.distributed import ingest_parts, n_workers
        from accum.ingest import ingest

        with self.writer(command, settings, memory) as writer:
            if client is None:
                spill = None if memory is None else int(memory * SPILL_SHARE)
                summary = ingest(records, writer.acc, writer, markov=writer.markov, spill_bytes=spill, **options)
            else:
                counter = writer.part_counter(options.get("batch_pages", 500), n_workers(client))
                summary = ingest_parts(client, records, writer.acc, writer, markov=writer.markov, counter=counter,
                                       **options)
        return summary.to_dict() | {"store": str(self.path), "categories": writer.acc.n_categories,
                                    "documents": writer.acc.n_documents, "run": writer.run_id}


def _open_count_model(snapshot: Path, saved: str, name: str, params: dict, alpha: float | None, save: bool):
    """:meth:`Store.count_model` of one snapshot: the model saved there as ``saved`` when
    it has these ``params``, else built from the snapshot's counts (and saved, with ``save``)."""
    from accum.classify import make_model, model_from_arrays

    try:
        state = read_model(snapshot / saved)
        if all(state.get(k) == v for k, v in params.items()):
            return model_from_arrays(state)
    except (FileNotFoundError, ValueError):
        pass
    # built a shard of the counts at a time: the model's memory, not the counts' as well
    meta = Accumulator.without_counts(read_state(snapshot, "classifier", ("gram",)))
    if meta.n_categories == 0:
        return None
    clf = make_model(meta, name, alpha, shard_pairs(snapshot, meta.settings, meta.n_categories))
    if save:
        _save_count_model(clf, snapshot / saved)
    return clf


def _saved_count_model(name: str, alpha: float | None) -> tuple[dict, str]:
    """The parameters of count model ``name`` at ``alpha`` and the directory name its
    saved arrays take in a snapshot (``model-<name>-<parameters digest>``)."""
    from accum.classify import model_parameters

    params = model_parameters(name, alpha)
    return params, f"model-{name}-{hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:12]}"


def _save_count_model(clf, path: Path) -> None:
    try:
        write_model(clf.to_arrays(), path)
    except OSError:  # a read-only or full store: the model is built again next time
        pass


#: What a store directory may hold before its first ingest has committed (an ingest that
#: failed early leaves these behind; anything else means the directory is not ours).
FRESH_STORE_ENTRIES = frozenset({"snapshots", "vectors", "models", ".write-lock", STORE_ID_FILE, "catalog.sqlite",
                                 "catalog.sqlite-wal", "catalog.sqlite-shm", "catalog.sqlite-journal"})


def is_store_dir(path: Path) -> bool:
    """Whether ``path`` is a store directory (it holds a catalog or a store id)."""
    return (path / "catalog.sqlite").is_file() or (path / STORE_ID_FILE).is_file()


def _check_new_store_place(path: Path) -> None:
    """Refuse to make a store inside another store (the outer one prunes its snapshot
    directories and would delete it) or in a directory that holds files of its own (its
    files would be mixed with the store's, and a later clean-up could remove them).

    Raises
    ------
    StoreError
        Naming the enclosing store or the directory's unexpected entries.
    """
    resolved = path.resolve()
    for parent in resolved.parents:
        if is_store_dir(parent):
            raise StoreError(
                f"{path} is inside the accum store at {parent}: a store cannot live inside another "
                "(the outer store manages its own directories and may delete it); choose a --store "
                "outside it"
            )
    if not resolved.is_dir() or is_store_dir(resolved):
        return
    foreign = sorted(e.name for e in resolved.iterdir() if e.name not in FRESH_STORE_ENTRIES)
    if foreign:
        shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        raise StoreError(
            f"{path} is a directory that is not an accum store and is not empty (it holds {shown}); "
            "give --store a new or empty directory"
        )


def _connect_read_only(catalog_file: Path) -> sa.Engine:
    """An engine on the SQLite catalog of a store on a read-only file system.

    SQLite cannot create the WAL index beside a read-only database, so the file is opened
    as immutable; a write-ahead log with unmerged commits (a store made read-only while a
    writer ran) would be ignored that way, so such a catalog is opened read-only through
    its existing index, or refused.
    """
    wal = catalog_file.with_name(catalog_file.name + "-wal")
    has_log = wal.exists() and wal.stat().st_size > 0
    mode = "mode=ro" if has_log else "mode=ro&immutable=1"
    url = f"sqlite:///file:{catalog_file.resolve()}?{mode}&uri=true"
    try:
        return cat.connect(url)
    except sa.exc.SQLAlchemyError as exc:
        raise StoreError(
            f"cannot open the catalog {catalog_file} of a read-only store: {db_reason(exc)}"
            + ("; its write-ahead log needs a writable directory once to be merged" if has_log else "")
        ) from exc


def _run_dict(row) -> dict:
    out = dict(row)
    for key in ("started_at", "finished_at"):
        if out[key] is not None:
            out[key] = out[key].isoformat()
    out["command"] = json.loads(out["command"])
    out["summary"] = json.loads(out["summary"]) if out["summary"] else None
    return out

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

import datetime as dt
import errno
import fcntl
import json
import os
import shutil
import uuid
from pathlib import Path

import sqlalchemy as sa

from accum.accumulator import Accumulator
from accum.counts import GROWTH_FIELDS, Counts, CountsSummary
from accum.ingest import DocumentRow, IngestSummary
from accum.names import TRAINED_MODELS
from accum.settings import Settings
from accum.vectors import PageVectors

from . import catalog as cat
from .segments import SEGMENT_DIR, read_vectors, write_vectors
from .snapshots import read_counts, read_markov, read_model, read_snapshot, snapshot_bytes, write_model, write_snapshot

KEEP_SNAPSHOTS = 2
#: Longest URL the catalog keeps, in UTF-8 bytes (longer ones are cut; see :func:`catalog_url`).
MAX_URL_BYTES = 2000
#: File of a store directory that holds the id its catalog records (see the module docstring).
STORE_ID_FILE = "store-id"
#: First key of the PostgreSQL advisory lock a writer holds (the second: the catalog's schema).
PG_LOCK_CLASS = 0x61636D  # "acm"
PG_LOCK_KEY = "CAST(:cls AS integer), hashtext(coalesce(current_schema(), ''))"


class StoreError(ValueError):
    """A store that cannot be opened or written as asked."""


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
                (self.path / "snapshots").mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"cannot create the store at {self.path}: {os_reason(exc)}") from exc
        self.db_url = db or f"sqlite:///{catalog_file}"
        try:
            self.engine = cat.connect(self.db_url)
        except sa.exc.SQLAlchemyError as exc:
            # SQLite cannot open a WAL catalog on a read-only file system, nor on a full disk
            # (it cannot create or grow the WAL index): such a store is still read
            reason = _unwritable_reason(self.path) if db is None and self.path.is_dir() else None
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
            raise StoreError(other_store_message(self))

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
        over the newest snapshot; None when the store has no categories yet.

        ``model`` None is the store's choice: the model of its newest fit
        (:func:`~accum.storage.fits.fit_store`, calibrated on its held-out pages), or,
        before any fit, the count model its settings allow
        (:func:`accum.classify.default_model`). "svm" and "nbsvm" are trained models: the
        newest fit's when it chose that family.

        The first call for a snapshot and model builds it from the counts and, with
        ``save``, saves it in the snapshot's directory (see
        :func:`~accum.storage.snapshots.write_model`); later calls memory-map the saved
        one. A store that cannot be written (read-only, full) builds the model each time
        instead. ``save=False`` still memory-maps a saved model but never writes one: a
        reader that answers untrusted requests (``accum serve``) must not turn them into
        files, since every set of parameters is another model as large as the counts.
        """
        import hashlib

        from accum.classify import default_model, make_model, model_from_arrays, model_parameters

        from .fits import fitted_classifier, latest_fit

        settings = self.settings()
        if settings is None:
            return None
        fit = latest_fit(self) if alpha is None else None
        if fit is not None and model in (None, fit["model"]):
            return fitted_classifier(self, fit, save)
        if model in TRAINED_MODELS:
            raise StoreError(f"model {model!r} is trained over the page vectors: run accum fit --model {model} "
                             f"first (the store's newest fit chose {fit['model'] if fit else 'nothing yet'})")
        name = default_model(settings) if model is None else model
        params = model_parameters(name, alpha)
        digest = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:12]

        def open_model(snapshot: Path):
            saved = snapshot / f"model-{name}-{digest}"
            try:
                state = read_model(saved)
                if all(state.get(k) == v for k, v in params.items()):
                    return model_from_arrays(state)
            except (FileNotFoundError, ValueError):
                pass
            acc = read_snapshot(snapshot)
            if acc.n_categories == 0:
                return None
            clf = make_model(acc, name, alpha)
            del acc
            if not save:
                return clf
            try:
                write_model(clf.to_arrays(), saved)
            except OSError:  # a read-only or full store: the model is rebuilt next time
                pass
            return clf

        return self._read_latest(open_model)

    def load_markov(self, settings: Settings | None = None):
        """The generator (:class:`~accum.markov.MarkovAccumulator`) of the newest snapshot;
        a new empty one when there is no snapshot yet; None when the store keeps none."""
        from accum.markov import MarkovAccumulator

        settings = self.settings() or settings or Settings()
        if self.latest_snapshot() is None:
            return MarkovAccumulator(order=settings.markov_order) if settings.markov_order else None
        return self._read_latest(read_markov)

    def _read_latest(self, reader):
        """``reader(path)`` of the newest snapshot (None without one), retrying when a
        concurrent checkpoint prunes the snapshot just chosen."""
        for _ in range(3):
            row = self.latest_snapshot()
            if row is None:
                return None
            try:
                return reader(self.path / "snapshots" / row["name"])
            except FileNotFoundError:
                continue
        raise StoreError(f"snapshot {row['name']} is registered but missing from {self.path / 'snapshots'}")

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
        """What reports need of the newest snapshot's counts (:class:`~accum.counts.CountsSummary`), read from the catalog (computed from the counts for snapshots
        made before the catalog kept it); None when there is no snapshot yet."""
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
                return CountsSummary.of(read_counts(self.path / "snapshots" / row["name"]))
            except FileNotFoundError:
                continue
        raise StoreError(f"snapshot {row['name']} is registered but missing from {self.path / 'snapshots'}")

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

    def writer(self, command: dict, settings: Settings) -> "StoreWriter":
        """A writer for one ingest run (a context manager; see :class:`StoreWriter`)."""
        return StoreWriter(self, command, settings)


class StoreWriter:
    """One ingest run against a store: holds the store's write lock, implements
    :class:`accum.ingest.IngestSink`, and records the run's outcome in the catalog.

    On entry, with the lock held, it loads what the store has committed: ``acc`` (the
    classifier's accumulator) and ``markov`` (the generator, or None) are the models the
    ingest must add to, so no commit can slip in between loading and writing.
    """

    def __init__(self, store: Store, command: dict, settings: Settings):
        self.store = store
        self.command = command
        self.settings = settings
        self.run_id: int | None = None
        self.acc: Accumulator | None = None
        self.markov = None
        self._lock_file = None
        self._catalog_lock = None
        self._seq = 0

    def __enter__(self) -> "StoreWriter":
        store = self.store
        if store.read_only:
            raise StoreError(unwritable_message(store.path, store.read_only))
        try:
            self._lock_file = open(store.path / ".write-lock", "w")
        except OSError as exc:
            reason = READ_ONLY if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM) else os_reason(exc)
            raise StoreError(unwritable_message(store.path, reason)) from exc
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_file.close()
            raise StoreError(
                f"another ingest is writing to {store.path}; wait for it to finish"
            ) from None
        try:
            self._lock_catalog()
            with store.engine.begin() as conn:
                self._claim_catalog(conn)
                existing = cat.get_meta(conn, "settings")
                wanted = self.settings.to_dict()
                if existing is None:
                    cat.set_meta(conn, "settings", wanted)
                elif existing != wanted:
                    raise StoreError(
                        f"the store at {store.path} counts features with {existing}, not "
                        f"{wanted}; use a new --store for different settings"
                    )
                # runs left 'running' by a process that died: nobody else holds the lock
                conn.execute(
                    sa.update(cat.runs).where(cat.runs.c.status == "running").values(status="interrupted")
                )
                self.run_id = conn.execute(
                    sa.insert(cat.runs).values(status="running", command=json.dumps(self.command))
                ).inserted_primary_key[0]
            self._remove_unregistered()
            self.acc = store.load(self.settings)
            self.acc.keep_vectors = True  # every page's vector goes to a segment (accum.vectors)
            self.markov = store.load_markov(self.settings)
        except BaseException as exc:
            self.__exit__(type(exc), exc, exc.__traceback__, reraise=False)
            if isinstance(exc, sa.exc.SQLAlchemyError):
                raise StoreError(
                    f"cannot start an ingest in the catalog {store.catalog_name}: {db_reason(exc)}; "
                    "the store is unchanged"
                ) from exc
            if isinstance(exc, OSError):
                raise StoreError(f"cannot start an ingest in the store at {store.path}: {os_reason(exc)}; "
                                 "the store is unchanged") from exc
            raise
        return self

    def __exit__(self, exc_type, exc, tb, reraise: bool = True) -> None:
        """Record the run as finished, failed or interrupted, and release the locks.

        After a failure the record is best effort (a full disk or a lost database may
        refuse it; the next writer then marks the run interrupted) and the original error
        propagates; after success a failed record raises :class:`StoreError`.
        """
        status = "finished" if exc_type is None else ("interrupted" if exc_type is KeyboardInterrupt else "failed")
        try:
            if self.run_id is not None:
                with self.store.engine.begin() as conn:
                    conn.execute(
                        sa.update(cat.runs).where(cat.runs.c.id == self.run_id)
                        .values(status=status, finished_at=dt.datetime.now(dt.timezone.utc))
                    )
        except sa.exc.SQLAlchemyError as record_error:
            if exc_type is None and reraise:
                raise StoreError(
                    f"the ingest committed its pages, but the catalog {self.store.catalog_name} could not "
                    f"record the run as finished: {db_reason(record_error)}"
                ) from record_error
        finally:
            self._unlock_catalog()
            fcntl.flock(self._lock_file, fcntl.LOCK_UN)
            self._lock_file.close()

    def _lock_catalog(self) -> None:
        """Take the catalog's PostgreSQL advisory lock (other SQL catalogs: nothing to do)."""
        engine = self.store.engine
        if engine.dialect.name != "postgresql":
            return
        conn = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            got = conn.execute(
                sa.text(f"SELECT pg_try_advisory_lock({PG_LOCK_KEY})"), {"cls": PG_LOCK_CLASS}
            ).scalar()
        except BaseException:
            conn.close()
            raise
        if not got:
            conn.close()
            raise StoreError(
                f"another ingest is writing to the catalog {self.store.catalog_name}; wait for it to finish"
            )
        self._catalog_lock = conn

    def _unlock_catalog(self) -> None:
        conn, self._catalog_lock = self._catalog_lock, None
        if conn is None:
            return
        try:
            conn.execute(
                sa.text(f"SELECT pg_advisory_unlock({PG_LOCK_KEY})"), {"cls": PG_LOCK_CLASS}
            )
        except sa.exc.SQLAlchemyError:
            pass  # a lost connection released the lock with it
        finally:
            conn.close()

    def _claim_catalog(self, conn: sa.Connection) -> None:
        """Check that the catalog belongs to this store directory; a new catalog becomes
        this directory's (see the module docstring)."""
        store = self.store
        catalog_id = cat.get_meta(conn, "store_id")
        directory_id = store._directory_id()
        if catalog_id is not None:
            if directory_id != catalog_id:
                raise StoreError(other_store_message(store))
            return
        # a catalog without an id: a new one (or one made before store ids); refuse it when
        # the directory holds snapshots it does not know (they belong to another catalog)
        registered = set(conn.execute(sa.select(cat.snapshots.c.name)).scalars())
        run_ids = set(conn.execute(sa.select(cat.runs.c.id)).scalars())
        foreign = [name for name in _snapshot_names(store.path / "snapshots")
                   if name not in registered and _run_of(name) not in run_ids]
        if foreign:
            raise StoreError(
                f"the store at {store.path} holds snapshots ({', '.join(sorted(foreign)[:3])}) that the catalog "
                f"{store.catalog_name} does not know: they belong to another catalog (the store's own "
                "catalog.sqlite, or another --db); use that catalog, or a new --store for this one"
            )
        if directory_id is None:
            directory_id = uuid.uuid4().hex
            _write_small_file(store.path / STORE_ID_FILE, directory_id + "\n")
        try:  # an insert, not set_meta: of two directories claiming one catalog at once, one fails
            conn.execute(sa.insert(cat.meta).values(key="store_id", value=json.dumps(directory_id)))
        except sa.exc.IntegrityError:
            raise StoreError(other_store_message(store)) from None

    def known_hashes(self, hashes: list[str]) -> set[str]:
        if not hashes:
            return set()
        with self.store.engine.connect() as conn:
            found = conn.execute(
                sa.select(cat.documents.c.content_hash).where(cat.documents.c.content_hash.in_(hashes))
            ).scalars()
            return set(found)

    def replaced(self, urls: list[str], hashes: list[str]) -> tuple[PageVectors, list[str]]:
        """The committed pages at ``urls`` (as the catalog keeps URLs) whose content hash
        differs from the new page's there (``hashes``): their vectors and hashes (see
        :class:`accum.ingest.Pending`)."""
        new = {}
        for url, h in zip(urls, hashes):
            new[catalog_url(url)] = h
        d = cat.documents
        old = []
        with self.store.engine.connect() as conn:
            chunk = list(new)
            for i in range(0, len(chunk), 500):
                rows = conn.execute(sa.select(d.c.url, d.c.content_hash).where(d.c.url.in_(chunk[i : i + 500]))).all()
                old.extend(h for url, h in rows if new[url] != h)
        if not old:
            return PageVectors.empty(), []
        return self.store.page_vectors(old)

    def checkpoint(self, acc: Accumulator, documents: list[DocumentRow], growth, summary: IngestSummary,
                   markov=None, vectors: PageVectors | None = None, forgotten: list[str] = ()) -> None:
        """Write a snapshot of ``acc`` (and the generator ``markov``) and a segment of the
        pages' ``vectors`` (those of ``documents``, in order), then register them with
        ``documents`` and the ``growth`` log rows, and remove the ``forgotten`` pages'
        documents, in one transaction."""
        self._seq += 1
        name = f"r{self.run_id:06d}-{self._seq:05d}"
        snap_dir = self.store.path / "snapshots"
        models = {"classifier": acc} | ({"markov": markov} if markov is not None else {})
        kept = ("the store holds exactly what it held before this run" if self._seq == 1
                else "the store holds what this run's previous checkpoint committed")
        segment = None
        try:
            if vectors is not None and vectors.n_pages:
                segment = self.store.path / SEGMENT_DIR / f"v-{name}.arrow"
                segment.parent.mkdir(exist_ok=True)
                segment_bytes = write_vectors(vectors, [d.content_hash for d in documents], segment)
            path = write_snapshot(models, snap_dir, name)
        except OSError as exc:
            if segment is not None:
                segment.unlink(missing_ok=True)
            raise StoreError(
                f"cannot write the snapshot {name} to {snap_dir}: {os_reason(exc)}. Nothing of it was "
                f"committed: {kept}; make room (or make the store writable) and run the same ingest again "
                "to resume"
            ) from exc
        try:
            with self.store.engine.begin() as conn:
                ids = self._category_ids(conn, acc.categories)
                for i in range(0, len(forgotten), 500):
                    conn.execute(sa.delete(cat.documents).where(cat.documents.c.content_hash.in_(
                        list(forgotten[i : i + 500]))))
                if documents:
                    conn.execute(sa.insert(cat.documents), [
                        {
                            "content_hash": d.content_hash, "url": catalog_url(d.url), "category_id": ids[d.label],
                            "run_id": self.run_id, "n_tokens": d.n_tokens, "n_bytes": d.n_bytes,
                        }
                        for d in documents
                    ])
                growth_rows = _growth_rows(growth, acc, ids, self.run_id)
                if growth_rows:
                    conn.execute(sa.insert(cat.growth), growth_rows)
                if segment is not None:
                    conn.execute(sa.insert(cat.segments).values(run_id=self.run_id, name=segment.name, kind="vectors",
                                                                n_pages=vectors.n_pages, bytes=segment_bytes))
                conn.execute(sa.insert(cat.summaries).values(snapshot=name, summary=json.dumps(
                    CountsSummary.of(acc).to_dict())))
                conn.execute(sa.insert(cat.snapshots).values(
                    run_id=self.run_id, name=name, n_documents=acc.n_documents,
                    n_tokens=acc.n_tokens, n_features=acc.n_rows,
                    n_parameters=acc.n_pairs, n_categories=acc.n_categories,
                    bytes=snapshot_bytes(path),
                ))
                conn.execute(
                    sa.update(cat.runs).where(cat.runs.c.id == self.run_id)
                    .values(summary=json.dumps(summary.to_dict()))
                )
        except BaseException as exc:
            shutil.rmtree(path, ignore_errors=True)
            if segment is not None:
                segment.unlink(missing_ok=True)
            if isinstance(exc, sa.exc.SQLAlchemyError):
                raise StoreError(
                    f"cannot register the snapshot {name} in the catalog {self.store.catalog_name}: "
                    f"{db_reason(exc)}. Nothing of it was committed: {kept}; once the cause is fixed (room "
                    "on the disk, a writable catalog, ...), run the same ingest again to resume"
                ) from exc
            raise
        self._prune()

    def _category_ids(self, conn: sa.Connection, names: list[str]) -> dict[str, int]:
        rows = dict(conn.execute(sa.select(cat.categories.c.name, cat.categories.c.id)).all())
        missing = [n for n in names if n not in rows]
        if missing:
            conn.execute(sa.insert(cat.categories), [{"name": n} for n in missing])
            rows = dict(conn.execute(sa.select(cat.categories.c.name, cat.categories.c.id)).all())
        return rows

    def _registered(self) -> list[str]:
        with self.store.engine.connect() as conn:
            return list(conn.execute(
                sa.select(cat.snapshots.c.name).order_by(cat.snapshots.c.id.desc())
            ).scalars())

    def _prune(self) -> None:
        """Delete snapshot files older than the newest KEEP_SNAPSHOTS."""
        for name in self._registered()[KEEP_SNAPSHOTS:]:
            shutil.rmtree(self.store.path / "snapshots" / name, ignore_errors=True)

    def _remove_unregistered(self) -> None:
        """Delete snapshot directories and segments a killed run wrote but never registered."""
        keep = set(self._registered())
        snap_dir = self.store.path / "snapshots"
        for entry in snap_dir.iterdir() if snap_dir.exists() else ():
            if entry.name not in keep:
                shutil.rmtree(entry, ignore_errors=True)
        with self.store.engine.connect() as conn:
            segments = set(conn.execute(sa.select(cat.segments.c.name)).scalars())
        seg_dir = self.store.path / SEGMENT_DIR
        for entry in seg_dir.iterdir() if seg_dir.exists() else ():
            if entry.name not in segments:
                entry.unlink(missing_ok=True)


def catalog_url(url: str) -> str:
    """``url`` as the catalog keeps it: without NUL characters (PostgreSQL text cannot hold
    them) and cut to :data:`MAX_URL_BYTES` UTF-8 bytes (PostgreSQL cannot index longer
    values), with ``…`` marking a cut."""
    url = url.replace("\x00", "")
    data = url.encode("utf-8", "surrogatepass")
    if len(data) <= MAX_URL_BYTES:
        return url
    return data[:MAX_URL_BYTES].decode("utf-8", "ignore") + "…"


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


def _snapshot_names(snap_dir: Path) -> list[str]:
    """Names of the finished snapshot directories in ``snap_dir`` (not ``.tmp`` ones)."""
    if not snap_dir.is_dir():
        return []
    return [e.name for e in snap_dir.iterdir() if e.is_dir() and not e.name.endswith(".tmp")]


def _run_of(name: str) -> int | None:
    """The run id in a snapshot name ``r<run>-<seq>`` (None for other names)."""
    head = name.split("-", 1)[0]
    return int(head[1:]) if head[:1] == "r" and head[1:].isdigit() else None


def _write_small_file(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (temporary file, fsync, rename)."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


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


def os_reason(exc: OSError) -> str:
    """A short reason for an OS error ("No space left on device", ...), with the path."""
    reason = os.strerror(exc.errno) if isinstance(exc.errno, int) and exc.errno > 0 else str(exc)
    filename = getattr(exc, "filename", None)
    return f"{reason} ({filename})" if filename else reason


def db_reason(exc: sa.exc.SQLAlchemyError) -> str:
    """The database's own message of a SQLAlchemy error (without SQLAlchemy's help link)."""
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip()
    return " ".join(text.split()) or type(exc).__name__


READ_ONLY = "it is read-only (a read-only file system, or no write permission)"
DISK_FULL = "its file system is full (no space left on device)"


def _unwritable_reason(path: Path) -> str | None:
    """Why nothing can be written in the directory ``path`` (None when something can)."""
    if not os.access(path, os.W_OK):
        return READ_ONLY
    try:
        if os.statvfs(path).f_bavail == 0:
            return DISK_FULL
    except OSError:
        pass
    return None


def unwritable_message(path: Path, reason: str, consequence: str = "nothing can be added to it") -> str:
    fix = "make room on it" if reason == DISK_FULL else "make it writable (or copy it to a writable place)"
    return f"cannot write to the store at {path}: {reason}; {consequence}, and the store is unchanged. " \
           f"To add to it, {fix} and run the command again"


def other_store_message(store: Store) -> str:
    return (
        f"the catalog {store.catalog_name} belongs to another store directory, not to {store.path} "
        f"(the ids in the catalog and in {store.path / STORE_ID_FILE} differ or one is missing); "
        "give each store its own catalog (another database, or another PostgreSQL schema with "
        "?options=-csearch_path%3DNAME), or use the --store it was made with"
    )


def _growth_rows(growth, acc: Accumulator, category_ids: dict[str, int], run_id: int) -> list[dict]:
    """Catalog rows (one per checkpoint and order) of :meth:`Accumulator.take_growth` output."""
    rows = []
    for event in growth.tolist():
        cat_index, pages, tokens = event[:3]
        category = None if cat_index < 0 else category_ids[acc.categories[cat_index]]
        for k in range(acc.settings.max_order):
            values = event[3 + 4 * k : 7 + 4 * k]
            rows.append({"run_id": run_id, "category_id": category, "pages": pages, "tokens": tokens,
                         "order": k + 1, **dict(zip(GROWTH_FIELDS, values))})
    return rows


def _run_dict(row) -> dict:
    out = dict(row)
    for key in ("started_at", "finished_at"):
        if out[key] is not None:
            out[key] = out[key].isoformat()
    out["command"] = json.loads(out["command"])
    out["summary"] = json.loads(out["summary"]) if out["summary"] else None
    return out

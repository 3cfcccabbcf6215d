"""A store directory: the SQL catalog plus accumulator snapshots.

``<store>/catalog.sqlite`` (unless ``db`` names another SQLAlchemy URL) lists ingest
runs, categories, documents (URL and content hash) and snapshots;
``<store>/snapshots/<name>/`` holds the arrays (see :mod:`accum.storage.snapshots`).
The newest registered snapshot is the model. A checkpoint writes the snapshot first and
then, in one transaction, registers it with the documents it adds, so what a reader
sees (the newest registered snapshot and the documents) is always consistent.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import shutil
from pathlib import Path

import sqlalchemy as sa

from accum.accumulator import Accumulator, Settings
from accum.ingest import DocumentRow, IngestSummary

from . import catalog as cat
from .snapshots import read_markov, read_snapshot, snapshot_bytes, write_snapshot

KEEP_SNAPSHOTS = 2


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
        if create:
            (self.path / "snapshots").mkdir(parents=True, exist_ok=True)
        self.db_url = db or f"sqlite:///{catalog_file}"
        try:
            self.engine = cat.connect(self.db_url)
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"cannot open the catalog {self.db_url}: {exc}") from exc

    # -- reading ---------------------------------------------------------------------

    def settings(self) -> Settings | None:
        """The feature settings fixed at the store's first ingest (None before it)."""
        with self.engine.connect() as conn:
            value = cat.get_meta(conn, "settings")
        return None if value is None else Settings(**value)

    def calibration(self, model: str) -> dict | None:
        """The calibration fitted for ``model`` by ``accum calibrate`` (None when none)."""
        with self.engine.connect() as conn:
            return (cat.get_meta(conn, "calibration") or {}).get(model)

    def set_calibration(self, model: str, record: dict) -> None:
        """Keep ``record`` (alpha, temperature, fit statistics) as the calibration of ``model``."""
        with self.engine.begin() as conn:
            value = cat.get_meta(conn, "calibration") or {}
            value[model] = record
            cat.set_meta(conn, "calibration", value)

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
            "catalog": self.engine.url.render_as_string(hide_password=True),
            "settings": None if settings is None else settings.to_dict(),
            "documents": int(n_docs),
            "categories": int(snap.get("n_categories", 0)),
            "tokens": int(snap.get("n_tokens", 0)),
            "distinct_features": int(snap.get("n_features", 0)),
            "parameters": int(snap.get("n_parameters", 0)),
            "bytes": int(snap.get("bytes", 0)),
            "snapshot": snap.get("name"),
            "runs": [_run_dict(r) for r in run_rows],
        }

    def categories(self) -> list[dict]:
        """Each category with its documents and tokens (from the newest snapshot)."""
        acc = self.load()
        return [
            {"name": name, "documents": int(d), "tokens": int(t), "features": int(f)}
            for name, d, t, f in zip(
                acc.categories, acc.doc_counts, acc.token_counts, (acc.counts > 0).sum(axis=0)
            )
        ]

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
        self._seq = 0

    def __enter__(self) -> "StoreWriter":
        self._lock_file = open(self.store.path / ".write-lock", "w")
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_file.close()
            raise StoreError(
                f"another ingest is writing to {self.store.path}; wait for it to finish"
            ) from None
        with self.store.engine.begin() as conn:
            existing = cat.get_meta(conn, "settings")
            wanted = self.settings.to_dict()
            if existing is None:
                cat.set_meta(conn, "settings", wanted)
            elif existing != wanted:
                raise StoreError(
                    f"the store at {self.store.path} counts features with {existing}, not "
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
        self.acc = self.store.load(self.settings)
        self.markov = self.store.load_markov(self.settings)
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        status = "finished" if exc_type is None else ("interrupted" if exc_type is KeyboardInterrupt else "failed")
        try:
            with self.store.engine.begin() as conn:
                conn.execute(
                    sa.update(cat.runs).where(cat.runs.c.id == self.run_id)
                    .values(status=status, finished_at=dt.datetime.now(dt.timezone.utc))
                )
        finally:
            fcntl.flock(self._lock_file, fcntl.LOCK_UN)
            self._lock_file.close()

    def known_hashes(self, hashes: list[str]) -> set[str]:
        if not hashes:
            return set()
        with self.store.engine.connect() as conn:
            found = conn.execute(
                sa.select(cat.documents.c.content_hash).where(cat.documents.c.content_hash.in_(hashes))
            ).scalars()
            return set(found)

    def checkpoint(self, acc: Accumulator, documents: list[DocumentRow], growth, summary: IngestSummary,
                   markov=None) -> None:
        """Write a snapshot of ``acc`` (and the generator ``markov``), then register it
        with ``documents`` and the ``growth`` log rows in one transaction."""
        self._seq += 1
        name = f"r{self.run_id:06d}-{self._seq:05d}"
        snap_dir = self.store.path / "snapshots"
        models = {"classifier": acc} | ({"markov": markov} if markov is not None else {})
        path = write_snapshot(models, snap_dir, name)
        try:
            with self.store.engine.begin() as conn:
                ids = self._category_ids(conn, acc.categories)
                if documents:
                    conn.execute(sa.insert(cat.documents), [
                        {
                            "content_hash": d.content_hash, "url": d.url, "category_id": ids[d.label],
                            "run_id": self.run_id, "n_tokens": d.n_tokens, "n_bytes": d.n_bytes,
                        }
                        for d in documents
                    ])
                growth_rows = _growth_rows(growth, acc, ids, self.run_id)
                if growth_rows:
                    conn.execute(sa.insert(cat.growth), growth_rows)
                conn.execute(sa.insert(cat.snapshots).values(
                    run_id=self.run_id, name=name, n_documents=acc.n_documents,
                    n_tokens=acc.n_tokens, n_features=acc.n_rows,
                    n_parameters=int((acc.counts != 0).sum()), n_categories=acc.n_categories,
                    bytes=snapshot_bytes(path),
                ))
                conn.execute(
                    sa.update(cat.runs).where(cat.runs.c.id == self.run_id)
                    .values(summary=json.dumps(summary.to_dict()))
                )
        except BaseException:
            shutil.rmtree(path, ignore_errors=True)
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
        """Delete snapshot directories a killed run wrote but never registered."""
        keep = set(self._registered())
        snap_dir = self.store.path / "snapshots"
        for entry in snap_dir.iterdir() if snap_dir.exists() else ():
            if entry.name not in keep:
                shutil.rmtree(entry, ignore_errors=True)


def _growth_rows(growth, acc: Accumulator, category_ids: dict[str, int], run_id: int) -> list[dict]:
    """Catalog rows (one per checkpoint and order) of :meth:`Accumulator.take_growth` output."""
    fields = ("distinct", "singletons", "doubletons", "at_least_k")
    rows = []
    for event in growth.tolist():
        cat_index, pages, tokens = event[:3]
        category = None if cat_index < 0 else category_ids[acc.categories[cat_index]]
        for k in range(acc.settings.max_order):
            values = event[3 + 4 * k : 7 + 4 * k]
            rows.append({"run_id": run_id, "category_id": category, "pages": pages, "tokens": tokens,
                         "order": k + 1, **dict(zip(fields, values))})
    return rows


def _run_dict(row) -> dict:
    out = dict(row)
    for key in ("started_at", "finished_at"):
        if out[key] is not None:
            out[key] = out[key].isoformat()
    out["command"] = json.loads(out["command"])
    out["summary"] = json.loads(out["summary"]) if out["summary"] else None
    return out

"""Writing a store: one ingest run under the store's lock (:class:`StoreWriter`).

A checkpoint writes the snapshot (and the pages' vector segment) first and then, in one
transaction, registers it with the documents it adds, so what a reader sees is always
consistent; a write that fails leaves what the store had committed (see
:mod:`accum.storage.store` and :mod:`accum.storage.failures`).
"""

from __future__ import annotations

import datetime as dt
import errno
import fcntl
import json
import shutil
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import sqlalchemy as sa

from accum.accumulator import Accumulator, page_terms
from accum.counts import GROWTH_FIELDS, CountsSummary
from accum.ingest import DocumentRow, IngestSummary
from accum.runs import CountRun, give_back_memory
from accum.settings import Settings
from accum.vectors import PageVectors

from . import catalog as cat
from .catalog import STORE_ID_FILE, catalog_url
from .failures import READ_ONLY, StoreError, db_reason, os_reason, other_store_message, unwritable_message
from .runs import RUN_DIR, orders_of, write_merged_snapshot, write_run
from .segments import SEGMENT_DIR, read_vectors, write_vectors
from .snapshots import read_state, snapshot_bytes, write_small_file, write_snapshot

if TYPE_CHECKING:  # a store opens its writer (Store.writer)
    from .store import Store

KEEP_SNAPSHOTS = 2
#: First key of the PostgreSQL advisory lock a writer holds (the second: the catalog's schema).
PG_LOCK_CLASS = 0x61636D  # "acm"
PG_LOCK_KEY = "CAST(:cls AS integer), hashtext(coalesce(current_schema(), ''))"


class StoreWriter:
    """One ingest run against a store: holds the store's write lock, implements
    :class:`accum.ingest.IngestSink`, and records the run's outcome in the catalog.

    On entry, with the lock held, it loads what the store has committed: ``acc`` (the
    classifier's accumulator) and ``markov`` (the generator, or None) are the models the
    ingest must add to, so no commit can slip in between loading and writing.
    """

    def __init__(self, store: Store, command: dict, settings: Settings, memory: int | None = None):
        self.store = store
        self.command = command
        self.settings = settings
        #: With a budget, ``acc`` holds only the counts since the last spill or checkpoint
        #: (see :meth:`spill_counts`); without one, every count of the store.
        self.memory = memory
        #: With a budget, the next checkpoint writes the store's counts as one segment
        #: (see :func:`~accum.storage.runs.write_merged_snapshot`).
        self.compact = False
        self.run_id: int | None = None
        self.acc: Accumulator | None = None
        self.markov = None
        self._lock_file = None
        self._catalog_lock = None
        self._seq = 0
        self._spilled: list = []  # (path, pages, bytes) of segments spilled since the last checkpoint
        # counts spilled since the last checkpoint: (run directory, or a run of pages taken
        # out kept in memory; the growth rows its pages logged, None for none)
        self._runs: list = []

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
            if self.memory is None:
                self.acc = store.load(self.settings)
                self.acc.keep_vectors = True  # every page's vector goes to a segment (accum.vectors)
            else:
                give_back_memory()  # from here on, large arrays go back to the system when freed
                self.acc = self._counting_accumulator()
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
                raise StoreError(other_store_message(store.catalog_name, store.path / STORE_ID_FILE))
            return
        # a catalog without an id: a new one (or one made before store ids); refuse it when
        # the directory holds snapshots it does not know (they belong to another catalog)
        registered = set(conn.execute(sa.select(cat.snapshots.c.name)).scalars())
        run_ids = set(conn.execute(sa.select(cat.runs.c.id)).scalars())
        foreign = [name for name in _snapshot_names(store.snapshots)
                   if name not in registered and _run_of(name) not in run_ids]
        if foreign:
            raise StoreError(
                f"the store at {store.path} holds snapshots ({', '.join(sorted(foreign)[:3])}) that the catalog "
                f"{store.catalog_name} does not know: they belong to another catalog (the store's own "
                "catalog.sqlite, or another --db); use that catalog, or a new --store for this one"
            )
        if directory_id is None:
            directory_id = uuid.uuid4().hex
            write_small_file(store.path / STORE_ID_FILE, directory_id + "\n")
        try:  # an insert, not set_meta: of two directories claiming one catalog at once, one fails
            conn.execute(sa.insert(cat.meta).values(key="store_id", value=json.dumps(directory_id)))
        except sa.exc.IntegrityError:
            raise StoreError(other_store_message(store.catalog_name, store.path / STORE_ID_FILE)) from None

    def _counting_accumulator(self) -> Accumulator:
        """The store's categories, pages, tokens and Gram, without its counts: what an
        ingest with a memory budget counts on, spilling runs (:mod:`accum.runs`)."""
        newest = self._newest_snapshot()
        if newest is not None:
            state = read_state(newest, "classifier", ("gram",))
        else:
            state = {"settings": (self.store.settings() or self.settings).to_dict(), "categories": [],
                     "doc_counts": [], "token_counts": []}
        return Accumulator.without_counts(state, log_crossings=True, keep_vectors=True)

    def spill_counts(self, acc: Accumulator) -> None:
        """Write the counts ``acc`` holds since the last spill to a run (merged into the
        store's snapshot by the next checkpoint) and let go of them."""
        if not acc.n_pairs:
            return
        events = acc.take_growth()
        run = acc.take_counts()
        path = self.store.path / RUN_DIR / f"r{self.run_id:06d}-{self._seq + 1:05d}-{len(self._runs):04d}"
        try:
            path.parent.mkdir(exist_ok=True)
            write_run(run, path)
        except OSError as exc:
            raise StoreError(f"cannot write counts to {path.parent}: {os_reason(exc)}. Nothing of this run since "
                             "its last checkpoint was committed; make room and run the same ingest again to "
                             "resume") from exc
        self._runs.append((path, events))
        del run
        give_back_memory()

    def adopt(self, runs: list, segments: list) -> None:
        """Runs and vector segments a :class:`~accum.storage.part_counter.PartCounter` wrote
        (see :meth:`accum.ingest.IngestSink.adopt`): merged and registered at the next
        checkpoint, as this writer's own spills are."""
        self._runs += [(Path(run), events) for run, events in runs]
        self._spilled += [(Path(path), n_pages, n_bytes) for path, n_pages, n_bytes in segments]

    def part_counter(self, batch_pages: int, workers: int):
        """What counts a Dask part on one of ``workers`` workers within this writer's budget
        (the ingest's: each worker counts in its share), writing its runs and segments into
        the store (:class:`~accum.storage.part_counter.PartCounter`); None without a budget."""
        from .part_counter import PartCounter
        from .store import SPILL_SHARE

        if self.memory is None:
            return None
        markov = None if self.markov is None else self.markov.settings()
        return PartCounter(str(self.store.path), self.run_id, int(self.memory * SPILL_SHARE / workers), batch_pages,
                           markov)

    def take_out(self, acc: Accumulator, vectors: PageVectors) -> None:
        """Take counted pages back out (see :class:`accum.ingest.Pending`). With a memory
        budget their counts may be in the snapshot, a run or ``acc``: the counts in
        ``acc`` are spilled first, and the pages' counts and weights are taken out by a
        run of their own, merged in order at the checkpoint."""
        if self.memory is None:
            acc.subtract(vectors)
            return
        if not vectors.n_pages:
            return
        self.spill_counts(acc)
        codes = np.array([acc.category_index(c) for c in vectors.categories], np.int64)
        cats = codes[vectors.labels]
        unigram = np.zeros(vectors.nnz, bool)
        if acc.settings.gram_bits:
            newest = self._newest_snapshot()
            base = [] if newest is None else [newest]
            unigram = orders_of(base + [run for run, _ in self._runs], vectors.fids) == 1
        weights, gram = page_terms(vectors, unigram, acc.settings)
        run = CountRun.taken_out(vectors.fids, np.repeat(cats, np.diff(vectors.bounds)), vectors.tfs, weights)
        self._runs.append((run, None))
        acc.take_out_totals(cats, vectors.n_tokens, gram)

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

    def spill(self, vectors: PageVectors, hashes: list[str]) -> None:
        """Write pending pages' vectors to a segment now (registered by the next
        checkpoint; a run that stops before it leaves a file the next writer removes)."""
        name = f"v-r{self.run_id:06d}-{self._seq + 1:05d}-{len(self._spilled):04d}.arrow"
        path = self.store.path / SEGMENT_DIR / name
        path.parent.mkdir(exist_ok=True)
        try:
            self._spilled.append((path, vectors.n_pages, write_vectors(vectors, hashes, path)))
        except OSError as exc:
            path.unlink(missing_ok=True)
            raise StoreError(f"cannot write page vectors to {path.parent}: {os_reason(exc)}. Nothing of this run "
                             "since its last checkpoint was committed; make room and run the same ingest again "
                             "to resume") from exc

    def replaced_pending(self, hashes: list[str]) -> PageVectors:
        """Vectors of spilled pages of this run, not committed yet."""
        return read_vectors([path for path, _, _ in self._spilled], keep=set(hashes))[0]

    def checkpoint(self, acc: Accumulator, documents: list[DocumentRow], growth, summary: IngestSummary,
                   markov=None, vectors: PageVectors | None = None, forgotten: list[str] = ()) -> None:
        """Write a snapshot of ``acc`` (and the generator ``markov``) and a segment of the
        pages' ``vectors`` (those of the last ``documents``: the earlier ones' were
        spilled), then register them and the spilled segments with ``documents`` and the
        ``growth`` log rows, and remove the ``forgotten`` pages' documents, in one
        transaction."""
        self._seq += 1
        name = f"r{self.run_id:06d}-{self._seq:05d}"
        snap_dir = self.store.snapshots
        kept = ("the store holds exactly what it held before this run" if self._seq == 1
                else "the store holds what this run's previous checkpoint committed")
        segments, self._spilled = list(self._spilled), []
        try:
            if vectors is not None and vectors.n_pages:
                segment = self.store.path / SEGMENT_DIR / f"v-{name}.arrow"
                segment.parent.mkdir(exist_ok=True)
                tail = [d.content_hash for d in documents[len(documents) - vectors.n_pages :]]
                segments.append((segment, vectors.n_pages, write_vectors(vectors, tail, segment)))
            path, growth, counts, n_rows, n_pairs = self._write_snapshot(acc, markov, growth, snap_dir, name)
        except OSError as exc:
            for segment, _, _ in segments:
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
                for segment, n_pages, n_bytes in segments:
                    conn.execute(sa.insert(cat.segments).values(run_id=self.run_id, name=segment.name, kind="vectors",
                                                                n_pages=n_pages, bytes=n_bytes))
                conn.execute(sa.insert(cat.summaries).values(snapshot=name, summary=json.dumps(counts.to_dict())))
                conn.execute(sa.insert(cat.snapshots).values(
                    run_id=self.run_id, name=name, n_documents=acc.n_documents,
                    n_tokens=acc.n_tokens, n_features=n_rows,
                    n_parameters=n_pairs, n_categories=acc.n_categories,
                    bytes=snapshot_bytes(path),
                ))
                conn.execute(
                    sa.update(cat.runs).where(cat.runs.c.id == self.run_id)
                    .values(summary=json.dumps(summary.to_dict()))
                )
        except BaseException as exc:
            shutil.rmtree(path, ignore_errors=True)
            for segment, _, _ in segments:
                segment.unlink(missing_ok=True)
            if isinstance(exc, sa.exc.SQLAlchemyError):
                raise StoreError(
                    f"cannot register the snapshot {name} in the catalog {self.store.catalog_name}: "
                    f"{db_reason(exc)}. Nothing of it was committed: {kept}; once the cause is fixed (room "
                    "on the disk, a writable catalog, ...), run the same ingest again to resume"
                ) from exc
            raise
        for run, _ in self._runs:
            if isinstance(run, Path):
                shutil.rmtree(run, ignore_errors=True)
        self._runs = []
        self._prune()
        if self.memory is not None:
            give_back_memory()

    def _write_snapshot(self, acc: Accumulator, markov, growth, snap_dir: Path, name: str):
        """Write the snapshot ``name``; returns its path, the growth-log rows of the pages
        since the last checkpoint, the counts' summary, and the features and non-zero
        counts it holds. With a memory budget, the store's newest snapshot, the runs
        spilled since and the counts in ``acc`` are merged shard by shard
        (:func:`~accum.storage.runs.write_merged_snapshot`), which replays the growth."""
        if self.memory is None:
            models = {"classifier": acc} | ({"markov": markov} if markov is not None else {})
            path = write_snapshot(models, snap_dir, name)
            return path, growth, CountsSummary.of(acc), acc.n_rows, acc.n_pairs
        runs = [run for run, _ in self._runs] + [acc.take_counts()]
        path, merged, info = write_merged_snapshot(snap_dir, name, acc, self._newest_snapshot(), runs, markov,
                                                   compact=self.compact)
        events = [None] + [rows for _, rows in self._runs] + [growth]
        cat_stats, all_stats = merged.stats()
        counts = CountsSummary(acc.settings, list(acc.categories), acc.doc_counts.copy(), acc.token_counts.copy(),
                               cat_stats, all_stats, info["occurrences"])
        return path, merged.log_rows(events), counts, info["rows"], info["pairs"]

    def _category_ids(self, conn: sa.Connection, names: list[str]) -> dict[str, int]:
        rows = dict(conn.execute(sa.select(cat.categories.c.name, cat.categories.c.id)).all())
        missing = [n for n in names if n not in rows]
        if missing:
            conn.execute(sa.insert(cat.categories), [{"name": n} for n in missing])
            rows = dict(conn.execute(sa.select(cat.categories.c.name, cat.categories.c.id)).all())
        return rows

    def _newest_snapshot(self) -> Path | None:
        """The directory of the newest snapshot registered (None before the first)."""
        newest = self._registered()[:1]
        return self.store.snapshot_dir(newest[0]) if newest else None

    def _registered(self) -> list[str]:
        with self.store.engine.connect() as conn:
            return list(conn.execute(
                sa.select(cat.snapshots.c.name).order_by(cat.snapshots.c.id.desc())
            ).scalars())

    def _prune(self) -> None:
        """Delete snapshot files older than the newest KEEP_SNAPSHOTS."""
        for name in self._registered()[KEEP_SNAPSHOTS:]:
            shutil.rmtree(self.store.snapshot_dir(name), ignore_errors=True)

    def _remove_unregistered(self) -> None:
        """Delete snapshot directories and segments a killed run wrote but never registered."""
        keep = set(self._registered())
        snap_dir = self.store.snapshots
        for entry in snap_dir.iterdir() if snap_dir.exists() else ():
            if entry.name not in keep:
                shutil.rmtree(entry, ignore_errors=True)
        with self.store.engine.connect() as conn:
            segments = set(conn.execute(sa.select(cat.segments.c.name)).scalars())
        seg_dir = self.store.path / SEGMENT_DIR
        for entry in seg_dir.iterdir() if seg_dir.exists() else ():
            if entry.name not in segments:
                entry.unlink(missing_ok=True)
        shutil.rmtree(self.store.path / RUN_DIR, ignore_errors=True)  # runs are never committed as such


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


def _snapshot_names(snap_dir: Path) -> list[str]:
    """Names of the finished snapshot directories in ``snap_dir`` (not ``.tmp`` ones)."""
    if not snap_dir.is_dir():
        return []
    return [e.name for e in snap_dir.iterdir() if e.is_dir() and not e.name.endswith(".tmp")]


def _run_of(name: str) -> int | None:
    """The run id in a snapshot name ``r<run>-<seq>`` (None for other names)."""
    head = name.split("-", 1)[0]
    return int(head[1:]) if head[:1] == "r" and head[1:].isdigit() else None

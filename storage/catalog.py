"""The SQL catalog of a store: runs, categories, documents, snapshots, page-vector
segments and fitted models (SQLAlchemy Core).

SQLite (WAL journal) is the default; any SQLAlchemy URL works, e.g.
``postgresql+psycopg://user@host/db``. Every statement uses bound parameters.
"""

from __future__ import annotations

import json
import time

import sqlalchemy as sa

metadata = sa.MetaData()

#: Longest URL the catalog keeps, in UTF-8 bytes (longer ones are cut; see :func:`catalog_url`).
MAX_URL_BYTES = 2000
#: File of a store directory that holds the id its catalog records (a catalog belongs to
#: one store directory, see :mod:`accum.storage.store`).
STORE_ID_FILE = "store-id"


def catalog_url(url: str) -> str:
    """``url`` as the catalog keeps it: without NUL characters (PostgreSQL text cannot hold
    them) and cut to :data:`MAX_URL_BYTES` UTF-8 bytes (PostgreSQL cannot index longer
    values), with ``…`` marking a cut."""
    url = url.replace("\x00", "")
    data = url.encode("utf-8", "surrogatepass")
    if len(data) <= MAX_URL_BYTES:
        return url
    return data[:MAX_URL_BYTES].decode("utf-8", "ignore") + "…"


meta = sa.Table(
    "accum_meta", metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

runs = sa.Table(
    "runs", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("finished_at", sa.DateTime(timezone=True)),
    sa.Column("status", sa.String(16), nullable=False),  # running, finished, failed, interrupted
    sa.Column("command", sa.Text, nullable=False),  # JSON: sources and options
    sa.Column("summary", sa.Text),  # JSON: IngestSummary.to_dict()
)

categories = sa.Table(
    "categories", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.Text, nullable=False, unique=True),
)

documents = sa.Table(
    "documents", metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("content_hash", sa.String(32), nullable=False, unique=True),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("category_id", sa.Integer, sa.ForeignKey("categories.id"), nullable=False),
    sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id"), nullable=False),
    sa.Column("n_tokens", sa.BigInteger, nullable=False),
    sa.Column("n_bytes", sa.BigInteger, nullable=False),
)
sa.Index("documents_url", documents.c.url)

snapshots = sa.Table(
    "snapshots", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id"), nullable=False),
    sa.Column("name", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("n_documents", sa.BigInteger, nullable=False),
    sa.Column("n_tokens", sa.BigInteger, nullable=False),
    sa.Column("n_features", sa.BigInteger, nullable=False),
    sa.Column("n_parameters", sa.BigInteger, nullable=False),
    sa.Column("n_categories", sa.Integer, nullable=False),
    sa.Column("bytes", sa.BigInteger, nullable=False),
)

segments = sa.Table(
    "segments", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id"), nullable=False),
    sa.Column("name", sa.String(64), nullable=False, unique=True),
    sa.Column("kind", sa.String(16), nullable=False),  # vectors
    sa.Column("n_pages", sa.BigInteger, nullable=False),
    sa.Column("bytes", sa.BigInteger, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
)

summaries = sa.Table(
    "summaries", metadata,  # what reports need of a snapshot's counts (accum.counts.CountsSummary)
    sa.Column("snapshot", sa.String(64), primary_key=True),
    sa.Column("summary", sa.Text, nullable=False),  # JSON
)

fits = sa.Table(
    "fits", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(64), nullable=False, unique=True),
    sa.Column("snapshot", sa.String(64), nullable=False),  # the snapshot whose pages it was chosen on
    sa.Column("n_documents", sa.BigInteger, nullable=False),
    sa.Column("model", sa.String(32), nullable=False),
    sa.Column("record", sa.Text, nullable=False),  # JSON: accum.selection.Selection.to_dict()
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
)


growth = sa.Table(
    "growth", metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id"), nullable=False),
    sa.Column("category_id", sa.Integer, sa.ForeignKey("categories.id")),  # NULL: all pages
    sa.Column("pages", sa.BigInteger, nullable=False),
    sa.Column("tokens", sa.BigInteger, nullable=False),
    sa.Column("order", sa.Integer, nullable=False),
    sa.Column("distinct", sa.BigInteger, nullable=False),
    sa.Column("singletons", sa.BigInteger, nullable=False),
    sa.Column("doubletons", sa.BigInteger, nullable=False),
    sa.Column("at_least_k", sa.BigInteger, nullable=False),
)
sa.Index("growth_category_pages", growth.c.category_id, growth.c.pages)


def connect(url: str) -> sa.Engine:
    """An engine for ``url`` with the tables created; SQLite gets WAL and foreign keys."""
    engine = sa.create_engine(url, future=True)
    if engine.dialect.name == "sqlite":

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

    _create_tables(engine)
    return engine


#: First key of the PostgreSQL advisory lock that serialises creating the tables.
DDL_LOCK_CLASS = 0x616364  # "acd"


def _create_tables(engine: sa.Engine) -> None:
    """Create the missing tables, also when several processes open a new catalog at once.

    Each checks which tables exist, then creates the others: on PostgreSQL two processes
    would both create them (one fails), so the check and the creation run under a
    transaction-scoped advisory lock per schema; elsewhere a creation that lost the race
    is retried (and then finds the tables).
    """
    for attempt in range(3):
        try:
            with engine.begin() as conn:
                if engine.dialect.name == "postgresql":
                    conn.execute(sa.text("SELECT pg_advisory_xact_lock(CAST(:cls AS integer), "
                                         "hashtext(coalesce(current_schema(), '')))"), {"cls": DDL_LOCK_CLASS})
                metadata.create_all(conn)
            return
        except (sa.exc.OperationalError, sa.exc.ProgrammingError, sa.exc.IntegrityError) as exc:
            if attempt == 2 or "already exists" not in str(exc.orig):
                raise
            time.sleep(0.1 * (attempt + 1))


def get_meta(conn: sa.Connection, key: str):
    """The JSON value stored under ``key`` in the meta table, or None."""
    value = conn.execute(sa.select(meta.c.value).where(meta.c.key == key)).scalar()
    return None if value is None else json.loads(value)


def set_meta(conn: sa.Connection, key: str, value) -> None:
    """Store ``value`` (JSON-serialisable) under ``key``."""
    conn.execute(sa.delete(meta).where(meta.c.key == key))
    conn.execute(sa.insert(meta).values(key=key, value=json.dumps(value)))

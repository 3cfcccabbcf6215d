"""Shared fixtures: small samples of the real corpora."""

import os
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest

from corpora import corpus_path


@pytest.fixture(scope="session")
def newsgroups_sample():
    """300 real 20 Newsgroups training posts (15 from each group), as (texts, labels)."""
    root = corpus_path("20news-bydate/20news-bydate-train")
    texts, labels = [], []
    for group in sorted(p for p in root.iterdir() if p.is_dir()):
        for f in sorted(group.iterdir())[:15]:
            texts.append(f.read_bytes().decode("latin-1"))
            labels.append(group.name)
    return texts, labels


@pytest.fixture(scope="session")
def small_store(tmp_path_factory, newsgroups_sample):
    """A store of 90 real posts from 3 groups, ingested from files through the CLI, with
    the texts and labels in the order of ingest (only read by the tests that use it)."""
    from test_cli import accum

    texts, labels = newsgroups_sample
    root = tmp_path_factory.mktemp("small")
    corpus = root / "corpus"
    picked = [(t, c) for t, c in zip(texts, labels) if c in ("sci.space", "rec.autos", "talk.politics.guns")]
    for i, (text, label) in enumerate(picked):
        (corpus / label).mkdir(parents=True, exist_ok=True)
        (corpus / label / f"{i:04d}").write_text(text, encoding="latin-1")
    store = root / "store"
    accum("ingest", corpus, "--label", "dir", "--store", store)
    # the directory reader walks groups in name order, files by name
    ordered = sorted(picked, key=lambda p: (p[1], f"{picked.index(p):04d}"))
    return store, [t for t, _ in ordered], [c for _, c in ordered]


PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@contextmanager
def new_pg_schema():
    """The URL of a new, empty PostgreSQL schema, dropped on exit; fails under CI and
    skips elsewhere without the server."""
    import sqlalchemy as sa

    engine = sa.create_engine(PG_URL)
    schema = f"accum_test_{uuid.uuid4().hex[:12]}"
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    except sa.exc.OperationalError as exc:
        message = f"PostgreSQL on 127.0.0.1:5432 is not reachable: {exc}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    try:
        yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """A fresh catalog URL: SQLite inside the store (None) or a new PostgreSQL schema."""
    if request.param == "sqlite":
        yield None
        return
    with new_pg_schema() as url:
        yield url


@pytest.fixture
def pg_schema_url():
    """The URL of a new, empty PostgreSQL schema (dropped afterwards), for tests that need
    PostgreSQL whatever ``db_url`` runs."""
    with new_pg_schema() as url:
        yield url


#: The browser the page tests drive (Debian's package; .ci/run installs it).
CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture
def chromium_page():
    """A page (1280 × 900) of headless Chromium, closed after the test. Without Chromium
    the test fails under CI and is skipped elsewhere (the tests install nothing)."""
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing: apt-get install -y chromium (the test installs nothing itself)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (no browser download)")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"])
        try:
            yield browser.new_page(viewport={"width": 1280, "height": 900})
        finally:
            browser.close()

"""Ingests at the same time against one catalog: real ``accum ingest`` processes.

What a user can do: start several ingests into the same store (same ``--store`` and
``--db``), or point several stores at one catalog (one ``ACCUM_DB`` for all of them). The
first are serialised (one writer at a time: the others exit 1 and say so, and are simply
run again); for the second, a catalog belongs to the first store that ingests into it and
the others are refused. Either way the catalog stays consistent: each page once, the
snapshot's counts equal to its documents, each run recorded with what it added.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa

from accum.accumulator import Settings
from accum.storage import Store, StoreError
from accum.storage import catalog as cat

from corpora import corpus_path

GROUPS = ["alt.atheism", "comp.graphics", "misc.forsale", "rec.autos", "sci.space", "talk.politics.misc"]
PER_GROUP = 60
#: The sources of the concurrent ingests: overlapping sets of groups (pages in two sets are
#: duplicates for whichever run comes second).
SUBSETS = [GROUPS[:4], GROUPS[2:], GROUPS[::2] + GROUPS[1:2]]
BUSY = ("another ingest is writing",)
OTHER_STORE = ("belongs to another store directory",)


@pytest.fixture(scope="module")
def corpora(tmp_path_factory):
    """Per subset, a directory of real 20 Newsgroups posts (symlinks), PER_GROUP per group."""
    root = corpus_path("20news-bydate/20news-bydate-train")
    out = tmp_path_factory.mktemp("concurrent")
    dirs = []
    for i, groups in enumerate(SUBSETS):
        for group in groups:
            (out / f"s{i}" / group).mkdir(parents=True)
            for f in sorted((root / group).iterdir())[:PER_GROUP]:
                (out / f"s{i}" / group / f.name).symlink_to(f)
        dirs.append(out / f"s{i}")
    return dirs


@pytest.fixture(params=["postgresql", "sqlite-file"])
def shared_db(request, tmp_path):
    """One catalog for several processes: a PostgreSQL schema, or a SQLite file given as --db."""
    if request.param == "sqlite-file":
        return f"sqlite:///{tmp_path / 'shared-catalog.sqlite'}"
    return request.getfixturevalue("pg_schema_url")


def start_ingest(corpus, store, db) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "accum.cli", "ingest", str(corpus), "--label", "dir", "--follow-links",
         "--store", str(store),
         "--db", db, "--batch-pages", "20", "--checkpoint-seconds", "0", "--quiet", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def run_all(procs) -> list[tuple[int, str, str]]:
    return [(p.wait(timeout=600), p.stdout.read(), p.stderr.read()) for p in procs]


def check_outcome(rc, out, err, refusals) -> dict | None:
    """The --json summary of a run that succeeded; None for one refused with a message."""
    assert "Traceback" not in err, err
    if rc == 0:
        return json.loads(out)
    assert rc == 1 and err.startswith("Error: ") and any(r in err for r in refusals), (rc, err)
    return None


def check_catalog(store: Path, db: str) -> dict:
    """Assert the catalog and the store's snapshot agree; return documents per category."""
    st = Store(store, db=db)
    d, c, r, s = cat.documents, cat.categories, cat.runs, cat.snapshots
    with st.engine.connect() as conn:
        names = dict(conn.execute(sa.select(c.c.id, c.c.name)).all())
        docs = conn.execute(sa.select(d.c.content_hash, d.c.category_id, d.c.run_id, d.c.n_tokens)).all()
        runs = conn.execute(sa.select(r).order_by(r.c.id)).mappings().all()
        snaps = conn.execute(sa.select(s).order_by(s.c.id)).mappings().all()
    st.engine.dispose()
    hashes = [h for h, *_ in docs]
    assert len(hashes) == len(set(hashes)), "a page is in the catalog twice"
    # each run recorded, finished, with exactly the documents it added, one at a time
    assert [run["status"] for run in runs] == ["finished"] * len(runs)
    added = Counter(run_id for _, _, run_id, _ in docs)
    for run in runs:
        summary = json.loads(run["summary"] or "{}")  # none: a writer that committed nothing
        assert summary.get("pages_added", 0) == added.get(run["id"], 0), f"run {run['id']}"
    for earlier, later in zip(runs, runs[1:]):
        assert earlier["finished_at"] <= later["started_at"] or st.engine.dialect.name == "sqlite", \
            "two ingests wrote at the same time"
    # the newest snapshot holds exactly the documents
    latest = snaps[-1]
    assert latest["n_documents"] == len(docs)
    assert latest["n_tokens"] == sum(n for *_, n in docs)
    acc = st.load()
    per_category = Counter(names[cat_id] for _, cat_id, _, _ in docs)
    tokens = Counter()
    for _, cat_id, _, n in docs:
        tokens[names[cat_id]] += n
    assert dict(zip(acc.categories, acc.doc_counts.tolist())) == dict(per_category)
    assert dict(zip(acc.categories, acc.token_counts.tolist())) == dict(tokens)
    on_disk = {p.name for p in (store / "snapshots").iterdir()}
    assert latest["name"] in on_disk and on_disk <= {snap["name"] for snap in snaps}, on_disk
    return dict(per_category)


def union_counts(subsets) -> dict:
    return {g: PER_GROUP for g in sorted({g for groups in subsets for g in groups})}


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_concurrent_ingests_into_one_store(corpora, tmp_path, db_url):
    """Three ingests started at once into one store and one PostgreSQL catalog; the
    refused ones are run again, as a user would."""
    store = tmp_path / "store"
    outcomes = run_all([start_ingest(corpus, store, db_url) for corpus in corpora])
    summaries = [check_outcome(*o, BUSY) for o in outcomes]
    assert any(summaries)
    done = {i for i, summary in enumerate(summaries) if summary}
    counts = check_catalog(store, db_url)
    assert counts == union_counts([SUBSETS[i] for i in done])
    for i in sorted(set(range(len(corpora))) - done):
        rc, out, err = run_all([start_ingest(corpora[i], store, db_url)])[0]
        assert check_outcome(rc, out, err, ()) is not None
        check_catalog(store, db_url)
    assert check_catalog(store, db_url) == union_counts(SUBSETS)
    print(f"\nconcurrent ingests into one store: {len(done)} of {len(corpora)} ran, "
          f"{len(corpora) - len(done)} refused and re-run")


def test_concurrent_stores_sharing_one_catalog(corpora, tmp_path, shared_db):
    """Three stores started at once on one catalog: exactly one gets it; the others are
    refused, before and after it finished, and their directories stay empty."""
    stores = [tmp_path / f"store{i}" for i in range(len(corpora))]
    outcomes = run_all([start_ingest(corpus, store, shared_db) for corpus, store in zip(corpora, stores)])
    summaries = [check_outcome(*o, BUSY + OTHER_STORE) for o in outcomes]
    winners = [i for i, summary in enumerate(summaries) if summary]
    assert len(winners) == 1, outcomes
    (winner,) = winners
    assert check_catalog(stores[winner], shared_db) == union_counts([SUBSETS[winner]])
    for i, store in enumerate(stores):
        if i != winner:
            assert list((store / "snapshots").iterdir()) == []
            rc, out, err = run_all([start_ingest(corpora[i], store, shared_db)])[0]
            check_outcome(rc, out, err, OTHER_STORE)
    assert check_catalog(stores[winner], shared_db) == union_counts([SUBSETS[winner]])


def test_a_store_pointed_at_a_new_catalog_is_refused(corpora, tmp_path, pg_schema_url):
    """A SQLite store ingested again with ``--db`` naming a new catalog: refused, because the
    new catalog does not know its snapshots (before, the ingest deleted them)."""
    store = tmp_path / "store"
    assert run_all([start_ingest(corpora[0], store, f"sqlite:///{store / 'catalog.sqlite'}")])[0][0] == 0
    snapshots = sorted(p.name for p in (store / "snapshots").iterdir())
    rc, out, err = run_all([start_ingest(corpora[1], store, pg_schema_url)])[0]
    assert rc == 1 and "does not know" in err and "Traceback" not in err, err
    assert sorted(p.name for p in (store / "snapshots").iterdir()) == snapshots
    assert check_catalog(store, f"sqlite:///{store / 'catalog.sqlite'}") == union_counts([SUBSETS[0]])


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_writer_locks_are_held_against_real_processes(corpora, tmp_path, db_url):
    """While a writer is open: an ingest into the same store is refused by the store's file
    lock; one into a copy of the store directory (another host's view of it: the file lock
    does not reach it) by the catalog's advisory lock."""
    store = tmp_path / "store"
    assert run_all([start_ingest(corpora[0], store, db_url)])[0][0] == 0
    copy = tmp_path / "copy"
    shutil.copytree(store, copy)
    before = check_catalog(store, db_url)
    with Store(store, db=db_url).writer({"sources": []}, Settings()):
        for target in (store, copy):
            rc, out, err = run_all([start_ingest(corpora[1], target, db_url)])[0]
            check_outcome(rc, out, err, BUSY)
        with pytest.raises(StoreError, match="another ingest is writing to the catalog"):
            with Store(copy, db=db_url).writer({"sources": []}, Settings()):
                pass
    assert check_catalog(store, db_url) == before
    assert run_all([start_ingest(corpora[1], store, db_url)])[0][0] == 0
    assert check_catalog(store, db_url) == union_counts(SUBSETS[:2])
    assert os.path.exists(store / "store-id")

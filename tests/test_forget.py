"""Forgetting pages and re-crawling changed ones: the store equals a clean ingest of the
pages that remain, through the CLI, in one process and on a Dask cluster."""

import json
import shutil
import subprocess
import sys

import pytest
import sqlalchemy as sa

from accum.storage import Store
from accum.storage import catalog as cat
from corpora import corpus_path
from test_vectors import keyed

GROUPS = ("sci.space", "rec.autos", "talk.politics.guns")


def accum(*args, check=True):
    done = subprocess.run([sys.executable, "-m", "accum.cli", *map(str, args), "--json"], capture_output=True,
                          text=True, timeout=600)
    if check:
        assert done.returncode == 0, done.stderr
    return json.loads(done.stdout) if done.returncode == 0 else done


@pytest.fixture
def corpus(tmp_path):
    """40 real posts from each of three groups, as files of a directory corpus."""
    root = corpus_path("20news-bydate/20news-bydate-train")
    out = tmp_path / "corpus"
    for group in GROUPS:
        (out / group).mkdir(parents=True)
        for f in sorted((root / group).iterdir())[:40]:
            shutil.copy(f, out / group / f.name)
    return out


def documents(store) -> set:
    with Store(store).engine.connect() as conn:
        return set(conn.execute(sa.select(cat.documents.c.content_hash, cat.categories.c.name).join(cat.categories)))


def url_of(path) -> str:
    return path.resolve().as_uri()


#: How the ingests count: in one process, on Dask, and in one process with a memory budget
#: so small that the counts are spilled to runs every 10 pages (the re-crawl takes pages
#: out of counts that are in the snapshot, in a run and in memory).
HOW = {"process": [], "dask": ["--dask", "local:2", "--part-mb", "0.05"],
       "memory": ["--memory", "100kB", "--batch-pages", "10", "--gram-bits", "6"]}


@pytest.mark.parametrize("how", HOW)
def test_forget_and_recrawl_equal_a_clean_ingest(corpus, tmp_path, how):
    store = tmp_path / "store"
    budget = HOW[how] if how == "memory" else []
    ingest = ["ingest", corpus, "--label", "dir", "--store", store, "--quiet", *budget]
    first = accum(*ingest, "--no-fit")
    assert first["pages_added"] == 120
    gone = [sorted((corpus / g).iterdir())[i] for g, i in ((GROUPS[0], 0), (GROUPS[1], 5), (GROUPS[2], 39))]
    out = accum("forget", *[url_of(p) for p in gone], "http://example.com/never-ingested", "--store", store)
    assert out["forgotten"] == 3 and out["unknown"] == ["http://example.com/never-ingested"]
    assert out["documents"] == 117 and out["fit"] is None  # no fit to redo
    for p in gone:
        p.unlink()
    changed = sorted((corpus / GROUPS[0]).iterdir())[3]  # the page is crawled again, with other text
    changed.write_text(changed.read_text(encoding="latin-1") + "\nAn added paragraph about orbital launches.\n",
                       encoding="latin-1")
    moved = sorted((corpus / GROUPS[1]).iterdir())[7]  # one moves to another category: a new URL, so
    (corpus / GROUPS[2] / moved.name).write_bytes(moved.read_bytes() + b"\nnow about guns\n")
    moved.unlink()  # the old page stays until it is forgotten (a re-crawl cannot know it is gone)
    assert accum("forget", url_of(corpus / GROUPS[1] / moved.name), "--store", store)["forgotten"] == 1
    again = accum(*ingest, "--no-fit", *(HOW[how] if how == "dask" else []))
    assert again["pages_added"] == 2 and again["replaced"] == 1 and again["duplicates"] == 115

    clean = tmp_path / "clean"
    accum("ingest", corpus, "--label", "dir", "--store", clean, "--quiet", "--no-fit", *budget[-2:])
    assert keyed(Store(store).load()) == keyed(Store(clean).load())
    assert documents(store) == documents(clean)
    from accum.storage.fits import training_pages

    _, _, mine, _ = training_pages(Store(store))
    _, _, theirs, _ = training_pages(Store(clean))
    assert sorted(map(str, mine.label_names)) == sorted(map(str, theirs.label_names)) and mine.nnz == theirs.nnz
    assert accum("forget", url_of(gone[0]), "--store", store)["forgotten"] == 0  # twice: nothing left to take


def test_forget_refits_and_refuses_what_it_cannot_take_back(corpus, tmp_path):
    store = tmp_path / "store"
    accum("ingest", corpus, "--label", "dir", "--store", store, "--quiet")
    fitted = Store(store).info()["model_choice"]
    assert fitted["chosen_by"] == "cross-validation" and fitted["fitted_documents"] == 120
    page = sorted((corpus / GROUPS[0]).iterdir())[0]
    out = accum("forget", url_of(page), "--store", store)
    assert out["forgotten"] == 1 and out["fit"]["model"]  # trained on the forgotten page too: chosen again
    assert Store(store).info()["model_choice"]["fitted_documents"] == 119
    usage = subprocess.run([sys.executable, "-m", "accum.cli", "forget", "--store", str(store)], capture_output=True,
                           text=True)
    assert usage.returncode == 2 and "URLs" in usage.stderr


def test_vectors_spilled_before_a_checkpoint_commit_and_replace_exactly(tmp_path, monkeypatch, newsgroups_sample):
    """Vectors spilled to segments as the ingest goes (here after every batch) are
    registered by the checkpoint; a page replaced after its vector was spilled is taken
    back from the spilled segment; the store equals a clean ingest of what remains."""
    import accum.ingest
    from accum.accumulator import Settings
    from accum.ingest import ingest
    from accum.pages import Page
    from accum.storage.fits import training_pages

    monkeypatch.setattr(accum.ingest, "SPILL_BYTES", 1)
    texts, labels = newsgroups_sample
    pages = [Page(f"http://example.com/{i}", label, text, {"bytes": len(text)})
             for i, (text, label) in enumerate(zip(texts[:120], labels[:120]))]
    again = [Page("http://example.com/3", labels[3], texts[3] + " and a changed ending", {"bytes": 1})]
    store = Store(tmp_path / "s", create=True)
    with store.writer({"sources": ["test"]}, Settings()) as writer:
        summary = ingest(pages + again, writer.acc, writer, batch_pages=20, read_ahead_thread=False)
    assert summary.replaced == 1 and summary.pages_added == 121
    assert len(list((tmp_path / "s" / "vectors").iterdir())) > 3  # spilled along the way
    clean = Store(tmp_path / "clean", create=True)
    with clean.writer({"sources": ["test"]}, Settings()) as writer:
        ingest(pages[:3] + pages[4:] + again, writer.acc, writer, batch_pages=20, read_ahead_thread=False)
    assert keyed(Store(tmp_path / "s").load()) == keyed(Store(tmp_path / "clean").load())
    _, _, mine, _ = training_pages(Store(tmp_path / "s"))
    _, _, theirs, _ = training_pages(Store(tmp_path / "clean"))
    assert mine.n_pages == theirs.n_pages == 120 and mine.nnz == theirs.nnz

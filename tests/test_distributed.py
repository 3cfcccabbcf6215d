"""Ingest on Dask equals a single-process ingest: every count, document row and
growth-log row. The partial-accumulator steps are checked in memory, then the whole
command on a real two-worker LocalCluster."""

import json
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from accum.accumulator import Accumulator, Settings
from accum.ingest import MemorySink, ingest
from accum.markov import MarkovAccumulator
from accum.partials import apply_partial, count_part, merge_partials, screen_part
from accum.sources import iter_sources
from accum.sources.partition import plan_parts
from accum.storage import Store
from accum.storage import catalog as cat

from corpora import corpus_path


def link_files(out, root, categories, universities):
    """A corpus of symlinks to WebKB's pages of some universities (walks do not follow
    linked directories, so files are linked one by one; they lead outside the corpus, so
    it is read with follow_links / --follow-links)."""
    for category in categories:
        for university in universities:
            for f in sorted((root / category / university).iterdir()):
                target = out / category / university
                target.mkdir(parents=True, exist_ok=True)
                (target / f.name).symlink_to(f)
    return out


@pytest.fixture(scope="module")
def webkb_halves(tmp_path_factory):
    root = corpus_path("webkb")
    base = tmp_path_factory.mktemp("webkb")
    cats = ["course", "faculty", "project", "student"]
    return (link_files(base / "first", root, cats, ["cornell"]),
            link_files(base / "then", root, cats + ["staff"], ["texas", "wisconsin", "misc"]))


def same_arrays(a: dict, b: dict) -> list[str]:
    """Names of the entries of two to_arrays() dicts that differ."""
    differ = []
    for key in a:
        x, y = a[key], b[key]
        if not (np.array_equal(x, y) if isinstance(x, np.ndarray) else x == y):
            differ.append(key)
    return differ


def test_partials_merged_in_any_tree_equal_one_stream(webkb_halves):
    """Slices counted apart, merged by a tree, then applied on top of earlier pages give
    the counts, generator, documents and growth log of one ingest; a page repeated in a
    later slice is a duplicate there."""
    first, then = webkb_halves
    records = list(iter_sources([first, then], label="dir", follow_links=True))
    records = records[:1500] + records[100:160] + records[1500:]  # 60 repeats across slices
    settings = Settings(max_order=2, markov_order=2)

    one_sink, one_acc, one_markov = MemorySink(), Accumulator(settings), MarkovAccumulator(2)
    ingest(records[:700], one_acc, one_sink, markov=one_markov, batch_pages=64)
    ingest(records[700:], one_acc, one_sink, markov=one_markov, batch_pages=64)

    sink, acc, markov = MemorySink(), Accumulator(settings), MarkovAccumulator(2)
    ingest(records[:700], acc, sink, markov=markov, batch_pages=64)
    base_growth = list(sink.growth)
    rng = random.Random(8)
    cuts = sorted({700, len(records), *rng.sample(range(701, len(records)), 6)})
    seen, partials, duplicates = set(sink.documents), [], 0
    for a, b in zip(cuts, cuts[1:]):
        part = screen_part(records[a:b])
        skip = {i for i, h in enumerate(part.hashes) if h in seen or seen.add(h)}
        duplicates += len(skip)
        partials.append(count_part(part, skip, settings, True, markov.settings(), batch_pages=50))
    while len(partials) > 1:
        partials = [merge_partials(partials[i], partials[i + 1]) if i + 1 < len(partials) else partials[i]
                    for i in range(0, len(partials), 2)]
    growth = apply_partial(acc, markov, partials[0])

    assert duplicates >= 60
    assert partials[0].summary.duplicates == duplicates
    assert same_arrays(one_acc.to_arrays(), acc.to_arrays()) == []
    assert same_arrays(one_markov.to_arrays(), markov.to_arrays()) == []
    assert list(one_sink.documents.values()) == list(sink.documents.values()) + partials[0].documents
    assert one_sink.growth == base_growth + growth.tolist()


def test_parts_read_like_the_sources(webkb_halves):
    first, then = webkb_halves
    want = list(iter_sources([first, then], label="dir", follow_links=True))
    parts = plan_parts([first, then], label="dir", part_bytes=300_000, follow_links=True)
    assert len(parts) > 10
    assert [r for p in parts for r in p.read()] == want
    assert len(plan_parts([first], label="dir", min_parts=4, follow_links=True)) >= 4


def catalog_rows(store):
    st = Store(store)
    with st.engine.connect() as conn:
        docs = conn.execute(sa.select(cat.documents.c.content_hash, cat.documents.c.url, cat.categories.c.name,
                                      cat.documents.c.n_tokens, cat.documents.c.n_bytes)
                            .join(cat.categories).order_by(cat.documents.c.id)).all()
        columns = [c for c in cat.growth.c if c.name not in ("id", "run_id", "category_id")]
        growth = conn.execute(sa.select(cat.categories.c.name, *columns)
                              .outerjoin(cat.categories, cat.growth.c.category_id == cat.categories.c.id)
                              .order_by(cat.growth.c.id)).all()
    return st.load().to_arrays(), [tuple(d) for d in docs], [tuple(g) for g in growth]


def accum(*args):
    done = subprocess.run([sys.executable, "-m", "accum.cli", *map(str, args), "--quiet", "--json"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_dask_ingest_on_two_workers_equals_one_process(webkb_halves, tmp_path):
    """A store continued by `accum ingest --dask local:2` holds exactly what one process
    would have committed: counts, weights, lexicon, document rows, growth log."""
    first, then = webkb_halves
    for store in ("single", "dask"):
        accum("ingest", first, "--label", "dir", "--follow-links", "--store", tmp_path / store)
    single = accum("ingest", then, "--label", "dir", "--follow-links", "--store", tmp_path / "single")
    dask = accum("ingest", then, "--label", "dir", "--follow-links", "--store", tmp_path / "dask", "--dask", "local:2",
                 "--part-mb", "2")
    assert dask["dask"]["parts"] >= 4
    for key in ("pages_added", "duplicates", "skipped", "skip_examples", "bytes_read", "tokens", "documents"):
        assert dask[key] == single[key], key
    assert single["duplicates"] > 0  # WebKB repeats pages across categories
    want, got = catalog_rows(tmp_path / "single"), catalog_rows(tmp_path / "dask")
    assert same_arrays(want[0], got[0]) == []
    assert got[1] == want[1]
    assert got[2] == want[2]
    print(f"dask == single process: {len(got[1]):,} documents, {len(got[0]['count_value']):,} counts, "
          f"{len(got[2]):,} growth rows, {dask['duplicates']} duplicates, parts {dask['dask']['parts']}")
    again = accum("ingest", then, "--label", "dir", "--follow-links", "--store", tmp_path / "dask", "--dask", "local:2")
    assert again["pages_added"] == 0 and again["duplicates"] == single["pages_added"] + single["duplicates"]


def test_dask_ingest_within_a_memory_budget_equals_one_process(webkb_halves, tmp_path):
    """With --memory, each worker writes its part's counts as runs and its page vectors as
    segments into the store while it counts, and the client merges the runs at each
    checkpoint: the store still equals an unbounded single-process ingest's, count for
    count, document for document, growth row for growth row, page vector for page vector."""
    from accum.storage.fits import training_pages
    from test_vectors import keyed

    first, then = webkb_halves
    for source in (first, then):
        accum("ingest", source, "--label", "dir", "--follow-links", "--store", tmp_path / "single", "--no-fit")
        budget = accum("ingest", source, "--label", "dir", "--follow-links", "--store", tmp_path / "dask", "--no-fit",
                       "--dask", "local:2", "--part-mb", "1", "--memory", "300kB", "--batch-pages", "40",
                       "--checkpoint-seconds", "0")
        assert budget["dask"]["parts"] >= 2
    assert budget["checkpoints"] > 1
    want, got = catalog_rows(tmp_path / "single"), catalog_rows(tmp_path / "dask")
    assert keyed(Store(tmp_path / "dask").load()) == keyed(Store(tmp_path / "single").load())
    assert got[1] == want[1] and got[2] == want[2] and len(got[2]) > 50
    assert Store(tmp_path / "dask").summary().to_dict() == Store(tmp_path / "single").summary().to_dict()
    mine, theirs = training_pages(Store(tmp_path / "dask"))[2], training_pages(Store(tmp_path / "single"))[2]
    assert keyed_pages(mine) == keyed_pages(theirs)
    assert not any((tmp_path / "dask" / "runs").iterdir())  # the workers' runs are gone once merged


def keyed_pages(vectors) -> list:
    """Each page's category, tokens and (feature, count) pairs, in page order."""
    return [(vectors.categories[vectors.labels[i]], int(vectors.n_tokens[i]),
             sorted(zip(vectors.fids[a:b].tolist(), vectors.tfs[a:b].tolist())))
            for i, (a, b) in enumerate(zip(vectors.bounds[:-1], vectors.bounds[1:]))]


def test_bad_dask_address_is_a_clean_error(tmp_path, webkb_halves):
    for address in ("local:0", "nonsense"):
        done = subprocess.run([sys.executable, "-m", "accum.cli", "ingest", str(webkb_halves[0]), "--label", "dir",
                               "--store", str(tmp_path / "s"), "--dask", address], capture_output=True, text=True)
        assert done.returncode == 1 and "--dask" in done.stderr and "Traceback" not in done.stderr


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def scheduler():
    """A real `dask scheduler` and two `dask worker` processes on 127.0.0.1."""
    from dask.distributed import Client

    address = f"tcp://127.0.0.1:{free_port()}"
    bin_dir = Path(sys.executable).parent
    procs = [subprocess.Popen([bin_dir / "dask", "scheduler", "--host", "127.0.0.1", "--port",
                               address.rsplit(":", 1)[1], "--no-dashboard"], stderr=subprocess.DEVNULL)]
    try:
        procs += [subprocess.Popen([bin_dir / "dask", "worker", address, "--nthreads", "1", "--no-dashboard"],
                                   stderr=subprocess.DEVNULL) for _ in range(2)]
        with Client(address, timeout="60s") as client:
            client.wait_for_workers(2, timeout=120)
        yield address
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=60)


def test_dask_ingest_through_a_running_scheduler(webkb_halves, tmp_path, scheduler):
    first = webkb_halves[0]
    single = accum("ingest", first, "--label", "dir", "--follow-links", "--store", tmp_path / "single")
    remote = accum("ingest", first, "--label", "dir", "--follow-links", "--store", tmp_path / "remote", "--dask", scheduler,
                   "--part-mb", "1")
    assert remote["dask"]["parts"] >= 2 and remote["pages_added"] == single["pages_added"] > 200
    want, got = catalog_rows(tmp_path / "single"), catalog_rows(tmp_path / "remote")
    assert same_arrays(want[0], got[0]) == [] and got[1] == want[1] and got[2] == want[2]

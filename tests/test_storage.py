"""Stores on SQLite and on the real PostgreSQL server: persistence, dedup, resume."""

import json

import numpy as np

import pytest
import sqlalchemy as sa

from accum.accumulator import Accumulator, Settings
from accum.ingest import ingest
from accum.pages import Page, Skipped
from accum.storage import Store, StoreError
from accum.storage import catalog


def pages(texts_labels, prefix="u"):
    return [Page(f"{prefix}{i}", label, text, {"bytes": len(text)}) for i, (text, label) in enumerate(texts_labels)]


def run_ingest(store, records, settings=Settings(), **kwargs):
    with store.writer({"sources": ["test"]}, settings) as writer:
        summary = ingest(records, writer.acc, writer, **kwargs)
    return writer.acc, summary


def test_ingest_persists_and_reopens(tmp_path, db_url, newsgroups_sample):
    texts, labels = newsgroups_sample
    store = Store(tmp_path / "s", db=db_url, create=True)
    acc, summary = run_ingest(store, pages(zip(texts, labels)), batch_pages=64)
    assert summary.pages_added == len(texts) and summary.duplicates == 0
    reopened = Store(tmp_path / "s", db=db_url).load()
    assert reopened.canonical() == acc.canonical()
    assert reopened.lexicon == acc.lexicon
    info = Store(tmp_path / "s", db=db_url).info()
    assert info["documents"] == len(texts)
    assert info["categories"] == 20
    assert info["tokens"] == acc.n_tokens
    assert info["distinct_features"] == acc.n_rows
    assert info["parameters"] == int((acc.counts != 0).sum())
    assert info["runs"][0]["status"] == "finished"
    assert info["runs"][0]["summary"]["pages_added"] == len(texts)


def test_counts_read_alone_equal_the_accumulators(tmp_path, newsgroups_sample):
    texts, labels = newsgroups_sample
    store = Store(tmp_path / "s", create=True)
    assert store.load_counts() is None and store.categories() == []
    acc, _ = run_ingest(store, pages(zip(texts, labels)), Settings(max_order=3), batch_pages=64)
    counts = Store(tmp_path / "s").load_counts()
    assert counts.settings == acc.settings and counts.categories == acc.categories
    assert counts.doc_counts.tolist() == acc.doc_counts.tolist()
    assert counts.token_counts.tolist() == acc.token_counts.tolist()
    assert (counts.n_documents, counts.n_tokens) == (acc.n_documents, acc.n_tokens)
    assert counts.row_order.tolist() == acc.row_order.tolist()
    for mine, theirs in zip(counts.pairs(), acc.pairs()):
        assert mine.tolist() == theirs.tolist()
    for mine, theirs in zip(counts.growth_stats(), acc.growth_stats()):
        assert mine.tolist() == theirs.tolist()
    features = {c["name"]: c["features"] for c in Store(tmp_path / "s").categories()}
    assert features == {name: int((acc.counts[:, i] != 0).sum()) for i, name in enumerate(acc.categories)}


def test_reingesting_changes_nothing(tmp_path, db_url, newsgroups_sample):
    texts, labels = newsgroups_sample
    store = Store(tmp_path / "s", db=db_url, create=True)
    first, _ = run_ingest(store, pages(zip(texts, labels)))
    again, summary = run_ingest(store, pages(zip(texts, labels), prefix="other-url-"))
    assert summary.pages_added == 0 and summary.duplicates == len(texts)
    assert again.canonical() == first.canonical()
    assert Store(tmp_path / "s", db=db_url).info()["documents"] == len(texts)


def test_incremental_ingest_equals_one_ingest(tmp_path, db_url, newsgroups_sample):
    texts, labels = newsgroups_sample
    records = pages(zip(texts, labels))
    one = Store(tmp_path / "one", db=None, create=True)
    whole, _ = run_ingest(one, records)
    store = Store(tmp_path / "s", db=db_url, create=True)
    run_ingest(store, records[:100])
    run_ingest(store, records[50:])  # overlaps: the first 50 are duplicates
    assert Store(tmp_path / "s", db=db_url).load().canonical() == whole.canonical()


def test_interrupted_run_resumes_to_the_same_counts(tmp_path, db_url, newsgroups_sample):
    texts, labels = newsgroups_sample
    records = pages(zip(texts, labels))
    store = Store(tmp_path / "s", db=db_url, create=True)

    def dying():
        for i, r in enumerate(records):
            if i == 170:
                raise KeyboardInterrupt  # the user pressed ^C mid-run
            yield r

    with pytest.raises(KeyboardInterrupt):
        run_ingest(store, dying(), batch_pages=20, checkpoint_seconds=0)
    partial = Store(tmp_path / "s", db=db_url)
    committed = partial.info()["documents"]
    assert 0 < committed < 170
    assert partial.info()["runs"][0]["status"] == "interrupted"
    assert partial.load().n_documents == committed  # model and documents agree
    _, summary = run_ingest(partial, records)
    assert summary.duplicates == committed
    whole = Accumulator()
    whole.partial_fit(texts, labels)
    assert Store(tmp_path / "s", db=db_url).load().canonical() == whole.canonical()


def test_snapshot_written_but_never_registered_is_ignored(tmp_path, db_url, monkeypatch):
    store = Store(tmp_path / "s", db=db_url, create=True)
    run_ingest(store, pages([("alpha beta", "a"), ("gamma delta", "b")]))
    before = store.load().canonical()

    from accum.storage import StoreWriter

    def fail_commit(*args, **kwargs):
        raise RuntimeError("power cut between snapshot and commit")

    monkeypatch.setattr(StoreWriter, "_category_ids", fail_commit)
    with pytest.raises(RuntimeError):
        run_ingest(store, pages([("epsilon zeta", "c")], prefix="v"))
    monkeypatch.undo()
    reopened = Store(tmp_path / "s", db=db_url)
    assert reopened.load().canonical() == before
    assert reopened.info()["documents"] == 2
    assert reopened.info()["runs"][-1]["status"] == "failed"


def test_skips_are_counted_and_recorded(tmp_path, db_url):
    store = Store(tmp_path / "s", db=db_url, create=True)
    records = pages([("good text", "a"), ("   ", "a")]) + [
        Skipped("f.warc#3", "truncated", "gzip ended early", 100),
        Page("nolabel", None, "some text"),
    ]
    _, summary = run_ingest(store, records)
    assert summary.to_dict()["skipped"] == {"empty": 1, "no-label": 1, "truncated": 1}
    assert summary.pages_added == 1
    assert Store(tmp_path / "s", db=db_url).info()["runs"][0]["summary"]["skipped"]["truncated"] == 1


def test_odd_labels_and_urls_survive_intact(tmp_path, db_url):
    store = Store(tmp_path / "s", db=db_url, create=True)
    label = "it's \"quoted\"; DROP TABLE documents; -- ünïcödé 日本"
    url = "http://example.com/?q='x'&y=\"z\"\n#ü"
    run_ingest(store, [Page(url, label, "some words here")])
    again = Store(tmp_path / "s", db=db_url)
    assert again.load().categories == [label]
    with again.engine.connect() as conn:
        assert conn.execute(sa.select(catalog.documents.c.url)).scalar() == url
        assert conn.execute(sa.select(catalog.categories.c.name)).scalar() == label


AWKWARD_LABELS = [
    "it's", 'say "hi"', "back\\slash", "\u00fcn\u00efc\u00f6d\u00e9", "\u65e5\u672c\u8a9e",
    "emoji \U0001f600", "\u202eRTL", "e\u0301", "%s %d {} $1 ?", "'; DROP TABLE documents; --", " padded ",
    "\\x00 not a NUL", "a" * 1000,
]
#: Labels the label rule refuses (accum.pages.check_label): their pages are skipped as malformed.
REFUSED_LABELS = ["new\nline", "tab\there", " "]


def test_awkward_labels_and_urls_round_trip(tmp_path, db_url):
    """Labels and URLs with quotes, backslashes, non-ASCII, bidi controls, SQL and format
    syntax come back from the catalog exactly (labels with control characters are
    refused, and counted); a URL the catalog cannot hold whole (a NUL; over
    MAX_URL_BYTES) is kept without the NUL, cut, and marked."""
    from accum.storage.catalog import MAX_URL_BYTES

    long_url = "http://example.com/?q=" + "".join(chr(0x41 + (i * 7919) % 26) for i in range(6000)) + "\u00e9"
    urls = ["http://example.com/it's/\"q\"?a=1&b='2'#frag", "http://example.com/new\nline\r\n",
            "http://\u00fcn\u00efc\u00f6d\u00e9.example/\u65e5\u672c", "file:///tmp/a b/%41%25/\U0001f600",
            "", "x" * 1999, "\u00e9" * 1000, long_url, "http://x/\x00nul"]
    records = [Page(urls[i % len(urls)], label, f"words for page {i} about {label!r}") for i, label in enumerate(AWKWARD_LABELS)]
    records += [Page(url, AWKWARD_LABELS[0], f"another page {i}") for i, url in enumerate(urls)]
    refused = [Page(f"http://example.com/{i}", label, f"a refused page {i}") for i, label in enumerate(REFUSED_LABELS)]
    store = Store(tmp_path / "s", db=db_url, create=True)
    acc, summary = run_ingest(store, records + refused)
    assert summary.pages_added == len(records) and summary.skipped == {"malformed": len(REFUSED_LABELS)}
    again = Store(tmp_path / "s", db=db_url)
    assert sorted(again.load().categories) == sorted(AWKWARD_LABELS)
    assert sorted(c["name"] for c in again.categories()) == sorted(AWKWARD_LABELS)
    from accum.ingest import content_hash

    assert again.document_labels() == {content_hash(r.text): r.label for r in records}
    with again.engine.connect() as conn:
        stored = dict(conn.execute(sa.select(catalog.documents.c.content_hash, catalog.documents.c.url)).all())
    for r in records:
        url = stored[content_hash(r.text)]
        if len(r.url.encode()) <= MAX_URL_BYTES and "\x00" not in r.url:
            assert url == r.url
        else:
            assert "\x00" not in url and len(url.encode()) <= MAX_URL_BYTES + 3
            assert r.url.replace("\x00", "").startswith(url.rstrip("\u2026"))
            assert url.endswith("\u2026") or url == r.url.replace("\x00", "")


def test_awkward_directory_labels_through_the_cli(tmp_path, db_url):
    """Directory names as labels (quotes, a newline, non-ASCII, bytes that are not UTF-8):
    accum ingest, accum categories --json and accum classify --json keep them exactly."""
    import os
    import subprocess
    import sys

    names = {"it's \"quoted\"": "alpha beta gamma", "new\nline": "delta epsilon zeta",
             "\u65e5\u672c\u8a9e \U0001f600": "eta theta iota", "back\\slash": "kappa lambda mu"}
    corpus = tmp_path / "corpus"
    for name, words in names.items():
        (corpus / name).mkdir(parents=True)
        for i in range(3):
            (corpus / name / f"{i}.txt").write_text(f"{words} {i}\n")
    raw = os.fsencode(corpus) + b"/odd\xff\xfe"  # not UTF-8: the label gets U+FFFD for each bad byte
    os.mkdir(raw)
    with open(raw + b"/0.txt", "w") as fh:
        fh.write("nu xi omicron\n")
    db = ["--db", db_url] if db_url else []

    def accum(*args):
        proc = subprocess.run([sys.executable, "-m", "accum.cli", *map(str, args), *db], capture_output=True,
                              text=True, encoding="utf-8")
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)

    summary = accum("ingest", corpus, "--label", "dir", "--store", tmp_path / "s", "--quiet", "--json")
    assert summary["skipped"] == {"malformed": 3}  # the directory whose name holds a newline
    want = set(names) - {"new\nline"} | {"odd\ufffd\ufffd"}
    assert {c["name"] for c in accum("categories", "--store", tmp_path / "s", "--json")} == want
    for name in ("back\\slash", "\u65e5\u672c\u8a9e \U0001f600"):
        assert accum("classify", "--store", tmp_path / "s", "--json", names[name])["label"] == name


def test_store_refuses_other_settings_and_concurrent_writers(tmp_path, db_url):
    store = Store(tmp_path / "s", db=db_url, create=True)
    run_ingest(store, pages([("one two", "a")]))
    with pytest.raises(StoreError, match="use a new --store"):
        run_ingest(store, pages([("three", "a")]), settings=Settings(max_order=3))
    with store.writer({"sources": []}, Settings()):
        with pytest.raises(StoreError, match="another ingest"):
            with Store(tmp_path / "s", db=db_url).writer({"sources": []}, Settings()):
                pass


def test_missing_store_is_a_clear_error(tmp_path):
    with pytest.raises(StoreError, match="no accum store"):
        Store(tmp_path / "nowhere")


def growth_as_events(rows, max_order=2):
    """Catalog growth rows back into take_growth()-style events (category index unknown: -1 or 0)."""
    by_pages = {}
    for r in rows:
        by_pages.setdefault(r["pages"], [r["pages"], r["tokens"]]).extend(
            [r["distinct"], r["singletons"], r["doubletons"], r["at_least_k"]])
    return [v for _, v in sorted(by_pages.items())]


def test_growth_log_is_persisted_and_continues_across_runs(tmp_path, db_url, newsgroups_sample):
    import naive

    texts, labels = newsgroups_sample
    records = pages(zip(texts, labels))
    store = Store(tmp_path / "s", db=db_url, create=True)
    run_ingest(store, records[:120], batch_pages=50)
    run_ingest(store, records[100:], batch_pages=50)  # 20 duplicates, then the rest
    want = [row[1:] for row in naive.growth_log(texts, labels, 2, 5) if row[0] == -1]
    reopened = Store(tmp_path / "s", db=db_url)
    assert growth_as_events(reopened.growth()) == want
    first = labels[0]
    want_first = [row[1:] for row in naive.growth_log(texts, labels, 2, 5) if row[0] == 0]
    assert growth_as_events(reopened.growth(first)) == want_first
    assert {r["run_id"] for r in reopened.growth()} == {1, 2}


@pytest.mark.parametrize("model", [None, "complement", "dm"])
def test_classifier_is_saved_with_its_snapshot_and_read_back_equal(tmp_path, newsgroups_sample, model):
    from accum.classify import make_model

    texts, labels = newsgroups_sample
    store = Store(tmp_path / "s", create=True)
    acc, _ = run_ingest(store, pages(zip(texts[::2], labels[::2])))
    built = store.classifier(model)
    saved = list((tmp_path / "s" / "snapshots").glob("*/model-*"))
    assert len(saved) == 1 and (saved[0] / "model.json").exists()
    again = store.classifier(model)  # memory-mapped from the saved arrays
    assert not again._entries.flags.writeable and built._entries.flags.writeable
    want = make_model(acc, model).decision_function(texts[1::2])
    assert np.array_equal(again.decision_function(texts[1::2]), want)
    assert np.array_equal(built.decision_function(texts[1::2]), want)
    assert again.explain(texts[1]).to_dict() == built.explain(texts[1]).to_dict()
    assert store.classifier(model, alpha=0.5).alpha == 0.5  # other parameters: another saved model
    assert len(list((tmp_path / "s" / "snapshots").glob("*/model-*"))) == 2
    assert Store(tmp_path / "empty", create=True).classifier(model) is None


def test_a_saved_classifier_of_another_format_is_rebuilt(tmp_path, newsgroups_sample):
    texts, labels = newsgroups_sample
    store = Store(tmp_path / "s", create=True)
    run_ingest(store, pages(zip(texts, labels)))
    first = store.classifier("complement")
    (saved,) = (tmp_path / "s" / "snapshots").glob("*/model-*")
    meta = json.loads((saved / "model.json").read_text())
    (saved / "model.json").write_text(json.dumps({**meta, "format": -1}))
    again = store.classifier("complement")
    assert again._entries.flags.writeable  # built again, not read
    assert np.array_equal(again.decision_function(texts[:20]), first.decision_function(texts[:20]))
    assert json.loads((saved / "model.json").read_text())["format"] == meta["format"]  # and saved anew


def test_reading_ahead_in_a_thread_changes_nothing(tmp_path, newsgroups_sample):
    texts, labels = newsgroups_sample
    records = pages(zip(texts, labels)) + [Skipped("bad.html", "malformed", "x", 3)]
    results = []
    for threaded in (False, True):
        store = Store(tmp_path / f"s{threaded}", create=True)
        with store.writer({"sources": ["test"]}, Settings()) as writer:
            summary = ingest(records, writer.acc, writer, batch_pages=37, read_ahead_thread=threaded)
        results.append((writer.acc.canonical(), summary.pages_added, dict(summary.skipped)))
    assert results[0] == results[1] and results[0][1] == len(texts)


def test_read_ahead_keeps_order_raises_in_order_and_stops_its_reader():
    from accum.ingest import READ_AHEAD_CHUNK, read_ahead

    n = 10 * READ_AHEAD_CHUNK + 3
    assert list(read_ahead(iter(range(n)))) == list(range(n))

    def failing():
        yield from range(n)
        raise OSError("disk gone")

    seen = []
    with pytest.raises(OSError, match="disk gone"):
        for x in read_ahead(failing()):
            seen.append(x)
    assert seen == list(range(n))  # every record before the error first

    closed = []

    def endless():
        try:
            i = 0
            while True:
                yield i
                i += 1
        finally:
            closed.append(True)

    for x in read_ahead(endless()):
        if x == 5:
            break
    assert closed == [True]  # the reader stopped and closed its source


def test_a_store_is_never_made_inside_another_or_in_a_foreign_directory(tmp_path, newsgroups_sample):
    texts, labels = newsgroups_sample
    outer = Store(tmp_path / "outer", create=True)
    run_ingest(outer, pages(zip(texts[:20], labels[:20])))
    snapshot = outer.latest_snapshot()["name"]
    for inside in (tmp_path / "outer" / "snapshots" / snapshot / "inner", tmp_path / "outer" / "x" / "y"):
        with pytest.raises(StoreError, match="inside the accum store at"):
            Store(inside, create=True)
        assert not inside.exists()
    foreign = tmp_path / "papers"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("mine")
    with pytest.raises(StoreError, match="not an accum store and is not empty .*thesis.tex"):
        Store(foreign, create=True)
    assert sorted(p.name for p in foreign.iterdir()) == ["thesis.tex"]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert Store(empty, create=True).latest_snapshot() is None  # an empty directory becomes a store
    assert Store(tmp_path / "outer", create=True).latest_snapshot()["name"] == snapshot  # reopening is fine


def test_reports_read_the_summary_not_the_counts(tmp_path, newsgroups_sample, monkeypatch):
    """categories and saturation come from the small summary the catalog keeps per
    snapshot, equal to what the counts give."""
    from accum.counts import CountsSummary
    from accum.storage import store as store_module

    texts, labels = newsgroups_sample
    store = Store(tmp_path / "s", create=True)
    acc, _ = run_ingest(store, pages(zip(texts, labels)), Settings(max_order=3), batch_pages=64)
    want = CountsSummary.of(acc)
    monkeypatch.setattr(store_module, "read_counts", lambda path: pytest.fail("the counts were read"))
    got = Store(tmp_path / "s").summary()
    assert got.to_dict() == want.to_dict()
    assert [c["features"] for c in Store(tmp_path / "s").categories()] == np.bincount(
        acc.pairs()[1], minlength=acc.n_categories).tolist()


def _mapped_from(array: np.ndarray, path) -> bool:
    """Whether ``array``'s data lies in this process's memory mapping of the file ``path``."""
    address = array.ctypes.data
    with open("/proc/self/maps") as maps:
        for line in maps:
            fields = line.split()
            if len(fields) >= 6 and fields[5] == str(path):
                start, end = (int(x, 16) for x in fields[0].split("-"))
                if start <= address < end:
                    return True
    return False


def test_saved_models_and_page_vectors_are_read_in_place_from_their_files(tmp_path):
    """A query reads a saved model where its file is mapped, and a segment's columns too:
    nothing copies a file whole (pyarrow's combine_chunks does, even of one chunk)."""
    import pyarrow as pa

    from accum.storage.snapshots import column_array, read_model, write_model

    weights = np.arange(1 << 20, dtype=np.float64)
    write_model({"weights": weights, "name": "x"}, tmp_path / "model")
    state = read_model(tmp_path / "model")
    assert np.array_equal(state["weights"], weights)
    assert _mapped_from(state["weights"], (tmp_path / "model" / "weights.arrow").resolve())
    path = tmp_path / "t.arrow"
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, pa.schema([("v", pa.int64())])) as writer:
        writer.write_table(pa.table({"v": pa.array(np.arange(1 << 20))}))
    with pa.memory_map(str(path), "r") as source:
        table = pa.ipc.open_file(source).read_all()
    assert _mapped_from(column_array(table, "v").to_numpy(), path.resolve())

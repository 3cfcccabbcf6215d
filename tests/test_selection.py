"""The store's choice of model: folds, racing, determinism, and the store that keeps it."""

import json

import numpy as np
import pytest

from accum.accumulator import Accumulator, Settings
from accum.ingest import ingest
from accum.pages import Page
from accum.selection import make_folds, select_model, site_of
from accum.storage import Store
from accum.storage.fits import fit_store, latest_fit, training_pages


def test_site_of_takes_the_registered_domain():
    assert site_of("http://www.cs.cornell.edu/Info/People/x.html") == "cornell.edu"
    assert site_of("https://news.bbc.co.uk/a") == "bbc.co.uk"
    assert site_of("blog://1234567/post-9") == "1234567"
    assert site_of("http://10.0.0.7:8080/x") == "10.0.0.7"
    assert site_of("file:///tmp/x.txt") is None and site_of("trec:train:1") is None


def test_folds_keep_sites_whole_or_stratify():
    labels = np.array([0, 1] * 30)
    sites = [f"s{i % 7}.org" for i in range(60)]
    folds, how = make_folds(labels, 3, sites)
    assert how == "by site"
    for s in set(sites):
        assert len({int(folds[i]) for i in range(60) if sites[i] == s}) == 1
    folds, how = make_folds(labels, 3, [None] * 60)
    assert how == "stratified"
    for f in range(3):
        assert sorted(np.bincount(labels[folds == f]).tolist()) == [10, 10]
    one_big = ["big.com"] * 40 + [f"s{i}.org" for i in range(20)]
    assert make_folds(labels, 3, one_big)[1] == "stratified"  # one site of two thirds cannot be a fold


@pytest.fixture(scope="module")
def trec(request):
    import gzip

    from corpora import corpus_path

    rows = [json.loads(line) for line in gzip.open(corpus_path("trec/train.jsonl.gz"), "rt")][:1500]
    return [r["text"] for r in rows], [r["label"] for r in rows], [r["url"] for r in rows]


def test_the_choice_is_deterministic_and_its_model_predicts_as_cross_validated(trec):
    """The same choice twice, the second time under a memory budget so small that every
    SVM path solves its classes one at a time, kept on disk between passes."""
    texts, labels, urls = trec
    acc = Accumulator(Settings(gram_bits=0), keep_vectors=True)
    acc.partial_fit(texts, labels)
    vectors = acc.take_vectors()
    one, two = (select_model(acc, vectors, urls, seed=3, memory=memory) for memory in (None, 4))
    first, second = one.to_dict(), two.to_dict()
    for record in (first, second):
        record.pop("seconds")
    assert first == second
    assert first["folds"] == 5 and first["grouped_by"] == "stratified"  # under 2,000 pages: 5 folds
    assert first["candidates"][0]["label"] == first["label"]
    assert all(c["accuracy"] <= first["accuracy"] for c in first["candidates"])
    low, high = first["ci95"]
    assert low < first["accuracy"] < high
    assert 1.0 / 6 < first["accuracy"] < 1.0  # better than chance, and honest
    assert 0 < one.model.temperature  # calibrated on the held-out scores
    assert one.model.predict(texts[:50]) == two.model.predict(texts[:50])


def test_a_family_can_be_forced_and_budget_zero_still_decides(trec):
    texts, labels, urls = trec
    acc = Accumulator(Settings(gram_bits=0), keep_vectors=True)
    acc.partial_fit(texts, labels)
    vectors = acc.take_vectors()
    only = select_model(acc, vectors, urls, families=["complement"])
    assert only.chosen.candidate.family == "complement" and only.model.name == "complement"
    with pytest.raises(ValueError, match="no candidate model"):
        select_model(acc, vectors, urls, families=["nothing"])


def test_a_store_fits_keeps_and_serves_its_choice(tmp_path, trec, monkeypatch):
    texts, labels, urls = trec
    store = Store(tmp_path / "s", create=True)
    pages = [Page(u, label, t, {"bytes": len(t)}) for u, label, t in zip(urls, labels, texts)]
    with store.writer({"sources": ["test"]}, Settings()) as writer:
        ingest(pages[:700], writer.acc, writer, batch_pages=100, checkpoint_seconds=0)  # several segments
    with store.writer({"sources": ["test"]}, Settings()) as writer:
        ingest(pages, writer.acc, writer, batch_pages=100)  # the first 700 are duplicates
    snapshot, read_acc, vectors, page_urls = training_pages(store)
    acc = read_acc()
    assert vectors.n_pages == acc.n_documents == len(set(texts))
    summed = {}
    for i in range(vectors.n_pages):
        for fid, tf in zip(*map(np.ndarray.tolist, vectors.page(i))):
            by = summed.setdefault(fid, {})
            by[vectors.categories[vectors.labels[i]]] = by.get(vectors.categories[vectors.labels[i]], 0) + tf
    assert summed == acc.canonical()  # the segments hold exactly the counted pages
    assert set(page_urls) <= set(urls)
    # the matrix a fit trains on, numbered from the mapped segments: as from the vectors
    from accum.linear import PageMatrix

    _, _, matrix, matrix_urls = training_pages(store, form="matrix")
    expected = PageMatrix.from_vectors(vectors)
    assert matrix_urls == page_urls and matrix.categories == expected.categories
    for name in ("indptr", "indices", "log_tf", "labels", "fids", "df"):
        assert np.array_equal(getattr(matrix, name), getattr(expected, name))
    assert Store(tmp_path / "s").info()["model_choice"]["chosen_by"] == "default"
    record = fit_store(store)
    assert latest_fit(store) == json.loads(json.dumps(record))
    clf = Store(tmp_path / "s").classifier()
    assert clf.name == record["model"] and clf.temperature == record["calibration"]["temperature"]
    info = Store(tmp_path / "s").info()["model_choice"]
    assert info["chosen_by"] == "cross-validation" and info["expected_accuracy"] == record["accuracy"]
    assert Store(tmp_path / "s").classifier("complement", 0.1).name == "complement"  # an explicit model still works
    # a fit that chooses a count model keeps it in the snapshot: the first query reads it, not the counts
    import shutil

    import accum.storage.store as store_module

    for saved in (tmp_path / "s" / "snapshots").glob("*/model-*"):
        shutil.rmtree(saved)
    counted = fit_store(store, families=["complement"])

    def no_counts(*args):
        raise AssertionError("the counts were read")

    monkeypatch.setattr(store_module, "read_snapshot", no_counts)
    clf = Store(tmp_path / "s").classifier()
    assert clf.name == "complement" and clf.alpha == counted["params"]["alpha"]


def test_cross_validated_complement_scores_equal_the_complement_model(newsgroups_sample):
    """The search's complement scores of held-out pages equal those of the complement
    model built from the training pages' counts (to the fixed point of its weights), and
    are the same, bit for bit, scored a class at a time."""
    from accum.classify import make_model
    from accum.linear import PageMatrix, TrainingPages
    from accum.selection import complement_scores

    texts, labels = newsgroups_sample
    acc = Accumulator(Settings(gram_bits=0), keep_vectors=True)
    acc.partial_fit(texts, labels)
    matrix = PageMatrix.from_vectors(acc.take_vectors())
    train, test = np.arange(0, len(texts), 3), np.setdiff1d(np.arange(len(texts)), np.arange(0, len(texts), 3))
    counted = Accumulator(Settings(gram_bits=0))
    counted.partial_fit([texts[i] for i in train], [labels[i] for i in train])
    assert counted.categories == list(matrix.categories)
    pages = TrainingPages(matrix, train)
    grouped = complement_scores(pages, test, (0.03, 1.0), max_bytes=1)  # one class at a time: the same scores
    for alpha, scores, alone in zip((0.03, 1.0), complement_scores(pages, test, (0.03, 1.0)), grouped):
        assert np.array_equal(scores, alone)
        want = make_model(counted, "complement", alpha).decision_function([texts[i] for i in test])
        np.testing.assert_allclose(scores - scores.mean(axis=1, keepdims=True),
                                   want - want.mean(axis=1, keepdims=True), rtol=1e-4, atol=1e-3)


def test_a_candidate_that_dropped_out_is_never_chosen():
    """A dropped candidate lost a paired test to the leader, and its accuracy is over fewer
    folds (or early passes): a higher figure does not put it before one still racing."""
    from accum.selection import Candidate, Scored, _rank_key

    racing = Scored(Candidate("svm", (("C", 3.0), ("normalize", True))), [np.array([True] * 93 + [False] * 7)])
    dropped = Scored(Candidate("svm", (("C", 1.0), ("normalize", True))), [np.array([True] * 94 + [False] * 6)],
                     dropped_after=1)
    never = Scored(Candidate("nbsvm", (("C", 1.0),)), skipped="memory")
    assert sorted([never, dropped, racing], key=_rank_key) == [racing, dropped, never]


def test_accum_fit_within_a_memory_budget_chooses_and_trains_the_same(small_store, tmp_path):
    """``accum fit --memory`` so small that every class is solved and scored alone gives
    the same record (choice, every candidate's accuracy, calibration) and the same
    answers as a fit without a budget."""
    import shutil

    from test_cli import accum, accum_json

    store, texts, _ = small_store
    records, stores = [], []
    for name, budget in (("whole", ()), ("budgeted", ("--memory", "4"))):
        copy = tmp_path / name
        shutil.copytree(store, copy)
        record = accum_json("fit", "--store", copy, *budget)
        record.pop("seconds")
        records.append(record)
        stores.append(copy)
    assert records[0] == records[1] and len(records[0]["candidates"]) > 10
    answers = [accum_json("classify", "--store", s, texts[0]) for s in stores]
    assert answers[0] == answers[1]
    assert accum("fit", "--store", stores[1], "--memory", "0", check=False).returncode == 2  # not a size

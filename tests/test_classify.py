"""The Dirichlet-multinomial classifier: parity with MultinomialNB, exact explanations."""

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.naive_bayes import MultinomialNB

from accum import _kernels
from accum.accumulator import Accumulator, Settings
from accum.classify import ComplementClassifier, DirichletClassifier
from accum.tokens import tokenize


def feature_matrix(acc, texts):
    """Documents x features count matrix over the accumulator's rows (unseen dropped)."""
    batch = tokenize(texts)
    rows = _kernels.lookup_rows(batch.ngrams(acc.settings.max_order), acc._slots, acc.raw_rows)
    doc_of_token = np.repeat(np.arange(len(texts)), np.diff(batch.bounds))
    docs = np.repeat(doc_of_token, rows.shape[1]).reshape(rows.shape)
    seen = rows >= 0
    return sp.csr_matrix(
        (np.ones(seen.sum()), (docs[seen], rows[seen])), shape=(len(texts), acc.n_rows)
    )


@pytest.mark.parametrize("alpha", [0.01, 1.0])
def test_scores_equal_multinomialnb_on_identical_counts(newsgroups_sample, alpha):
    texts, labels = newsgroups_sample
    train, test = texts[::2], texts[1::2]
    acc = Accumulator()
    acc.partial_fit(train, labels[::2])
    nb = MultinomialNB(alpha=alpha).fit(feature_matrix(acc, train), [acc.categories.index(c) for c in labels[::2]])
    np.testing.assert_array_equal(np.asarray(nb.feature_count_.T, np.int64), acc.counts)
    clf = DirichletClassifier(acc, alpha=alpha, beta=0.0)
    np.testing.assert_allclose(clf.feature_weights(acc.row_key), nb.feature_log_prob_.T, rtol=1e-12)
    ours = clf.decision_function(test)
    theirs = nb.predict_joint_log_proba(feature_matrix(acc, test))
    np.testing.assert_allclose(ours, theirs, rtol=1e-9)
    np.testing.assert_allclose(clf.predict_proba(test), nb.predict_proba(feature_matrix(acc, test)), atol=1e-9)


def test_explanation_adds_up_exactly(newsgroups_sample):
    texts, labels = newsgroups_sample
    acc = Accumulator()
    acc.partial_fit(texts[1:], labels[1:])
    clf = DirichletClassifier(acc)
    exp = clf.explain(texts[0], n_terms=5)
    scores = clf.decision_function([texts[0]])[0]
    top2 = np.argsort(-scores)[:2]
    assert [exp.winner, exp.runner_up] == [acc.categories[i] for i in top2]
    assert exp.log_odds == pytest.approx(scores[top2[0]] - scores[top2[1]], abs=1e-9)
    total = exp.prior + sum(f["contribution"] for f in exp.features) + exp.rest
    assert total == pytest.approx(exp.log_odds, abs=1e-9)
    assert len(exp.features) == 5
    assert all(abs(a["contribution"]) >= abs(b["contribution"]) for a, b in zip(exp.features, exp.features[1:]))


def test_explanation_shows_the_bigram_that_decides():
    acc = Accumulator()
    acc.partial_fit(
        ["Paris Hilton at a party again", "Paris Hilton new reality show",
         "the Hilton in Paris has rooms", "book the Hilton hotel in Paris"],
        ["gossip", "gossip", "travel", "travel"],
    )
    clf = DirichletClassifier(acc, alpha=0.1)
    pred = clf.predict_one("Paris Hilton", explain=True)
    assert pred.label == "gossip"
    assert pred.explanation.features[0]["feature"] == "paris hilton"
    assert pred.explanation.features[0]["order"] == 2
    pred = clf.predict_one("the Hilton in Paris", explain=True)
    assert pred.label == "travel"


def test_unseen_text_falls_back_to_the_prior():
    acc = Accumulator()
    acc.partial_fit(["a b", "c d", "e f"], ["x", "x", "y"])
    clf = DirichletClassifier(acc, beta=1.0)
    probs = clf.predict_proba(["zzz qqq"])[0]
    np.testing.assert_allclose(probs, [3 / 5, 2 / 5])
    assert clf.explain("zzz qqq").n_unseen == 3  # two unigrams and a bigram


def test_unfitted_and_bad_parameters_answer_clearly():
    with pytest.raises(ValueError, match="no categories yet"):
        DirichletClassifier(Accumulator())
    acc = Accumulator()
    acc.learn_one("text", "x")
    with pytest.raises(ValueError, match="alpha"):
        DirichletClassifier(acc, alpha=0)


def test_complement_equals_complementnb_on_identical_weights(newsgroups_sample):
    from sklearn.naive_bayes import ComplementNB

    from accum.classify import ComplementClassifier

    texts, labels = newsgroups_sample
    acc = Accumulator()
    acc.partial_fit(texts[::2], labels[::2])
    # the accumulated weights are exactly the sum of each page's normalised log-TF vector
    X = feature_matrix(acc, texts[::2])
    X.data = np.log1p(X.data)
    X = sp.csr_matrix(X.multiply(1 / np.sqrt(X.multiply(X).sum(axis=1))))
    y = np.array([acc.categories.index(c) for c in labels[::2]])
    per_class = np.vstack([np.asarray(X[y == c].sum(axis=0)).ravel() for c in range(acc.n_categories)])
    np.testing.assert_allclose(acc.weights, per_class.T, atol=1e-6 * 300)  # fixed point: 2**-24 per page
    nb = ComplementNB(alpha=0.03)
    nb.fit(sp.csr_matrix(acc.weights.T), np.arange(acc.n_categories))  # one row per class: same sums
    clf = ComplementClassifier(acc, alpha=0.03)
    np.testing.assert_allclose(clf.feature_weights(acc.row_key), nb.feature_log_prob_.T, rtol=1e-12)
    test = feature_matrix(acc, texts[1::2])
    test.data[:] = 1  # a page's features count once
    np.testing.assert_allclose(clf.decision_function(texts[1::2]), test @ nb.feature_log_prob_.T, rtol=1e-9)


@pytest.mark.parametrize("name", ["dm", "complement", "ridge-complement"])
def test_every_model_explains_exactly_and_pickles(newsgroups_sample, name):
    import pickle

    from accum.classify import make_model

    texts, labels = newsgroups_sample
    acc = _fit(texts[1:], labels[1:])
    clf = make_model(acc, name)
    exp = clf.explain(texts[0] + " " + texts[0])  # repeated features: binary models count once
    scores = clf.decision_function([texts[0] + " " + texts[0]])[0]
    assert exp.log_odds == pytest.approx(np.sort(scores)[-1] - np.sort(scores)[-2], abs=1e-9)
    assert exp.prior + sum(f["contribution"] for f in exp.features) + exp.rest == pytest.approx(exp.log_odds, rel=1e-10)
    again = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(again.decision_function(texts[:5]), clf.decision_function(texts[:5]))
    with pytest.raises(ValueError, match="unknown model"):
        make_model(acc, "svm")


# -- ridge + complement (reads the hashed Gram the accumulator keeps) ---------------------


def _fit(texts, labels):
    """Counts that keep the Gram (``gram_bits`` 12), which the ridge model reads."""
    acc = Accumulator(Settings(gram_bits=12))
    acc.partial_fit(texts, labels)
    return acc


def _oracle_page_vectors(acc, texts, seen_only):
    """Hashed unigram weights of each page, from a plain-Python count of its features."""
    from collections import Counter

    from accum._kernels import gram_buckets

    bits = acc.settings.gram_bits
    out = np.zeros((len(texts), 1 << bits))
    for i, text in enumerate(texts):
        batch = tokenize([text])
        grams = batch.ngrams(acc.settings.max_order)
        tf = Counter(int(g) for g in grams.ravel() if g != 0)
        norm = np.sqrt(sum(np.log1p(n) ** 2 for n in tf.values()))
        unigrams = Counter(int(g) for g in grams[:, 0])
        for fid in unigrams:
            if seen_only and acc.rows_of(np.array([fid], np.uint64))[0] < 0:
                continue
            bucket, sign = gram_buckets(np.array([fid], np.uint64), bits)
            out[i, bucket[0]] += sign[0] * np.log1p(tf[fid]) / norm
    return out


def test_gram_is_the_sum_of_page_outer_products_and_merges_exactly(newsgroups_sample):
    texts, labels = newsgroups_sample
    acc = _fit(texts, labels)
    h = _oracle_page_vectors(acc, texts, False)
    # each unigram is rounded to 2**-16 before its bucket sums it: per entry and page the
    # error is below 2 * 2**-17 (a wrong bucket, sign or norm: ~0.01 to 1)
    np.testing.assert_allclose(acc.gram, h.T @ h, atol=len(texts) * 2**-16)
    halves = _fit(texts[::2], labels[::2]).merge(_fit(texts[1::2], labels[1::2]))
    np.testing.assert_array_equal(halves.packed_gram(), acc.packed_gram())  # integers: exact in any order
    again = Accumulator.from_arrays(acc.to_arrays())
    np.testing.assert_array_equal(again.packed_gram(), acc.packed_gram())
    assert len(acc.to_arrays()["gram_value"]) == np.count_nonzero(acc.packed_gram())  # stored sparse


def test_gram_bits_zero_keeps_no_gram_and_old_settings_mean_none():
    from accum.accumulator import Settings
    from accum.classify import RidgeComplementClassifier, default_model

    acc = Accumulator(Settings(gram_bits=0))
    acc.partial_fit(["a cat", "a dog"], ["c", "d"])
    assert len(acc._gram) == 0 and default_model(acc.settings) == "complement"
    with pytest.raises(ValueError, match="keeps no Gram"):
        acc.gram
    with pytest.raises(ValueError, match="needs the Gram"):
        RidgeComplementClassifier(acc)
    old = {k: v for k, v in Settings().to_dict().items() if k != "gram_bits"}  # a store made before the Gram
    assert Settings.from_dict(old).gram_bits == 0
    with pytest.raises(ValueError, match="gram_bits"):
        Settings(gram_bits=15)


@pytest.mark.parametrize("lam", [0.3, 3.0])
def test_ridge_part_equals_sklearn_ridge(newsgroups_sample, lam):
    from sklearn.linear_model import Ridge

    from accum.classify import RidgeComplementClassifier

    texts, labels = newsgroups_sample
    acc = _fit(texts[::2], labels[::2])
    clf = RidgeComplementClassifier(acc, lam=lam)
    y = np.array([acc.categories.index(c) for c in labels[::2]])
    targets = -np.ones((len(y), acc.n_categories))
    targets[np.arange(len(y)), y] = 1
    pages = _oracle_page_vectors(acc, texts[::2], False)
    ridge = Ridge(alpha=lam, fit_intercept=True).fit(pages, targets)
    test = texts[1::2]
    ours, comp = clf._scores(test)
    theirs = ridge.predict(_oracle_page_vectors(acc, test, True))  # unseen unigrams carry nothing
    # the per-category sums come from the accumulator's weights (rounded to 2**-24 per page),
    # the Gram from vectors rounded to 2**-16: with 150 pages in 4,096 buckets the ridge is
    # underdetermined and the rounding shows at ~1e-4 (a wrong centring or sign: ~0.1)
    np.testing.assert_allclose(ours, theirs, atol=1e-3)
    np.testing.assert_allclose(comp, ComplementClassifier(acc).decision_function(test), rtol=1e-9)


def test_ridge_complement_blends_standardised_scores_and_explains_exactly(newsgroups_sample):
    import pickle

    from accum.classify import RidgeComplementClassifier

    texts, labels = newsgroups_sample
    acc = _fit(texts[1:], labels[1:])
    clf = RidgeComplementClassifier(acc, lam=0.3, blend=0.7)
    page = texts[0] + " " + texts[0] + " zzqx unseenword"
    ridge, comp = clf._scores([page])
    scores = clf.decision_function([page])[0]

    def z(s):
        return (s - s.mean()) / s.std()

    np.testing.assert_allclose(scores, z(ridge[0]) + 0.7 * z(comp[0]), rtol=1e-12)
    exp = clf.explain(page, n_terms=7)
    top2 = np.argsort(-scores)[:2]
    assert [exp.winner, exp.runner_up] == [acc.categories[i] for i in top2]
    assert exp.log_odds == pytest.approx(scores[top2[0]] - scores[top2[1]], abs=1e-12)
    assert exp.prior + sum(f["contribution"] for f in exp.features) + exp.rest == pytest.approx(exp.log_odds, rel=1e-10)
    assert len(exp.features) == 7 and exp.n_unseen >= 2
    assert exp.features[0]["count"] >= 2  # the page is doubled: every feature counts twice
    again = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(again.decision_function(texts[:5]), clf.decision_function(texts[:5]))
    assert clf.predict(texts[1:21]) == labels[1:21]  # fits its training pages


def test_ridge_complement_refuses_bad_parameters(newsgroups_sample):
    from accum.classify import RidgeComplementClassifier

    texts, labels = newsgroups_sample
    acc = _fit(texts[:40], labels[:40])
    with pytest.raises(ValueError, match="lam"):
        RidgeComplementClassifier(acc, lam=0)
    with pytest.raises(ValueError, match="blend"):
        RidgeComplementClassifier(acc, blend=-1)


@pytest.mark.parametrize("name", ["dm", "complement", "ridge-complement"])
def test_scores_do_not_depend_on_how_texts_are_chunked(newsgroups_sample, name, monkeypatch):
    from accum import classify, prediction

    texts, labels = newsgroups_sample
    acc = _fit(texts[::2], labels[::2])
    clf = classify.make_model(acc, name)
    test = texts[1::2] + ["", "zzqx unseenword"]
    whole = clf.decision_function(test)
    one_by_one = np.vstack([clf.decision_function([t]) for t in test])
    monkeypatch.setattr(prediction, "CHUNK_CHARS", 5000)  # a few pages a chunk
    assert len(prediction._chunk_ends(test)) > 10
    np.testing.assert_array_equal(clf.decision_function(test), whole)
    np.testing.assert_array_equal(one_by_one, whole)
    assert clf.decision_function([]).shape == (0, acc.n_categories)


@pytest.mark.parametrize("name", ["dm", "complement", "ridge-complement"])
def test_a_model_saved_as_arrays_scores_and_explains_the_same(newsgroups_sample, name):
    from accum.classify import make_model, model_from_arrays

    texts, labels = newsgroups_sample
    acc = _fit(texts[::2], labels[::2])
    clf = make_model(acc, name)
    state = clf.to_arrays()
    assert {"model", "categories", "settings", "alpha", "table", "entries"} <= set(state)
    again = model_from_arrays({k: v.copy() if isinstance(v, np.ndarray) else v for k, v in state.items()})
    assert type(again) is type(clf) and again.categories == acc.categories and again.settings == acc.settings
    np.testing.assert_array_equal(again.decision_function(texts[1::2]), clf.decision_function(texts[1::2]))
    assert again.explain(texts[1]).to_dict() == clf.explain(texts[1]).to_dict()
    assert again.nbytes == clf.nbytes > 0
    with pytest.raises(ValueError, match="not a saved model"):
        model_from_arrays({**state, "model": "no-such-model"})
    with pytest.raises(ValueError, match="not a saved model"):
        model_from_arrays({**state, "model": "svm"})  # a count model's arrays are not an SVM's

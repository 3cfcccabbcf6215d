"""Accumulators: exact counts, merge = all at once, round trips."""

import pickle

import numpy as np
import pytest

from accum import _kernels
from accum.accumulator import Accumulator, Settings

import naive

DOCS = [
    ("Chinese Beijing Chinese", "china"),
    ("Chinese Chinese Shanghai", "china"),
    ("Chinese Macao", "china"),
    ("Tokyo Japan Chinese", "japan"),
    ("Paris Hilton was seen at the Hilton in Paris.", "gossip"),
    ("The Hilton in Paris is a hotel; Paris Hilton is not.", "travel"),
]


@pytest.mark.parametrize("order", [1, 2, 3])
def test_counts_equal_oracle(order):
    texts, labels = zip(*DOCS)
    acc = Accumulator(Settings(max_order=order))
    acc.partial_fit(list(texts), list(labels))
    assert acc.canonical() == naive.accumulate(list(texts), list(labels), order)
    assert acc.doc_counts.tolist() == [3, 1, 1, 1]
    assert acc.token_counts.sum() == sum(len(naive.tokenize(t)) for t in texts)


def test_counts_equal_oracle_on_real_pages(newsgroups_sample):
    texts, labels = newsgroups_sample
    acc = Accumulator()
    acc.partial_fit(texts, labels)
    assert acc.canonical() == naive.accumulate(texts, labels, 2)


def test_bigrams_tell_paris_hilton_from_the_hilton_in_paris():
    acc = Accumulator()
    acc.partial_fit([t for t, _ in DOCS[4:]], [c for _, c in DOCS[4:]])
    assert acc.count("paris hilton") == {"gossip": 1, "travel": 1}
    assert acc.count("hilton paris") == {"gossip": 0, "travel": 0}
    assert acc.count("in paris") == {"gossip": 1, "travel": 1}
    assert acc.count("paris") == {"gossip": 2, "travel": 2}


def test_merge_of_halves_equals_all_at_once(newsgroups_sample):
    texts, labels = newsgroups_sample
    whole = Accumulator()
    whole.partial_fit(texts, labels)
    half = len(texts) // 2
    a, b = Accumulator(), Accumulator()
    a.partial_fit(texts[:half], labels[:half])
    b.partial_fit(texts[half:][::-1], labels[half:][::-1])  # other order, other row layout
    merged = a.merge(b)
    assert merged.canonical() == whole.canonical()
    assert dict(zip(merged.categories, merged.doc_counts)) == dict(zip(whole.categories, whole.doc_counts))
    assert dict(zip(merged.categories, merged.token_counts)) == dict(zip(whole.categories, whole.token_counts))
    assert merged.lexicon == whole.lexicon


def test_adding_later_equals_adding_at_once():
    texts, labels = zip(*DOCS)
    once = Accumulator()
    once.partial_fit(list(texts), list(labels))
    later = Accumulator()
    for t, c in DOCS:
        later.learn_one(t, c)
    assert later.canonical() == once.canonical()


def test_growth_keeps_counts_exact():
    # thousands of distinct tokens force many table and row reallocations
    texts = [" ".join(f"w{i}_{j}" for j in range(300)) for i in range(40)]
    labels = [f"c{i % 7}" for i in range(40)]
    acc = Accumulator()
    acc.partial_fit(texts, labels)
    assert acc.canonical() == naive.accumulate(texts, labels, 2)
    assert acc.n_categories == 7


def test_round_trips_through_arrays_and_pickle():
    texts, labels = zip(*DOCS)
    acc = Accumulator(Settings(max_order=3))
    acc.partial_fit(list(texts), list(labels))
    for copy in (Accumulator.from_arrays(acc.to_arrays()), pickle.loads(pickle.dumps(acc))):
        assert copy.canonical() == acc.canonical()
        assert copy.categories == acc.categories
        assert copy.lexicon == acc.lexicon
        assert copy.settings == acc.settings
        copy.learn_one("more Chinese text", "china")  # still writable
        assert copy.count("chinese")["china"] == acc.count("chinese")["china"] + 1


def test_feature_text_and_orders():
    acc = Accumulator(Settings(max_order=3))
    acc.learn_one("New York City", "us")
    texts = sorted(acc.feature_text(r) for r in range(acc.n_rows))
    assert texts == ["city", "new", "new york", "new york city", "york", "york city"]
    assert sorted(acc.row_order.tolist()) == [1, 1, 1, 2, 2, 3]


def test_bad_input_is_refused_clearly():
    acc = Accumulator()
    with pytest.raises(ValueError, match="2 texts but 1 labels"):
        acc.partial_fit(["a", "b"], ["x"])
    with pytest.raises(ValueError, match="non-empty str"):
        acc.learn_one("text", "")
    with pytest.raises(TypeError, match="learn_one"):
        acc.partial_fit("just one string", ["x"])
    with pytest.raises(ValueError, match="max_order"):
        Settings(max_order=0)
    other = Accumulator(Settings(max_order=1))
    with pytest.raises(ValueError, match="cannot merge"):
        acc.merge(other)


def test_empty_documents_count_as_documents_without_tokens():
    acc = Accumulator()
    acc.partial_fit(["", "word"], ["a", "a"])
    assert acc.doc_counts.tolist() == [2] and acc.token_counts.tolist() == [1]


@pytest.mark.parametrize("order", [1, 2, 3])
def test_growth_log_equals_oracle(newsgroups_sample, order):
    texts, labels = newsgroups_sample
    # interleave groups so categories grow side by side, as in a crawl
    idx = sorted(range(len(texts)), key=lambda i: (i % 15, i))
    texts, labels = [texts[i] for i in idx], [labels[i] for i in idx]
    acc = Accumulator(Settings(max_order=order, prune_k=3))
    for start in range(0, len(texts), 37):  # batch boundaries must not matter
        acc.partial_fit(texts[start : start + 37], labels[start : start + 37])
    assert acc.take_growth().tolist() == naive.growth_log(texts, labels, order, prune_k=3)
    assert acc.take_growth().shape[0] == 0  # taken once


def test_growth_stats_equal_a_recount_after_reload_and_merge(newsgroups_sample):
    texts, labels = newsgroups_sample
    acc = Accumulator()
    acc.partial_fit(texts, labels)
    reloaded = Accumulator.from_arrays(acc.to_arrays())  # recomputes stats from counts
    for mine, theirs in zip(acc.growth_stats(), reloaded.growth_stats()):
        np.testing.assert_array_equal(mine, theirs)
    a, b = Accumulator(), Accumulator()
    a.partial_fit(texts[::2], labels[::2])
    b.partial_fit(texts[1::2], labels[1::2])
    merged = a.merge(b)
    order = [merged.categories.index(c) for c in acc.categories]
    np.testing.assert_array_equal(merged.growth_stats()[0][order], acc.growth_stats()[0])
    np.testing.assert_array_equal(merged.growth_stats()[1], acc.growth_stats()[1])


def test_counting_without_growth_tracking_counts_the_same(newsgroups_sample):
    texts, labels = newsgroups_sample
    tracked, untracked = Accumulator(), Accumulator(track_growth=False)
    tracked.partial_fit(texts, labels)
    untracked.partial_fit(texts, labels)
    assert untracked.canonical() == tracked.canonical()
    assert untracked.take_growth().shape[0] == 0 and tracked.take_growth().shape[0] > 0


def test_pairs_are_the_nonzero_counts_in_row_major_order(newsgroups_sample):
    texts, labels = newsgroups_sample
    idx = sorted(range(len(texts)), key=lambda i: (i % 7, i))  # categories interleaved
    acc = Accumulator()
    for start in range(0, len(idx), 50):
        acc.partial_fit([texts[i] for i in idx[start : start + 50]], [labels[i] for i in idx[start : start + 50]])
    counts, weights = acc.counts, acc.weights
    rows, cats, values, fixed = acc.pairs()
    want_rows, want_cats = np.nonzero(counts)
    np.testing.assert_array_equal(rows, want_rows)
    np.testing.assert_array_equal(cats, want_cats)
    np.testing.assert_array_equal(values, counts[rows, cats])
    np.testing.assert_array_equal(fixed / _kernels.WEIGHT_SCALE, weights[rows, cats])
    assert acc.n_pairs == len(rows) and (weights[counts == 0] == 0).all()
    loose = acc.pairs(ordered=False)  # same pairs, in the order they were first counted
    assert sorted(zip(*(a.tolist() for a in loose))) == list(zip(rows.tolist(), cats.tolist(), values.tolist(),
                                                                 fixed.tolist()))
    row = acc.rows_of(np.array([naive.token_id("the")], np.uint64))[0]
    assert acc.count("the") == dict(zip(acc.categories, counts[row].tolist()))


def test_memory_follows_nonzero_counts_not_rows_times_categories():
    # 300 categories of one page each: a dense matrix would be rows x 300
    texts = [" ".join(f"w{i}x{j} common" for j in range(20)) for i in range(300)]
    acc = Accumulator(Settings(gram_bits=0))  # the Gram's size is fixed (see Settings)
    acc.partial_fit(texts, [f"c{i}" for i in range(300)])
    held = sum(v.nbytes for v in vars(acc).values() if isinstance(v, np.ndarray))
    assert acc.n_categories == 300 and acc.n_pairs == (acc.counts != 0).sum()
    assert held < acc.n_rows * acc.n_categories * 16 / 10
    assert acc.count("common") == {f"c{i}": 20 for i in range(300)}


def test_merge_maps_categories_and_adds_pairs_exactly():
    texts = [" ".join(f"t{(i * 7 + j) % 50}" for j in range(30)) for i in range(60)]
    labels = [f"c{(i * 5) % 13}" for i in range(60)]
    a, b, c = Accumulator(), Accumulator(), Accumulator()
    a.partial_fit(texts[:20], labels[:20])
    b.partial_fit(texts[20:][::-1], labels[20:][::-1])  # categories first seen in another order
    c.merge(a).merge(b)
    assert c.canonical() == naive.accumulate(texts, labels, 2)
    reloaded = Accumulator.from_arrays(c.to_arrays())
    reloaded.partial_fit(texts[:5], labels[:5])
    c.partial_fit(texts[:5], labels[:5])
    assert reloaded.canonical() == c.canonical() == naive.accumulate(texts + texts[:5], labels + labels[:5], 2)


def test_gram_pages_added_by_tiles_equal_the_sum_of_outer_products():
    from accum import _gram_kernels

    rng = np.random.default_rng(5)
    n_buckets = 1 << 11  # several tiles per side
    sizes = rng.integers(0, 300, 40)  # empty pages too
    bounds = np.r_[0, np.cumsum(sizes)]
    bucket = rng.integers(0, n_buckets, bounds[-1])  # repeats add up
    value = rng.integers(-(1 << 16), 1 << 16, bounds[-1])
    h = np.zeros((len(sizes), n_buckets), np.int64)
    for p in range(len(sizes)):
        np.add.at(h[p], bucket[bounds[p]:bounds[p + 1]], value[bounds[p]:bounds[p + 1]])
    gram = np.zeros(n_buckets * (n_buckets + 1) // 2, np.int64)
    _gram_kernels.gram_add_pages(gram, n_buckets, bounds, bucket.astype(np.uint16), value.astype(np.int32))
    full = np.zeros((n_buckets, n_buckets))
    _gram_kernels.gram_unpack(gram, n_buckets, full)
    np.testing.assert_array_equal(full, (h.T @ h).astype(np.float64))


def test_giant_tokens_are_spelled_short_and_counted_whole():
    """A 2 MB run of letters is one token: the lexicon keeps 64 bytes of it and "…" (cut
    between characters), while its id and counts are those of the whole token."""
    from accum.accumulator import MAX_SPELLING_BYTES
    from accum.tokens import tokenize

    giant = "ab" * 1_000_000
    accented = "a" + "\u00e9" * 40  # 81 bytes: the 64th byte is inside an é
    acc = Accumulator(Settings(max_order=2))
    acc.learn_one(f"the {giant} and {accented} word", "spam")
    acc.learn_one(f"{giant} again", "spam")
    ids = tokenize([giant, accented]).ids.tolist()
    assert acc.lexicon[ids[0]] == "ab" * 32 + "\u2026"
    assert acc.lexicon[ids[1]] == "a" + "\u00e9" * 31 + "\u2026"
    assert max(len(w.removesuffix("\u2026").encode()) for w in acc.lexicon.values()) <= MAX_SPELLING_BYTES
    assert acc.count(giant) == {"spam": 2} and acc.count(f"the {giant}") == {"spam": 1}
    row = int(acc.rows_of(np.array(ids[:1], np.uint64))[0])
    assert acc.feature_text(row) == "ab" * 32 + "\u2026"
    assert Accumulator.from_arrays(acc.to_arrays()).lexicon == acc.lexicon
    assert acc.lexicon[tokenize(["word"]).ids[0]] == "word"  # short tokens are kept whole

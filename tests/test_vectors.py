"""Page vectors: each page's distinct features and counts, as the counting kernel writes them."""

from collections import Counter

import numpy as np

import naive
from accum.accumulator import Accumulator, Settings
from accum.vectors import PageVectors


def naive_vector(text: str, order: int) -> list[tuple[int, int]]:
    """(feature id, count) of a page's distinct features in order of first occurrence."""
    counts = Counter()
    for fid, _ in naive.feature_ids(naive.tokenize(text), order):
        counts[fid] += 1
    return list(counts.items())  # a Counter keeps first-insertion order


def test_vectors_equal_the_oracle_and_sum_to_the_counts(newsgroups_sample):
    texts, labels = newsgroups_sample
    texts, labels = texts[:120], labels[:120]
    acc = Accumulator(Settings(max_order=3), keep_vectors=True)
    for start in range(0, len(texts), 25):  # several batches, and kernel calls that stop to grow the tables
        acc.partial_fit(texts[start : start + 25], labels[start : start + 25])
    vectors = acc.take_vectors()
    assert vectors.n_pages == len(texts) and acc.take_vectors().n_pages == 0
    assert vectors.label_names == labels
    for i, text in enumerate(texts):
        fids, tfs = vectors.page(i)
        assert list(zip(fids.tolist(), tfs.tolist())) == naive_vector(text, 3)
        assert vectors.n_tokens[i] == len(naive.tokenize(text))
    summed = {}
    for i in range(vectors.n_pages):
        for fid, tf in zip(*map(np.ndarray.tolist, vectors.page(i))):
            by_cat = summed.setdefault(fid, {})
            by_cat[labels[i]] = by_cat.get(labels[i], 0) + tf
    assert summed == acc.canonical()


def test_concat_relabels_and_subset_takes_pages():
    one = Accumulator(keep_vectors=True)
    one.partial_fit(["a b", "c d e"], ["x", "y"])
    two = Accumulator(keep_vectors=True)
    two.partial_fit(["f", "g h"], ["y", "z"])
    both = PageVectors.concat([one.take_vectors(), two.take_vectors()])
    assert both.categories == ("x", "y", "z") and both.label_names == ["x", "y", "y", "z"]
    assert both.n_tokens.tolist() == [2, 3, 1, 2] and both.nnz == 3 + 5 + 1 + 3
    picked = both.subset(np.array([3, 1]))
    assert picked.label_names == ["z", "y"] and picked.n_tokens.tolist() == [2, 3]
    for mine, theirs in zip((picked.page(0), picked.page(1)), (both.page(3), both.page(1))):
        assert mine[0].tolist() == theirs[0].tolist() and mine[1].tolist() == theirs[1].tolist()


def keyed(acc: Accumulator) -> dict:
    """Everything an accumulator holds, keyed by feature id and category name (row numbers
    depend on the order features were first seen)."""
    rows, cats, counts, weights = acc.pairs()
    key = acc.row_key
    pairs = {(int(key[r]), acc.categories[c]): (int(n), int(w)) for r, c, n, w in
             zip(rows.tolist(), cats.tolist(), counts.tolist(), weights.tolist())}
    info = {int(k): tuple(int(x) for x in acc.raw_rows[r, 1:]) for r, k in enumerate(key.tolist())}
    stats = dict(zip(acc.categories, acc.growth_stats()[0].tolist()))
    return {"pairs": pairs, "rows": info, "lexicon": acc.lexicon, "stats": stats, "all": acc.growth_stats()[1].tolist(),
            "docs": dict(zip(acc.categories, acc.doc_counts.tolist())),
            "tokens": dict(zip(acc.categories, acc.token_counts.tolist())),
            "gram": acc.packed_gram().tolist() if acc.settings.gram_bits else None}


def test_taking_pages_back_equals_never_adding_them(newsgroups_sample):
    texts, labels = newsgroups_sample
    texts, labels = texts[:160], labels[:160]
    settings = Settings(max_order=3, gram_bits=8)
    acc = Accumulator(settings, keep_vectors=True)
    for start in range(0, len(texts), 40):
        acc.partial_fit(texts[start : start + 40], labels[start : start + 40])
    vectors = acc.take_vectors()
    forget = np.array([0, 3, 17, 18, 99, 159])  # the first page too: its features came first
    acc.subtract(vectors.subset(forget))
    kept = [i for i in range(len(texts)) if i not in set(forget.tolist())]
    clean = Accumulator(settings)
    for name in acc.categories:  # the same category order
        clean.category_index(name)
    clean.partial_fit([texts[i] for i in kept], [labels[i] for i in kept])
    assert keyed(acc) == keyed(clean)
    import pytest

    with pytest.raises(ValueError, match="was not added"):  # twice is refused, and changes nothing
        acc.subtract(vectors.subset(forget[:1]))
    assert keyed(acc) == keyed(clean)

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

"""The tokenising and n-gram kernels against the pure-Python oracles in naive.py."""

import numpy as np
from hypothesis import given, settings, strategies as st

from accum import _kernels
from accum.tokens import tokenize

import naive

TEXTS = [
    "Hello, World! The cat sat on the mat.",
    "Café naïve—résumé «quoted» 3.14 x×y ÷ 2026",
    "Paris Hilton stayed at the Hilton in Paris",
    "日本語のテキスト、句読点。 emoji 🙂 here",
    "",
    "   \t\n",
    "ALL CAPS and MiXeD",
]


def test_tokens_match_oracle_on_examples():
    batch = tokenize(TEXTS)
    for d, text in enumerate(TEXTS):
        got = [batch.token_text(i) for i in range(batch.bounds[d], batch.bounds[d + 1])]
        assert got == naive.tokenize(text)
        ids = batch.ids[batch.bounds[d] : batch.bounds[d + 1]].tolist()
        assert ids == [naive.token_id(t) for t in got]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(max_size=60), max_size=5))
def test_tokens_match_oracle_on_any_text(texts):
    texts = [t.encode("utf-8", "replace").decode("utf-8") for t in texts]  # no lone surrogates
    batch = tokenize(texts)
    for d, text in enumerate(texts):
        want = naive.tokenize(text)
        got = [batch.token_text(i) for i in range(batch.bounds[d], batch.bounds[d + 1])]
        assert got == want
        assert batch.ids[batch.bounds[d] : batch.bounds[d + 1]].tolist() == [naive.token_id(t) for t in want]


def test_invalid_utf8_splits_tokens_and_never_crashes():
    raw = b"abc\xff\xfedef\xc3(ghi\xe2\x82"
    buf = np.frombuffer(raw, np.uint8)
    ids, starts, lengths, bounds = _kernels.tokenize(buf, np.array([0, len(raw)], np.int64))
    words = [raw[s : s + n] for s, n in zip(starts, lengths)]
    assert words == [b"abc", b"def", b"ghi"]
    assert bounds.tolist() == [0, 3]


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_tokenize_into_valid_spans(raw):
    buf = np.frombuffer(raw, np.uint8)
    ids, starts, lengths, bounds = _kernels.tokenize(buf, np.array([0, len(raw)], np.int64))
    assert (ids != 0).all()
    assert (lengths > 0).all() and (starts + lengths <= len(raw)).all()
    assert (np.diff(starts) > 0).all()


def test_ngram_ids_match_oracle_and_respect_document_starts():
    texts = ["a b c d", "e f", "g"]
    batch = tokenize(texts)
    grams = batch.ngrams(3)
    for d, text in enumerate(texts):
        want = naive.feature_ids(naive.tokenize(text), 3)
        rows = grams[batch.bounds[d] : batch.bounds[d + 1]]
        got = [int(g) for row in rows for g in row if g != 0]
        assert got == [fid for fid, _ in want]
    # the first token of each document has no bigram or trigram
    assert (grams[batch.bounds[:-1][np.diff(batch.bounds) > 0], 1:] == 0).all()


def test_bigram_ids_are_ordered_and_distinct_from_unigrams():
    a, b = naive.token_id("paris"), naive.token_id("hilton")
    assert naive.ngram_id(a, b, 2) != naive.ngram_id(b, a, 2)
    assert naive.ngram_id(a, b, 2) not in (a, b)
    assert _kernels.ngram_id(np.uint64(a), np.uint64(b), 2) == naive.ngram_id(a, b, 2)

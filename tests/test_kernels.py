"""The tokenising and n-gram kernels against the pure-Python oracles in naive.py."""

import numpy as np
from hypothesis import given, settings, strategies as st

from accum import _kernels
from accum.accumulator import Accumulator, Settings
from accum.tokens import TokenBatch, tokenize

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


def crafted_batch(ids: list[int], docs: list[int]) -> TokenBatch:
    """A batch whose token ids are ``ids`` (not hashes of its text), in documents of
    ``docs`` tokens each; token i's text is "t<i>"."""
    words = [f"t{i}".encode() for i in range(len(ids))]
    buf = np.frombuffer(b" ".join(words), np.uint8)
    starts = np.cumsum([0] + [len(w) + 1 for w in words[:-1]]).astype(np.int64)
    lengths = np.array([len(w) for w in words], np.int32)
    return TokenBatch(buf, np.array(ids, np.uint64), starts, lengths, np.cumsum([0] + docs).astype(np.int64))


def test_pair_table_tells_apart_features_that_share_a_hash_or_a_tag():
    """A pair-table entry keeps only a 32-bit tag of ``fid ^ category_salt(category)``:
    features made to share the whole hash (in other categories) or its tag and first
    slot (in the same one) still count apart, through growth, reload and merge."""
    rng = np.random.default_rng(5)
    salt = [int(_kernels.category_salt(np.int64(c))) for c in range(3)]
    base = [int(x) for x in rng.integers(1, 2**63, 40, dtype=np.int64)]
    ids, cats = [], []
    for fid in base:
        top = (salt[0] ^ salt[1]) & ~(2**32 - 1)  # same tag and low id bits as (fid, 0)
        for twin, cat in ((fid, 0), (fid ^ 1, 0), (fid ^ 2**20, 0), (fid ^ salt[0] ^ salt[1], 1),
                          (fid ^ top, 1), (fid ^ salt[0] ^ salt[2], 2), (fid, 2)):
            ids.append(twin)
            cats.append(cat)
    ids, cats = ids * 3, cats * 3  # counts of 3
    filler = [int(x) for x in rng.integers(1, 2**63, 5000, dtype=np.int64)]  # forces table growth
    batch = crafted_batch(ids + filler, [1] * len(ids) + [len(filler)])
    labels = [f"c{c}" for c in cats] + ["c0"]
    acc = Accumulator(Settings(max_order=1))
    acc.add_tokens(batch, labels)
    want = {}
    for fid, label in zip(ids + filler, labels[:-1] + ["c0"] * len(filler)):
        want.setdefault(fid, {}).setdefault(label, 0)
        want[fid][label] += 1
    assert acc.canonical() == want
    assert Accumulator.from_arrays(acc.to_arrays()).canonical() == want
    merged = Accumulator(Settings(max_order=1))
    merged.learn_one("unrelated page", "c2")
    merged.merge(acc)
    want[naive.token_id("unrelated")] = {"c2": 1}
    want[naive.token_id("page")] = {"c2": 1}
    assert merged.canonical() == want
    row_cat = {(fid, c): p for p, (fid, c) in enumerate(zip(acc.row_key[acc.pairs(False)[0]].tolist(),
                                                              acc.pairs(False)[1].tolist()))}
    for (fid, c), p in row_cat.items():
        assert _kernels.pair_find(acc._pair_table, acc._pairs, np.uint64(fid), c) == p
    assert _kernels.pair_find(acc._pair_table, acc._pairs, np.uint64(base[0] ^ 4), 0) == -1


# -- scoring: the distinct features of a page and their rows ------------------------------


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.integers(1, 6), max_size=40), max_size=6), st.integers(1, 3))
def test_page_features_are_the_distinct_ngrams_in_first_occurrence_order(docs, order):
    """Few distinct token ids, so n-grams repeat within pages and across them."""
    batch = crafted_batch([naive.token_id(f"w{i}") for doc in docs for i in doc], [len(doc) for doc in docs])
    grams = batch.ngrams(order)
    fids, tfs, first, bounds = _kernels.page_features(grams, batch.bounds)
    for d in range(len(docs)):
        page = grams[batch.bounds[d] : batch.bounds[d + 1]]
        want: dict[int, list] = {}
        for t, k in zip(*np.nonzero(page)):
            at = (int(batch.bounds[d]) + int(t)) * order + int(k)
            want.setdefault(int(page[t, k]), [0, at])[0] += 1
        a, b = bounds[d], bounds[d + 1]
        assert fids[a:b].tolist() == list(want)
        assert tfs[a:b].tolist() == [n for n, _ in want.values()]
        assert first[a:b].tolist() == [at for _, at in want.values()]
    assert bounds[-1] == len(fids)


def test_lookup_rows_finds_every_row_past_the_prefetch_distance(newsgroups_sample):
    texts, labels = newsgroups_sample
    acc = Accumulator()
    acc.partial_fit(texts[:50], labels[:50])
    grams = tokenize(texts[40:60]).ngrams(acc.settings.max_order)
    assert grams.size > 10 * _kernels.AHEAD
    rows = _kernels.lookup_rows(grams, acc._slots, acc._row_info)
    want = [_kernels.table_lookup(acc._slots, acc._row_info, g) if g else -1 for g in grams.ravel()]
    assert rows.ravel().tolist() == want
    assert (rows >= 0).any() and (rows[grams != 0] == -1).any()  # seen and unseen n-grams

"""The n-gram generator against the pure-Python oracles in naive_markov.py, plus its contracts."""

import math
import pickle

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from accum import _markov_kernels as K
from accum._markov_kernels import chains as KC, decoding as KD, sampling as KS
from accum._primitives import SALT, mix64
from accum.markov import ABBREVIATIONS, MarkovAccumulator, VerbatimIndex, tokenize

import naive_markov as naive

DOCS = [
    ("In the beginning God created the heaven and the earth.", "law"),
    ("And the earth was without form, and void; and darkness was upon the face of the deep.", "law"),
    ('He said, "Don\'t go." Then Mr. Smith left (quietly)... The end!', "story"),
    ("And God said, Let there be light: and there was light.", "law"),
    ("The Lord's day. It was good? Yes! 'Quite so,' she said.", "story"),
    ("", "story"),
]
HELD_OUT = ["And God saw the light, that it was good.", "Mr. Smith said: \"Let there be tea!\" unseen-word"]
TEXTS = [t for t, _ in DOCS]
LABELS = [lab for _, lab in DOCS]


@pytest.fixture(scope="module")
def kjv_verses():
    from corpora import corpus_path

    return corpus_path("kjv-bible/kjv.txt").read_text(encoding="cp1252").splitlines()


def fitted(order=3, texts=TEXTS, labels=LABELS, **kw):
    m = MarkovAccumulator(order=order, **kw)
    m.partial_fit(texts, labels)
    return m


# -- tokeniser ----------------------------------------------------------------------------

TOKEN_TEXTS = TEXTS + [
    "Café naïve—résumé «quoted» 3.14 x×y ÷ 2026 don’t 'tis sheep' rock'n'roll",
    "日本語のテキスト、句読点。 emoji 🙂 here",
    "",
    "   \t\n",
    "well-known -- dash...and ?!",
]


def check_tokens(texts):
    batch = tokenize(texts)
    for d, text in enumerate(texts):
        want = naive.tokenize(text)
        got = batch.doc_tokens(d)
        assert got == [t[0] for t in want]
        sl = slice(batch.bounds[d], batch.bounds[d + 1])
        assert batch.ids[sl].tolist() == [t[1] for t in want]
        assert batch.info[sl].tolist() == [t[2] for t in want]


def test_tokens_match_oracle_on_examples():
    check_tokens(TOKEN_TEXTS)
    assert tokenize(["He said, \"Don't.\""]).doc_tokens(0) == ["He", "said", ",", '"', "Don't", ".", '"']


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(max_size=60), max_size=4))
def test_tokens_match_oracle_on_any_text(texts):
    check_tokens([t.encode("utf-8", "replace").decode("utf-8") for t in texts])


def test_tokens_grow_past_the_first_guess():
    texts = ["word " * 30, "!?" * 150 + " end", "x"]  # the second has a token per byte
    assert len(tokenize(texts).ids) > sum(map(len, texts)) // K.TOKEN_BYTES + 16
    check_tokens(texts)


def test_lexicon_keeps_each_tokens_text_and_info():
    m = MarkovAccumulator(order=1)
    m.partial_fit(TOKEN_TEXTS)
    for text in TOKEN_TEXTS:
        for token, key, info in naive.tokenize(text):
            assert (m.lexicon[key], m.token_info[key]) == (token, info)


def test_lexicon_keeps_a_newline_inside_a_custom_token():
    from accum.markov import MarkovTokens

    class Lines(MarkovAccumulator):
        def tokenize(self, texts):  # one token per text, newlines and all
            buf = np.frombuffer("".join(texts).encode(), np.uint8)
            n = len(texts)
            lengths = np.array([len(t.encode()) for t in texts], np.int32)
            starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
            return MarkovTokens(buf, np.arange(100, 100 + n, dtype=np.uint64), starts, lengths,
                                np.arange(n + 1, dtype=np.int64), np.full(n, K.K_WORD | 24, np.uint8))

    m = Lines(order=1)
    m.partial_fit(["one\ntwo", "three"])
    assert m.lexicon[100] == "one\ntwo" and m.lexicon[101] == "three"


def test_words_share_the_classifier_ids():
    from accum.tokens import tokenize as classifier_tokenize

    ours = tokenize(["Paris Hilton"]).ids.tolist()
    theirs = classifier_tokenize(["Paris Hilton"], lowercase=False).ids.tolist()
    assert ours == theirs


def test_sentence_starts_match_oracle():
    abbrev = np.unique(tokenize([" ".join(sorted(ABBREVIATIONS))]).ids)
    batch = tokenize(TOKEN_TEXTS)
    got = K.sentence_starts(batch.ids, batch.info, batch.bounds, abbrev)
    for d, text in enumerate(TOKEN_TEXTS):
        want = naive.sentence_starts(naive.tokenize(text), set(ABBREVIATIONS))
        assert got[batch.bounds[d] : batch.bounds[d + 1]].tolist() == want
    starts = naive.sentence_starts(naive.tokenize(TEXTS[2]), set(ABBREVIATIONS))
    words = [t[0] for t, s in zip(naive.tokenize(TEXTS[2]), starts) if s]
    assert words == ["He", "Then", "The"]  # not after "Mr."


# -- counts -------------------------------------------------------------------------------


@pytest.mark.parametrize("order", [1, 2, 3, 5])
def test_counts_equal_oracle(order):
    m = fitted(order)
    assert m.canonical() == naive.canonical_counts(TEXTS, LABELS, order, set(ABBREVIATIONS))
    assert m.doc_counts.tolist() == [3, 3]
    assert m.n_tokens == sum(len(naive.tokenize(t)) for t in TEXTS)


def test_counts_equal_oracle_on_kjv_verses(kjv_verses):
    texts = kjv_verses[:300]
    m = MarkovAccumulator(order=4)
    m.partial_fit(texts)
    assert m.canonical() == naive.canonical_counts(texts, ["default"] * len(texts), 4, set(ABBREVIATIONS))


def test_count_lookup():
    m = fitted(3)
    assert m.count("the earth") == 2
    assert m.count("the earth", category="law") == 2
    assert m.count("the earth", category="story") == 0
    assert m.count("And") == 2
    assert m.count("God said,") == 1
    assert m.count("said ,") == 0  # a comma with space before is another token
    with pytest.raises(ValueError):
        m.count("a b c d")


def test_merge_of_halves_equals_all_at_once():
    whole = fitted(4)
    a = fitted(4, TEXTS[:3], LABELS[:3])
    b = fitted(4, TEXTS[3:], LABELS[3:])
    ba = fitted(4, TEXTS[3:], LABELS[3:]).merge(fitted(4, TEXTS[:3], LABELS[:3]))
    a.merge(b)
    assert a.canonical() == whole.canonical() == ba.canonical()
    assert a.doc_counts.tolist() == whole.doc_counts.tolist()
    assert a.lexicon == whole.lexicon
    for method in ("kn", "dirichlet"):
        np.testing.assert_allclose(a.log_probs(HELD_OUT, method=method),
                                   whole.log_probs(HELD_OUT, method=method), rtol=1e-13)
    # the same counts give the same text for the same seed, whatever the merge order
    assert a.generate(60, seed=7) == ba.generate(60, seed=7) == whole.generate(60, seed=7)


def test_merge_refuses_other_orders():
    with pytest.raises(ValueError, match="order"):
        fitted(3).merge(fitted(2))


def test_round_trips():
    m = fitted(3)
    state = m.to_arrays()
    for key in ("row_key", "row_prefix", "row_last", "row_order", "count_value"):
        state[key].setflags(write=False)
    back = MarkovAccumulator.from_arrays(state)
    assert back.canonical() == m.canonical()
    assert back.generate(40, seed=3) == m.generate(40, seed=3)
    assert pickle.loads(pickle.dumps(m)).canonical() == m.canonical()
    import json

    json.dumps(state["settings"])


def test_parameters_add_up():
    m = fitted(4)
    table = m.parameters()
    assert [r["order"] for r in table] == [1, 2, 3, 4]
    assert table[-1]["cumulative_pairs"] == int((m.row_order > 0).sum())
    assert table[0]["contexts"] == 1  # the empty context


# -- probabilities ------------------------------------------------------------------------


def oracle_docs(texts):
    return [naive.token_ids(t) for t in texts]


@pytest.mark.parametrize("method,kw", [
    ("kn", {}), ("kn", {"discount": 0.4}), ("dirichlet", {"alpha": 3.0}), ("dirichlet", {"alpha": 0.5}),
    ("dirichlet", {"alpha": 3.0, "alpha_per_type": False}), ("mle", {}),
])
@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_log_probs_equal_oracle(method, kw, order):
    m = fitted(5)
    oracle = naive.NaiveModel(oracle_docs(TEXTS), order)
    texts = HELD_OUT + TEXTS[:2]
    got = m.log_probs(texts, order=order, method=method, **kw)
    want = oracle.log_probs(oracle_docs(texts), method, **kw)
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_log_probs_per_category_equal_oracle():
    m = fitted(3)
    story = [t for t, lab in DOCS if lab == "story"]
    # the base measure is uniform over the whole model's vocabulary (+ unknown)
    oracle = naive.NaiveModel(oracle_docs(story), 3, vocab_size=len(naive.NaiveModel(oracle_docs(TEXTS), 1).vocab))
    for method in ("kn", "dirichlet"):
        got = m.log_probs(HELD_OUT, category="story", method=method)
        np.testing.assert_allclose(got, oracle.log_probs(oracle_docs(HELD_OUT), method), rtol=1e-12)


@pytest.mark.parametrize("method", ["kn", "dirichlet"])
@pytest.mark.parametrize("order", [1, 2, 4])
def test_probabilities_sum_to_one(method, order):
    m = fitted(4)
    for prompt in (None, "the", "And the earth", "unknown words here", "Then Mr."):
        p = m.distribution(prompt, order=order, method=method)
        assert math.isclose(sum(p.values()), 1.0, rel_tol=1e-12)
        assert min(p.values()) > 0


def test_perplexity_of_unseen_tokens_is_finite_and_mle_is_not():
    m = fitted(3)
    assert math.isfinite(m.perplexity(["zebra quagga"], method="kn"))
    assert m.perplexity(["zebra quagga"], method="mle") == math.inf


def test_greedy_is_the_argmax():
    m = fitted(4)
    oracle = naive.NaiveModel(oracle_docs(TEXTS), 4)
    for method in ("kn", "dirichlet", "mle"):
        for prompt in ("And", "the earth", "He said,", "Yes"):
            want = oracle.greedy(naive.token_ids(prompt), 12, method)
            want = want[: want.index(naive.EOS) + 1] if naive.EOS in want else want
            got = m.generate_ids(12, prompt=prompt, greedy=True, method=method).tolist()
            assert got[: len(want)] == want, (method, prompt)


# -- generation ---------------------------------------------------------------------------


def test_same_seed_same_text_other_seed_other_text():
    m = fitted(3)
    for kw in ({}, {"temperature": 0.7}, {"top_k": 3}, {"method": "dirichlet"}, {"category": "law"}):
        a = m.generate(80, seed=11, **kw)
        assert a == m.generate(80, seed=11, **kw)
        assert a != m.generate(80, seed=12, **kw)
    rng_a, rng_b = np.random.default_rng(5), np.random.default_rng(5)
    assert m.generate(30, seed=rng_a) == m.generate(30, seed=rng_b)


def test_generation_rebuilds_the_training_spacing():
    text = 'He said, "Don\'t go." Then (quietly) he left... The end!'
    m = fitted(8, [text], None)
    assert m.generate(100, greedy=True).split("\n")[0] == text
    assert m.generate(5, prompt="He said,", greedy=True) == 'He said, "Don\'t go."'


def test_top_k_one_is_greedy():
    m = fitted(3)
    assert m.generate(50, seed=1, top_k=1) == m.generate(50, greedy=True)


def test_make_sentence():
    m = fitted(3)
    s = m.make_sentence(seed=3)
    assert isinstance(s, str) and s
    assert m.make_sentence(seed=3) == s
    assert naive.tokenize(s)[-1][0] in ".?!\"')"
    empty = fitted(3, ["", "   "], None)
    assert empty.make_sentence() is None
    punct = fitted(3, ["... !!", "?"], None)
    assert punct.make_sentence(min_words=1) is None
    assert m.make_sentence(tries=0) is None


def test_make_sentence_rejects_copies_with_an_index():
    text = "The quick brown fox jumps over the lazy dog near the river bank today."
    m = fitted(6, [text], None)
    assert m.make_sentence(seed=1, test_output=False, method="mle") == text
    m.index_text([text])
    assert m.make_sentence(seed=1, method="mle") is None


def test_untrained_model_answers_clearly():
    m = MarkovAccumulator()
    for call in (lambda: m.generate(10), lambda: m.perplexity(["a"]), lambda: m.make_sentence(),
                 lambda: m.distribution(), lambda: m.recall(["a b"])):
        with pytest.raises(ValueError, match="partial_fit"):
            call()


def test_bad_arguments():
    with pytest.raises(ValueError):
        MarkovAccumulator(order=0)
    with pytest.raises(ValueError):
        MarkovAccumulator(method="laplace")
    with pytest.raises(ValueError):
        MarkovAccumulator(discount=1.5)
    m = fitted(3)
    with pytest.raises(ValueError):
        m.generate(10, order=4)
    with pytest.raises(ValueError):
        m.generate(10, temperature=0)
    with pytest.raises(ValueError):
        m.generate(10, category="nope")
    with pytest.raises(TypeError):
        m.partial_fit("one text")


class Lowercase(MarkovAccumulator):
    def prepare(self, text):
        return text.lower()


class Shouting(MarkovAccumulator):
    def join_tokens(self, texts, space):
        return super().join_tokens(texts, space).upper()


def test_hooks_override_one_at_a_time():
    m = Lowercase(order=2)
    m.partial_fit(["The Cat. THE CAT."])
    assert m.count("the cat") == 2
    loud = Shouting(order=3)
    loud.partial_fit(["The cat sat."])
    assert loud.generate(3, greedy=True) == "THE CAT SAT"
    assert loud.count("The cat") == 1  # only the output changed


class Quiet:
    def join_tokens(self, texts, space):
        return "".join(texts.astype(str).tolist()).lower()


class QuietMarkov(Quiet, MarkovAccumulator):  # a hook from a mixin before MarkovAccumulator
    pass


class LouderStill(Shouting):  # inherited from a subclass
    pass


def test_overridden_hooks_are_found_on_subclasses_mixins_and_instances():
    assert MarkovAccumulator._custom_hooks == frozenset()
    assert Shouting._custom_hooks == LouderStill._custom_hooks == {"join_tokens"}
    assert Lowercase._custom_hooks == {"prepare"} and QuietMarkov._custom_hooks == {"join_tokens"}
    for model, want in ((LouderStill(order=3), "THE CAT SAT."), (QuietMarkov(order=3), "thecatsat.")):
        model.partial_fit(["The cat sat."])
        assert model.generate(4, seed=1, method="mle") == want  # plain sampling too goes through the hook
    m = MarkovAccumulator(order=3)
    m.partial_fit(["The cat sat."])
    m.join_tokens = lambda texts, space: "|".join(texts.astype(str).tolist())  # on one instance
    assert m.generate(4, seed=1, method="mle") == "The|cat|sat|."
    assert not m._default_hook("join_tokens") and m._default_hook("prepare")


def test_prompt_joins_the_continuation():
    m = fitted(3, ["The cat sat. Then it ran."], None)
    assert m.generate(3, prompt="The cat", greedy=True) == "The cat sat. Then"
    assert m.generate(3, prompt="The cat", greedy=True, include_prompt=False) == "sat. Then"
    assert m.generate(2, prompt="it ran.", greedy=True) == "it ran.\nThe cat"


# -- verbatim recall ----------------------------------------------------------------------


def test_prompted_extraction_by_hand():
    docs = ["x a b c d y", "z a b c d y", "q a b c e v", "p d k", "r d k", "s d k"]
    m = fitted(3, docs, None)
    r = {x.order: x for x in m.recall(docs[:3], prefix=3, continuation=3, method="mle")}
    # order 2: b -> c (3 of 3), c -> d (2 of 3), d -> k (3 of 5): matches 2, 2, 1
    assert (r[2].samples, r[2].skipped, r[2].extractable) == (3, 0, 0)
    assert r[2].mean_match == pytest.approx(5 / 3)
    # order 3: (b c) -> d, (c d) -> y: matches 3, 3, 1
    assert r[3].extractable == 2 and r[3].fraction == pytest.approx(2 / 3)
    assert r[3].mean_match == pytest.approx(7 / 3)
    assert r[3].ci95_low < 2 / 3 < r[3].ci95_high
    # documents shorter than prefix + continuation are skipped
    assert m.recall(docs, prefix=3, continuation=3, orders=[3])[0].skipped == 3
    long = ["one two three four five six seven eight nine ten"]
    assert [x.fraction for x in fitted(3, long, None).recall(long, prefix=4, continuation=6)] == [1.0, 1.0]


def test_a_page_seen_twice_is_recalled_and_once_is_not():
    # three documents share a prompt; the page's next word loses the tie-break when
    # each is seen once (ties go to the smallest token id) and wins when it is seen twice
    words = sorted(["east", "xray", "yolk"], key=lambda w: naive.token_ids(w)[0])
    page = f"a b c d {words[2]} f g h i j k"
    rivals = [f"a b c d {words[0]} p q r s t u", f"a b c d {words[1]} v w x y z o"]
    for method in ("mle", "kn", "dirichlet"):
        once = fitted(5, [page] + rivals, None).recall([page], prefix=4, continuation=6, orders=[5],
                                                       method=method)[0]
        twice = fitted(5, [page, page] + rivals, None).recall([page], prefix=4, continuation=6,
                                                              orders=[5], method=method)[0]
        assert (once.extractable, once.mean_match) == (0, 0.0), method
        assert (twice.extractable, twice.mean_match) == (1, 6.0), method


def test_stream_protocol_samples_inside_documents():
    text = " ".join(f"w{i}" for i in range(200))
    m = fitted(2, [text], None)
    (r,) = m.recall([text], prefix=5, continuation=10, protocol="stream", sample=50, seed=1, orders=[2])
    assert r.samples == 50 and r.fraction == 1.0 and r.protocol == "stream"


def test_matching_statistics_equal_brute_force():
    rng = np.random.default_rng(0)
    train = [" ".join(rng.choice(list("abcd"), 40)) for _ in range(3)]
    index = VerbatimIndex(tokenize(train))
    query = tokenize([" ".join(rng.choice(list("abcde"), 60))]).ids
    docs = [tokenize([t]).ids.tolist() for t in train]

    def occurs(run):
        return any(run == d[i : i + len(run)] for d in docs for i in range(len(d) - len(run) + 1))

    q = query.tolist()
    want = []
    for i in range(len(q)):
        L = 0
        while i + L < len(q) and occurs(q[i : i + L + 1]):
            L += 1
        want.append(L)
    assert index.matching_statistics(query).tolist() == want


def test_free_recall_reports_copying():
    text = "one two three four five six seven eight nine ten eleven twelve."
    m = fitted(5, [text], None)
    m.index_text([text])
    report = m.free_recall(n_tokens=30, seed=1, method="mle")
    assert report["longest_verbatim_run"] == 13  # the whole sentence, copied
    assert report["rejected_share"] == 1.0


# -- fast paths: packed sampler, lanes, kernel join, sparse per-category counts ------------


@pytest.mark.parametrize("method", ["kn", "dirichlet", "mle"])
def test_whole_distribution_equals_each_tokens_probability_bit_for_bit(method):
    m = fitted(4)
    for category in (None, "law"):
        for prompt in (None, "the", "And the earth", "zebra", "Then Mr."):
            chain, query, _ = m._setup(category, None, method, None, None, None)
            state, _ = m._prompt_state(chain, query, prompt)
            scratch = K.backoff_scratch()
            each = [KC._prob(chain.arrays, query, state, w, scratch)[0] for w in range(query.n_vocab + 1)]
            assert K.distribution(chain.arrays, query, state).tolist() == each, (method, category, prompt)


@pytest.mark.parametrize("method", ["kn", "dirichlet", "mle"])
def test_packed_sampler_draws_the_smoothed_distribution(method):
    m = fitted(3)
    rng = np.array([12345], np.uint64)
    n = 20_000
    for prompt in (None, "the", "And the earth", "zebra"):
        chain, query, _ = m._setup(None, None, method, None, None, None)
        state, _ = m._prompt_state(chain, query, prompt)
        pc, pe = chain.sampler(query)
        want = K.distribution(chain.arrays, query, state)[:-1]  # the unknown slot is never drawn
        want = want / want.sum()
        seen = np.zeros(len(want))
        for _ in range(n):
            w, after = KS._draw_packed(pc, pe, state, rng, query.n_vocab)
            seen[w] += 1
            assert after == K.next_state(chain.arrays, state, w, query.n_vocab)
        sd = np.sqrt(want * (1 - want) / n)
        assert np.all(np.abs(seen / n - want) <= 5 * sd + 1e-4), (method, prompt)


def test_generation_in_lanes_extends_with_the_budget_and_keeps_documents():
    m = MarkovAccumulator(order=3)
    m.partial_fit(TEXTS * 3)
    short = m.generate_ids(40, seed=5)
    long = m.generate_ids(400, seed=5)
    assert long[: len(short)].tolist() == short.tolist()
    assert int((long != K.EOS_ID).sum()) == 400
    # with the plain table, every document starts as a training document does (or is empty)
    starts = {naive.token_ids(t)[0] for t in TEXTS if t} | {int(K.EOS_ID)}
    plain = m.generate_ids(400, seed=5, method="mle")
    docs = np.split(plain, np.flatnonzero(plain == K.EOS_ID) + 1)
    assert len(docs) > 10 and all(int(d[0]) in starts for d in docs if len(d))
    with_prompt = m.generate(30, prompt="And the earth", seed=2, greedy=False)
    assert with_prompt.startswith("And the earth")


LONG_TOKENS = ["Supercalifragilisticexpialidocious, said the Überkalifragilistischexpialigetische?",
               "The Überkalifragilistischexpialigetische: Supercalifragilisticexpialidocious!"]


@pytest.mark.parametrize("texts", [TEXTS, LONG_TOKENS])  # tokens shorter and longer than a copied block
def test_kernel_join_equals_the_join_hook(texts):
    m = MarkovAccumulator(order=3)
    m.partial_fit(texts)
    out, _ = m._generate(300, None, 3, 1.0, None, False, None, None, None, None, None, None)
    v = m._vocabulary()
    space = np.zeros(len(out), bool)
    space[1:] = v.space_after[out[:-1]] & v.space_before[out[1:]]
    assert m._join(out) == MarkovAccumulator.join_tokens(m, v.texts[out], space)


def _bucket_by_hand(rng, k):
    """Bucket floor(u k) of a 64-bit uniform u and the next 31 bits of u k, with Python integers."""
    prod = int(KD._rand64(rng)) * int(k)
    return prod >> 64, (prod >> 33) & (2**31 - 1)


def _draw_by_hand(pc, pe, c, rng, n_vocab):
    """The packed draw written out: stay with probability q, pick a bucket, keep it or its alias."""
    if KD._rand53(rng) < pc[c, 3]:
        b, test = _bucket_by_hand(rng, pc[c, 1] & 0xFFFFFFFF)
        e = pc[c, 0] + b
        own = test < pe[e, 1]
        return (int(pe[e, 0]), int(pe[e, 2])) if own else (int(pe[e, 3]), int(pe[e, 4]))
    return KS._draw_below(pc, pe, c, rng, n_vocab)


def _lanes_by_hand(seed, n, eos, draw):
    """Lanes run in step, each on its own random stream: documents numbered as they start (lanes
    0..L-1 start documents 0..L-1, a lane that ends one starts the next number, lanes ending one
    at the same step in lane order); then documents 0, 1, ... in order, cut at n tokens
    (document ends not counted)."""
    L = K.LANES
    lanes = [np.array([mix64(np.uint64((seed + int(SALT) * (l + 1)) % 2**64))], np.uint64)
             for l in range(L)]
    states, current = [None] * L, list(range(L))
    docs = [[] for _ in range(L)]
    done = set()

    def enough():  # documents 0..k complete and holding n tokens, or document k already holding the rest
        made = 0
        for d in range(len(docs)):
            tokens = [w for w in docs[d] if w != eos]
            if made + len(tokens) >= n:
                return True
            if d not in done:
                return False
            made += len(tokens)
        return False

    while not enough():
        for l in range(L):
            w, states[l] = draw(states[l], lanes[l])
            docs[current[l]].append(w)
            if w == eos:
                done.add(current[l])
                states[l], current[l] = None, len(docs)
                docs.append([])
    want, made = [], 0
    for d in docs:
        for w in d:
            if made == n:
                return want
            want.append(w)
            made += w != eos
    return want


@pytest.mark.parametrize("method", ["kn", "mle"])
def test_lanes_equal_documents_drawn_one_after_another(method):
    m = fitted(3)
    chain, query, _ = m._setup(None, None, method, None, None, None)
    pc, pe = chain.sampler(query)
    eos = m._vocabulary().eos
    for seed, n in ((1, 7), (2, 300), (3, 2000)):
        got = K.generate_fast(pc, pe, chain.bos_ctx, n, np.array([seed], np.uint64), query.n_vocab, eos,
                              chain.bos_ctx, K.LANES)
        want = _lanes_by_hand(seed, n, eos, lambda state, rng: _draw_by_hand(
            pc, pe, chain.bos_ctx if state is None else state, rng, query.n_vocab))
        assert got.tolist() == want


def test_plain_blocks_sample_the_plain_table_in_lanes():
    m = fitted(3)
    chain, query, _ = m._setup(None, None, "mle", None, None, None)
    pc, pe = chain.sampler(query)
    eos = m._vocabulary().eos
    blk, off = chain.plain(query, eos)
    assert chain.plain(m._setup(None, None, "kn", None, None, None)[1], eos) is None  # Kneser-Ney backs off

    def draw(state, rng):  # state: where the context's block is; a bucket names the next block
        s = off[chain.bos_ctx] if state is None else state
        b, test = _bucket_by_hand(rng, blk[s])
        e = s + 2 + 3 * b
        nxt = int(blk[e + 1] if test < blk[e] else blk[e + 2])
        return int(blk[nxt + 1]), nxt  # the token that leads into the next block

    for seed, n in ((1, 7), (2, 300), (3, 2000)):
        got = K.generate_plain(pc, blk, off, chain.bos_ctx, n, np.array([seed], np.uint64), eos, chain.bos_ctx,
                               K.LANES)
        assert got.tolist() == _lanes_by_hand(seed, n, eos, draw)
    # the general rows' draws: each block holds its context's thresholds and next contexts, and
    # the token a bucket emits leads into its next block
    for c in range(len(pc)):
        o, n = off[c], pc[c, 1] & 0xFFFFFFFF
        assert blk[o] == n and (2 + 3 * n > K.PLAIN_LINE or o // K.PLAIN_LINE == (o + 2 + 3 * n - 1) // K.PLAIN_LINE)
        for i in range(n):
            e = pc[c, 0] + i
            assert (blk[o + 2 + 3 * i], blk[o + 3 + 3 * i], blk[o + 4 + 3 * i]) == (pe[e, 1], off[pe[e, 2]], off[pe[e, 4]])
            assert (blk[off[pe[e, 2]] + 1], blk[off[pe[e, 4]] + 1]) == (pe[e, 0], pe[e, 3])


@pytest.mark.parametrize("method", ["kn", "mle"])
@pytest.mark.parametrize("prompt", [None, "And the earth", "The end!"])
@pytest.mark.parametrize("longest", [40, 200])  # room for every token at its longest, or measured first
def test_text_written_by_the_sampling_kernel_equals_joined_tokens(method, prompt, longest):
    m = MarkovAccumulator(order=3)
    m.partial_fit(TEXTS + LONG_TOKENS + ["And the " + "long" * (longest // 4) + " word."])
    assert m._spellings().max_len == longest
    for seed, n in ((1, 0), (2, 1), (3, 50), (4, 700)):
        text = m.generate(n, prompt=prompt, seed=seed, method=method)
        assert isinstance(m._generate(n, prompt, seed, 1.0, None, False, None, None, method, None, None, None,
                                      text=True)[0], tuple)
        out, prompt_dense = m._generate(n, prompt, seed, 1.0, None, False, None, None, method, None, None, None)
        v = m._vocabulary()
        joined = m._join(out).strip("\n")
        if prompt:
            first = out[0] if len(out) else -1
            gap = "" if first < 0 or not joined else "\n" if first == v.eos else \
                " " if v.space_after[prompt_dense[-1]] and v.space_before[first] else ""
            joined = prompt.rstrip() + gap + joined
        assert text == joined, (seed, n)


@pytest.mark.parametrize("labelled", [False, True])
def test_a_batch_built_in_two_threads_equals_one_thread(monkeypatch, labelled):
    import accum.markov as M

    texts = [f"{t} (copy {i})" if i % 3 else t for i in range(40) for t in TEXTS]
    labels = [LABELS[i % len(LABELS)] for i in range(len(texts))] if labelled else None
    models = []
    for threads in (1, 2):
        monkeypatch.setattr(M, "THREADS", threads)
        monkeypatch.setattr(M, "PARALLEL_MIN_CHARS", 100)
        monkeypatch.setattr(M, "PIPELINE_CHUNKS", 5)
        m = MarkovAccumulator(order=4)
        m.partial_fit(TEXTS[:2], None if labels is None else LABELS[:2])  # rows before the batch
        m.partial_fit(texts, labels)
        models.append(m)
    one, two = models
    for name in ("row_key", "row_prefix", "row_last", "row_order"):
        assert np.array_equal(getattr(one, name), getattr(two, name)), name
    assert np.array_equal(one._row_count[: one.n_rows], two._row_count[: two.n_rows])
    assert one.canonical() == two.canonical() and one.categories == two.categories
    assert list(one.lexicon.items()) == list(two.lexicon.items()) and one.token_info == two.token_info
    assert np.array_equal(one.doc_counts, two.doc_counts) and np.array_equal(one.token_counts, two.token_counts)
    assert one.generate(300, seed=1) == two.generate(300, seed=1)
    # a bad label or text anywhere in the batch fails before anything is counted, as with one thread
    for bad_texts, bad_labels, error in ((texts, LABELS[:1] * (len(texts) - 1) + [""], ValueError),
                                         (texts[:-1] + [b"bytes"], None, TypeError)):
        rows = two.n_rows
        with pytest.raises(error):
            two.partial_fit(bad_texts, bad_labels)
        assert two.n_rows == rows and two.canonical() == one.canonical()


def test_per_category_counts_are_sparse_and_exact():
    m = fitted(3)
    dense = np.zeros((m.n_rows, m.n_categories), np.int64)
    oracle = naive.canonical_counts(TEXTS, LABELS, 3, set(ABBREVIATIONS))
    for r, key in enumerate(zip(m.row_order.tolist(), m.row_prefix.tolist(), m.row_last.tolist())):
        for label, v in oracle[key].items():
            dense[r, m.categories.index(label)] = v
    assert np.array_equal(m.counts, dense)
    assert np.array_equal(m.row_total, dense.sum(axis=1))
    assert m.n_pairs == int((dense != 0).sum()) - m.n_rows  # only counts beyond a row's first category
    for c in range(m.n_categories):
        assert np.array_equal(m._column(c), dense[:, c])
    assert m.count("And", category="law") == 2 and m.count("The", category="story") == 2
    assert m.count(".", category="law") + m.count(".", category="story") == m.count(".")
    # one category per model, merged: the same as fitting both together
    law = fitted(3, [t for t, lab in DOCS if lab == "law"], [lab for _, lab in DOCS if lab == "law"])
    story = fitted(3, [t for t, lab in DOCS if lab == "story"], [lab for _, lab in DOCS if lab == "story"])
    merged = story.merge(law)
    assert merged.canonical() == m.canonical()
    back = MarkovAccumulator.from_arrays(merged.to_arrays())
    assert back.canonical() == m.canonical() and back.categories == ["story", "law"]
    for method in ("kn", "mle"):
        np.testing.assert_allclose(back.log_probs(HELD_OUT, category="law", method=method),
                                   m.log_probs(HELD_OUT, category="law", method=method), rtol=1e-13)


def test_backing_off_below_a_context_that_knows_every_token_ends():
    m = fitted(2)
    chain, query, _ = m._setup(None, None, "kn", None, None, None)
    pc, pe = chain.sampler(query)
    assert pc[0, 3] == 2**53  # the empty context knows the whole vocabulary: draws stay there
    rng = np.array([7], np.uint64)
    for _ in range(200):  # forced below it: a draw from its own table, not an endless rejection
        w, after = KS._draw_below(pc, pe, 0, rng, query.n_vocab)
        assert 0 <= w < query.n_vocab and after == K.next_state(chain.arrays, 0, w, query.n_vocab)

"""accum generate and accum recall on stores built from the KJV Bible and a Gutenberg book."""

import pytest

from corpora import corpus_path
from test_cli import accum, accum_json


@pytest.fixture(scope="module")
def kjv_store(tmp_path_factory):
    store = tmp_path_factory.mktemp("kjv") / "store"
    out = accum_json("ingest", corpus_path("kjv-bible/kjv.txt"), "--default-label", "kjv", "--markov-order", "6",
                     "--store", store)
    assert out["pages_added"] == 1
    return store


def test_generate_is_reproducible_by_seed(kjv_store):
    one = accum_json("generate", "--seed", "7", "--tokens", "60", "--store", kjv_store)
    again = accum_json("generate", "--seed", "7", "--tokens", "60", "--store", kjv_store)
    other = accum_json("generate", "--seed", "8", "--tokens", "60", "--store", kjv_store)
    assert one["text"] == again["text"] != other["text"]
    assert one["order"] == 6 and one["seed"] == 7
    assert any(mark in one["text"] for mark in ",.;:") and " ," not in one["text"]
    plain = accum("generate", "--seed", "7", "--tokens", "60", "--store", kjv_store)
    assert plain.stdout.strip() == one["text"] and "--seed 7" in plain.stderr


def test_generate_continues_a_prompt(kjv_store):
    out = accum_json("generate", "--prompt", "In the beginning God", "--greedy", "--tokens", "8", "--store", kjv_store)
    assert out["text"].startswith("In the beginning God created the heaven and the earth")
    sentence = accum_json("generate", "--sentence", "--seed", "3", "--store", kjv_store)["text"]
    assert sentence is None or sentence[-1] in ".?!:;"


def test_recall_rises_with_order(kjv_store):
    out = accum_json("recall", corpus_path("kjv-bible/kjv.txt"), "--protocol", "stream", "--sample", "300",
                     "--orders", "2,4,6", "--free-tokens", "2000", "--store", kjv_store)
    fractions = [r["fraction"] for r in out["recall"]]
    assert [r["order"] for r in out["recall"]] == [2, 4, 6]
    assert fractions[0] == 0 and fractions[2] > fractions[1] and fractions[2] > 0.01
    assert all(r["ci95_low"] - 1e-12 <= r["fraction"] <= r["ci95_high"] + 1e-12 for r in out["recall"])
    assert out["free_generation"]["longest_verbatim_run"] >= 6
    assert [p["order"] for p in out["parameters"]] == [1, 2, 3, 4, 5, 6]


def test_gutenberg_book_generates_and_a_store_without_generator_says_so(tmp_path):
    book = corpus_path("gutenberg/body-only/pg1342.txt")
    store = tmp_path / "pride"
    accum("ingest", book, "--default-label", "austen", "--markov-order", "4", "--store", store)
    text = accum_json("generate", "--seed", "2026", "--tokens", "80", "--temperature", "0.7", "--store", store)["text"]
    assert len(text.split()) > 40
    plain = tmp_path / "plain"
    accum("ingest", book, "--default-label", "austen", "--store", plain)
    proc = accum("generate", "--store", plain, check=False)
    assert proc.returncode == 1 and "--markov-order" in proc.stderr
    bad = accum("ingest", book, "--default-label", "austen", "--markov-order", "5", "--store", store, check=False)
    assert bad.returncode == 2 and "markov-order" in bad.stderr


def test_a_saved_chain_answers_as_the_counts_do(kjv_store, monkeypatch):
    """Once a query has saved the chain of all categories in the snapshot, generation
    memory-maps it instead of reading the counts, with the same texts for every way of
    decoding; what needs the counts says so."""
    import accum.storage.generators as generators
    from accum.markov.compiled import ChainOnly, NeedsCounts
    from accum.storage import Store

    cases = [{"seed": 1}, {"seed": 2, "method": "mle"}, {"seed": 3, "method": "dirichlet", "prompt": "And God said"},
             {"seed": 4, "temperature": 0.6, "top_k": 20}, {"greedy": True, "prompt": "In the beginning"}]
    whole = Store(kjv_store).generator(whole=True)
    expected = [whole.generate(60, **case) for case in cases] + [whole.make_sentence(seed=5)]
    Store(kjv_store).generator()  # the first query of all categories saves the chain (if none has yet)
    monkeypatch.setattr(generators, "read_markov", lambda path: pytest.fail("the counts were read"))
    saved = Store(kjv_store).generator()
    assert isinstance(saved, ChainOnly) and not saved._derived.vocabulary.ids.flags.writeable  # memory-mapped
    assert [saved.generate(60, **case) for case in cases] + [saved.make_sentence(seed=5)] == expected
    for needs_counts in (lambda: saved.generate(5, category="kjv"), lambda: saved.generate(5, order=3),
                         lambda: saved.recall(["In the beginning"]), lambda: saved.count("the")):
        with pytest.raises(NeedsCounts):
            needs_counts()

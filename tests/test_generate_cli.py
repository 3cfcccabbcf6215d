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

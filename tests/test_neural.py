"""accum capacity --neural on a small KJV store: a tiny transformer trains for seconds, and
its numbers follow the protocol of accum recall and add up."""

import math
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from corpora import corpus_path
from test_cli import accum, accum_json

SEED = 3
SAMPLE = 40


@pytest.fixture(scope="module")
def kjv_pages(tmp_path_factory):
    """The first 1,500 KJV verses as 20 pages of 75 verses, and a store of them with an
    order-6 generator."""
    verses = corpus_path("kjv-bible/kjv.txt").read_text(encoding="cp1252").splitlines()[:1500]
    root = tmp_path_factory.mktemp("neural")
    pages = root / "pages"
    pages.mkdir()
    for i in range(20):
        (pages / f"{i:02d}.txt").write_text("\n".join(verses[75 * i:75 * (i + 1)]) + "\n", encoding="utf-8")
    store = root / "store"
    accum("ingest", pages, "--default-label", "kjv", "--markov-order", "6", "--store", store)
    return pages, store


@pytest.fixture(scope="module")
def run(kjv_pages):
    """``accum capacity --neural --json`` with one tiny model (and its markdown report)."""
    pages, store = kjv_pages
    report = store.parent / "capacity.md"
    out = accum_json("capacity", "--store", store, "--neural", "--neural-sizes", "300k", "--neural-tokens", "60000",
                     "--neural-protocol", "stream", "--neural-sample", SAMPLE, "--neural-seed", SEED,
                     "--report", report, env={"ACCUM_THREADS": "1"})
    return out["neural"], out, report


def test_result_follows_the_schema_and_adds_up(run, kjv_pages):
    import torch

    from accum.neural import Shape
    from accum.storage.neural import read_neural_capacity

    result, out, report = run
    assert result["torch"] == torch.__version__
    assert result["protocol"] == {"prefix": 32, "continuation": 50, "sample": SAMPLE, "seed": SEED,
                                  "prompt_protocol": "stream"}
    assert "log2 p_unigram" in result["information"] and result["reference_bits_per_parameter"] == 3.6
    assert "2505.24190" in result["reference"]
    (size,) = result["sizes"]
    shape = Shape(size["layers"], size["d_model"], size["heads"], size["vocabulary"], size["context"])
    assert size["name"] == "300k" and size["parameters"] == shape.parameters
    assert 0.5 * 300_000 < size["parameters"] <= 300_000
    assert size["epochs"] == pytest.approx(size["train_tokens"] / result["text_tokens"])
    assert size["train_tokens"] >= 60_000 and size["seconds"] > 0
    for key in ("cross_entropy_bits_per_token", "unigram_bits_per_token", "information_bits", "bits_per_parameter"):
        assert math.isfinite(size[key])
    assert size["bits_per_parameter"] == size["information_bits"] / size["parameters"]
    assert size["information_bits"] == pytest.approx(
        (size["unigram_bits_per_token"] - size["cross_entropy_bits_per_token"]) * result["text_tokens"])
    assert size["cross_entropy_bits_per_token"] < size["unigram_bits_per_token"]  # it learnt something
    assert size["slice"]["epochs"] == 100 and size["slice"]["pages"] >= 1
    for r in (size["recall"], size["slice"]["recall"], result["generator"]["recall"]):
        assert r["rate"] == (r["hits"] / r["n"] if r["n"] else 0.0)
        assert r["low"] <= r["rate"] <= r["high"]
    assert size["recall"]["n"] == result["generator"]["recall"]["n"] == SAMPLE
    assert read_neural_capacity(kjv_pages[1]) == result
    assert result["generator"]["parameters"] == out["measured"]["generator"]["parameters"]
    text = report.read_text()
    assert "Transformers trained on the store's" in text and f"| 300k: {size['layers']} layers × " in text


def test_the_slice_is_memorised(run):
    """Many epochs on 16 prompts' windows: the model gives back at least one, and at least
    as large a share as the model that saw the whole text once."""
    (size,) = run[0]["sizes"]
    assert size["slice"]["recall"]["hits"] >= 1
    assert size["slice"]["recall"]["rate"] >= size["recall"]["rate"]


def test_prompts_are_those_of_accum_recall(run, kjv_pages):
    """The generator's row equals accum recall's for the same seed, and the transformer's
    windows hold exactly the prompts and continuations at accum recall's positions."""
    from accum import neural
    from accum.markov.recall import Prompts
    from accum.markov.tokens import dense_index
    from accum.storage import Store
    from accum.storage.recorded import recorded_pages

    pages, store = kjv_pages
    recall = accum_json("recall", pages, "--protocol", "stream", "--sample", SAMPLE, "--seed", SEED, "--orders", "6",
                        "--free-tokens", "0", "--store", store)["recall"][0]
    generator = run[0]["generator"]["recall"]
    assert (generator["hits"], generator["n"]) == (recall["extractable"], recall["samples"])
    assert (generator["low"], generator["high"]) == (recall["ci95_low"], recall["ci95_high"])

    markov = Store(store).load_markov()
    batch = markov._batch(recorded_pages(Store(store))[0])
    dense = dense_index(markov._vocabulary().ids, batch.ids)
    text = neural.Text.of(markov, batch)
    for protocol in ("stream", "document"):
        prompts = Prompts.draw(batch, protocol, 32, 50, SAMPLE, SEED)
        at = neural.PromptWindows.of(text, prompts)
        assert len(at.begin) == (SAMPLE if protocol == "stream" else 20)
        for doc, pos, begin, end in zip(prompts.docs, prompts.pos, at.begin, at.end):
            where = batch.bounds[doc] + pos
            assert np.array_equal(text.dense[end - 82:end], dense[where - 32:where + 50])
            assert end - begin == 82 + (pos == 32) and (pos > 32 or text.dense[begin] == text.marker)


def test_sizes_and_shapes():
    from accum import neural

    class Generator:  # what parse_sizes reads of a generator
        order = 3

        @staticmethod
        def parameters():
            return [{"counts": 100}, {"counts": 1000}, {"counts": 5000}]

    assert neural.parse_sizes("300k, 2M,1500,o2", Generator) == [("300k", 300_000), ("2M", 2_000_000),
                                                                  ("1500", 1500), ("o2", 1100)]
    for bad in ("o4", "big", ""):
        with pytest.raises(ValueError):
            neural.parse_sizes(bad, Generator)
    for target in (300_000, 2_000_000, 10_000_000):
        shape = neural.shape_for(target, 50_000)
        assert shape.block_parameters(shape.layers, shape.d_model) <= target / 2
        assert 0.99 * target <= shape.parameters <= target
    assert neural.shape_for(10_000_000, 5_000).vocab == 5_000  # a small vocabulary: every token its own class


def test_without_torch_the_message_says_what_to_install(monkeypatch, tmp_path):
    from accum.cli.main import cli

    monkeypatch.setitem(sys.modules, "torch", None)  # import torch now raises ImportError
    result = CliRunner().invoke(cli, ["capacity", "--neural", "--store", str(tmp_path / "store")])
    assert result.exit_code == 1
    assert "accum capacity --neural needs PyTorch: pip install 'accum[neural]'" in result.output


def test_bad_sizes_and_a_store_without_generator_are_refused_before_any_work(kjv_pages, tmp_path):
    _, store = kjv_pages
    bad = accum("capacity", "--store", store, "--neural", "--neural-sizes", "o9", check=False)
    assert bad.returncode == 2 and "--neural-sizes" in bad.stderr and "orders 1 to 6" in bad.stderr
    assert "bits" not in bad.stdout  # nothing of the capacity report was printed
    plain = tmp_path / "plain"
    done = accum("ingest", kjv_pages[0], "--default-label", "kjv", "--store", plain, "--no-fit", check=False)
    assert done.returncode == 0, done.stderr
    none = accum("capacity", "--store", plain, "--neural", check=False)
    assert none.returncode == 1 and "keeps none" in none.stderr

"""accum capacity on a store of KJV verses (one page per line): numbers trace to the store."""

import csv

import pytest

from accum import capacity as cap

from corpora import corpus_path
from test_cli import accum, accum_json


def test_llm_table_ships_with_sources():
    rows = cap.load_llm_table()
    names = {r["model"] for r in rows}
    assert {"GPT-3", "Chinchilla", "Llama 3.1 405B", "DeepSeek-V3", "Mixtral 8x7B"} <= names
    assert all(r["source"] and r["parameters"] > 0 for r in rows)


def test_bad_llm_table_is_a_clear_error(tmp_path):
    bad = tmp_path / "llms.csv"
    bad.write_text("name,size\nx,1\n")
    with pytest.raises(ValueError, match="needs the columns"):
        cap.load_llm_table(bad)


def test_capacity_report_on_kjv_verses(tmp_path):
    store = tmp_path / "kjv"
    ingest = accum_json("ingest", corpus_path("kjv-bible/kjv.txt"), "--format", "lines", "--default-label", "kjv",
                        "--markov-order", "8", "--store", store)
    assert ingest["pages_added"] + ingest["duplicates"] == 31102  # one page per verse
    table = tmp_path / "mine.csv"
    with open(table, "w", newline="") as f:
        csv.writer(f).writerows([["model", "parameters", "active_parameters", "training_tokens", "source"],
                                 ["Tiny", "1000000", "", "", "made up for this test"]])
    out = accum_json("capacity", "--store", store, "--plot", tmp_path / "cap.png", "--report", tmp_path / "cap.md",
                     "--llm-table", table)
    info = accum_json("info", "--store", store)
    measured = out["measured"]
    assert measured["pages"] == info["documents"] and measured["tokens"] == info["tokens"]
    assert measured["classifier"]["parameters"] == info["parameters"]
    assert measured["classifier"]["features"] == info["distinct_features"]
    bits = measured["page_bits"]["compressed_bits_per_page"]
    assert 0 < bits < measured["page_bits"]["raw_bits_per_page"]
    (tiny,) = out["llms"]
    assert tiny["pages_verbatim_at_capacity"] == pytest.approx(1e6 * 3.6 / bits)
    assert [r["kind"] for r in out["extrapolated"]][-1] == "extrapolated beyond 2x"
    assert out["extrapolated"][-1]["pages"] == 4e10
    assert "40B" in out["answer"] and (tmp_path / "cap.png").stat().st_size > 20_000
    text = (tmp_path / "cap.md").read_text()
    assert "## Would a 400B-parameter model" in text and "![capacity](cap.capacity.png)" in text
    assert (tmp_path / "cap.capacity.png").read_bytes().startswith(b"\x89PNG")
    assert "| Tiny | 10⁶ᶜ |" in text  # the same rendering as accum report's, every number marked
    recall = measured["generator"]["recall"]
    assert recall["order"] == 8 and 0 < recall["extractable"] < 1
    assert recall["recalled_bits_per_parameter"] == pytest.approx(
        recall["extractable"] * bits * measured["pages"] / measured["generator"]["parameters"], rel=1e-9)


def test_capacity_report_names_its_format(tmp_path):
    bad = accum("capacity", "--store", tmp_path / "none", "--report", tmp_path / "cap.txt", check=False)
    assert bad.returncode == 2 and "takes a .html or .md file name" in bad.stderr

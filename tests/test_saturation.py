"""Saturation: fits and estimates on known curves, and the CLI's numbers against an oracle."""

import csv
import json
import math

import numpy as np
import pytest

from accum import saturation as sat

import naive
from test_cli import accum, accum_json


def test_heaps_fit_recovers_a_power_law():
    pages = np.array(sorted(naive.checkpoints(5000)))
    tokens = pages * 200
    values = np.round(40 * tokens**0.55).astype(np.int64)
    fit = sat.heaps_fit(tokens, values, pages)
    assert fit["K"] == pytest.approx(40, rel=1e-3)
    assert fit["beta"] == pytest.approx(0.55, abs=1e-4)
    assert fit["r2"] > 0.9999
    assert fit["from_pages"] == int(0.01 * pages[-1])  # the stable part: from 1 % of the pages


def test_chao1_by_hand():
    est = sat.chao1(100, 30, 10)
    assert est["estimate"] == pytest.approx(100 + 30 * 30 / 20)
    assert est["low"] < est["estimate"] < est["high"]
    assert sat.chao1(100, 0, 5)["estimate"] == 100
    assert sat.chao1(10, 4, 0)["estimate"] == pytest.approx(10 + 4 * 3 / 2)


def test_saturation_point_and_rates():
    pages = np.array([1, 2, 4, 8, 16, 32, 64])
    values = np.array([10, 20, 30, 34, 36, 37, 37])  # rate: 10, 5, 1, .25, .0625, 0
    assert sat.saturation_point(pages, values, threshold=1.0) == 8  # from page 8 on, < 1 per page
    assert sat.saturation_point(pages, values, threshold=0.01) == 32  # 0.0625 per page until 32, then 0
    assert sat.saturation_point(pages, np.arange(7) * 100, threshold=1.0) is None
    assert sat.recent_rate(pages, values, span=0.5) == 0.0


def test_forecast_flags_long_extrapolations():
    pages = np.array(sorted(naive.checkpoints(1000)))
    tokens = pages * 100
    values = np.round(30 * tokens**0.6).astype(np.int64)
    curve = sat.Curve("c", 1, pages, tokens, values, values // 2, values // 4, values // 8, 5)
    forecasts = sat.forecast_validation(curve)
    assert [f["fraction"] for f in forecasts] == [0.1, 0.25, 0.5]
    assert all(f["beyond_2x"] == (f["extrapolation"] > 2) for f in forecasts)
    assert forecasts[0]["beyond_2x"] and forecasts[0]["extrapolation"] > 9
    assert all(abs(f["relative_error"]) < 0.01 for f in forecasts)


@pytest.fixture(scope="module")
def small_store(tmp_path_factory, newsgroups_sample):
    """A store of 90 real posts from 3 groups, ingested from files through the CLI."""
    texts, labels = newsgroups_sample
    root = tmp_path_factory.mktemp("small")
    corpus = root / "corpus"
    picked = [(t, c) for t, c in zip(texts, labels) if c in ("sci.space", "rec.autos", "talk.politics.guns")]
    for i, (text, label) in enumerate(picked):
        (corpus / label).mkdir(parents=True, exist_ok=True)
        (corpus / label / f"{i:04d}").write_text(text, encoding="latin-1")
    store = root / "store"
    accum("ingest", corpus, "--label", "dir", "--store", store)
    # the directory reader walks groups in name order, files by name
    ordered = sorted(picked, key=lambda p: (p[1], f"{picked.index(p):04d}"))
    return store, [t for t, _ in ordered], [c for _, c in ordered]


@pytest.mark.parametrize("order", [1, 2])
def test_cli_numbers_equal_an_independent_count(small_store, order):
    store, texts, labels = small_store
    out = accum_json("saturation", "--order", str(order), "--store", store)
    want = {}
    for name in [None, *sorted(set(labels))]:
        counter = {}
        n_pages = n_tokens = 0
        for text, label in zip(texts, labels):
            if name is None or label == name:
                toks = naive.tokenize(text)
                n_pages += 1
                n_tokens += len(toks)
                for fid, words in naive.feature_ids(toks, 2):
                    if len(words) == order:
                        counter[fid] = counter.get(fid, 0) + 1
        values = list(counter.values())
        want[name] = {
            "pages": n_pages, "tokens": n_tokens, "distinct": len(values),
            "singletons": values.count(1), "doubletons": values.count(2),
            "at_least_2": len(values) - values.count(1), "at_least_5": sum(v >= 5 for v in values),
            "good_turing_new_rate": values.count(1) / sum(values),
        }
    got = {s["category"]: s for s in [out["overall"], *out["categories"]]}
    assert set(got) == set(want)
    for name, numbers in want.items():
        for key, value in numbers.items():
            assert got[name][key] == pytest.approx(value, rel=1e-12), (name, key)
        n1, n2, s = numbers["singletons"], numbers["doubletons"], numbers["distinct"]
        assert got[name]["chao1"]["estimate"] == pytest.approx(s + n1 * n1 / (2 * n2))


def test_cli_plot_csv_and_shuffled_band(small_store, tmp_path):
    store, texts, labels = small_store
    png = tmp_path / "growth.png"
    out = accum_json("saturation", "--plot", png, "--shuffles", "3", "--seed", "7", "--store", store)
    assert png.stat().st_size > 20_000
    with open(tmp_path / "growth.csv") as f:
        rows = list(csv.DictReader(f))
    assert {r["category"] for r in rows} == {"all pages", "sci.space", "rec.autos", "talk.politics.guns"}
    band = out["bands"]["all pages"]
    assert all(lo <= m <= hi for lo, m, hi in zip(band["low"], band["mean"], band["high"]))
    assert band["low"][0] < band["high"][0] or len(set(labels)) == 1  # orders differ at the start
    again = accum_json("saturation", "--shuffles", "3", "--seed", "7", "--store", store)
    assert again["bands"] == out["bands"]  # same seed, same band
    svg = tmp_path / "growth.svg"
    accum("saturation", "--plot", svg, "--category", "sci.space", "--store", store)
    assert svg.read_text().startswith("<?xml")


def test_cli_rejects_unknown_category_and_order(small_store):
    store, _, _ = small_store
    bad = accum("saturation", "--category", "nope", "--store", store, check=False)
    assert bad.returncode == 2 and "sci.space" in bad.stderr
    assert accum("saturation", "--order", "3", "--store", store, check=False).returncode == 2

"""Saturation: fits and estimates on known curves, and the CLI's numbers against an oracle."""

import csv
import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from accum import profiles
from accum import saturation as sat
from accum.plots import _forecast_line

import naive
from test_cli import accum, accum_json
from test_forecast import _naive_profiles


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


def _power_law_curve(beta=0.6, gt_consistent=True):
    """A curve on V = 30 * tokens**beta at 100 tokens per page; its singletons are beta * V
    (what Good-Turing implies for a power law) or V / 2."""
    pages = np.array(sorted(naive.checkpoints(1000)))
    tokens = pages * 100
    values = np.round(30 * tokens**beta).astype(np.int64)
    singletons = np.round(beta * values).astype(np.int64) if gt_consistent else values // 2
    return sat.Curve("c", 1, pages, tokens, values, singletons, values // 4, values // 8, 5)


def test_good_turing_forecast_by_hand():
    assert sat.good_turing_elasticity(200, 80) == 0.4
    assert sat.good_turing_elasticity(0, 0) is None
    assert sat.good_turing_forecast(50, 200, 80, 150) == pytest.approx(200 * 3**0.4, rel=1e-15)
    assert sat.good_turing_forecast(50, 200, 80, 50) == 200  # through the row itself
    assert sat.good_turing_forecast(10, 30, 30, 40) == pytest.approx(120)  # all singletons: linear
    np.testing.assert_allclose(sat.good_turing_forecast(50, 200, 80, np.array([100, 400])),
                               [200 * 2**0.4, 200 * 8**0.4], rtol=1e-15)
    with pytest.raises(ValueError):
        sat.good_turing_forecast(5, 0, 0, 10)


def test_forecast_flags_long_extrapolations():
    curve = _power_law_curve()
    forecasts = sat.forecast_validation(curve)
    assert [f["fraction"] for f in forecasts] == [0.1, 0.25, 0.5]
    assert all(f["beyond_2x"] == (f["extrapolation"] > 2) for f in forecasts)
    assert forecasts[0]["beyond_2x"] and forecasts[0]["extrapolation"] > 9
    # on a power law whose singletons are beta * V, the Good-Turing tangent is the law itself
    assert all(abs(f["relative_error"]) < 0.005 for f in forecasts)
    heaps = sat.forecast_validation(curve, method="heaps")
    assert [f["fraction"] for f in heaps] == [0.1, 0.25, 0.5]
    assert all(abs(f["relative_error"]) < 0.01 for f in heaps)
    assert all(f["target_tokens"] == pytest.approx(100 * curve.pages[-1]) for f in heaps)  # 100 tokens a page
    with pytest.raises(ValueError):
        sat.forecast_validation(curve, method="nope")


def test_forecast_sees_only_the_rows_up_to_the_cutoff():
    curve = _power_law_curve(gt_consistent=False)
    late = curve.pages > 0.5 * curve.pages[-1]
    changed = sat.Curve("c", 1, curve.pages, np.where(late, curve.tokens * 3, curve.tokens),
                        np.where(late, curve.distinct * 2, curve.distinct),
                        np.where(late, curve.singletons * 5, curve.singletons), curve.doubletons,
                        curve.at_least_k, 5)
    for method in ("good_turing_tangent", "heaps"):
        before = sat.forecast_validation(curve, method=method)
        after = sat.forecast_validation(changed, method=method)
        assert [f["predicted"] for f in before] == [f["predicted"] for f in after], method
        assert [f["actual"] for f in after] == [2 * f["actual"] for f in before]


def test_summary_names_its_forecast_method():
    summary = sat.summarize(_power_law_curve())
    assert summary["forecast_method"] == sat.FORECAST_METHOD == "good_turing_tangent"
    assert summary["good_turing_elasticity"] == pytest.approx(0.6, abs=1e-3)
    assert summary["forecast"] == sat.forecast_validation(_power_law_curve())
    assert summary["forecast_heaps"] == sat.forecast_validation(_power_law_curve(), method="heaps")


def test_summary_forecasts_by_a_recorded_pick(tmp_path):
    curve = _power_law_curve()
    pages = int(curve.pages[-1])
    ingest = np.sort(np.random.default_rng(3).integers(0, 500, (2, 4, 1, 31)), axis=1)  # profiles at the cutoffs
    pick = {"method": "second_order", "fraction": 0.5, "pages_order": "shuffled", "median_abs_error": 0.01}
    record = profiles.CheckRecord({"2x": pick, "10x": None}, 3, 7, 10, ["c", None], [pages, pages], ingest)
    record.save(tmp_path)
    record = profiles.CheckRecord.load(tmp_path)  # as saved
    assert (record.chosen["2x"], record.names, record.pages) == (pick, ["c", None], [pages, pages])
    np.testing.assert_array_equal(record.ingest, ingest)
    summary = sat.summarize(curve, record=record)
    assert summary["forecast_method"] == "second_order"
    assert summary["forecast_pick"] == {"ahead": "2x", **pick, "shuffles": 3, "seed": 7, "min_pages": 10}
    assert summary["forecast_profile"] == ingest[0, 2, 0].tolist()  # at half the pages
    checks = profiles.group_checks(ingest[0], pages, methods=("second_order",))
    assert [(f["fraction"], f["fit_pages"], f["predicted"], f["actual"]) for f in summary["forecast"]] == [
        (c["fraction"], c["fit_pages"], c["predicted"], c["actual"]) for c in checks]
    assert all(f["extrapolation"] == pages / f["fit_pages"] and f["beyond_2x"] == (f["extrapolation"] > 2)
               for f in summary["forecast"])
    # the figure's line: from the profile's distinct features at half the pages to the prediction
    x, y = _forecast_line(curve, summary)
    assert x[0] == pages // 2 and x[-1] == pages and np.all(np.diff(x) > 0)
    assert y[0] == pytest.approx(ingest[0, 2, 0].sum()) and y[-1] == pytest.approx(summary["forecast"][-1]["predicted"])
    # a record of other pages, or without a pick, or none: the growth log's tangent
    (tmp_path / profiles.RECORD_FILE).write_text("{", encoding="utf-8")
    for other in (replace(record, pages=[pages + 1, pages + 1]), replace(record, chosen={"2x": None}),
                  profiles.CheckRecord.load(tmp_path)):
        fallback = sat.summarize(curve, record=other)
        assert fallback["forecast_method"] == "good_turing_tangent" and fallback["forecast_pick"] is None
        assert fallback["forecast"] == sat.forecast_validation(curve) and fallback["forecast_profile"] is None


def _without_record(store) -> None:
    """Take away what accum forecast recorded in the store (other tests check forecasts on
    the same store): its saturation forecasts by the growth log's tangent again."""
    for path in Path(store, "snapshots").glob(f"*/{profiles.RECORD_FILE}"):
        path.unlink()


def _least_squares(xs, ys):
    """Slope and intercept of a straight-line fit, in plain Python."""
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
    return slope, my - slope * mx


def _naive_forecasts(rows, final):
    """Both forecasts of a curve given as (pages, tokens, distinct, singletons) rows plus its
    final state, computed from the definitions in plain Python."""
    if final[0] > rows[-1][0]:
        rows = rows + [final]
    total, actual = final[0], final[2]
    gt, heaps = [], []
    for fraction in (0.1, 0.25, 0.5):
        part = [r for r in rows if r[0] <= int(fraction * total)]
        pages, tokens, distinct, singletons = part[-1]
        gt.append((fraction, pages, distinct * (total / pages) ** (singletons / distinct), actual))
        start = max(10, int(0.01 * pages))
        kept = [r for r in part if r[0] >= start and r[1] > 0 and r[2] > 0]
        if len(kept) < 3:
            kept = [r for r in part if r[1] > 0 and r[2] > 0]
        if len(kept) >= 3:
            beta, log_k = _least_squares([math.log(r[1]) for r in kept], [math.log(r[2]) for r in kept])
            target = tokens / pages * total
            heaps.append((fraction, pages, math.exp(log_k) * target**beta, actual))
    return gt, heaps


@pytest.mark.parametrize("order", [1, 2])
def test_cli_numbers_equal_an_independent_count(small_store, order):
    store, texts, labels = small_store
    _without_record(store)
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
    # the forecasts, from a growth log computed in plain Python
    log = naive.growth_log(texts, labels)
    cat_index = {c: i for i, c in enumerate(dict.fromkeys(labels))}
    base = 3 + 4 * (order - 1)
    for name, numbers in want.items():
        index = -1 if name is None else cat_index[name]
        rows = [(r[1], r[2], r[base], r[base + 1]) for r in log if r[0] == index]
        final = (numbers["pages"], numbers["tokens"], numbers["distinct"], numbers["singletons"])
        gt, heaps = _naive_forecasts(rows, final)
        summary = got[name]
        assert summary["forecast_method"] == "good_turing_tangent"
        assert summary["good_turing_elasticity"] == pytest.approx(numbers["singletons"] / numbers["distinct"], rel=1e-12)
        # the tangent is one formula (exact); the Heaps fit is a least-squares solve (to rounding)
        for entries, expected, rel in ((summary["forecast"], gt, 1e-13), (summary["forecast_heaps"], heaps, 1e-9)):
            assert [(f["fraction"], f["fit_pages"], f["actual"]) for f in entries] == [
                (fr, p, a) for fr, p, _, a in expected], name
            for f, (_, _, predicted, actual) in zip(entries, expected):
                assert f["predicted"] == pytest.approx(predicted, rel=rel), (name, f["fraction"])
                assert f["relative_error"] == pytest.approx((predicted - actual) / actual, rel=rel, abs=1e-13)


def test_cli_plot_csv_and_shuffled_band(small_store, tmp_path):
    store, texts, labels = small_store
    _without_record(store)
    png = tmp_path / "growth.png"
    out = accum_json("saturation", "--plot", png, "--shuffles", "3", "--seed", "7", "--store", store)
    assert png.stat().st_size > 20_000
    with open(tmp_path / "growth.csv") as f:
        rows = list(csv.DictReader(f))
    assert {r["category"] for r in rows} == {"all pages", "sci.space", "rec.autos", "talk.politics.guns"}
    # the forecast line of the figure: from the cutoff of the 50 % forecast to the JSON's prediction
    for summary in [out["overall"], *out["categories"]]:
        name = summary["category"] or "all pages"
        fc = {f["fraction"]: f for f in summary["forecast"]}[0.5]
        line = [(int(r["pages"]), float(r["forecast_from_50pct"])) for r in rows
                if r["category"] == name and r["order"] == "1" and r["forecast_from_50pct"]]
        assert line[0][0] == fc["fit_pages"] and line[-1][0] == summary["pages"]
        assert line[-1][1] == pytest.approx(fc["predicted"], abs=0.05)
    band = out["bands"]["all pages"]
    assert all(lo <= m <= hi for lo, m, hi in zip(band["low"], band["mean"], band["high"]))
    assert band["low"][0] < band["high"][0] or len(set(labels)) == 1  # orders differ at the start
    again = accum_json("saturation", "--shuffles", "3", "--seed", "7", "--store", store)
    assert again["bands"] == out["bands"]  # same seed, same band
    svg = tmp_path / "growth.svg"
    accum("saturation", "--plot", svg, "--category", "sci.space", "--store", store)
    assert svg.read_text().startswith("<?xml")


def test_cli_forecasts_by_the_stores_pick_once_checked(small_store, tmp_path):
    store, texts, labels = small_store
    _without_record(store)
    assert "run accum forecast" in accum("saturation", "--store", store).stdout
    checked = accum_json("forecast", "--shuffles", "2", "--min-pages", "10", "--store", store)
    pick = checked["chosen"]["2x"]
    try:
        png = tmp_path / "growth.png"
        out = accum_json("saturation", "--order", "2", "--plot", png, "--store", store)
        text = accum("saturation", "--order", "2", "--store", store).stdout
    finally:
        _without_record(store)
    assert "the store's pick for 2x the pages from accum forecast's checks (2 shuffles)" in text
    with open(tmp_path / "growth.csv") as f:
        points = list(csv.DictReader(f))
    for summary in [out["overall"], *out["categories"]]:
        name = summary["category"]
        assert summary["forecast_method"] == pick["method"]
        assert summary["forecast_pick"] == {"ahead": "2x", **pick, "shuffles": 2, "seed": 0, "min_pages": 10}
        ingest = [c for c in checked["checks"] if c["pages_order"] == "ingest" and c["category"] == name
                  and c["order"] == 2 and c["method"] == pick["method"]]
        assert [(f["fraction"], f["fit_pages"], f["predicted"], f["actual"]) for f in summary["forecast"]] == [
            (c["fraction"], c["fit_pages"], c["predicted"], c["actual"]) for c in ingest]
        half = {f["fraction"]: f for f in summary["forecast"]}[0.5]
        mine = [(t, l) for t, l in zip(texts, labels) if name is None or l == name][: half["fit_pages"]]
        assert summary["forecast_profile"] == _naive_profiles(*zip(*mine), 2)[None]
        line = [float(r["forecast_from_50pct"]) for r in points
                if r["category"] == (name or "all pages") and r["forecast_from_50pct"]]
        assert line[-1] == pytest.approx(half["predicted"], abs=0.05)  # the figure draws it


def test_cli_rejects_unknown_category_and_order(small_store):
    store, _, _ = small_store
    bad = accum("saturation", "--category", "nope", "--store", store, check=False)
    assert bad.returncode == 2 and "sci.space" in bad.stderr
    assert accum("saturation", "--order", "3", "--store", store, check=False).returncode == 2

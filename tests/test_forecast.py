"""Vocabulary forecasts: the estimators on known populations, and ``accum forecast``'s
profiles against an independent count of real pages."""

import math
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import binom

from accum import profiles, species

import naive
from test_cli import accum, accum_json


def _expected_profile(incidences, p, terms):
    """E[Φ_i], i = 1..terms, when each of a population's pages is kept with chance p."""
    i = np.arange(1, terms + 1)
    return sum(binom.pmf(i, m, p) for m in incidences)


@pytest.mark.parametrize("t", [0.25, 0.5, 1.0])
def test_good_toulmin_is_exact_in_expectation(t):
    # features held by m of a population's pages; the first n pages are a share p = 1 / (1 + t)
    incidences = np.random.default_rng(1).zipf(1.8, 400).clip(1, 60)
    p = 1 / (1 + t)
    missed = sum((1 - p) ** m for m in incidences)
    assert species.good_toulmin(_expected_profile(incidences, p, 60), t) == pytest.approx(missed, rel=1e-9)


def test_smoothed_good_toulmin_weighs_terms_by_the_binomial_tail():
    phi = np.array([900, 400, 210, 120, 80, 50, 30, 20, 12, 8, 5, 3, 2, 1, 1] + [0] * 15, np.float64)
    n = float(np.sum(np.arange(1, 31) * phi))
    for t in (2.0, 3.0, 9.0):
        k = math.ceil(0.5 * math.log(n * t * t / (t - 1), 3))
        tail = binom.sf(np.arange(30), k, 2 / (t + 2))  # P(L >= i), i = 1..30
        expected = -np.sum((-t) ** np.arange(1, 31) * tail * phi)
        assert species.smoothing_trials(n, t) == k
        assert species.smoothed_good_toulmin(phi, t) == pytest.approx(expected, rel=1e-12)
    assert species.smoothed_good_toulmin(phi, 1.0) == species.good_toulmin(phi, 1.0)
    with pytest.raises(ValueError, match="needs a profile of"):
        species.smoothed_good_toulmin(phi[:3], 9.0)


def test_forecasts_of_a_sampled_population():
    # pages drawn at random from a Zipfian population: forecast the whole from a half and a quarter
    rng = np.random.default_rng(7)
    rates = 0.5 / np.arange(1, 200_001) ** 0.9  # chance that a page holds each feature
    held = rng.binomial(2_000, rates)
    actual = np.count_nonzero(held)
    for share, tolerance in ((0.5, {"smoothed_good_toulmin": 0.02, "second_order": 0.02}),
                             (0.25, {"smoothed_good_toulmin": 0.08, "second_order": 0.05})):
        seen = rng.binomial(held, share)  # each page is among the first ones with chance `share`
        profile = np.bincount(seen, minlength=32)[1:]
        profile = np.append(profile[:30], profile[30:].sum())
        for method, most in tolerance.items():
            assert abs(species.forecast(profile, 1 / share, method) - actual) / actual < most, (share, method)


@pytest.mark.parametrize("t", [1.0, 2.0])
def test_the_interval_covers_the_unseen_of_a_sampled_population(t):
    # the first of (1 + t)·n pages seen, the rest to come: the 95 % interval holds the
    # features the rest brings about 95 % of the time (at least 90 % of 200 draws)
    rng = np.random.default_rng(11)
    rates = 0.5 / np.arange(1, 50_001) ** 0.9
    covered = 0
    for _ in range(200):
        held = rng.binomial(int(1_000 * (1 + t)), rates)
        seen = rng.binomial(held, 1 / (1 + t))
        unseen = np.count_nonzero((seen == 0) & (held > 0))
        profile = np.bincount(seen, minlength=32)[1:31]
        estimate, low, high = species.smoothed_good_toulmin_interval(profile, t)
        assert low < estimate < high and estimate == species.smoothed_good_toulmin(profile, t)
        covered += low <= unseen <= high
    assert covered >= 180


def test_second_order_and_tangent_by_hand():
    # gamma = beta - beta^2 - 2 phi2 / V = 0 here, so both are V * r^beta
    v, phi1, phi2 = 1000, 500, 125
    assert species.second_order(v, phi1, phi2, 8.0) == pytest.approx(v * 8**0.5)
    assert species.tangent(v, phi1, 8.0) == pytest.approx(v * 8**0.5)
    # curving down: held flat once the parabola tops out (u* = -beta / gamma)
    beta, gamma = 0.3, 0.3 - 0.09 - 2 * 400 / 1000
    top = 1000 * math.exp(-0.5 * beta * beta / gamma)
    assert species.second_order(1000, 300, 400, math.exp(-beta / gamma)) == pytest.approx(top)
    assert species.second_order(1000, 300, 400, 1e6) == pytest.approx(top)
    with pytest.raises(ValueError, match="unknown forecast method"):
        species.forecast(np.ones(31), 2.0, "oracle")


def _naive_profiles(texts, labels, order, terms=profiles.PROFILE_TERMS):
    """Incidence profile of each category (None: all pages) over ``texts``, in plain Python."""
    out = {}
    for name in [None, *dict.fromkeys(labels)]:
        held = {}
        for text, label in zip(texts, labels):
            if name is None or label == name:
                for fid in {f for f, words in naive.feature_ids(naive.tokenize(text), 2) if len(words) == order}:
                    held[fid] = held.get(fid, 0) + 1
        hist = [0] * (terms + 1)
        for m in held.values():
            hist[min(m, terms + 1) - 1] += 1
        out[name] = hist
    return out


@pytest.mark.parametrize("order", [1, 2])
def test_cli_profiles_and_checks_equal_an_independent_count(small_store, order):
    store, texts, labels = small_store
    out = accum_json("forecast", "--store", store, "--shuffles", "2", "--min-pages", "10")
    want = _naive_profiles(texts, labels, order)
    current = {c["category"]: c for c in out["current"] if c["order"] == order}
    assert set(current) == set(want)
    saturation = accum_json("saturation", "--order", str(order), "--store", store)
    distinct = {s["category"]: s["distinct"] for s in [saturation["overall"], *saturation["categories"]]}
    for name, hist in want.items():
        assert current[name]["profile"] == hist, name
        assert current[name]["distinct"] == distinct[name]  # the counts' distinct features
        for method in species.METHODS:
            assert current[name]["forecast"][method]["10x"] == pytest.approx(species.forecast(np.array(hist), 10.0,
                                                                                              method), rel=1e-12)
    # the checks in the order of ingest: each forecast made from the first pages of its category
    checks = [c for c in out["checks"] if c["order"] == order]
    ingest = [c for c in checks if c["pages_order"] == "ingest"]
    assert {c["method"] for c in ingest} == set(species.METHODS)
    for c in ingest:
        mine = [(t, l) for t, l in zip(texts, labels) if c["category"] is None or l == c["category"]]
        assert c["pages"] == len(mine) and c["fit_pages"] == max(1, int(c["fraction"] * len(mine)))
        part = _naive_profiles([t for t, _ in mine[: c["fit_pages"]]], [l for _, l in mine[: c["fit_pages"]]], order)
        assert c["predicted"] == pytest.approx(species.forecast(np.array(part[None]), c["pages"] / c["fit_pages"],
                                                                c["method"]), rel=1e-12)
        assert c["actual"] == distinct[c["category"]]
    shuffled = [c for c in checks if c["pages_order"] != "ingest"]
    assert {c["pages_order"] for c in shuffled} == {"shuffle 1", "shuffle 2"}
    assert all(c["actual"] == distinct[c["category"]] for c in shuffled)
    summary = [e for e in out["errors"] if e["order"] == order]
    assert {(e["pages_order"], e["fraction"]) for e in summary} == {
        (kind, f) for kind in ("ingest", "shuffled") for f in profiles.CHECK_FRACTIONS}
    assert all(e["forecasts"] == (3 if e["pages_order"] == "ingest" else 6) for e in summary)
    # the store's own forecast: at each multiple, the method that erred least on its shuffled checks
    for ahead, fraction in (("2x", 0.5), ("10x", 0.1)):
        chosen = out["chosen"][ahead]
        worst = {m: max(e["median_abs_error"] for e in out["errors"] if e["method"] == m and e["fraction"] == fraction
                        and e["pages_order"] == "shuffled") for m in species.METHODS}
        assert chosen["fraction"] == fraction and chosen["median_abs_error"] == min(worst.values())
        assert worst[chosen["method"]] == min(worst.values())
        for c in out["current"]:
            assert c["predicted"][ahead] == c["forecast"][chosen["method"]][ahead]
    # what the store keeps of the checks: the pick, and the checks in the order of ingest made again
    record = profiles.CheckRecord.load(Path(store, "snapshots", out["snapshot"]))
    assert record.chosen == out["chosen"] and (record.shuffles, record.seed, record.min_pages) == (2, 0, 10)
    for name, hist in want.items():
        pages = current[name]["pages"]
        for method in species.METHODS:
            again = record.checks(name, pages, order, method)
            assert [{"pages_order": "ingest", "category": name, **r} for r in again] == [
                c for c in ingest if c["category"] == name and c["method"] == method]
        assert record.checks(name, pages + 1, order, "tangent") is None  # of other pages: nothing


def test_cli_forecast_tables_and_errors(small_store):
    store, _, _ = small_store
    text = accum("forecast", "--store", store, "--shuffles", "1", "--min-pages", "10").stdout
    assert "sci.space" in text and "ALL PAGES" in text and "smoothed_good_toulmin" in text
    assert "from 50%" in text
    assert "no forecast was checked" in accum("forecast", "--store", store, "--min-pages", "1000").stdout
    bad = accum("forecast", "--store", store, "--category", "nope", check=False)
    assert bad.returncode != 0 and "nope" in bad.stderr
    bad = accum("forecast", "--store", store, "--order", "3", check=False)
    assert bad.returncode != 0 and "up to order 2" in bad.stderr

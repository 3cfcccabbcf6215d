"""The asymptote measured on a real 20 Newsgroups store: features per page at growing
scales against a plain-Python count of the page vectors, the rate's fall against the
growth log, the unseen features and their interval, and ``accum asymptote``."""

import math
import shutil

import pytest

from accum import profiles
from accum.asymptote import scales
from accum.cli.saturation_cmd import store_asymptote
from accum.storage import Store
from accum.storage.fits import training_pages
from accum.storage.snapshots import feature_orders

from corpora import corpus_path
from test_cli import accum, accum_json

GROUPS = ("sci.space", "talk.politics.misc", "talk.religion.misc")  # 593 + 465 + 377 posts


@pytest.fixture(scope="module")
def news3(tmp_path_factory):
    """A store of every training post of three groups (1,435 pages: scales 10, 100 and
    1,000 for all of them), ingested through the CLI."""
    root = tmp_path_factory.mktemp("asymptote")
    train = corpus_path("20news-bydate/20news-bydate-train")
    for group in GROUPS:
        shutil.copytree(train / group, root / "corpus" / group)
    store = root / "store"
    accum("ingest", root / "corpus", "--label", "dir", "--no-fit", "--store", store)
    return store


def _pages_holding(store, group, first, order):
    """How many of the first ``first`` pages of ``group`` (None: all pages), in the order of
    ingest, hold each feature of n-gram ``order``: a plain-Python count of the page vectors."""
    st = Store(store)
    snapshot, _, vectors, _ = training_pages(st)
    ids, orders = feature_orders(st.path / "snapshots" / snapshot)
    order_of = dict(zip(ids.tolist(), orders.tolist()))
    held, seen = {}, 0
    for page in range(vectors.n_pages):
        if seen == first:
            break
        if group is not None and vectors.categories[vectors.labels[page]] != group:
            continue
        seen += 1
        for fid in vectors.fids[vectors.bounds[page]:vectors.bounds[page + 1]].tolist():
            if order_of[fid] == order:
                held[fid] = held.get(fid, 0) + 1
    assert seen == first
    return held


def _rate_below(points, threshold):
    """The first page from which every later step of ``points`` ((pages, distinct), in
    order) adds fewer than ``threshold`` per page; None while the last step does not."""
    steps = [(p1, (v1 - v0) / (p1 - p0)) for (p0, v0), (p1, v1) in zip(points, points[1:]) if p1 > p0]
    if not steps or steps[-1][1] >= threshold:
        return None
    above = [p for p, rate in steps if rate >= threshold]
    return above[-1] if above else points[0][0]


@pytest.mark.parametrize("order", [1, 2])
def test_features_per_page_equal_a_plain_count(news3, order):
    st = Store(news3)
    rows = {r["category"]: r for r in store_asymptote(st, st.summary(), order)}
    assert list(rows) == [None, *st.summary().categories]
    assert [s["pages"] for s in rows[None]["scales"]] == [10, 100, 1000, 1435] == scales(1435)
    assert [s["pages"] for s in rows["talk.religion.misc"]["scales"]] == [10, 100, 377]
    for group, first in ((None, 100), (None, 1000), ("sci.space", 10), ("sci.space", 593)):
        counts = list(_pages_holding(news3, group, first, order).values())
        scale = {s["pages"]: s for s in rows[group]["scales"]}[first]
        assert scale["at_least"] == {str(k): sum(c >= k for c in counts) / first for k in (1, 2, 5, 10)}, (group, first)
    saturation = accum_json("saturation", "--order", str(order), "--store", news3)
    for s in [saturation["overall"], *saturation["categories"]]:
        row = rows[s["category"]]
        assert row["distinct"] == s["distinct"]  # the counts' distinct features
        assert row["scales"][-1]["at_least"]["1"] * s["pages"] == pytest.approx(s["distinct"], rel=1e-12)


def test_rate_below_agrees_with_the_growth_log(news3):
    st = Store(news3)
    thresholds = (50.0, 10.0, 1.0)
    rows = store_asymptote(st, st.summary(), 1, thresholds=thresholds)
    found = 0
    for r in rows:
        log = [(g["pages"], g["distinct"]) for g in st.growth(r["category"]) if g["order"] == 1]
        points = log + [(r["pages"], r["distinct"])] if r["pages"] > log[-1][0] else log
        want = {str(t): _rate_below(points, t) for t in thresholds}
        assert r["rate_below"] == want, r["category"]
        found += sum(v is not None for v in want.values())
    assert found  # not every category still adds 50 new words a page


def test_unseen_is_good_toulmin_with_its_interval(news3):
    st = Store(news3)
    for r in store_asymptote(st, st.summary(), 1):
        held = _pages_holding(news3, r["category"], r["pages"], 1)
        phi = [sum(c == i for c in held.values()) for i in range(1, profiles.PROFILE_TERMS + 1)]
        estimate = sum((-1) ** (i + 1) * p for i, p in enumerate(phi, 1))  # Good–Toulmin at t = 1
        spread = 1.96 * math.sqrt(sum(phi) + estimate)  # the bound: Σ h_i² Φ_i + U, h_i = ±1
        u = r["unseen"]
        assert u["method"] == "smoothed_good_toulmin" and u["pages"] == r["pages"]
        assert u["estimate"] == pytest.approx(estimate, rel=1e-12)
        assert u["low"] == pytest.approx(estimate - spread) and u["high"] == pytest.approx(estimate + spread)
        assert 0 < u["low"] < u["estimate"] < u["high"]


def test_bad_arguments(news3):
    st = Store(news3)
    with pytest.raises(ValueError, match="up to order 2"):
        store_asymptote(st, st.summary(), 3)
    with pytest.raises(ValueError, match="levels"):
        store_asymptote(st, st.summary(), 1, levels=(1, 40))
    assert scales(0) == [] and scales(7) == [7] and scales(10) == [10] and scales(11) == [10, 11]


def test_cli_table_and_json(news3):
    st = Store(news3)
    out = accum_json("asymptote", "--store", news3)
    assert out == {"order": 1, "asymptote": store_asymptote(st, st.summary(), 1)}
    text = accum("asymptote", "--store", news3).stdout
    lines = text.splitlines()
    assert lines[0].split()[:7] == ["category", "pages", "≥1", "≥2", "≥5", "≥10", "<1.0/pg"]
    overall = out["asymptote"][0]
    last = next(line for line in lines if line.strip().startswith("1,435"))
    u = overall["unseen"]
    assert f"{u['estimate']:,.0f} ({u['low']:,.0f}–{u['high']:,.0f})" in last
    assert f"{overall['scales'][-1]['at_least']['2']:.2f}" in last
    assert "ALL PAGES" in text and all(g in text for g in GROUPS)
    one = accum_json("asymptote", "--category", "sci.space", "--order", "2", "--store", news3)
    assert [r["category"] for r in one["asymptote"]] == ["sci.space"]
    bad = accum("asymptote", "--category", "nope", "--store", news3, check=False)
    assert bad.returncode == 2 and "sci.space" in bad.stderr
    assert accum("asymptote", "--order", "3", "--store", news3, check=False).returncode == 2

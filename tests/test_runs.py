"""An ingest with a memory budget spills its counts to runs and merges them at each
checkpoint: the store must equal an ingest that keeps every count in memory, array for
array, growth-log row for growth-log row."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from accum.accumulator import Accumulator
from accum.capacity import count_accounting
from accum.classify import make_model
from accum.runs import N_SHARDS, CountRun, Growth, merge_shard
from accum.settings import Settings
from accum.storage import Store
from accum.storage.runs import RunFiles, write_run
from accum.storage.snapshots import segment_names
from corpora import corpus_path
from test_vectors import keyed

GROUPS = ("alt.atheism", "comp.graphics", "rec.autos", "sci.space")


def accum(*args):
    done = subprocess.run([sys.executable, "-m", "accum.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=600)
    return done


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """60 real posts from each of four groups; the first two groups also on their own."""
    root = corpus_path("20news-bydate/20news-bydate-train")
    base = tmp_path_factory.mktemp("runs")
    for name, groups in (("all", GROUPS), ("half", GROUPS[:2])):
        for group in groups:
            (base / name / group).mkdir(parents=True)
            for f in sorted((root / group).iterdir())[:60]:
                (base / name / group / f.name).symlink_to(f)
    return base


def store_state(path) -> dict:
    """Everything a store holds that an ingest makes: the counts, weights, rows,
    spellings, Gram and statistics, the documents, the growth log and the summary."""
    store = Store(path)
    growth = [{k: v for k, v in row.items() if k not in ("id", "run_id")}
              for category in (None, *GROUPS) for row in store.growth(category)]
    info = store.info()
    return {"acc": keyed(store.load()), "growth": growth, "documents": info["documents"],
            "summary": store.summary().to_dict()}


def ingest(corpus, store, *extra):
    done = accum("ingest", corpus, "--label", "dir", "--store", store, "--quiet", "--no-fit", "--json",
                 "--gram-bits", "6", "--batch-pages", "10", "--follow-links", *extra)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_a_budget_spilling_every_batch_gives_the_store_of_an_unbounded_ingest(corpus, tmp_path):
    want = tmp_path / "unbounded"
    ingest(corpus / "all", want)
    spilled = tmp_path / "spilled"
    # first half the groups, then all of them (a snapshot to merge into), committing every batch
    ingest(corpus / "half", spilled, "--memory", "100kB")
    again = ingest(corpus / "all", spilled, "--memory", "100kB", "--checkpoint-seconds", "0")
    assert again["pages_added"] == 120 and again["duplicates"] == 120 and again["checkpoints"] >= 12
    got, expected = store_state(spilled), store_state(want)
    assert got["acc"] == expected["acc"]
    assert got["growth"] == expected["growth"] and len(got["growth"]) > 50
    assert got["summary"] == expected["summary"] and got["documents"] == expected["documents"] == 240
    assert not any((spilled / "runs").iterdir())  # merged runs are removed once committed
    # checkpoints wrote deltas beside their base's segments, read as their sum above
    n_segments = len(segment_names(spilled / "snapshots" / Store(spilled).latest_snapshot()["name"]))
    assert n_segments > 1
    done = accum("compact", "--store", spilled, "--memory", "100kB", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["segments"] == n_segments
    assert segment_names(spilled / "snapshots" / Store(spilled).latest_snapshot()["name"]) == [""]
    assert store_state(spilled) == expected  # compacting changes nothing a reader sees
    again = json.loads(accum("compact", "--store", spilled, "--json").stdout)
    assert again == {"segments": 1, "run": None, "snapshot": None}


def test_count_models_and_measures_read_from_segments_a_shard_at_a_time_equal_those_of_the_whole_counts(corpus, tmp_path):
    whole, spilled = tmp_path / "unbounded", tmp_path / "spilled"
    ingest(corpus / "all", whole)
    ingest(corpus / "half", spilled, "--memory", "100kB")
    ingest(corpus / "all", spilled, "--memory", "100kB", "--checkpoint-seconds", "0")
    assert len(segment_names(spilled / "snapshots" / Store(spilled).latest_snapshot()["name"])) > 1
    acc = Store(whole).load()
    fids = np.asarray(acc.raw_rows[:, 0])
    texts = [p.read_text(encoding="latin-1") for p in sorted((corpus / "all" / GROUPS[2]).iterdir())[:5]]
    for name in ("dm", "complement", "ridge-complement"):
        want = make_model(acc, name)
        got = Store(spilled).count_model(name)  # built a shard at a time and saved
        for clf in (got, Store(spilled).count_model(name)):  # and the saved one, memory-mapped
            assert clf.categories == want.categories
            # per feature and category the same formula on the same counts: equal, bit for bit
            assert np.array_equal(clf.feature_weights(fids), want.feature_weights(fids))
            assert np.array_equal(clf.log_prior, want.log_prior)
            # the ridge part sums floats per shard: equal to rounding
            np.testing.assert_allclose(clf.decision_function(texts), want.decision_function(texts), rtol=1e-9)
    # what accum capacity measures of the counts, read a shard at a time, depends on the counts alone
    measured = [count_accounting(st.count_shards(st.latest_snapshot()["name"]))
                for st in (Store(spilled), Store(whole))]
    assert measured[0] == measured[1]
    info = Store(whole).info()
    assert measured[0]["parameters"] == info["parameters"] and measured[0]["features"] == info["distinct_features"]
    orders = acc.row_order[acc.pairs(ordered=False)[0]]
    assert measured[0]["parameters_by_order"] == dict(zip(*(v.tolist() for v in np.unique(orders, return_counts=True))))


def test_the_budget_option_refuses_what_it_cannot_do(corpus, tmp_path):
    bad = accum("ingest", corpus / "all", "--label", "dir", "--store", tmp_path / "s", "--memory", "lots")
    assert bad.returncode == 2 and "expected a size such as 1GiB" in bad.stderr


def sample_runs(texts, labels, spill_every):
    """Counts of ``texts`` spilled every ``spill_every`` batches of 20 pages, and the
    accumulator that counted them."""
    acc = Accumulator(Settings(), log_crossings=True)
    runs, events = [], []
    for i in range(0, len(texts), 20):
        acc.partial_fit(texts[i : i + 20], labels[i : i + 20])
        if (i // 20) % spill_every == spill_every - 1:
            events.append(acc.take_growth())
            runs.append(acc.take_counts())
    events.append(acc.take_growth())
    runs.append(acc.take_counts())
    return acc, runs, events


def merge(runs, acc):
    sources = [CountRun.empty()] + runs
    growth = Growth.for_sources(len(sources), acc.n_categories, acc.settings.max_order, acc.n_documents + 1)
    occurrences = np.zeros((acc.n_categories, acc.settings.max_order), np.int64)
    bounds = [s.bounds() for s in sources]
    shards = [merge_shard([s.shard(k, b) for s, b in zip(sources, bounds)], growth.marks, acc.settings.prune_k,
                          growth.hist, occurrences)[0]
              for k in range(N_SHARDS)]
    return shards, growth


def test_runs_written_and_read_back_merge_to_the_counts_and_growth_of_one_accumulator(newsgroups_sample, tmp_path):
    texts, labels = newsgroups_sample
    whole = Accumulator(Settings())
    for i in range(0, len(texts), 20):
        whole.partial_fit(texts[i : i + 20], labels[i : i + 20])
    acc, runs, events = sample_runs(texts, labels, spill_every=3)
    assert len(runs) > 2
    for i, run in enumerate(runs[:-1]):  # through the disk and back, shard by shard
        write_run(run, tmp_path / f"run{i}")
        files = RunFiles(tmp_path / f"run{i}")
        back = [files.shard(k) for k in range(N_SHARDS)]
        files.close()
        for name in ("fid", "cat", "count", "weight", "row_fid", "row_order", "cross_fid", "cross_pos", "lex_key"):
            assert np.array_equal(np.concatenate([getattr(b, name) for b in back]), getattr(run, name)), name
        runs[i] = CountRun(**{name: (sum((getattr(b, name) for b in back), []) if name == "lex_text" else
                                     np.concatenate([getattr(b, name) for b in back]))
                              for name in vars(run)})
    shards, growth = merge(runs, acc)
    fid = np.concatenate([s.fid for s in shards])
    rows, cats, counts, weights = whole.pairs()
    order = np.lexsort((cats, whole.row_key[rows]))
    assert np.array_equal(fid, whole.row_key[rows][order])
    assert np.array_equal(np.concatenate([s.count for s in shards]), counts[order])
    assert np.array_equal(np.concatenate([s.weight for s in shards]), weights[order])
    cat_stats, all_stats = growth.stats()
    assert np.array_equal(cat_stats, whole.growth_stats()[0]) and np.array_equal(all_stats, whole.growth_stats()[1])
    assert np.array_equal(growth.log_rows([None] + events), whole.take_growth())


def test_taking_out_pages_never_counted_is_refused(newsgroups_sample):
    texts, labels = newsgroups_sample
    acc, runs, _ = sample_runs(texts[:40], labels[:40], spill_every=10)
    run = runs[0]
    unigram = run.row_fid[run.row_order == 1][:1]
    cat = int(run.cat[(run.fid == unigram[0]) & (run.cat >= 0)][0])
    too_many = CountRun.taken_out(unigram, np.array([cat]), np.array([10**6]), np.array([0]))
    with pytest.raises(ValueError, match="never counted"):
        merge([run, too_many], acc)

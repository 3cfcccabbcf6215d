"""accum's n-gram generator against markovify and NLTK, and its verbatim recall by order.

What is measured
----------------
speed and memory (KJV Bible, three Gutenberg books)
    Nine documents in ten (verses for the KJV, paragraphs for the books) are the
    training text. *build*: ``MarkovAccumulator.partial_fit`` from the texts to the
    counts, against ``markovify.NewlineText`` (KJV, one verse a line) or
    ``markovify.Text`` (books) at the same order (markovify's state size s = order
    - 1); the best of ``BUILD_REPEATS`` builds in one process (warm), with the first
    build's speed-up and peak memory beside it. *compile* (first-call cost, reported apart): accum's first ``generate``
    calls, which derive the chain and the sampling tables from the counts (Kneser-Ney
    and the plain table), against ``markovify.Text.compile()``. *generation*: both
    engines produce text of the same length, ``GEN_WORDS`` whitespace-separated words
    (the unit for both: a mark sticks to its word, as in ``earth.``), timed call by
    call with the word counting outside the timing: accum by ``generate(100_000)``
    calls (text out, from interpolated Kneser-Ney or the plain table ``method="mle"``,
    markovify's model), markovify by ``" ".join(chain.walk())`` per sentence on its
    compiled chain (and, for about a second, on its default uncompiled chain). Each
    engine runs in its own fresh process (peak RSS growth of the step; see
    benchmarks/common.py) after numba's cache is warm; the cost of loading the kernels
    from that cache, and of compiling them when it is empty, is measured once apart.
perplexity against NLTK
    ``nltk.lm.KneserNeyInterpolated(order, discount=0.75)`` is slow (it scans every
    n-gram of the next order for each continuation count), so this runs on a subset:
    the first 1,500 KJV verses for training and the 100 after them held out, tokenised
    by accum, hapax legomena and unseen tokens mapped to one unknown token. Both models
    see the same token sequences (NLTK's padded with order - 1 ``<s>``) and score the
    same events: every held-out token and each verse's end.
held-out perplexity
    accum alone on the full splits, per order and smoother (case kept, punctuation as
    tokens, unknown tokens scored through the unknown slot).
verbatim recall
    Prompted extraction (Carlini et al. 2022, prefix k = 32, continuation m = 50,
    greedy decoding) with the whole KJV as one document, at 1,000 positions drawn
    uniformly ("stream" protocol), per order, from a plain n-gram table (``mle``: the
    longest matching context's counts, as markovify uses) and from Kneser-Ney; plus
    the parameters each order stores. Free generation: longest verbatim run and the
    share of sentences markovify's overlap rule would reject.

Usage
-----
From the repository root::

    .venv/bin/python benchmarks/markov_peers.py                 # writes results/markov_peers.md
    .venv/bin/python benchmarks/markov_peers.py --quick --no-write
    .venv/bin/python benchmarks/markov_peers.py --corpora kjv --speed-only   # the KJV speed rows only
"""

from __future__ import annotations

import argparse
import functools
import re
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import (  # noqa: E402  (pins threads before numpy is imported)
    RESULTS_DIR,
    corpus_path,
    fmt,
    markdown_table,
    measure,
    package_versions,
    report_header,
    run_isolated,
    write_report,
)

REPORT = RESULTS_DIR / "markov_peers.md"
VERSIONS = ("accum", "numpy", "numba", "markovify", "nltk")
BOOKS = {"pg1342": "Pride and Prejudice", "pg2701": "Moby Dick", "pg11": "Alice in Wonderland"}
SAMPLE_SEED = 2026
GEN_WORDS = 1_000_000  # words of output per generation measurement (300,000 with --quick)
BUILD_REPEATS = 5  # builds per engine and corpus: the table shows the best, the first run apart


# -- corpora ------------------------------------------------------------------------------


def load(name: str) -> list[str]:
    """Documents of a corpus: KJV verses, or a book's paragraphs (line breaks as spaces)."""
    if name == "kjv":
        return corpus_path("kjv-bible/kjv.txt").read_text(encoding="cp1252").splitlines()
    raw = corpus_path(f"gutenberg/body-only/{name}.txt").read_text(encoding="utf-8")
    paragraphs = re.split(r"\r?\n[ \t]*\r?\n", raw)
    return [" ".join(p.split()) for p in paragraphs if p.strip()]


def split(docs: list[str]) -> tuple[list[str], list[str]]:
    """Every 10th document held out."""
    return [d for i, d in enumerate(docs) if i % 10 != 9], [d for i, d in enumerate(docs) if i % 10 == 9]


def title(name: str) -> str:
    return "KJV Bible" if name == "kjv" else BOOKS[name]


# -- isolated steps (run in fresh processes) ----------------------------------------------


def warm() -> None:
    from accum.markov import MarkovAccumulator

    m = MarkovAccumulator(order=3)
    m.partial_fit(["In the beginning God created the heaven. And the earth was void."] * 3)
    m.generate(20, seed=1)
    m.generate(20, seed=1, method="mle")
    m.generate(5, greedy=True)
    m.make_sentence(seed=1)
    m.perplexity(["the earth"])
    m.index_text(["the earth"])
    m.free_recall(n_tokens=10, seed=1)
    m.recall(["a b c d e f"], prefix=2, continuation=2)


def accum_speed(name: str, order: int, gen_words: int) -> dict:
    import accum.markov as accum_markov
    from accum.markov import MarkovAccumulator

    warm()
    train, _ = split(load(name))
    model = MarkovAccumulator(order=order)
    with measure() as build:
        model.partial_fit(train)
    best, best_cpu = build.seconds, build.cpu_seconds
    threads = accum_markov.THREADS
    for _ in range(BUILD_REPEATS - 1):  # warm timings: the best of a few builds in this process
        again = MarkovAccumulator(order=order)
        t0, c0 = time.perf_counter(), time.process_time()
        again.partial_fit(train)
        wall = time.perf_counter() - t0
        if wall < best:
            best, best_cpu = wall, time.process_time() - c0
        del again
    one = float("inf")  # and with one thread
    accum_markov.THREADS = 1
    for _ in range(BUILD_REPEATS):
        again = MarkovAccumulator(order=order)
        t0 = time.perf_counter()
        again.partial_fit(train)
        one = min(one, time.perf_counter() - t0)
        del again
    accum_markov.THREADS = threads
    with measure() as compile_:
        model.generate(1, seed=0)  # chain and Kneser-Ney tables
        model.generate(1, seed=0, method="mle")  # the plain table's tables
    out = {"build": build, "build_best": best, "build_best_cpu": best_cpu, "build_one_thread": one,
           "threads": threads, "compile": compile_, "train_tokens": model.n_tokens, "rows": model.n_rows}
    for method in ("kn", "mle"):
        seconds = 0.0
        words = calls = 0
        while words < gen_words:
            t0 = time.perf_counter()
            text = model.generate(100_000, seed=calls, method=method)  # words and marks; document ends extra
            seconds += time.perf_counter() - t0
            words += len(text.split())
            calls += 1
        out[method] = {"seconds": seconds, "words": words, "calls": calls}
    return out


@functools.cache
def _floor_kernels():
    """Two numba kernels of :func:`build_costs`, compiled once: the n-gram ids of a
    batch, and the bare table probes."""
    import numpy as np
    from numba import njit

    from accum._markov_kernels import _prefetch_row, ngram_id

    @njit(cache=False)
    def ngram_keys(ids, tok_bounds, order):
        """The ids of every n-gram (orders 1..``order``) ending at each token of each
        document, as the generator's counting makes them; documents' ends not included."""
        out = np.empty(ids.shape[0] * order, np.uint64)
        prev = np.zeros(order + 1, np.uint64)  # prev[k]: the k-gram ending at the token before
        cur = np.zeros(order + 1, np.uint64)
        n = 0
        for d in range(tok_bounds.shape[0] - 1):
            for t in range(tok_bounds[d], tok_bounds[d + 1]):
                cur[1] = ids[t]
                out[n] = ids[t]
                n += 1
                for k in range(2, min(order, t - tok_bounds[d] + 1) + 1):
                    cur[k] = ngram_id(prev[k - 1], ids[t], k)
                    out[n] = cur[k]
                    n += 1
                prev[:] = cur
        return out[:n]

    @njit(cache=False)
    def probe_all(keys, table, counts):
        """Insert or find every key in the open-addressing table ``table[cap, 2]`` (key,
        row), each slot prefetched 8 keys ahead, and count per row: all a hash-table
        count must do, with nothing else. Returns the rows made."""
        mask = np.uint64(table.shape[0] - 1)
        rows = 0
        for i in range(keys.shape[0]):
            if i + 8 < keys.shape[0]:
                _prefetch_row(table, np.int64(keys[i + 8] & mask))
            key = keys[i]
            s = key & mask
            while table[s, 0] != key and table[s, 0] != 0:
                s = (s + np.uint64(1)) & mask
            if table[s, 0] == 0:
                table[s, 0] = key
                table[s, 1] = rows
                rows += 1
            counts[table[s, 1]] += 1
        return rows

    return ngram_keys, probe_all


def build_costs(name: str, order: int) -> dict:
    """Where one build's time goes (one thread, best of ``BUILD_REPEATS``): tokenising,
    counting the tokens, and the floor of any hash-table count, inserting the same
    n-gram ids into an empty table of the model's size, prefetched, with nothing else."""
    import numpy as np

    from accum.markov import MarkovAccumulator, tokenize

    warm()
    train, _ = split(load(name))

    def best(step):
        seconds = float("inf")
        for _ in range(BUILD_REPEATS):
            t0 = time.perf_counter()
            out = step()
            seconds = min(seconds, time.perf_counter() - t0)
        return seconds, out

    tok_s, batch = best(lambda: tokenize(train))
    count_s, model = best(lambda: MarkovAccumulator(order=order).add_tokens(batch))
    model = MarkovAccumulator(order=order)
    model.add_tokens(batch)
    ngram_keys, probe_all = _floor_kernels()
    keys = ngram_keys(batch.ids, batch.bounds, order)
    counts = np.zeros(len(keys), np.int64)
    probe_all(keys[:1000], np.zeros_like(model._table), counts)  # compiled before timing
    probe_s = float("inf")
    for _ in range(BUILD_REPEATS):
        table = np.zeros_like(model._table)
        table[:] = 0  # touched before timing, as the counts
        counts[:] = 0
        t0 = time.perf_counter()
        probe_all(keys, table, counts)
        probe_s = min(probe_s, time.perf_counter() - t0)
    return {"tokenise": tok_s, "count": count_s, "probe": probe_s, "keys": len(keys),
            "table_mb": table.nbytes / 1e6}


def build_costs_section(speed_raw: dict) -> str:
    rows = []
    for (name, order), (a, m) in speed_raw.items():
        if name != "kjv":
            continue
        c = run_isolated(build_costs, name, order)
        rows.append([title(name), order, fmt(c["tokenise"], 3), fmt(c["count"], 3), f"{c['keys']:,}",
                     f"{c['table_mb']:.0f}", fmt(c["probe"], 3), f"{1e9 * c['probe'] / c['keys']:.1f}",
                     fmt(m["build_best"], 2), fmt(m["build_best"] / 50, 3), fmt(a["build_best"], 3)])
    headers = ["corpus", "order", "tokenise s", "count s", "n-gram ids", "table MB",
               "bare probes s (the floor)", "ns a probe", "markovify build s", "50× budget s",
               "accum build s (2 threads)"]
    return markdown_table(headers, rows)


def markovify_speed(name: str, state: int, gen_words: int) -> dict:
    import random

    import markovify

    train, _ = split(load(name))
    random.seed(0)

    def build_model():
        return markovify.NewlineText("\n".join(train), state_size=state) if name == "kjv" \
            else markovify.Text("\n".join(train), state_size=state)

    with measure() as build:
        model = build_model()
    best = build.seconds
    for _ in range(BUILD_REPEATS - 1):
        t0 = time.perf_counter()
        build_model()
        best = min(best, time.perf_counter() - t0)
    random.seed(0)
    with measure() as compile_:
        compiled = model.compile()
    out = {"build": build, "build_best": best, "compile": compile_}
    for label, chain, budget, limit in (("gen", compiled.chain, gen_words, 600.0),
                                        ("gen_plain", model.chain, gen_words, 1.0)):
        seconds = 0.0
        words = 0
        while words < budget and seconds < limit:
            t0 = time.perf_counter()
            text = " ".join(chain.walk())  # one sentence, as text (markovify's word_join)
            seconds += time.perf_counter() - t0
            words += len(text.split())
        out[label] = {"seconds": seconds, "words": words}
    return out


def kernel_load_seconds() -> dict:
    """Seconds to import accum and run one of everything in a fresh process (cache warm)."""
    t0 = time.perf_counter()
    warm()
    return {"seconds": time.perf_counter() - t0}


def kernel_costs() -> dict:
    """The numba first-call costs: loading from the on-disk cache, compiling without one."""
    import os
    import subprocess
    import tempfile

    warm_load = run_isolated(kernel_load_seconds)["seconds"]
    with tempfile.TemporaryDirectory() as cache:
        code = ("import sys, time; sys.path.insert(0, %r); t0 = time.perf_counter(); "
                "from benchmarks.markov_peers import warm; warm(); print(time.perf_counter() - t0)"
                % str(Path(__file__).resolve().parents[1]))
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        cold = float(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                                    check=True).stdout.strip().splitlines()[-1])
    return {"cache_load": warm_load, "compile": cold}


def markovify_rejections(name: str, state: int, n: int = 300) -> dict:
    import random

    import markovify

    train, _ = split(load(name))
    random.seed(SAMPLE_SEED)
    model = markovify.NewlineText("\n".join(train), state_size=state) if name == "kjv" \
        else markovify.Text("\n".join(train), state_size=state)
    rejected = made = 0
    for _ in range(n):
        s = model.make_sentence(test_output=False)
        if s is None:
            continue
        made += 1
        rejected += not model.test_sentence_output(model.word_split(s), 0.7, 15)
    return {"sentences": made, "rejected_share": rejected / made if made else 0.0}


# -- perplexity against NLTK --------------------------------------------------------------


def nltk_subset(n_train: int, n_test: int) -> tuple[list[list[str]], list[list[str]]]:
    from collections import Counter

    from accum.markov import tokenize

    verses = load("kjv")
    batch = tokenize(verses[: n_train + n_test])
    docs = [batch.doc_tokens(d) for d in range(batch.n_docs)]
    train, test = docs[:n_train], docs[n_train:]
    counts = Counter(w for d in train for w in d)
    unk = "UNKNOWNTOKEN"
    train = [[w if counts[w] > 1 else unk for w in d] for d in train]
    test = [[w if counts[w] > 1 else unk for w in d] for d in test]
    return train, test


def nltk_perplexity(train, test, order: int) -> tuple[float, float, int]:
    from nltk.lm import KneserNeyInterpolated
    from nltk.util import everygrams

    t0 = time.process_time()
    pad = ["<s>"] * (order - 1)
    seqs = [pad + d + ["</s>"] for d in train]
    lm = KneserNeyInterpolated(order, discount=0.75)
    lm.fit([list(everygrams(s, max_len=order)) for s in seqs], [w for s in seqs for w in s])
    total = events = 0
    for d in test:
        s = pad + d + ["</s>"]
        for i in range(order - 1, len(s)):
            total += lm.logscore(s[i], s[i - order + 1 : i])
            events += 1
    return 2 ** (-total / events), time.process_time() - t0, events


def accum_subset_perplexity(train, test, order: int) -> dict:
    from accum.markov import MarkovAccumulator

    model = MarkovAccumulator(order=order)
    model.partial_fit([" ".join(d) for d in train])
    texts = [" ".join(d) for d in test]
    return {m: model.perplexity(texts, method=m) for m in ("kn", "dirichlet")}


# -- the run ------------------------------------------------------------------------------


def speed_section(corpora, gen_words: int) -> tuple[str, dict]:
    rows = []
    raw = {}
    for name in corpora:
        for state in (2, 3):
            order = state + 1
            a = run_isolated(accum_speed, name, order, gen_words)
            m = run_isolated(markovify_speed, name, state, gen_words)
            raw[name, order] = (a, m)
            kn_words = a["kn"]["words"] / a["kn"]["seconds"]
            mle_words = a["mle"]["words"] / a["mle"]["seconds"]
            m_words = m["gen"]["words"] / m["gen"]["seconds"]
            m_plain = m["gen_plain"]["words"] / m["gen_plain"]["seconds"]
            rows.append([
                title(name), f"{order} / {state}", f"{a['train_tokens']:,}",
                f"{fmt(a['build_best'], 3)} ({fmt(a['build_best_cpu'], 3)} CPU) · {fmt(a['build_one_thread'], 3)} / "
                f"{fmt(m['build_best'])}",
                f"**{m['build_best'] / a['build_best']:.0f}×** ({m['build_best'] / a['build_one_thread']:.0f}×; "
                f"{m['build'].seconds / a['build'].seconds:.0f}×)",
                f"{fmt(a['compile'].seconds)} / {fmt(m['compile'].seconds)}",
                f"{(m['build_best'] + m['compile'].seconds) / (a['build_best'] + a['compile'].seconds):.0f}×",
                f"{fmt(kn_words / 1e6)} M / {fmt(mle_words / 1e6)} M",
                f"{fmt(m_words / 1e6, 3)} M / {fmt(m_plain / 1e6, 3)} M",
                f"{kn_words / m_words:.0f}× / **{mle_words / m_words:.0f}×** ({mle_words / m_plain:.0f}×)",
                f"{a['build'].peak_rss_delta / 1e6:.0f} / {m['build'].peak_rss_delta / 1e6:.0f}",
            ])
    threads = raw[corpora[0], 3][0]["threads"] if raw else 1
    headers = ["corpus", "order / markovify state", "training tokens (accum)",
               f"build s accum, {threads} threads (CPU s) · 1 thread / markovify (best of {BUILD_REPEATS})",
               f"build speed-up, {threads} threads (1 thread; first run)",
               "compile s accum / markovify (first call)", "build + compile speed-up",
               "accum words/s KN / plain table", "markovify words/s compiled / uncompiled",
               "generation speed-up KN / plain table (plain vs uncompiled)", "build peak MB accum / markovify"]
    return markdown_table(headers, rows), raw


def perplexity_sections(corpora, orders, n_train, n_test) -> str:
    out = []
    train, test = nltk_subset(n_train, n_test)
    rows = []
    for order in (2, 3):
        ours = run_isolated(accum_subset_perplexity, train, test, order)
        theirs, seconds, events = run_isolated(nltk_perplexity, train, test, order)
        rows.append([order, fmt(ours["kn"]), fmt(theirs), f"{100 * (ours['kn'] / theirs - 1):+.1f} %",
                     fmt(ours["dirichlet"]), f"{events:,}", fmt(seconds, 1)])
    out.append(f"Subset: the first {n_train:,} KJV verses for training, the next {n_test} held out; "
               "hapax legomena and unseen tokens mapped to one unknown token; discount 0.75.\n")
    out.append(markdown_table(["order", "accum KN", "NLTK KneserNeyInterpolated", "difference",
                               "accum Dirichlet", "events scored", "NLTK CPU s"], rows))
    out.append("\n### Held-out perplexity, full splits (every 10th document held out)\n")
    rows = []
    for name in corpora:
        rows.extend(run_isolated(full_perplexity, name, orders))
    out.append(markdown_table(["corpus", "smoother"] + [f"order {o}" for o in orders], rows))
    return "\n".join(out)


def full_perplexity(name: str, orders) -> list[list]:
    from accum.markov import MarkovAccumulator

    train, test = split(load(name))
    model = MarkovAccumulator(order=max(orders))
    model.partial_fit(train)
    rows = []
    for method, label in (("kn", "Kneser-Ney (D = 0.75)"), ("dirichlet", "Dirichlet back-off (α = 3 per type)")):
        rows.append([title(name), label] + [fmt(model.perplexity(test, order=o, method=method), 1) for o in orders])
    return rows


def recall_section(max_order: int, sample: int) -> str:
    return run_isolated(recall_rows, max_order, sample)


def recall_rows(max_order: int, sample: int) -> str:
    from accum.markov import MarkovAccumulator

    verses = load("kjv")
    book = "\n".join(verses)
    orders = [o for o in (2, 3, 4, 5, 6, 7, 8, 10, 12, 16) if o <= max_order]
    model = MarkovAccumulator(order=max(orders))
    t0 = time.perf_counter()
    model.partial_fit([book])
    build = time.perf_counter() - t0
    t0 = time.perf_counter()
    mle = {r.order: r for r in model.recall([book], protocol="stream", sample=sample, seed=1, orders=orders,
                                            method="mle")}
    kn = {r.order: r for r in model.recall([book], protocol="stream", sample=sample, seed=1, orders=orders,
                                           method="kn")}
    seconds = time.perf_counter() - t0
    table = {t["order"]: t for t in model.parameters()}
    rows = []
    for o in orders:
        r, k, p = mle[o], kn[o], table[o]
        rows.append([o, f"{p['cumulative_contexts']:,}", f"{p['cumulative_pairs']:,}",
                     fmt(p["cumulative_bytes"] / 1e6, 0), fmt(r.chain_bytes / 1e6, 0),
                     f"{100 * r.fraction:.1f} % [{100 * r.ci95_low:.1f}, {100 * r.ci95_high:.1f}]",
                     fmt(r.mean_match, 1), f"{100 * k.fraction:.1f} %", fmt(k.mean_match, 1),
                     f"{r.fraction_per_million_parameters:.3f}"])
    head = (f"The whole KJV as one document ({model.n_tokens:,} tokens), {sample:,} prompt positions drawn "
            f"uniformly (seed 1), k = 32, m = 50, greedy decoding. One order-{max(orders)} model holds every "
            f"lower order (built in {build:.1f} s); all {2 * len(orders)} measurements took {seconds:.1f} s.\n\n")
    table_md = markdown_table(
        ["order", "contexts", "(context, next) pairs", "count rows MB", "chain MB",
         "extractable, plain table [95 % CI]", "mean match", "extractable, KN", "mean match KN",
         "plain extractable % per M pairs"], rows)
    # per-verse (document) protocol: verses long enough for k + m
    doc = model.recall(verses, orders=[max(orders)], method="mle")[0]
    note = (f"\n\nPer-verse protocol (each verse a document, prompt = its first 32 tokens): only "
            f"{doc.samples} of {len(verses):,} verses have 82 tokens or more; the order-{max(orders)} plain "
            f"table extracts {doc.extractable} of them.\n")
    return head + table_md + note


def free_section(corpora) -> str:
    rows = []
    for name in corpora:
        rows.extend(run_isolated(free_rows, name))
        for state in (2, 3):
            r = run_isolated(markovify_rejections, name, state)
            rows.append([title(name), f"markovify state {state} (order {state + 1})", "—", "—",
                         f"{100 * r['rejected_share']:.0f} % of {r['sentences']}"])
    return markdown_table(["corpus", "generator", "longest verbatim run (tokens)", "mean verbatim match",
                           "sentences the overlap rule rejects"], rows)


def free_rows(name: str) -> list[list]:
    from accum.markov import MarkovAccumulator

    train, _ = split(load(name))
    model = MarkovAccumulator(order=6)
    model.partial_fit(train)
    model.index_text(train)
    rows = []
    for order in (3, 4, 5, 6):
        for method in ("kn", "mle"):
            r = model.free_recall(n_tokens=20_000, seed=SAMPLE_SEED, order=order, method=method)
            rows.append([title(name), f"accum order {order}, {method}", r["longest_verbatim_run"],
                         fmt(r["mean_verbatim_match"], 1),
                         f"{100 * r['rejected_share']:.0f} % of {r['sentences']}"])
    return rows


def samples_section(order: int) -> str:
    return run_isolated(sample_texts, order)


def sample_texts(order: int) -> str:
    from accum.markov import MarkovAccumulator

    out = []
    for name in ("kjv", "pg1342"):
        train, _ = split(load(name))
        model = MarkovAccumulator(order=order)
        model.partial_fit(train)
        for label, kw in (("Kneser-Ney, temperature 0.6", {"temperature": 0.6}),
                          ("plain table (`method=\"mle\"`, as markovify)", {"method": "mle"}),
                          ("Kneser-Ney, temperature 1", {})):
            args = ", ".join(f"{k}={v!r}" for k, v in kw.items())
            text = model.generate(100, seed=SAMPLE_SEED, **kw)
            out.append(f"**{title(name)}**, order {order}, {label}: "
                       f"`generate(100, seed={SAMPLE_SEED}{', ' + args if args else ''})`\n")
            out.append("> " + text.replace("\n", "\n>\n> ") + "\n")
        sentences = [model.make_sentence(seed=i, method="mle") for i in (1, 2, 3)]
        out.append('`make_sentence(seed=i, method="mle")`, i = 1, 2, 3:\n')
        out.extend(f"- {s}" for s in sentences)
        out.append("")
    return "\n".join(out)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="KJV and one book, shorter runs, orders up to 8")
    parser.add_argument("--no-write", action="store_true", help="print the report instead of writing it")
    parser.add_argument("--max-order", type=int, default=16, help="highest order of the recall curve")
    parser.add_argument("--corpora", help="comma-separated subset of kjv," + ",".join(BOOKS))
    parser.add_argument("--speed-only", action="store_true",
                        help="only the build and generation table (no kernel costs, perplexity, recall, samples)")
    args = parser.parse_args(argv)
    corpora = ["kjv", "pg11"] if args.quick else ["kjv", *BOOKS]
    if args.corpora:
        corpora = args.corpora.split(",")
        unknown = set(corpora) - {"kjv", *BOOKS}
        if unknown:
            parser.error(f"unknown corpora {sorted(unknown)}")
    gen_words = 300_000 if args.quick else GEN_WORDS
    max_order = min(args.max_order, 8) if args.quick else args.max_order
    recommended = 4

    run_isolated(warm)
    started = time.perf_counter()
    parts = [report_header("accum's n-gram generator against markovify and NLTK", package_versions(VERSIONS))]
    print("speed ...", file=sys.stderr)
    speed_md, speed_raw = speed_section(corpora, gen_words)
    costs_md = build_costs_section(speed_raw)
    if args.speed_only:
        print(speed_md + "\n\n" + costs_md)
        return
    kernels = kernel_costs()
    parts += ["## Build, generation speed and memory\n", speed_md,
              f"\nSeconds are wall-clock on a shared 2-core machine (best read as upper bounds); "
              f"the speed-ups divide markovify's time by accum's. Build: the best of "
              f"{BUILD_REPEATS} builds in one process (warm; the speed-up of the first build of each "
              f"process, the one whose peak memory is shown, last in parentheses). accum builds a batch of "
              f"1 MB of text or more with two threads where two cores are free (one tokenises chunks of "
              f"the batch while the other counts the chunks already tokenised, in order: the same model "
              f"as one thread); the CPU seconds of that build (both threads) are beside its wall "
              f"seconds, and the best of {BUILD_REPEATS} builds with one thread "
              f"(`ACCUM_MARKOV_THREADS=1`) after them, with its speed-up in parentheses. markovify uses one "
              f"thread. Generation (one thread for both): both engines write "
              f"{gen_words:,} or more words of text per measurement, and words/s counts the "
              f"whitespace-separated words of that text for both (a mark sticks to its word); accum "
              f"samples either interpolated Kneser-Ney or the plain table (`method=\"mle\"`: the "
              f"longest matching context's counts, markovify's model) in calls of 100,000 tokens, "
              f"markovify joins the words of each sentence its chain walks (`\" \".join(walk())`, "
              f"as its `make_sentence` does). Like with like: accum's plain table against "
              f"markovify's compiled chain (in parentheses: against its default, uncompiled chain). "
              f"*Compile* is the first-call cost of each model (accum: deriving the chain and the "
              f"sampling tables of Kneser-Ney and of the plain table; markovify: `compile()`); "
              f"build + compile speed-up compares the two totals. numba kernels: loading them "
              f"from the on-disk cache in a fresh process and running each once takes "
              f"{kernels['cache_load']:.1f} s; compiling them from scratch (empty cache, once "
              f"per install) {kernels['compile']:.0f} s; both are outside every timing above.\n"]
    if costs_md.count("\n") > 1:
        parts += ["### Where a KJV build's time goes\n", costs_md,
                  "\nOne thread, best of " f"{BUILD_REPEATS}" ": *tokenise* is `accum.markov.tokenize` of the "
                  "training verses, *count* `add_tokens` of those tokens into a new model (rows, counts, "
                  "sentence openers, documents' ends, lexicon); the two threads of a build overlap them. "
                  "*Bare probes* is the least any hash-table count can do, timed apart: the same "
                  "n-gram ids, made beforehand, inserted into an empty table of the model's size "
                  "(already touched), each slot prefetched 8 ids ahead, a count per row and nothing "
                  "else. The 50× goal leaves markovify's build time / 50 for all of it.\n"]
    print("perplexity ...", file=sys.stderr)
    parts += ["## Held-out perplexity against NLTK's Kneser-Ney\n",
              perplexity_sections(corpora, [2, 3, 4, 5, 6], 1500, 100), ""]
    print("recall ...", file=sys.stderr)
    parts += ["## Verbatim recall by order (prompted extraction)\n", recall_section(max_order, 1000), ""]
    print("free generation ...", file=sys.stderr)
    parts += ["## Verbatim copying in free generation\n",
              "20,000 generated tokens per row (seed 2026) against a suffix array of the training "
              "text; the overlap rule is markovify's: reject a sentence that copies more than "
              "min(15, 70 %) of its words in one run (for markovify: its own `test_sentence_output` "
              "on 300 `make_sentence(test_output=False)` sentences).\n",
              free_section(corpora), ""]
    parts += ["## Samples\n", samples_section(recommended)]
    parts.append(f"\nTotal run time {time.perf_counter() - started:.0f} s.")
    report = "\n".join(parts)
    if args.no_write:
        print(report)
    else:
        write_report(REPORT, report)


if __name__ == "__main__":
    main()

"""Ingest speed of accum on 20 Newsgroups and WebKB, where the time goes, and two peers.

What is measured, for each corpus (20 Newsgroups ``20news-bydate-train`` and WebKB, both
read as directory trees with ``--label dir``):

end-to-end
    The real ingest path, as ``accum ingest`` runs it: ``accum.sources.iter_sources`` ->
    ``accum.ingest.ingest`` -> a new ``accum.storage.Store`` (SQLite catalog and Arrow
    snapshot) in a temporary directory, default batch and checkpoint settings. MB/s
    counts every raw byte read (as ``accum ingest`` reports it); tokens/s counts accum's
    tokens of the pages added.
(a) read + extract
    Iterating the reader's records only: file reads, charset decoding, header parsing
    and HTML-to-text extraction (WebKB is HTML; 20 Newsgroups is plain text).
(b) tokenise + count
    ``Accumulator.partial_fit`` on the pre-read texts in batches of the ingest's
    ``batch_pages``: tokenising, hashing, n-gram derivation, counting and the growth
    log the counting kernel keeps.
(c) snapshot + commit
    One ``StoreWriter.checkpoint`` of the finished accumulator with all its document
    rows and growth-log rows: the Arrow IPC snapshot (written, fsynced, renamed) and the
    catalog transaction.
(d) hashing + dedup
    The content hash (BLAKE2b) of every page and the ingest's per-batch look-up of
    those hashes in the catalog (an empty catalog, as in a first ingest).
rest
    End-to-end minus (a) to (d): the ingest's per-record Python loop, plus whatever
    the run-to-run noise of the other rows adds or takes away.
peers
    scikit-learn's ``CountVectorizer(ngram_range=(1, 2))`` and
    ``HashingVectorizer(ngram_range=(1, 2))`` ``fit_transform`` on the same pre-read
    texts. They build a document-term matrix where accum builds per-category counts,
    but both tokenise the same text into unigrams and bigrams and count them. Then the
    whole scikit-learn pipeline that ends where accum's counts do, a classifier's
    per-category counts: ``CountVectorizer(ngram_range=(1, 2)).fit_transform`` and
    ``MultinomialNB().fit``; its peak memory is the one to compare with accum's
    end-to-end peak.

The texts for (b), (c), (d) and the peers are the pages the ingest adds: labelled,
non-empty, the first page of each distinct text (WebKB has duplicate pages). Every
row's MB/s and tokens/s divide the same corpus totals (raw bytes read, UTF-8 bytes of
the added texts, accum tokens of the added texts) by that row's wall seconds, so rates
are comparable across rows. The shares of (a) to (d) and "rest" are of the end-to-end
CPU time, which other load on a shared machine disturbs less than wall time.

How
---
Numba, OpenMP and BLAS are pinned to one thread through their environment variables
before anything loads them; every step is single-threaded but the second end-to-end
row, which reads the files in a background thread as ``accum ingest`` does by default. Before measuring, the parent
runs one tiny ingest so numba's on-disk cache is compiled, and every measured process
loads the kernels with a tiny warm-up of its own, so no compile or cache-load time is
counted. Each step runs in a fresh ``spawn``-ed process, so its peak memory (peak RSS
above the RSS at the start of the step; see :mod:`benchmarks.common`) is its own; it
runs ``--repeat`` times in a row there, and the least wall and CPU seconds are reported
(with the first run's peak, since later runs reuse memory the allocator kept). Files
are read from the page cache (the parent reads each corpus once first), so (a) is not a
cold-disk figure. A full run takes about 3 minutes.

Usage
-----
From the repository root::

    .venv/bin/python benchmarks/ingest_speed.py            # both corpora, writes results/
    .venv/bin/python benchmarks/ingest_speed.py --corpus webkb --repeat 1 --no-write
"""

from __future__ import annotations

import argparse
import functools
import pickle
import sys
import tempfile
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import (  # noqa: E402  (pins threads before numpy is imported)
    CONTENTION_NOTE,
    RESULTS_DIR,
    contention_mark,
    corpus_path,
    fmt,
    machine_info,
    markdown_table,
    measure,
    package_versions,
    report_header,
    run_isolated,
    warm_accum,
    write_report,
)

CORPORA = {
    "20ng": ("20 Newsgroups, bydate train", "20news-bydate/20news-bydate-train"),
    "webkb": ("WebKB (all 7 classes, 5 sources)", "webkb"),
}
VERSIONS = ("accum", "numpy", "numba", "scikit-learn", "pyarrow", "SQLAlchemy", "selectolax")
REPORT = RESULTS_DIR / "ingest_speed.md"


def batch_pages() -> int:
    """The ingest's default batch size, so that step (b) batches exactly as it does."""
    from accum.ingest import ingest

    return ingest.__kwdefaults__["batch_pages"]


def read_records(path: Path):
    """The records ``accum ingest PATH --label dir`` reads."""
    from accum.sources import iter_sources

    return iter_sources([path], fmt="dir", label="dir")


# -- preparing the pre-read texts (in the parent) -----------------------------------------


def prepare_corpus(path: Path, out_file: Path) -> dict:
    """Pickle the pages an ingest of ``path`` would add; return the corpus totals."""
    from accum.ingest import content_hash
    from accum.pages import Page
    from accum.tokens import tokenize

    raw_bytes = 0
    seen: set[str] = set()
    pages = []
    for record in read_records(path):
        raw_bytes += record.n_bytes
        if isinstance(record, Page) and record.label is not None and record.text.strip():
            digest = content_hash(record.text)
            if digest not in seen:
                seen.add(digest)
                pages.append((record.url, record.label, record.text, record.n_bytes))
    texts = [text for _, _, text, _ in pages]
    size = batch_pages()
    tokens = sum(int(tokenize(texts[i : i + size]).ids.size) for i in range(0, len(texts), size))
    with open(out_file, "wb") as f:
        pickle.dump(pages, f, protocol=pickle.HIGHEST_PROTOCOL)
    return {
        "pages": len(pages),
        "raw_bytes": raw_bytes,
        "text_bytes": sum(len(t.encode("utf-8", "surrogatepass")) for t in texts),
        "tokens": tokens,
    }


def load_pages(data_file: Path) -> list[tuple[str, str, str, int]]:
    """(url, label, text, raw bytes) of each page, as pickled by :func:`prepare_corpus`."""
    with open(data_file, "rb") as f:
        return pickle.load(f)


# -- measured steps (each in its own process) ---------------------------------------------


def fastest_of(run_once, repeat: int) -> dict:
    """Call ``run_once()`` ``repeat`` times: the least wall and CPU seconds, the first peak.

    ``run_once`` returns the :class:`~benchmarks.common.Measurement` of its timed part and
    a dict of extras. Later runs reuse memory the allocator kept, so only the first
    run's peak is the step's own.
    """
    runs = [run_once() for _ in range(repeat)]
    best, extras = min(runs, key=lambda run: run[0].seconds)
    return vars(best) | extras | {
        "cpu_seconds": min(m.cpu_seconds for m, _ in runs),
        "peak_rss_delta": runs[0][0].peak_rss_delta,
        "wall_runs": [m.seconds for m, _ in runs],
    }


def new_store(parent: str):
    """A new, empty store in a fresh directory under ``parent``."""
    from accum.storage import Store

    return Store(Path(tempfile.mkdtemp(dir=parent)) / "store", create=True)


def step_end_to_end(path: Path, repeat: int, read_ahead: bool = False) -> dict:
    """The whole ``accum ingest`` path into a new store in a temporary directory, on one
    thread or (``read_ahead``, as ``accum ingest`` runs) reading in a second thread."""
    from accum.accumulator import Settings
    from accum.ingest import ingest

    warm_accum(with_store=True)
    with tempfile.TemporaryDirectory() as tmp:

        def once():
            with measure() as m:
                store = new_store(tmp)
                settings = store.settings() or Settings()
                acc = store.load(settings)
                with store.writer({"sources": [str(path)], "label": "dir"}, settings) as writer:
                    summary = ingest(read_records(path), acc, writer, read_ahead_thread=read_ahead)
            return m, {"pages_added": summary.pages_added, "tokens": summary.tokens,
                       "features": acc.n_rows, "bytes_read": summary.bytes_read}

        return fastest_of(once, repeat)


def step_read(path: Path, repeat: int) -> dict:
    """(a) Iterate the records only: reading, decoding and HTML extraction."""
    from accum.pages import Page

    def once():
        with measure() as m:
            pages = sum(isinstance(record, Page) for record in read_records(path))
        return m, {"pages": pages}

    return fastest_of(once, repeat)


def count_in_batches(pages: list[tuple[str, str, str, int]], settings=None):
    """An accumulator of ``pages``, counted in batches of the ingest's ``batch_pages``."""
    from accum.accumulator import Accumulator

    texts, labels = [p[2] for p in pages], [p[1] for p in pages]
    size = batch_pages()
    acc = Accumulator(settings)
    for i in range(0, len(texts), size):
        acc.partial_fit(texts[i : i + size], labels[i : i + size])
    return acc


def step_count(data_file: Path, repeat: int, gram_bits: int | None = None) -> dict:
    """(b) ``Accumulator.partial_fit`` on the pre-read texts, in ingest-sized batches
    (``gram_bits``: other than the default's Gram)."""
    from accum.accumulator import Settings

    pages = load_pages(data_file)
    settings = Settings() if gram_bits is None else Settings(gram_bits=gram_bits)
    warm_accum()

    def once():
        with measure() as m:
            acc = count_in_batches(pages, settings)
        return m, {"tokens": acc.n_tokens, "features": acc.n_rows}

    return fastest_of(once, repeat)


def step_count_without_gram(data_file: Path, repeat: int) -> dict:
    """(b) without the Gram (``gram_bits`` 0): the difference is what the Gram costs."""
    return step_count(data_file, repeat, gram_bits=0)


def step_tokenise(data_file: Path, repeat: int) -> dict:
    """The part of (b) before counting: tokenising and deriving the n-gram ids, in batches."""
    from accum.accumulator import Settings
    from accum.tokens import tokenize

    pages = load_pages(data_file)
    texts, size, order = [p[2] for p in pages], batch_pages(), Settings().max_order
    warm_accum()

    def once():
        tokens = 0
        with measure() as m:
            for i in range(0, len(texts), size):
                batch = tokenize(texts[i : i + size])
                batch.ngrams(order)
                tokens += len(batch.ids)
        return m, {"tokens": tokens}

    return fastest_of(once, repeat)


def step_snapshot(data_file: Path, repeat: int) -> dict:
    """(c) One checkpoint of the whole corpus: snapshot write plus catalog commit."""
    from accum.ingest import DocumentRow, IngestSummary, content_hash
    from accum.tokens import tokenize

    pages = load_pages(data_file)
    acc = count_in_batches(pages)
    growth = acc.take_growth()
    lengths = tokenize([p[2] for p in pages]).doc_lengths().tolist()
    documents = [DocumentRow(content_hash(text), url, label, n, raw)
                 for (url, label, text, raw), n in zip(pages, lengths)]
    summary = IngestSummary(pages_added=len(pages), tokens=acc.n_tokens)
    warm_accum(with_store=True)
    with tempfile.TemporaryDirectory() as tmp:

        def once():
            store = new_store(tmp)
            with store.writer({"benchmark": "snapshot"}, acc.settings) as writer:
                with measure() as m:
                    writer.checkpoint(acc, documents, growth, summary)
            return m, {"snapshot_bytes": store.latest_snapshot()["bytes"]}

        return fastest_of(once, repeat)


def step_dedup(data_file: Path, repeat: int) -> dict:
    """(d) Content hashes of the pages and the ingest's per-batch look-ups in the catalog."""
    from accum.accumulator import Settings
    from accum.ingest import content_hash

    texts = [p[2] for p in load_pages(data_file)]
    size = batch_pages()
    warm_accum(with_store=True)
    with tempfile.TemporaryDirectory() as tmp:

        def once():
            store = new_store(tmp)
            with store.writer({"benchmark": "dedup"}, Settings()) as writer:
                with measure() as m:
                    for i in range(0, len(texts), size):
                        writer.known_hashes([content_hash(t) for t in texts[i : i + size]])
            return m, {}

        return fastest_of(once, repeat)


def step_count_vectorizer(data_file: Path, repeat: int) -> dict:
    """Peer: ``CountVectorizer(ngram_range=(1, 2)).fit_transform`` on the same texts."""
    from sklearn.feature_extraction.text import CountVectorizer

    texts = [p[2] for p in load_pages(data_file)]

    def once():
        with measure() as m:
            matrix = CountVectorizer(ngram_range=(1, 2)).fit_transform(texts)
        return m, {"features": matrix.shape[1]}

    return fastest_of(once, repeat)


def step_count_vectorizer_nb(data_file: Path, repeat: int) -> dict:
    """Peer: ``CountVectorizer(ngram_range=(1, 2))`` then ``MultinomialNB().fit`` on the same
    texts and labels (a classifier's per-category counts, as accum keeps them)."""
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.naive_bayes import MultinomialNB

    pages = load_pages(data_file)
    texts, labels = [p[2] for p in pages], [p[1] for p in pages]

    def once():
        with measure() as m:
            matrix = CountVectorizer(ngram_range=(1, 2)).fit_transform(texts)
            MultinomialNB().fit(matrix, labels)
        return m, {"features": matrix.shape[1]}

    return fastest_of(once, repeat)


def step_hashing_vectorizer(data_file: Path, repeat: int) -> dict:
    """Peer: ``HashingVectorizer(ngram_range=(1, 2)).fit_transform`` on the same texts."""
    from sklearn.feature_extraction.text import HashingVectorizer

    texts = [p[2] for p in load_pages(data_file)]

    def once():
        with measure() as m:
            matrix = HashingVectorizer(ngram_range=(1, 2)).fit_transform(texts)
        return m, {"features": matrix.shape[1]}

    return fastest_of(once, repeat)


# -- running and reporting (in the parent) ------------------------------------------------

#: Measured rows: key, label in the table, step function, whether it reads the corpus
#: itself (True) or takes the pre-read texts (False).
STEPS = (
    ("end_to_end", "end-to-end (`accum ingest` path, one thread)", step_end_to_end, True),
    ("end_to_end_read_ahead", "end-to-end, reading in a second thread (`accum ingest`'s default)",
     functools.partial(step_end_to_end, read_ahead=True), True),
    ("read", "(a) read + extract only", step_read, True),
    ("count", "(b) tokenise + count only", step_count, False),
    ("tokenise", "(b1) of which tokenise + n-gram ids", step_tokenise, False),
    ("count_without_gram", "(b2) (b) without the Gram (gram_bits 0)", step_count_without_gram, False),
    ("snapshot", "(c) snapshot write + catalog commit", step_snapshot, False),
    ("dedup", "(d) content hashing + dedup look-ups", step_dedup, False),
    ("count_vectorizer", "peer: CountVectorizer(1,2) fit_transform", step_count_vectorizer, False),
    ("hashing_vectorizer", "peer: HashingVectorizer(1,2) fit_transform", step_hashing_vectorizer, False),
    ("count_vectorizer_nb", "peer: CountVectorizer(1,2) + MultinomialNB fit", step_count_vectorizer_nb, False),
)
PARTS = ("read", "count", "snapshot", "dedup")


def measure_corpus(path: Path, workdir: Path, repeat: int) -> dict:
    """Totals of the corpus and the measurement of every step, each in a fresh process."""
    data_file = workdir / f"{path.name}.pickle"
    totals = prepare_corpus(path, data_file)
    results = {}
    for key, label, step, reads_corpus in STEPS:
        print(f"  {label} ...", file=sys.stderr, flush=True)
        results[key] = run_isolated(step, path if reads_corpus else data_file, repeat)
    data_file.unlink()
    return {"totals": totals, "steps": results}


def step_rows(measured: dict) -> list[list[str]]:
    """Table rows: seconds, share of end-to-end CPU time, rates and peak memory of each step."""
    totals, steps = measured["totals"], measured["steps"]
    total_cpu = steps["end_to_end"]["cpu_seconds"]

    def share(cpu_seconds):
        return f"{100 * cpu_seconds / total_cpu:.0f} %"

    def row(key, label):
        step = steps[key]
        seconds = step["seconds"]
        return [label, fmt(seconds) + contention_mark(seconds, step["cpu_seconds"]), fmt(step["cpu_seconds"]),
                share(step["cpu_seconds"]) if key in PARTS + ("end_to_end",) else "—",
                fmt(totals["raw_bytes"] / seconds / 1e6, 1), fmt(totals["text_bytes"] / seconds / 1e6, 1),
                fmt(totals["tokens"] / seconds / 1e6), fmt(step["peak_rss_delta"] / 1e6, 0)]

    rows = [row(key, label) for key, label, _, _ in STEPS]
    rest = total_cpu - sum(steps[k]["cpu_seconds"] for k in PARTS)
    after_parts = 1 + max(i for i, (key, _, _, _) in enumerate(STEPS) if key in PARTS)
    rows.insert(after_parts, [
        "rest: end-to-end − (a+b+c+d): per-record loop, and noise", "", fmt(rest), share(rest), "", "", "", "—",
    ])
    return rows


def ratio_lines(steps: dict, totals: dict) -> list[str]:
    """accum ÷ peer speed ratios on the same text (> 1: accum is faster)."""
    lines = []
    peers = (("count_vectorizer", "CountVectorizer(1,2)"), ("hashing_vectorizer", "HashingVectorizer(1,2)"))
    for key, peer in peers:
        peer_s = steps[key]["seconds"]
        lines.append(
            f"- accum ÷ {peer}, speed on the same text: tokenise + count (b) "
            f"**{peer_s / steps['count']['seconds']:.1f}×**; whole ingest from raw files to a "
            f"committed store **{peer_s / steps['end_to_end']['seconds']:.1f}×**; peak memory "
            f"{steps['count']['peak_rss_delta'] / 1e6:,.0f} MB (b) vs {steps[key]['peak_rss_delta'] / 1e6:,.0f} MB"
        )
    count, tok, plain = (steps[k]["seconds"] for k in ("count", "tokenise", "count_without_gram"))
    lines.append(
        f"- inside (b): tokenising and n-gram ids {tok:.2f} s, counting into the tables {plain - tok:.2f} s "
        f"(about {2 * totals['tokens'] / (plain - tok) / 1e6:.1f} M unigram and bigram occurrences/s: random reads of the pair "
        f"table and pairs, larger than the cache, prefetched a few tokens ahead), the Gram {count - plain:.2f} s "
        f"(per page, a multiply-add for every pair of its distinct unigram buckets)"
    )
    one, two = steps["end_to_end"], steps["end_to_end_read_ahead"]
    lines.append(
        f"- reading in a second thread while counting (`accum ingest`'s default): end to end "
        f"{two['seconds']:.2f} s against {one['seconds']:.2f} s on one thread "
        f"({one['seconds'] / two['seconds']:.2f}×; {two['cpu_seconds']:.2f} CPU s on two cores)"
    )
    nb = steps["count_vectorizer_nb"]
    lines.append(
        f"- accum ÷ CountVectorizer(1,2) + MultinomialNB (both end at per-category counts): whole ingest "
        f"from raw files to a committed store **{nb['seconds'] / steps['end_to_end']['seconds']:.1f}×** the "
        f"speed; peak memory {steps['end_to_end']['peak_rss_delta'] / 1e6:,.0f} MB (end-to-end, files "
        f"streamed) vs {nb['peak_rss_delta'] / 1e6:,.0f} MB (texts already in memory)"
    )
    return lines


def corpus_section(title: str, path: Path, measured: dict) -> str:
    """The markdown section of one corpus: totals, the step table and the ratios."""
    totals, steps = measured["totals"], measured["steps"]
    e2e = steps["end_to_end"]
    headers = ["step", "seconds", "CPU s", "share of CPU", "raw MB/s", "text MB/s", "M tokens/s", "peak RSS Δ MB"]
    parts = [
        f"## {title}",
        "",
        f"`{path}`: {totals['pages']:,} pages added, {totals['raw_bytes'] / 1e6:,.1f} MB raw read, "
        f"{totals['text_bytes'] / 1e6:,.1f} MB of text, {totals['tokens']:,} tokens, "
        f"{e2e['features']:,} distinct unigram + bigram features; CountVectorizer(1,2) vocabulary "
        f"{steps['count_vectorizer']['features']:,}; "
        f"snapshot {steps['snapshot']['snapshot_bytes'] / 1e6:,.1f} MB.",
        "",
        markdown_table(headers, step_rows(measured)),
        "",
        *ratio_lines(steps, totals),
        "",
    ]
    return "\n".join(parts)


def notes(repeat: int, memory_method: str) -> str:
    return "\n".join([
        "Notes:",
        "",
        "- Single-threaded (NUMBA_NUM_THREADS, OMP/OPENBLAS/MKL threads = 1), but for the end-to-end row that "
        "reads in a second thread (the counting kernels release the GIL, so reading overlaps counting). Numba kernels were "
        "compiled by a tiny ingest before measuring, and each measured process loaded them with a "
        "tiny warm-up first: compile and cache-load time is excluded.",
        f"- Each step runs in its own fresh spawned process, {repeat} time(s) in a row; the table "
        "shows the least wall and CPU seconds, and the peak RSS Δ of the first run: the peak "
        "resident memory above the process's RSS when the step started "
        f"({memory_method}; the pre-read texts themselves are not counted). Rates use wall "
        "seconds; shares use CPU seconds (all threads of the process). The machine is shared, "
        "so times vary between runs; the rest row absorbs that. " + CONTENTION_NOTE,
        "- Every rate divides the same corpus totals by the row's seconds: raw MB = bytes read from "
        "the files (HTTP header + HTML for WebKB), text MB = UTF-8 bytes of the extracted text of "
        "the pages added, tokens = accum's tokens of those pages (runs of letters/digits; each adds "
        "a unigram and a bigram feature).",
        "- Files come from the page cache (the corpus was read just before), so (a) is not a "
        "cold-disk figure. The peers build a document-term matrix, accum per-category counts.",
        "",
    ])


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", choices=["20ng", "webkb", "all"], default="all")
    parser.add_argument("--repeat", type=int, default=3, help="runs per step; the fastest is kept (default 3)")
    parser.add_argument("--output", type=Path, default=REPORT, help=f"markdown report (default {REPORT})")
    parser.add_argument("--no-write", action="store_true", help="print the report only")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    machine = machine_info()
    warm_accum(with_store=True)  # compile numba's on-disk cache here, never in a measurement
    chosen = list(CORPORA) if args.corpus == "all" else [args.corpus]
    sections, method = [], ""
    with tempfile.TemporaryDirectory() as tmp:
        for key in chosen:
            title, sub = CORPORA[key]
            path = corpus_path(sub)
            print(f"{title}: {path}", file=sys.stderr, flush=True)
            measured = measure_corpus(path, Path(tmp), args.repeat)
            method = measured["steps"]["count"]["memory_method"]
            sections.append(corpus_section(title, path, measured))
    report = "\n".join([
        report_header("accum ingest speed", package_versions(VERSIONS), machine),
        *sections,
        notes(args.repeat, method),
    ])
    print(report)
    if not args.no_write:
        write_report(args.output, report)


if __name__ == "__main__":
    main()

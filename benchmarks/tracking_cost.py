"""What saturation tracking costs: tokenise + count with and without the growth log.

The counting kernel keeps, per category and n-gram order, distinct features, singletons,
doubletons and features seen at least k times, and logs them at log-spaced page counts.
This script times ``Accumulator.partial_fit`` over the same pre-read pages with that
tracking on (the default) and off, alternating runs so that load on the shared machine
hits both alike, and reports the best of each and the cost in percent. Single-threaded;
kernels are compiled before timing.

Usage: ``python benchmarks/tracking_cost.py [--runs 5]``
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import (  # noqa: E402  (pins threads before numpy is imported)
    RESULTS_DIR,
    corpus_path,
    package_versions,
    report_header,
    write_report,
)

from accum.accumulator import Accumulator  # noqa: E402
from accum.pages import Page  # noqa: E402
from accum.sources import open_source  # noqa: E402

CORPORA = {"20 Newsgroups train": ("20news-bydate/20news-bydate-train", "dir"), "WebKB": ("webkb", "dir")}


def read(sub: str, label: str) -> tuple[list[str], list[str]]:
    pages = [r for r in open_source(corpus_path(sub), "dir", label) if isinstance(r, Page)]
    return [p.text for p in pages], [p.label for p in pages]


def count_seconds(texts: list[str], labels: list[str], track: bool) -> float:
    acc = Accumulator(track_growth=track)
    started = time.perf_counter()
    for i in range(0, len(texts), 500):
        acc.partial_fit(texts[i : i + 500], labels[i : i + 500])
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    count_seconds(["warm up the kernels"], ["x"], True)
    count_seconds(["warm up the kernels"], ["x"], False)
    rows = []
    for name, (sub, label) in CORPORA.items():
        texts, labels = read(sub, label)
        on, off = [], []
        for _ in range(args.runs):
            off.append(count_seconds(texts, labels, False))
            on.append(count_seconds(texts, labels, True))
        cost = (min(on) - min(off)) / min(off)
        rows.append(f"| {name} | {len(texts):,} | {min(off):.2f} | {min(on):.2f} | {cost:+.1%} |")
        print(rows[-1], flush=True)
    table = "\n".join([
        "| corpus | pages | tokenise + count, no tracking (s) | with tracking (s) | cost of tracking |",
        "| --- | ---: | ---: | ---: | ---: |", *rows,
    ])
    notes = (f"Best of {args.runs} alternating runs each; unigrams and bigrams; the growth log, the "
             "singleton/doubleton/at-least-k statistics per category and order, all of it on or off.")
    header = report_header("What saturation tracking costs", package_versions(["accum", "numpy", "numba"]))
    write_report(RESULTS_DIR / "tracking_cost.md", header + "\n" + table + "\n\n" + notes + "\n")


if __name__ == "__main__":
    main()

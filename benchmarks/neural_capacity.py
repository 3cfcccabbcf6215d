"""Neural capacity (issue #21): small transformers trained on a KJV store and a 20 Newsgroups
train store, beside each store's n-gram generator, through the CLI as a user runs it.

Stores (built once under ``--workdir`` and reused by later runs):

kjv
    The KJV Bible as pages of 100 verses (written as files under the work folder: the
    capacity report fits Heaps' law on the growth of many pages), ``accum ingest DIR
    --default-label kjv --markov-order 8 --no-fit``.
news
    20 Newsgroups train, ``accum ingest DIR --label dir --markov-order 4 --no-fit``.

On each, ``accum capacity --neural --json`` with the same model sizes, training budget in
tokens, recall protocol (``stream`` by default: prompts anywhere inside the pages, as
``accum recall --protocol stream``), sample and seed; torch runs on ``--threads`` threads
(``ACCUM_THREADS``). The JSON of both runs is kept in the work folder; ``--render`` writes
the report from it again without training.

Usage (from the repository root)::

    ACCUM_CORPORA=../shared/data .venv/bin/python benchmarks/neural_capacity.py
    .venv/bin/python benchmarks/neural_capacity.py --render /tmp/accum-neural-bench/neural.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import (  # noqa: E402  (pins threads before numpy is imported)
    RESULTS_DIR,
    corpus_path,
    markdown_table,
    package_versions,
    report_header,
    write_report,
)

REPORT = RESULTS_DIR / "neural.md"
VERSIONS = ("accum", "torch", "numpy")
VERSES_PER_PAGE = 100
#: Name: (short name, title) of each store.
STORES = {"kjv": ("KJV", "KJV Bible (pages of 100 verses), generator order 8"),
          "news": ("20 Newsgroups", "20 Newsgroups train, generator order 4")}


def accum_command() -> list[str]:
    """The ``accum`` entry point beside this interpreter."""
    return [str(Path(sys.executable).with_name("accum"))]


def run_accum(args: list, threads: int) -> dict:
    """``accum ARGS --json``'s document; its stderr (progress) passes through."""
    env = dict(os.environ, ACCUM_THREADS=str(threads))
    out = subprocess.run([*accum_command(), *map(str, args), "--json"], env=env, check=True, text=True,
                         stdout=subprocess.PIPE)
    return json.loads(out.stdout)


def kjv_pages(folder: Path) -> Path:
    """The KJV as files of :data:`VERSES_PER_PAGE` verses each (written once)."""
    if not folder.exists():
        verses = corpus_path("kjv-bible/kjv.txt").read_bytes().splitlines(keepends=True)
        tmp = folder.with_name(folder.name + ".tmp")
        tmp.mkdir(parents=True)
        for i in range(0, len(verses), VERSES_PER_PAGE):
            (tmp / f"{i // VERSES_PER_PAGE:04d}.txt").write_bytes(b"".join(verses[i:i + VERSES_PER_PAGE]))
        tmp.rename(folder)
    return folder


def build_store(name: str, workdir: Path, threads: int) -> Path:
    """The store ``name`` of :data:`STORES` under ``workdir`` (ingested once)."""
    store = workdir / name
    done = workdir / f"{name}-ingest.json"
    if done.exists():
        return store
    if name == "kjv":
        args = [kjv_pages(workdir / "kjv-pages"), "--default-label", "kjv", "--markov-order", "8"]
    else:
        args = [corpus_path("20news-bydate/20news-bydate-train"), "--label", "dir", "--markov-order", "4"]
    print(f"ingesting {name} ...", file=sys.stderr)
    summary = run_accum(["ingest", *args, "--no-fit", "--store", store], threads)
    done.write_text(json.dumps(summary))
    return store


def measure(args) -> dict:
    """``accum capacity --neural`` on both stores: the neural part of each, and its wall time."""
    args.workdir.mkdir(parents=True, exist_ok=True)
    runs = {}
    for name in STORES:
        store = build_store(name, args.workdir, args.threads)
        print(f"accum capacity --neural on {name} ...", file=sys.stderr)
        start = time.perf_counter()
        out = run_accum(["capacity", "--store", store, "--neural", "--neural-sizes", args.sizes,
                         "--neural-tokens", args.tokens, "--neural-protocol", args.protocol,
                         "--neural-sample", args.sample, "--neural-seed", args.seed], args.threads)
        runs[name] = {"neural": out["neural"], "seconds": time.perf_counter() - start,
                      "pages": out["measured"]["pages"]}
    return {"header": report_header("accum capacity --neural: transformers beside the n-gram generator",
                                    package_versions(VERSIONS)),
            "threads": args.threads, "runs": runs, "notes": []}


def rate(r: dict) -> str:
    return f"{100 * r['rate']:.1f} % [{100 * r['low']:.1f}, {100 * r['high']:.1f}] ({r['hits']}/{r['n']})"


def store_table(neural: dict) -> str:
    """One row per transformer, then the generator's."""
    rows = []
    for s in neural["sizes"]:
        sl = s["slice"]
        rows.append([s["name"], f"{s['parameters']:,}", f"{s['layers']} × {s['d_model']}", f"{s['vocabulary']:,}",
                     f"{s['train_tokens']:,}", f"{s['epochs']:.3f}", f"{s['seconds']:.0f}",
                     f"{s['cross_entropy_bits_per_token']:.2f} ({s['unigram_bits_per_token']:.2f})",
                     f"{s['information_bits']:.3g}", f"{s['bits_per_parameter']:.3f}", rate(s["recall"]),
                     f"{rate(sl['recall'])}, {sl['pages']} pages, {sl['epochs']:.0f} epochs"])
    g = neural["generator"]
    rows.append([f"n-gram, order {g['order']}", f"{g['parameters']:,}", "—", "—", "all", "1 (counted)", "—", "—",
                 "—", "—", rate(g["recall"]), "—"])
    return markdown_table(["model", "parameters", "layers × width", "token classes", "train tokens", "epochs",
                           "train s", "cross-entropy bits/token (unigram)", "information bits",
                           "bits/parameter (LLMs: 3.6)", "recall [95 %]", "slice recall [95 %]"], rows)


def above_capacity(data: dict) -> str:
    """The models that hold more bits per parameter than LLMs memorise, as text."""
    rows = [f"{s['name']} on {STORES[name][0]} ({s['bits_per_parameter']:.1f})" for name, run in data["runs"].items()
            for s in run["neural"]["sizes"] if s["bits_per_parameter"] > run["neural"]["reference_bits_per_parameter"]]
    return ", ".join(rows) or "none"


def render(data: dict) -> str:
    parts = [data["header"]]
    first = next(iter(data["runs"].values()))["neural"]
    p = first["protocol"]
    threads = f"{data['threads']} thread" + ("s" if data["threads"] != 1 else "")
    parts += [
        f"Each store: `accum capacity --neural --json` (torch {first['torch']} on {threads}, "
        f"`ACCUM_THREADS`), the same sizes, a budget of {first['sizes'][0]['train_tokens']:,} training tokens "
        f"per model, {p['prompt_protocol']} protocol, {p['sample']} prompts (seed {p['seed']}), "
        f"k = {p['prefix']}, m = {p['continuation']}, greedy decoding; the generator answers the same prompts. "
        f"Information: {first['information']}. Reference: {first['reference_bits_per_parameter']} bits per "
        f"parameter ({first['reference']}). Slice: a fresh model of the same size trained 100 epochs on the "
        "windows (prompt and continuation) of 16 of the prompts alone, then asked for them.", ""]
    for name, run in data["runs"].items():
        n = run["neural"]
        parts += [f"## {STORES[name][1]}", "",
                  f"{run['pages']:,} pages, {n['text_tokens']:,} tokens; the whole command took "
                  f"{run['seconds'] / 60:.1f} min.", "", store_table(n), ""]
    parts += ["## Reading the table", "",
              "- Information counts every bit by which a model predicts the text better than token frequencies, "
              "generalisation included: a model that has seen a fraction of an epoch predicts the rest of the "
              "text too. Morris et al. separate memorisation from generalisation with a reference model; this "
              "measure does not, so it bounds what a model knows about the text, not what it memorised. Models "
              f"above {first['reference_bits_per_parameter']} bits per parameter here: {above_capacity(data)}.",
              "- Each model's unigram baseline is over its own token classes (the tokens beyond its embeddings "
              "share one class, which never counts as reproduced), so sizes are measured against different "
              "baselines: neither their cross-entropies nor, strictly, their information bits compare directly (a "
              "model with fewer classes has less to tell apart).",
              "- Recall and slice recall use the generator's tokens and `accum recall`'s prompts (the same "
              "documents and positions for the same seed); the slice is the memorisation a size can reach "
              "when it sees a few passages many times.", ""]
    if data.get("notes"):
        parts += ["## Notes (added after the run)", "", *[f"- {note}" for note in data["notes"]], ""]
    return "\n".join(parts)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/accum-neural-bench"),
                        help="where the stores and the raw JSON are kept")
    parser.add_argument("--sizes", default="300k,2M,10M")
    parser.add_argument("--tokens", type=int, default=400_000, help="training budget of each model")
    parser.add_argument("--protocol", default="stream", choices=["document", "stream"])
    parser.add_argument("--sample", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (on a shared 2-core machine, 1 beats 2 oversubscribed)")
    parser.add_argument("--render", type=Path, help="write the report of this raw JSON, measuring nothing")
    parser.add_argument("--note", action="append", default=[],
                        help="a line for the report's notes (repeatable); with --render, kept in that JSON")
    parser.add_argument("--no-write", action="store_true", help="print the report instead of writing it")
    args = parser.parse_args(argv)
    raw = args.render or args.workdir / "neural.json"
    data = json.loads(raw.read_text()) if args.render else measure(args)
    data["notes"] = data.get("notes", []) + args.note
    raw.write_text(json.dumps(data, indent=1))
    text = render(data)
    if args.no_write:
        print(text)
    else:
        write_report(REPORT, text)


if __name__ == "__main__":
    main()

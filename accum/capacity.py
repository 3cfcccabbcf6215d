"""Capacity: a store's parameters and recall set against LLM parameter counts.

Three kinds of numbers, always labelled as such:

- **measured**: pages, tokens, stored counts (the accumulator's parameters: one per
  non-zero count), their bytes raw and compressed, and the compressed size of the
  pages themselves;
- **fitted**: Heaps' law over all pages (``V = K * tokens**beta``) from the growth log;
- **extrapolated**: the parameters an accumulator would need for N pages of a corpus
  like this one (flagged when N is beyond 2x the pages seen), against an LLM's capacity
  of about 3.6 bits per parameter (Morris et al. 2025, "How much do language models
  memorize?": 3.51 bf16, 3.83 fp32) or about 2 bits of knowledge per parameter
  (Allen-Zhu & Li 2024, "Physics of Language Models 3.3").

The LLM reference table ships as ``accum/data/llms.csv`` with a source per row; users
pass their own with the same columns.
"""

from __future__ import annotations

import csv
import zlib
from pathlib import Path

import numpy as np

#: Memorisation capacity, bits per parameter (Morris et al. 2025).
BITS_PER_PARAMETER = 3.6
#: Knowledge capacity, bits per parameter (Allen-Zhu & Li 2024).
KNOWLEDGE_BITS_PER_PARAMETER = 2.0
#: Page counts the extrapolation covers.
PAGE_GRID = (1e6, 1e7, 1e8, 1e9, 4e10)
LLM_TABLE = Path(__file__).with_name("data") / "llms.csv"


def load_llm_table(path=None) -> list[dict]:
    """Rows of an LLM table (CSV: model, parameters, active_parameters, training_tokens, source)."""
    path = Path(path) if path is not None else LLM_TABLE
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    required = {"model", "parameters", "source"}
    if not rows or not required <= set(rows[0]):
        raise ValueError(f"{path}: an LLM table needs the columns {sorted(required)} (see {LLM_TABLE.name})")
    out = []
    for i, row in enumerate(rows, start=2):
        try:
            out.append({
                "model": row["model"], "source": row["source"],
                "parameters": float(row["parameters"]),
                "active_parameters": float(row["active_parameters"]) if row.get("active_parameters") else None,
                "training_tokens": float(row["training_tokens"]) if row.get("training_tokens") else None,
            })
        except ValueError as exc:
            raise ValueError(f"{path}, line {i}: {exc}") from None
    return out


def compressed_bits(data: bytes) -> int:
    """Bits of ``data`` after zlib at level 9: an upper bound on its information."""
    return 8 * len(zlib.compress(data, 9))


def count_bits(values: np.ndarray) -> int:
    """Bits of non-negative counts after zlib at level 6, each count in the narrowest
    unsigned type that holds them: an upper bound on their information. (20 Newsgroups'
    1.9 M counts: 0.64 MB in 0.18 s; as int64 at level 9, 0.73 MB in 2.5 s.)"""
    values = np.asarray(values)
    narrow = np.min_scalar_type(int(values.max())) if len(values) else np.uint8
    return 8 * len(zlib.compress(np.ascontiguousarray(values, narrow).tobytes(), 6))


def count_accounting(shards) -> dict:
    """Measured: the classifier's distinct features, parameters (its non-zero counts) by
    n-gram order, and their bits compressed, from ``shards``: (counts, each count's n-gram
    order, the shard's distinct features) for each hash shard of a snapshot's counts.

    Each shard's counts are compressed on their own (:func:`count_bits`), so the store's
    counts are read a shard at a time; shards split features by hash, so the measure
    depends on the counts alone, not on how the store laid them out."""
    features, bits, by_order = 0, 0, {}
    for counts, orders, n_features in shards:
        features += n_features
        bits += count_bits(counts)
        for order, n in zip(*np.unique(orders, return_counts=True)):
            by_order[int(order)] = by_order.get(int(order), 0) + int(n)
    return {"features": features, "parameters": sum(by_order.values()),
            "parameters_by_order": dict(sorted(by_order.items())), "count_bits_compressed": bits}


def store_accounting(summary, classifier: dict, markov=None) -> dict:
    """Measured: pages, tokens, parameters and bytes of a store's models; ``summary`` is
    its :class:`~accum.counts.CountsSummary` and ``classifier`` its
    :func:`count_accounting` with the snapshot's ``bytes`` on disk."""
    out = {"pages": summary.n_documents, "tokens": summary.n_tokens, "classifier": classifier}
    if markov is not None and markov.n_rows:
        values = markov.to_arrays()["count_value"]
        out["generator"] = {
            "order": markov.order,
            "parameters": int(len(values)),
            "by_order": markov.parameters(),
            "count_bits_compressed": count_bits(values),
        }
    return out


def recall_bits(markov, texts: list[str], bits_per_page: float, parameters: int, sample: int = 300,
                seed: int = 0) -> dict:
    """Measured: prompted-extraction recall of the generator at its order, and the bits
    of text it gives back verbatim per stored parameter.

    Recall is measured at ``sample`` seeded positions across the pages (the "stream"
    protocol of :meth:`~accum.markov.MarkovAccumulator.recall`); the recalled bits are
    that fraction of the pages' compressed bits, divided by the generator's ``parameters``.
    """
    result = markov.recall(texts, protocol="stream", sample=sample, seed=seed, orders=[markov.order])[0]
    recalled = result.fraction * bits_per_page * len(texts)
    return {"order": markov.order, "extractable": result.fraction, "ci95": [result.ci95_low, result.ci95_high],
            "samples": result.samples, "recalled_bits": recalled,
            "recalled_bits_per_parameter": recalled / parameters if parameters else 0.0}


def page_bits(texts) -> dict:
    """Measured: mean raw and zlib-compressed bits per page of ``texts`` (any iterable:
    the pages are measured one at a time)."""
    pages = raw = packed = 0
    for text in texts:
        data = text.encode("utf-8")
        pages, raw, packed = pages + 1, raw + 8 * len(data), packed + compressed_bits(data)
    return {"pages": pages, "raw_bits_per_page": raw / pages, "compressed_bits_per_page": packed / pages}


def extrapolate(heaps: dict, tokens_per_page: float, pages_seen: int, parameters_per_feature: float) -> list[dict]:
    """Parameters an accumulator would need for N pages (Heaps' law; flagged past 2x)."""
    rows = []
    for n in PAGE_GRID:
        features = heaps["K"] * (n * tokens_per_page) ** heaps["beta"]
        rows.append({"pages": n, "features": features, "parameters": features * parameters_per_feature,
                     "kind": "extrapolated beyond 2x" if n > 2 * pages_seen else "within 2x of the data"})
    return rows


def llm_capacity(llms: list[dict], bits_per_page: float) -> list[dict]:
    """Pages each LLM could hold verbatim at its capacity, for pages of ``bits_per_page``."""
    out = []
    for row in llms:
        bits = row["parameters"] * BITS_PER_PARAMETER
        out.append(row | {
            "capacity_bits": bits,
            "knowledge_bits": row["parameters"] * KNOWLEDGE_BITS_PER_PARAMETER,
            "pages_verbatim_at_capacity": bits / bits_per_page,
        })
    return out


def answer_numbers(bits_per_page: float, accumulator_for_40b: dict) -> dict:
    """The numbers that answer "would a 400B-parameter model recall 40B documents?", for
    pages of ``bits_per_page`` compressed bits and the accumulator extrapolated to 40B
    pages (an :func:`extrapolate` row): what :func:`answer_400b` words and the report
    (:mod:`accum.report`) lays out with a label on each."""
    bits = 400e9 * BITS_PER_PARAMETER
    pages = bits / bits_per_page
    return {"parameters": 400e9, "documents": 40e9, "capacity_bits": bits, "bits_per_page": bits_per_page,
            "pages_at_capacity": pages, "share_of_documents": pages / 40e9,
            "parameters_for_documents": 40e9 * bits_per_page / BITS_PER_PARAMETER,
            "accumulator_parameters": accumulator_for_40b["parameters"], "accumulator_kind": accumulator_for_40b["kind"],
            "recalls_all": pages >= 40e9}


def answer_400b(bits_per_page: float, accumulator_for_40b: dict) -> str:
    """The paragraph that answers: would a 400B-parameter model recall 40B documents?"""
    a = answer_numbers(bits_per_page, accumulator_for_40b)
    bits, pages = a["capacity_bits"], a["pages_at_capacity"]
    return (
        f"A 400B-parameter model holds about {bits:.3g} bits at {BITS_PER_PARAMETER} bits per parameter "
        f"(Morris et al. 2025). Pages of this corpus take {bits_per_page:,.0f} bits each compressed "
        f"(measured, zlib), so at full capacity it could hold about {pages:.3g} of them verbatim: "
        f"{a['share_of_documents']:.2%} of 40B documents. Storing 40B documents verbatim would need about "
        f"{a['parameters_for_documents']:.3g} parameters at that density. An accumulator like this "
        f"one would need about {a['accumulator_parameters']:.3g} counts for 40B pages "
        f"({a['accumulator_kind']}, from Heaps' law fitted on this store), and a count table does not "
        "give its pages back verbatim unless its n-gram order is high (see accum recall). "
        + (f"So no: at the measured capacity, 400B parameters hold about {pages:.2g} pages like these, not 40B."
           if not a["recalls_all"] else "So yes, at the measured capacity, for pages this small.")
    )


def accumulator_growth(curves_by_order: dict, parameters_per_feature: float) -> tuple[list[dict], dict]:
    """Measured parameters along the growth log and the Heaps fits per order (fitted).

    ``curves_by_order`` maps order -> :class:`~accum.saturation.Curve` of all pages.
    """
    from .saturation import heaps_fit

    fits = {}
    first = next(iter(curves_by_order.values()))
    features = np.zeros(len(first.pages))
    for order, curve in curves_by_order.items():
        fits[order] = heaps_fit(curve.tokens, curve.distinct, curve.pages)
        features += curve.distinct
    measured = [{"pages": int(p), "tokens": int(t), "features": int(f), "parameters": f * parameters_per_feature}
                for p, t, f in zip(first.pages, first.tokens, features)]
    return measured, fits


def extrapolate_orders(fits: dict, tokens_per_page: float, pages_seen: int, parameters_per_feature: float) -> list[dict]:
    """:func:`extrapolate` summed over n-gram orders."""
    rows = None
    for fit in fits.values():
        part = extrapolate(fit, tokens_per_page, pages_seen, parameters_per_feature)
        if rows is None:
            rows = part
        else:
            for row, extra in zip(rows, part):
                row["features"] += extra["features"]
                row["parameters"] += extra["parameters"]
    return rows


def capacity_result(summary, classifier: dict, pages: dict, growth_of, llms: list[dict], markov=None,
                    texts: list[str] | None = None) -> dict:
    """Everything ``accum capacity`` reports about a store, in one dict (``measured``,
    ``fitted``, ``accumulator_growth``, ``extrapolated``, ``llms``, ``answer``,
    ``bits_per_parameter``): one computation for the command and for ``accum report``.

    ``summary`` is the store's :class:`~accum.counts.CountsSummary`, ``classifier`` its
    counts' :func:`count_accounting` (with ``bytes``), ``pages`` the :func:`page_bits` of
    its pages re-read from their sources, ``growth_of`` its growth log
    (``Store.growth``) and ``llms`` a :func:`load_llm_table`; ``markov`` is its generator
    (None without one), whose recall is measured on ``texts``, the pages themselves.

    Raises ValueError when the growth log has too few points to fit Heaps' law.
    """
    from . import saturation as sat

    accounting = store_accounting(summary, classifier, markov)
    per_feature = classifier["parameters"] / classifier["features"]
    curves = {k: sat.analyse(summary, growth_of, k, [None])[0][None]
              for k in range(1, summary.settings.max_order + 1)}
    measured, fits = accumulator_growth(curves, per_feature)
    if any(f is None for f in fits.values()):
        raise ValueError("too few growth-log points to fit Heaps' law: ingest more pages")
    if "generator" in accounting:
        accounting["generator"]["recall"] = recall_bits(markov, texts, pages["compressed_bits_per_page"],
                                                        accounting["generator"]["parameters"])
    tokens_per_page = summary.n_tokens / summary.n_documents
    extrapolated = extrapolate_orders(fits, tokens_per_page, summary.n_documents, per_feature)
    return {"measured": accounting | {"page_bits": pages}, "fitted": {str(k): v for k, v in fits.items()},
            "accumulator_growth": measured, "extrapolated": extrapolated,
            "llms": llm_capacity(llms, pages["compressed_bits_per_page"]),
            "answer": answer_400b(pages["compressed_bits_per_page"], extrapolated[-1]),
            "bits_per_parameter": BITS_PER_PARAMETER}

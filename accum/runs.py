"""Count runs: what an ingest counted since its last spill, sorted by feature, and their
exact merge.

An ingest with a memory budget counts into an accumulator that holds only the pages
since its last spill; when the budget is reached it takes the counts out as a
:class:`CountRun` (sorted by feature id, then category) and starts again from empty
tables, keeping categories, pages, tokens and the Gram. A run keeps, beside its counts,
its *crossings* (for each count below ``prune_k`` that grew, the page), so that
:func:`merge_shard` can replay every count's history on top of the counts before it
(the store's snapshot, earlier runs) and log the same growth rows a single process would
have: see :mod:`accum._run_kernels`.

Feature ids are uniformly spread hashes, so their top :data:`SHARD_BITS` bits split
every run and snapshot into shards that merge independently, one at a time: the merge's
memory is a shard of each source, not the store.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass

import numpy as np

from . import _run_kernels
from .counts import checkpoints

SHARD_BITS = 8
N_SHARDS = 1 << SHARD_BITS
_SHARD_SHIFT = np.uint64(64 - SHARD_BITS)
_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter


def give_back_memory() -> None:
    """Return the C heap's free memory to the system, and from now on allocate arrays
    of 128 KiB or more apart from it (glibc's ``malloc_trim`` and ``mallopt``). Spilling
    frees hundreds of MB in arrays of every size, and glibc keeps much of it for reuse
    by default (it raises its threshold for separate allocations as they are freed), so
    that a budgeted ingest's memory would creep above its budget. Elsewhere than glibc,
    nothing to do: the allocator gives memory back its own way."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(_M_MMAP_THRESHOLD, 128 << 10)  # a fixed threshold: no dynamic raise
        libc.malloc_trim(0)
    except (OSError, AttributeError):
        pass


def shard_bounds(sorted_fids: np.ndarray) -> np.ndarray:
    """Where each shard starts in sorted feature ids, int64[N_SHARDS + 1]."""
    starts = np.arange(N_SHARDS, dtype=np.uint64) << _SHARD_SHIFT
    out = np.empty(N_SHARDS + 1, np.int64)
    out[:N_SHARDS] = np.searchsorted(sorted_fids, starts, side="left")
    out[N_SHARDS] = len(sorted_fids)
    return out


def _sorted_order(row_fids: np.ndarray, rows: np.ndarray, cats: np.ndarray) -> np.ndarray | None:
    """The (feature, category) order of counts ``(rows, cats)`` followed by one total
    (category -1) per row, as :meth:`CountRun.of_state` lays them out, when the rows are
    already sorted by feature and the counts by row and category (a segment written shard
    by shard): each row's total goes before its first count, without sorting. None
    when they are not sorted."""
    n_rows = len(row_fids)
    if not (np.all(row_fids[1:] > row_fids[:-1]) and np.all(
            (rows[1:] > rows[:-1]) | ((rows[1:] == rows[:-1]) & (cats[1:] > cats[:-1])))):
        return None
    first = np.searchsorted(rows, np.arange(n_rows))  # each row's first count
    order = np.empty(len(rows) + n_rows, np.int64)
    order[first + np.arange(n_rows)] = len(rows) + np.arange(n_rows)  # totals are after the counts in fid/cat
    order[np.arange(len(rows)) + rows + 1] = np.arange(len(rows))
    return order


@dataclass
class CountRun:
    """Counts of one source, sorted: per (feature, category) count and fixed-point weight,
    category -1 holding the feature's total (weight 0); each feature's row (prefix, last
    token, order); crossings (feature, category, page); spellings of new unigrams."""

    fid: np.ndarray  # uint64[n], sorted with cat
    cat: np.ndarray  # int64[n]
    count: np.ndarray  # int64[n]
    weight: np.ndarray  # int64[n]
    row_fid: np.ndarray  # uint64[q], sorted
    row_prefix: np.ndarray  # uint64[q]
    row_last: np.ndarray  # uint64[q]
    row_order: np.ndarray  # int64[q]
    cross_fid: np.ndarray  # uint64[m], sorted with cross_cat, cross_pos
    cross_cat: np.ndarray  # int64[m]
    cross_pos: np.ndarray  # int64[m]: the category's page count (all pages' for category -1)
    lex_key: np.ndarray  # uint64[w], sorted
    lex_text: list

    #: Column groups, each sorted on its first column (how the run is split and stored).
    TABLES = {"count": ("fid", "cat", "count", "weight"), "row": ("row_fid", "row_prefix", "row_last", "row_order"),
              "cross": ("cross_fid", "cross_cat", "cross_pos"), "lexicon": ("lex_key", "lex_text")}

    @classmethod
    def empty(cls) -> "CountRun":
        u, i = np.zeros(0, np.uint64), np.zeros(0, np.int64)
        return cls(u, i, i, i, u, u, u, i, u, i, i, u, [])

    @classmethod
    def of_state(cls, state: dict) -> "CountRun":
        """The counts of an :meth:`~accum.accumulator.Accumulator.to_arrays` state (a
        snapshot written whole), as a source without crossings."""
        info = np.asarray(state["row_info"])
        rows = np.asarray(state["count_row"], np.int64)
        values = np.asarray(state["count_value"], np.int64)
        cats = np.asarray(state["count_category"], np.int64)
        # counts summed in float64: exact below 2**53 (np.add.at is many times slower)
        totals = np.bincount(rows, values, len(info)).astype(np.int64)
        fid = np.concatenate([info[rows, 0], info[:, 0]])
        cat = np.concatenate([cats, np.full(len(info), -1, np.int64)])
        order = _sorted_order(info[:, 0], rows, cats)
        if order is None:  # a snapshot written whole: in counting order
            order = np.lexsort((cat, fid))
        weight = np.concatenate([np.asarray(state["count_weight"], np.int64), np.zeros(len(info), np.int64)])
        by_fid = np.argsort(info[:, 0], kind="stable")
        keys = np.asarray(state["lexicon_keys"], np.uint64)
        lex_order = np.argsort(keys, kind="stable")
        texts = state["lexicon_text"]
        u, i = np.zeros(0, np.uint64), np.zeros(0, np.int64)
        return cls(fid[order], cat[order], np.concatenate([values, totals])[order], weight[order],
                   info[by_fid, 0], info[by_fid, 1], info[by_fid, 2], info[by_fid, 3].astype(np.int64), u, i, i,
                   keys[lex_order], [texts[j] for j in lex_order.tolist()])

    @classmethod
    def taken_out(cls, fids: np.ndarray, cats: np.ndarray, tfs: np.ndarray, weights: np.ndarray) -> "CountRun":
        """A run of pages taken back out: minus their counts and weights (one entry per
        page and feature; see :func:`accum.accumulator.page_terms`)."""
        fid = np.concatenate([fids, fids])
        cat = np.concatenate([cats, np.full(len(fids), -1, np.int64)])
        count = -np.concatenate([tfs, tfs]).astype(np.int64)
        weight = -np.concatenate([weights, np.zeros(len(fids), np.int64)])
        order = np.lexsort((cat, fid))
        fid, cat, count, weight = fid[order], cat[order], count[order], weight[order]
        starts = np.flatnonzero(np.r_[True, (fid[1:] != fid[:-1]) | (cat[1:] != cat[:-1])])
        u, i = np.zeros(0, np.uint64), np.zeros(0, np.int64)
        return cls(fid[starts], cat[starts], np.add.reduceat(count, starts) if len(starts) else i,
                   np.add.reduceat(weight, starts) if len(starts) else i, u, u, u, i, u, i, i, u, [])

    def shard(self, s: int, bounds: dict | None = None) -> "CountRun":
        """The entries of shard ``s`` (``bounds``: :meth:`bounds`, computed when None)."""
        bounds = bounds or self.bounds()
        out = {}
        for table, names in self.TABLES.items():
            a, b = int(bounds[table][s]), int(bounds[table][s + 1])
            for name in names:
                out[name] = getattr(self, name)[a:b]
        return CountRun(**out)

    def count_rows(self) -> np.ndarray:
        """The row of each count (the index of its feature in ``row_fid``), int64[n]."""
        return np.searchsorted(self.row_fid, self.fid)

    def bounds(self) -> dict:
        """Each table's shard bounds."""
        return {table: shard_bounds(getattr(self, names[0])) for table, names in self.TABLES.items()}


def merge_shard(sources: list[CountRun], marks: np.ndarray, prune_k: int, hist: np.ndarray,
                occurrences: np.ndarray, n_base: int | None = None) -> tuple[CountRun, CountRun | None]:
    """The merged counts of one shard of ``sources`` (in the order their pages were
    counted), without totals or crossings; their growth is added to ``hist`` and the
    merged counts to ``occurrences`` (see :func:`accum._run_kernels.merge_sources`).
    With ``n_base``, also the delta of the sources from ``n_base`` on (what they change,
    as counts to add to the first ``n_base`` sources'), else None.

    Raises ValueError when pages taken out were not counted.
    """
    def joined(*names):
        offsets = np.zeros(len(sources) + 1, np.int64)
        offsets[1:] = np.cumsum([len(getattr(s, names[0])) for s in sources])
        return (offsets, *(np.concatenate([getattr(s, name) for s in sources]) for name in names))

    p_off, fid, cat, count, weight = joined("fid", "cat", "count", "weight")
    x_off, x_fid, x_cat, x_pos = joined("cross_fid", "cross_cat", "cross_pos")
    r_off, r_fid, r_prefix, r_last, r_order = joined("row_fid", "row_prefix", "row_last", "row_order")
    out = _counts_for(len(fid), len(r_fid))
    delta = _counts_for(len(fid) if n_base is not None else 0, len(r_fid) if n_base is not None else 0)
    done, n_rows, n_delta, n_delta_rows = _run_kernels.merge_sources(
        p_off, fid, cat, count, weight, x_off, x_fid, x_cat, np.searchsorted(marks, x_pos, side="left"),
        r_off, r_fid, r_prefix, r_last, r_order, prune_k, out.fid, out.cat, out.count, out.weight,
        out.row_fid, out.row_prefix, out.row_last, out.row_order, hist, occurrences,
        len(sources) if n_base is None else n_base, delta.fid, delta.cat, delta.count, delta.weight,
        delta.row_fid, delta.row_prefix, delta.row_last, delta.row_order)
    if done < 0:
        raise ValueError(f"pages were taken out of feature {int(fid[-1 - done]):#x} that were never counted in "
                         "its category")
    spellings = _first_spellings(sources)
    _cut(out, done, n_rows, spellings)
    if n_base is None:
        return out, None
    _cut(delta, n_delta, n_delta_rows, spellings)
    return out, delta


def _counts_for(n: int, q: int) -> CountRun:
    """An empty run with room for ``n`` counts and ``q`` rows."""
    out = CountRun.empty()
    out.fid, out.cat, out.count, out.weight = np.empty(n, np.uint64), *(np.empty(n, np.int64) for _ in range(3))
    out.row_fid, out.row_prefix, out.row_last = (np.empty(q, np.uint64) for _ in range(3))
    out.row_order = np.empty(q, np.int64)
    return out


def _cut(out: CountRun, n: int, q: int, spellings: tuple[np.ndarray, list]) -> None:
    """Keep the first ``n`` counts and ``q`` rows of ``out``, and the ``spellings`` of its words."""
    for name in ("fid", "cat", "count", "weight"):
        setattr(out, name, getattr(out, name)[:n])
    for name in ("row_fid", "row_prefix", "row_last", "row_order"):
        setattr(out, name, getattr(out, name)[:q])
    words = out.row_fid[out.row_order == 1]
    lex_key, lex_text = spellings
    at = np.minimum(np.searchsorted(words, lex_key), max(len(words) - 1, 0))
    kept = (words[at] == lex_key) if len(words) else np.zeros(len(lex_key), bool)
    out.lex_key, out.lex_text = lex_key[kept], [t for t, k in zip(lex_text, kept.tolist()) if k]


def _first_spellings(sources: list[CountRun]) -> tuple[np.ndarray, list]:
    """Each spelled feature once, sorted, as the first source that has it spells it."""
    keys = np.concatenate([s.lex_key for s in sources])
    texts = [t for s in sources for t in s.lex_text]
    if not len(keys):
        return keys, texts
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    first = order[np.r_[True, sorted_keys[1:] != sorted_keys[:-1]]]
    return keys[first], [texts[j] for j in first.tolist()]


@dataclass
class Growth:
    """The growth of a merge: every source's histograms of counts reaching (or leaving)
    1, 2, 3 and ``prune_k``, by category and checkpoint (see :func:`merge_shard`)."""

    marks: np.ndarray  # the growth log's page checkpoints
    hist: np.ndarray  # int64[n_sources, n_categories + 1, max_order, 4, len(marks) + 1]

    @classmethod
    def for_sources(cls, n_sources: int, n_categories: int, max_order: int, last_page: int) -> "Growth":
        marks = checkpoints(max(last_page, 1))
        return cls(marks, np.zeros((n_sources, n_categories + 1, max_order, 4, len(marks) + 1), np.int64))

    def at_least(self) -> np.ndarray:
        """Features counted at least 1, 2, 3 and ``prune_k`` times after all sources,
        int64[n_categories + 1, max_order, 4] (index 0: all pages)."""
        return self.hist.sum(axis=(0, -1))

    def stats(self) -> tuple[np.ndarray, np.ndarray]:
        """The growth statistics after all sources, as
        :meth:`~accum.accumulator.Accumulator.growth_stats` gives them."""
        fields_ = _fields(self.at_least())
        return fields_[1:], fields_[0]

    def log_rows(self, events: list[np.ndarray | None]) -> np.ndarray:
        """The growth-log rows of the runs' pages: ``events[s]`` are the rows source ``s``'s
        accumulator logged (category, pages, tokens right; its statistics, counted from
        empty, replaced here by the merged ones at each row's checkpoint), None for a
        source that logged none (the snapshot, pages taken out)."""
        done = np.zeros(self.hist.shape[1:-1], np.int64)
        out = []
        for s, rows in enumerate(events):
            running = np.cumsum(self.hist[s], axis=-1)
            if rows is not None and len(rows):
                rows = rows.copy()
                bucket = np.searchsorted(self.marks, rows[:, 1], side="left")
                # two index arrays apart: numpy puts the rows' axis first, (n, max_order, 4)
                at = done[rows[:, 0] + 1] + running[rows[:, 0] + 1, :, :, bucket]
                rows[:, 3:] = _fields(at).reshape(len(rows), -1)
                out.append(rows)
            done += running[..., -1]
        return np.concatenate(out) if out else np.zeros((0, 3 + 4 * self.hist.shape[2]), np.int64)


def _fields(at_least: np.ndarray) -> np.ndarray:
    """(distinct, singletons, doubletons, at least k) from counts of features seen at
    least 1, 2, 3 and k times (last axis)."""
    ge1, ge2, ge3, gek = np.moveaxis(at_least, -1, 0)
    return np.stack([ge1, ge1 - ge2, ge2 - ge3, gek], axis=-1)

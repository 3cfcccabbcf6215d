"""Partial accumulators: count consecutive slices of one page stream apart, then merge.

A slice is counted from empty into a :class:`Partial`: its accumulator, generator,
document rows and summary, plus the *crossings* of its counts (each time a count below
the pruning threshold grows: which feature, which category, at which page; see
``Accumulator(log_crossings=True)``). Partials of consecutive slices merge in order with
:func:`merge_partials`, associatively, so a tree reduction equals a left fold.
:func:`apply_partial` then adds the merged partial to the accumulator it continues and
replays its crossings, giving exactly the growth-log rows one process would have logged
counting the same pages in the same order: every count, document row and growth row is
identical to a single-process ingest. :mod:`accum.distributed` runs these steps on a
Dask cluster; nothing here needs Dask.

Within a memory budget a part is counted otherwise (:func:`count_part_spilling`): on
an accumulator that already holds the pages of the stream before it, its counts are
written out as runs and its page vectors as segments while it counts (the store's
spilling, :mod:`accum.runs`), and only what is small comes back (:class:`SpilledPart`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .accumulator import Accumulator
from .counts import checkpoints
from .ingest import SPILL_BYTES, DocumentRow, IngestSummary, count_pages, screen
from .pages import Page
from .settings import Settings
from .vectors import PageVectors


@dataclass
class ScreenedPart:
    """The pages of one slice worth counting, as (page, content hash, label), and the
    summary of what was skipped while reading it."""

    pages: list[tuple[Page, str, str]]
    summary: IngestSummary = field(default_factory=IngestSummary)

    @property
    def hashes(self) -> list[str]:
        return [h for _, h, _ in self.pages]


@dataclass
class Partial:
    """What counting one slice (or several consecutive ones) produced."""

    acc: Accumulator
    markov: object | None  # MarkovAccumulator
    documents: list[DocumentRow]
    cross_keys: np.ndarray  # uint64[n]
    cross_at: np.ndarray  # int64[n, 2]: (category, page count); category -1 = all pages
    summary: IngestSummary
    vectors: PageVectors | None = None  # the documents' page vectors, when kept


def screen_part(records, default_label: str | None = None) -> ScreenedPart:
    """Read a slice's records (see :func:`accum.ingest.screen`)."""
    summary = IngestSummary()
    return ScreenedPart(list(screen(records, summary, default_label)), summary)


def count_part(part: ScreenedPart, skip: set[int], settings: Settings, track_growth: bool = True,
               markov_settings: dict | None = None, batch_pages: int = 500, keep_vectors: bool = False) -> Partial:
    """Count the pages of ``part`` but those at the indices in ``skip`` (duplicates of
    pages counted before), from empty.

    ``markov_settings`` (``MarkovAccumulator.settings()``) builds a generator too;
    ``keep_vectors`` keeps the pages' vectors.
    """
    from .markov import MarkovAccumulator

    acc = Accumulator(settings, track_growth=track_growth, log_crossings=track_growth, keep_vectors=keep_vectors)
    markov = None if markov_settings is None else MarkovAccumulator(**markov_settings)
    summary = _part_summary(part, skip)
    fresh = [item for i, item in enumerate(part.pages) if i not in skip]
    documents = []
    for start in range(0, len(fresh), batch_pages):
        documents.extend(count_pages(acc, markov, fresh[start : start + batch_pages], summary))
    acc.take_growth()  # the partial's own log: replaced by the replay
    keys, at = acc.take_crossings()
    return Partial(acc, markov, documents, keys, at, summary, acc.take_vectors() if keep_vectors else None)


@dataclass
class SpilledPart:
    """What counting one part within a memory budget produced (see
    :func:`count_part_spilling`): its counts are in ``runs`` and its pages' vectors in
    ``segments``, written where the caller's spill functions put them."""

    totals: Accumulator  # the pages, tokens and Gram the part added; no counts
    markov: object | None  # MarkovAccumulator
    documents: list[DocumentRow]
    runs: list  # (what spill_counts returned, the growth rows its pages logged; tokens from the part's start)
    segments: list  # what spill_vectors returned, in page order
    summary: IngestSummary


def count_part_spilling(part: ScreenedPart, skip: set[int], base: dict, spill_bytes: int, spill_counts,
                        spill_vectors, markov_settings: dict | None = None, batch_pages: int = 500) -> SpilledPart:
    """:func:`count_part` within a memory budget.

    The pages are counted on an accumulator holding ``base`` (an
    :meth:`Accumulator.without_counts` state: the stream's categories, as the caller
    numbers them, and its pages before this part; tokens zero), so that the crossings
    and growth rows carry the stream's page numbers, as a single-process ingest's spilled
    runs do (growth rows' tokens count from the part's start: :func:`shift_tokens`).
    Whenever the counts take ``spill_bytes``, and at the end, ``spill_counts(run)``
    writes them (a :class:`~accum.runs.CountRun`); page vectors past
    :data:`~accum.ingest.SPILL_BYTES`, and at the end, go to ``spill_vectors(vectors,
    hashes)``.
    """
    from .markov import MarkovAccumulator

    acc = Accumulator.without_counts(base, log_crossings=True, keep_vectors=True)
    before = acc.doc_counts.copy()
    markov = None if markov_settings is None else MarkovAccumulator(**markov_settings)
    summary = _part_summary(part, skip)
    fresh = [item for i, item in enumerate(part.pages) if i not in skip]
    documents, runs, segments, vectors, written = [], [], [], [], 0

    def write_vectors() -> None:
        nonlocal written
        if vectors:
            segments.append(spill_vectors(PageVectors.concat(vectors, acc.categories),
                                          [d.content_hash for d in documents[written:]]))
            vectors.clear()
            written = len(documents)

    def write_counts() -> None:
        events = acc.take_growth()
        runs.append((spill_counts(acc.take_counts()), events))

    for start in range(0, len(fresh), batch_pages):
        documents.extend(count_pages(acc, markov, fresh[start : start + batch_pages], summary))
        vectors.append(acc.take_vectors())
        if sum(v.entry_bytes for v in vectors) > SPILL_BYTES:
            write_vectors()
        if acc.counting_bytes >= spill_bytes:
            write_counts()
    if documents:
        write_counts()
        write_vectors()
    acc.doc_counts[:] -= before  # now without counts: the part's own pages, tokens and Gram
    return SpilledPart(acc, markov, documents, runs, segments, summary)


def shift_tokens(events: np.ndarray, tokens_before: np.ndarray) -> np.ndarray:
    """Growth rows of :func:`count_part_spilling` with the stream's tokens: the tokens of
    each row's category before the part (``tokens_before``, per category; all pages'
    for category -1) added to its tokens."""
    out = events.copy()
    cats = out[:, 0]
    out[:, 2] += np.where(cats >= 0, tokens_before[np.maximum(cats, 0)], tokens_before.sum())
    return out


def _part_summary(part: ScreenedPart, skip: set[int]) -> IngestSummary:
    """The summary of counting ``part`` but the pages ``skip``, before any page is counted."""
    return IngestSummary(skipped=part.summary.skipped.copy(), skip_examples=dict(part.summary.skip_examples),
                         bytes_read=part.summary.bytes_read, duplicates=len(skip),
                         notes=part.summary.notes.copy(), note_examples=dict(part.summary.note_examples))


def merge_partials(first: Partial, then: Partial) -> Partial:
    """The partial of ``first``'s pages followed by ``then``'s (``first`` is updated)."""
    doc_counts, n_docs = first.acc.doc_counts.copy(), first.acc.n_documents
    first.acc.merge(then.acc)
    if first.markov is not None:
        first.markov.merge(then.markov)
    cats = np.array([first.acc.category_index(c) for c in then.acc.categories], np.int64)
    at = then.cross_at.copy()
    mine = at[:, 0] >= 0
    at[mine, 0] = cats[at[mine, 0]]
    offsets = np.zeros(first.acc.n_categories, np.int64)
    offsets[: len(doc_counts)] = doc_counts
    at[mine, 1] += offsets[at[mine, 0]]
    at[~mine, 1] += n_docs
    vectors = None if first.vectors is None else PageVectors.concat([first.vectors, then.vectors])
    return Partial(first.acc, first.markov, first.documents + then.documents,
                   np.concatenate([first.cross_keys, then.cross_keys]), np.concatenate([first.cross_at, at]),
                   first.summary.add(then.summary), vectors)


def apply_partial(acc: Accumulator, markov, partial: Partial) -> np.ndarray:
    """Add ``partial`` (pages that come after those of ``acc``) to ``acc`` and ``markov``
    in place, and return the growth-log rows its pages produce (as
    :meth:`Accumulator.take_growth` would have after counting them one by one)."""
    k = acc.settings.prune_k
    base_rows, base_pairs = acc.n_rows, acc.n_pairs
    # Counts before, capped at k: per pair (pairs keep their index through a merge) and row.
    running_pair, running_all = acc.capped_counts(k)
    base_docs, base_tokens = acc.doc_counts.copy(), acc.token_counts.copy()
    base_stats, base_all = acc.growth_stats()
    acc.merge(partial.acc)
    if markov is not None:
        markov.merge(partial.markov)
    width = 3 + 4 * acc.settings.max_order
    if not acc.track_growth or not partial.documents:
        return np.zeros((0, width), np.int64)

    n_cats, n_rows, n_pairs = acc.n_categories, acc.n_rows, acc.n_pairs
    cats = np.array([acc.category_index(c) for c in partial.acc.categories], np.int64)
    pad = lambda a: np.concatenate([a, np.zeros((n_cats - len(a),) + a.shape[1:], a.dtype)])  # noqa: E731
    base_docs, base_tokens, base_stats = pad(base_docs), pad(base_tokens), pad(base_stats)

    # Crossings -> counts at least 1, 2, 3 and k at each checkpoint.
    marks = checkpoints(acc.n_documents)
    cross_cat = np.where(partial.cross_at[:, 0] >= 0, cats[np.maximum(partial.cross_at[:, 0], 0)], -1)
    page = partial.cross_at[:, 1] + np.where(cross_cat >= 0, base_docs[np.maximum(cross_cat, 0)],
                                             base_docs.sum())
    bucket = np.searchsorted(marks, page, side="left")
    hist_cat = np.zeros((n_cats, acc.settings.max_order, 4, len(marks) + 1), np.int64)
    hist_all = np.zeros((acc.settings.max_order, 4, len(marks) + 1), np.int64)
    grown_pair = np.zeros(n_pairs, np.uint8)
    grown_pair[:base_pairs] = running_pair
    grown_all = np.zeros(n_rows, np.uint8)
    grown_all[:base_rows] = running_all
    acc.replay_crossings(partial.cross_keys, cross_cat, bucket, grown_pair, grown_all, hist_cat, hist_all)
    at_least_cat = _at_least(base_stats)[..., None] + np.cumsum(hist_cat, axis=-1)
    at_least_all = _at_least(base_all)[..., None] + np.cumsum(hist_all, axis=-1)

    # One row per checkpoint reached, in the order the pages reached them.
    doc_cat = np.array([acc.category_index(d.label) for d in partial.documents], np.int64)
    doc_tokens = np.array([d.n_tokens for d in partial.documents], np.int64)
    events = []  # (page index in the partial, category first, row)
    for c in range(n_cats):
        idx = np.flatnonzero(doc_cat == c)
        _checkpoint_rows(events, c, idx, base_docs[c], base_tokens[c], doc_tokens[idx], marks,
                         at_least_cat[c], 0)
    idx = np.arange(len(doc_cat))
    _checkpoint_rows(events, -1, idx, base_docs.sum(), base_tokens.sum(), doc_tokens, marks, at_least_all, 1)
    events.sort(key=lambda e: (e[0], e[1]))
    return np.array([e[2] for e in events], np.int64).reshape(-1, width)


def _at_least(stats: np.ndarray) -> np.ndarray:
    """Features counted at least 1, 2, 3 and k times, from (distinct, singletons,
    doubletons, at_least_k) along the last axis."""
    d, n1, n2, ak = np.moveaxis(stats, -1, 0)
    return np.stack([d, d - n1, d - n1 - n2, ak], axis=-1)


def _checkpoint_rows(events, cat, idx, base_pages, base_tokens, tokens, marks, at_least, kind) -> None:
    """Append the growth rows of category ``cat`` (-1: all pages) whose pages are the
    partial's documents ``idx``, after ``base_pages`` pages before them."""
    pages = base_pages + 1 + np.arange(len(idx))
    totals = base_tokens + np.cumsum(tokens)
    hit = np.flatnonzero(np.isin(pages, marks))
    for j in hit.tolist():
        b = int(np.searchsorted(marks, pages[j]))
        ge = at_least[:, :, b]  # [orders, 4]: at least 1, 2, 3, k
        stats = np.stack([ge[:, 0], ge[:, 0] - ge[:, 1], ge[:, 1] - ge[:, 2], ge[:, 3]], axis=-1)
        events.append((int(idx[j]), kind, [cat, int(pages[j]), int(totals[j]), *stats.ravel().tolist()]))

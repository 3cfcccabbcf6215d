"""Dirichlet accumulators: per-category n-gram counts that only ever add.

Counts are the state. Two accumulators merge by addition, so a page can be added at any
time and a shard built elsewhere merges exactly; smoothed probabilities are derived from
the counts by the models in :mod:`accum.classify`, never stored as the source of truth.

While pages are added, the accumulator also logs how its vocabulary grows: at
log-spaced page counts of each category (and of all pages) it records pages, tokens,
and per n-gram order the distinct features, singletons, doubletons and features seen at
least ``prune_k`` times (see :mod:`accum.saturation`).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from . import _gram_kernels, _kernels
from ._run_kernels import count_crossings, place_crossings, sort_counts, sort_segments
from .counts import CategoryTotals, nonzero_counts, without_zero_counts
from .runs import CountRun
from .settings import Settings
from .tokens import TokenBatch, tokenize
from .vectors import PageVectors

_MIN_TABLE = 1 << 12
#: Tables smaller than this grow 4x at a time, larger ones 2x: a table is rebuilt (every
#: entry re-inserted) when it grows, and counting probes longer near half full, so the
#: small ones skip steps (20 Newsgroups, without the Gram, counts in 0.76 s instead of
#: 0.86-0.94), while a large table overshoots by at most half this many slots.
_FAST_GROWTH_SLOTS = 1 << 22
#: Pages' Gram vectors wait until they hold this many entries, then are added to the
#: Gram together: each addition streams the 64 MiB triangle once, so fewer, larger ones
#: are cheaper (20 Newsgroups: 37 additions 1.10 s, 10 additions 0.78 s).
GRAM_BATCH_ENTRIES = 1 << 20
#: Longest token spelling the lexicon keeps, in UTF-8 bytes. The lexicon is for showing
#: words (explanations, feature names); a page of one long run of letters is one token,
#: and a 50 MB one was kept and printed whole. A longer token is cut on a character
#: boundary and ends in "…"; its id stays the hash of the whole token, so features and
#: counts do not change. (The generator keeps its own, whole spellings: it must write the
#: text back as it was.)
MAX_SPELLING_BYTES = 64
#: Bytes of a spelling in the lexicon, about: its str and int objects, dict slot and text.
_SPELLING_BYTES = 130


class Accumulator(CategoryTotals):
    """Per-category counts of unigram and n-gram features, plus documents and tokens.

    Parameters
    ----------
    settings : Settings, optional
        Feature settings (default: unigrams and bigrams, case folded).
    track_growth : bool
        Keep the growth statistics and log (default). Without them the accumulator
        counts the same but cannot report saturation; ``benchmarks/tracking_cost.py``
        measures the difference.
    log_crossings : bool
        Also keep, for every count below ``prune_k`` that grows, the feature, category
        and page (see :meth:`take_crossings`), so that the growth log of pages counted
        here can be replayed on top of pages counted before them elsewhere
        (:mod:`accum.partials`).
    keep_vectors : bool
        Also keep each page's sparse feature vector until :meth:`take_vectors` (what
        discriminative training, cross-validation and forgetting a page need; see
        :mod:`accum.vectors`).

    Examples
    --------
    >>> acc = Accumulator()
    >>> acc.partial_fit(["Chinese Beijing Chinese", "Tokyo Japan Chinese"], ["c", "j"])
    >>> acc.categories, acc.doc_counts.tolist(), acc.token_counts.tolist()
    (['c', 'j'], [1, 1], [3, 3])
    >>> acc.count("chinese"), acc.count("chinese beijing")
    ({'c': 2, 'j': 1}, {'c': 1, 'j': 0})
    """

    def __init__(self, settings: Settings | None = None, track_growth: bool = True,
                 log_crossings: bool = False, keep_vectors: bool = False):
        self.settings = settings or Settings()
        self.track_growth = track_growth
        self.log_crossings = log_crossings
        self.keep_vectors = keep_vectors
        self.categories: list[str] = []
        self._cat_index: dict[str, int] = {}
        self._empty_tables()
        order = self.settings.max_order
        self._doc_counts = np.zeros(4, np.int64)
        self._token_counts = np.zeros(4, np.int64)
        self._cat_stats = np.zeros((4, order, 4), np.int64)
        self._all_stats = np.zeros((order, 4), np.int64)
        n_buckets = self.settings.n_gram_buckets
        self._gram = np.zeros(n_buckets * (n_buckets + 1) // 2, np.int64)  # see packed_gram()
        self._gram_pending: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # (page bounds, buckets, values)
        self._growth: list[np.ndarray] = []  # growth-log rows not yet taken
        self._crossings: list[tuple[np.ndarray, np.ndarray]] = []  # not yet taken
        self._vectors: list[PageVectors] = []  # not yet taken

    def _empty_tables(self) -> None:
        """No features and no counts (the smallest tables)."""
        self.lexicon: dict[int, str] = {}
        self.n_rows = 0
        self._slots = np.zeros(_MIN_TABLE, np.uint32)  # the feature table (see accum._kernels)
        self._row_info = np.zeros((_MIN_TABLE // 2, 4), np.uint64)
        self._row_total = np.zeros(_MIN_TABLE // 2, np.int64)
        # Counts are sparse: one row (row and category, count, weight, scratch) per pair
        # counted, found through a second table (see accum._kernels' module notes).
        self.n_pairs = 0
        self._pair_table = np.zeros(_MIN_TABLE, np.uint64)
        self._pairs = np.zeros((_MIN_TABLE // 2, 4), np.int64)

    # -- views ---------------------------------------------------------------------------

    @property
    def counts(self) -> np.ndarray:
        """Counts, int64[n_features, n_categories] (a new dense array, built from the
        non-zero counts: see :meth:`pairs` for those alone)."""
        return self._dense(_kernels.P_COUNT, np.int64, 1.0)

    @property
    def weights(self) -> np.ndarray:
        """Sums of per-document weights ``log(1 + tf) / ||log(1 + tf)||_2``,
        float64[n_features, n_categories] (a new dense array; stored in fixed point,
        see :meth:`pairs`)."""
        return self._dense(_kernels.P_WEIGHT, np.float64, _kernels.WEIGHT_SCALE)

    def pairs(self, ordered: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The non-zero counts, sparse: row int64[n], category int64[n], count int64[n] and
        document weight int64[n] in fixed point (divide by ``_kernels.WEIGHT_SCALE`` for
        :attr:`weights`), one entry per (row, category) pair counted (new arrays).

        ``ordered``: by row, then category, as ``np.nonzero(acc.counts)`` lists them;
        otherwise in the order the pairs were first counted (cheaper).
        """
        return _kernels.pairs_columns(self._pairs, self.n_pairs, self.n_rows, ordered)

    @property
    def raw_pairs(self) -> np.ndarray:
        """The non-zero counts as the kernels keep them (for models built over the counts,
        see :mod:`accum.classify`): int64[n_pairs, 4] in the order first counted, columns
        ``accum._kernels.P_KEY`` (``row << 32 | category``), ``P_COUNT``, ``P_WEIGHT``
        (fixed point, see :meth:`pairs`) and ``P_ID_TF`` (a read-only view)."""
        return _read_only(self._pairs[: self.n_pairs])

    @property
    def raw_rows(self) -> np.ndarray:
        """Each row (feature) as the kernels keep it: uint64[n_rows, 4] of feature id,
        prefix id (0 for unigrams), last token id and order (a read-only view)."""
        return _read_only(self._row_info[: self.n_rows])

    def _dense(self, column: int, dtype, scale: float) -> np.ndarray:
        out = np.zeros((self.n_rows, self.n_categories), dtype)
        _kernels.pairs_dense(self._pairs, self.n_pairs, column, scale, out)
        return out

    def _row_counts(self, row: int) -> np.ndarray:
        """Counts of one row per category, int64[n_categories]."""
        out = np.zeros(self.n_categories, np.int64)
        for c in range(self.n_categories):
            p = _kernels.pair_find(self._pair_table, self._pairs, self._row_info[row, 0], c)
            if p >= 0:
                out[c] = self._pairs[p, _kernels.P_COUNT]
        return out

    @property
    def gram(self) -> np.ndarray:
        """The Gram ``sum_pages h hᵀ`` of the pages' hashed unigram vectors (see
        :class:`Settings`' ``gram_bits``), float64[n_buckets, n_buckets] in weight units (a
        new array, exact: the accumulator keeps it as integers in units ``GRAM_SCALE ** -2``,
        the packed upper triangle row by row)."""
        n = self.settings.n_gram_buckets
        if not n:
            raise ValueError("this accumulator keeps no Gram (gram_bits 0)")
        out = np.empty((n, n))
        _gram_kernels.gram_unpack(self.packed_gram(), n, out)
        out /= _kernels.GRAM_SCALE**2
        return out

    @property
    def doc_counts(self) -> np.ndarray:
        """Pages per category, int64[n_categories] (a view)."""
        return self._doc_counts[: self.n_categories]

    @property
    def token_counts(self) -> np.ndarray:
        """Tokens per category, int64[n_categories] (a view)."""
        return self._token_counts[: self.n_categories]

    @property
    def row_key(self) -> np.ndarray:
        """Feature id of each row, uint64[n_features] (a view)."""
        return self._row_info[: self.n_rows, 0]

    @property
    def row_totals(self) -> np.ndarray:
        """Each feature's count over all categories, int64[n_features] (a read-only view)."""
        return _read_only(self._row_total[: self.n_rows])

    @property
    def row_order(self) -> np.ndarray:
        """n-gram order of each row, int64[n_features]."""
        return self._row_info[: self.n_rows, 3].astype(np.int64)

    @property
    def nbytes(self) -> int:
        """Bytes of the arrays that hold the model (rows and pairs at their in-use size,
        both tables whole) and the lexicon."""
        return self._table_bytes() + self._gram.nbytes + sum(len(s) + 8 for s in self.lexicon.values())

    @property
    def counting_bytes(self) -> int:
        """Memory the counts since the last :meth:`take_counts` hold, about: the tables,
        rows, pairs and spellings (as Python objects) and the crossings not yet taken.
        What an ingest with a memory budget watches."""
        crossings = sum(k.nbytes + a.nbytes for k, a in self._crossings)
        return self._table_bytes() + len(self.lexicon) * _SPELLING_BYTES + crossings

    def _table_bytes(self) -> int:
        """Bytes of the rows and pairs at their in-use size and of both tables whole."""
        return int(self.n_rows * (self._row_info.itemsize * 4 + self._row_total.itemsize)
                   + self.n_pairs * self._pairs.itemsize * 4 + self._slots.nbytes + self._pair_table.nbytes)

    def growth_stats(self) -> tuple[np.ndarray, np.ndarray]:
        """Current growth statistics: int64[n_categories, max_order, 4] and int64[max_order, 4].

        Fields along the last axis are :data:`accum.counts.GROWTH_FIELDS`.
        """
        return self._cat_stats[: self.n_categories].copy(), self._all_stats.copy()

    def take_growth(self) -> np.ndarray:
        """Growth-log rows logged since the last call, int64[n, 3 + 4 * max_order].

        Each row: category index (-1 = all pages), pages, tokens, then per order the
        :data:`accum.counts.GROWTH_FIELDS`.
        """
        width = 3 + 4 * self.settings.max_order
        rows = np.concatenate(self._growth) if self._growth else np.zeros((0, width), np.int64)
        self._growth = []
        return rows

    def take_crossings(self) -> tuple[np.ndarray, np.ndarray]:
        """Crossings logged since the last call (with ``log_crossings``), in page order:
        feature ids uint64[n] and int64[n, 2] of (category, its page count), category -1
        meaning all pages (the row total)."""
        rows = [k for k, _ in self._crossings]  # the kernel logs rows: ids are one read away
        at = [a for _, a in self._crossings]
        self._crossings = []
        if not rows:
            return np.zeros(0, np.uint64), np.zeros((0, 2), np.int64)
        return self._row_info[np.concatenate(rows).astype(np.int64), 0], np.concatenate(at)

    def capped_counts(self, cap: int) -> tuple[np.ndarray, np.ndarray]:
        """Each pair's count, in pair order (which merges keep), and each row's total, both
        capped at ``cap``: uint8[n_pairs] and uint8[n_rows] (see :meth:`replay_crossings`)."""
        return (np.minimum(self._pairs[: self.n_pairs, _kernels.P_COUNT], cap).astype(np.uint8),
                np.minimum(self._row_total[: self.n_rows], cap).astype(np.uint8))

    def replay_crossings(self, keys: np.ndarray, cats: np.ndarray, buckets: np.ndarray, running_pair: np.ndarray,
                         running_all: np.ndarray, hist_cat: np.ndarray, hist_all: np.ndarray) -> None:
        """Replay crossings logged elsewhere (:meth:`take_crossings`; categories as indices
        here) on top of the counts before them (``running_*``, as :meth:`capped_counts`
        gave them, zero-padded for pairs and rows added since), into per-checkpoint
        histograms: see :func:`accum._kernels.replay_crossings` and :mod:`accum.partials`."""
        _kernels.replay_crossings(keys, cats, buckets, self._slots, self._row_info, self._pair_table, self._pairs,
                                  self.row_order, running_pair, running_all, self.settings.prune_k, hist_cat,
                                  hist_all)

    def take_vectors(self) -> PageVectors:
        """The vectors of the pages added since the last call (with ``keep_vectors``), in
        the order they were added."""
        taken, self._vectors = self._vectors, []
        return PageVectors.concat(taken, self.categories)

    def take_counts(self) -> CountRun:
        """The counts since the last call, with their crossings (see ``log_crossings``), as
        a sorted :class:`~accum.runs.CountRun`; then the counts start again from empty
        tables, while categories, pages, tokens and the Gram stay (an ingest with a memory
        budget spills them so: see :mod:`accum.runs`). Sorted by counting sorts over the
        rows' ranks, letting go of each batch of crossings once placed, so that taking the
        counts needs little memory beyond the run it makes."""
        n_rows, n_pairs = self.n_rows, self.n_pairs
        info = self._row_info[:n_rows]
        by_fid = np.argsort(info[:, 0])
        rank = np.empty(n_rows, np.int64)
        rank[by_fid] = np.arange(n_rows)
        n = n_rows + n_pairs
        fid, cat, count, weight = np.empty(n, np.uint64), *(np.empty(n, np.int64) for _ in range(3))
        sort_counts(info, self._row_total[:n_rows], self._pairs[:n_pairs], rank, fid, cat, count, weight)
        start = np.zeros(n_rows + 1, np.int64)
        for rows, _ in self._crossings:
            count_crossings(rows, rank, start)
        np.cumsum(start, out=start)
        cursor = start[:-1].copy()
        x_fid, x_cat, x_pos = np.empty(start[-1], np.uint64), np.empty(start[-1], np.int64), np.empty(start[-1], np.int64)
        while self._crossings:  # each batch let go of once placed
            place_crossings(*self._crossings.pop(0), info, rank, cursor, x_fid, x_cat, x_pos)
        sort_segments(start, x_cat, x_pos, x_pos)  # by category; pages (moved as both payloads) stay in order
        lex_key = np.fromiter(self.lexicon.keys(), np.uint64, len(self.lexicon))
        texts = list(self.lexicon.values())
        lex_order = np.argsort(lex_key)
        run = CountRun(fid, cat, count, weight, info[by_fid, 0], info[by_fid, 1], info[by_fid, 2],
                       info[by_fid, 3].astype(np.int64), x_fid, x_cat, x_pos, lex_key[lex_order],
                       [texts[i] for i in lex_order.tolist()])
        del info
        self._empty_tables()
        self._cat_stats[:] = 0
        return run

    def rows_of(self, feature_ids: np.ndarray) -> np.ndarray:
        """Row of each feature id (-1 when unseen)."""
        ids = np.asarray(feature_ids, np.uint64).reshape(-1, 1)
        return _kernels.lookup_rows(ids, self._slots, self._row_info)[:, 0]

    def feature_text(self, row: int) -> str:
        """The words of the feature in ``row`` ("new york" for a bigram)."""
        words = []
        while True:
            words.append(self.lexicon.get(int(self._row_info[row, 2]), "?"))
            prefix = int(self._row_info[row, 1])
            if prefix == 0:
                return " ".join(reversed(words))
            row = int(self.rows_of(np.array([prefix], np.uint64))[0])

    def count(self, text: str) -> dict[str, int]:
        """Counts per category of the n-gram spelled by ``text`` (0 when unseen)."""
        batch = tokenize([text], self.settings.lowercase)
        n = len(batch.ids)
        if not 1 <= n <= self.settings.max_order:
            raise ValueError(
                f"{text!r} has {n} tokens; count() takes 1 to {self.settings.max_order}"
            )
        fid = batch.ngrams(n)[n - 1, n - 1]
        row = int(self.rows_of(np.array([fid], np.uint64))[0])
        values = self._row_counts(row) if row >= 0 else np.zeros(self.n_categories, np.int64)
        return {c: int(v) for c, v in zip(self.categories, values)}

    # -- learning ------------------------------------------------------------------------

    def category_index(self, label: str) -> int:
        """Column of ``label``, adding the category when it is new."""
        if not isinstance(label, str) or not label:
            raise ValueError(f"a category label must be a non-empty str, got {label!r}")
        index = self._cat_index.get(label)
        if index is None:
            index = len(self.categories)
            if index >= _kernels.PAIR_LIMIT:
                raise ValueError(f"an accumulator holds at most {_kernels.PAIR_LIMIT:,} categories")
            self.categories.append(label)
            self._cat_index[label] = index
            if index >= len(self._doc_counts):
                self._grow_categories(2 * len(self._doc_counts))
        return index

    def learn_one(self, text: str, label: str) -> None:
        """Add one page."""
        self.partial_fit([text], [label])

    def partial_fit(self, texts: Sequence[str], labels: Sequence[str]) -> None:
        """Add a batch of pages with their labels."""
        if isinstance(texts, str) or isinstance(labels, str):
            raise TypeError("partial_fit() takes sequences of texts and labels; use learn_one() for one page")
        if len(texts) != len(labels):
            raise ValueError(f"got {len(texts)} texts but {len(labels)} labels")
        self.add_tokens(tokenize(texts, self.settings.lowercase), labels)

    def add_tokens(self, batch: TokenBatch, labels: Sequence[str]) -> None:
        """Add already tokenised pages (see :func:`accum.tokens.tokenize`)."""
        cats = np.array([self.category_index(label) for label in labels], np.int64)
        if len(cats) != batch.n_docs:
            raise ValueError(f"got {batch.n_docs} documents but {len(cats)} labels")
        grams = batch.ngrams(self.settings.max_order)
        new_tok = np.empty(len(batch.ids), np.int64)
        events = np.empty((2 * batch.n_docs, 3 + 4 * self.settings.max_order), np.int64)
        longest = int(batch.doc_lengths().max()) if batch.n_docs else 0
        if longest >= 1 << 32:  # a pair keeps its term frequency in a document in 32 bits
            raise ValueError(f"a page of {longest:,} tokens is too long (at most {(1 << 32) - 1:,})")
        touched = np.empty(longest * self.settings.max_order, np.int64)
        touched_unigram = np.empty(len(touched), np.uint64)
        bits = self.settings.gram_bits
        n_h = len(batch.ids) if bits else 0  # each page's hashed unigram vector, for the Gram
        h_bucket, h_value = np.empty(n_h, np.uint16), np.empty(n_h, np.int32)  # compact: see gram_add_pages
        h_pages = np.zeros(batch.n_docs + 1, np.int64)
        n_cross = 2 * grams.size if self.log_crossings else 0
        cross_keys, cross_at = np.empty(n_cross, np.uint64), np.empty((n_cross, 2), np.int64)
        n_vec = grams.size if self.keep_vectors else 0
        vec_fid, vec_tf = np.empty(n_vec, np.uint64), np.empty(n_vec, np.uint32)
        vec_pages = np.zeros(batch.n_docs + 1, np.int64)
        doc = 0
        while doc < batch.n_docs:
            first = doc
            doc, self.n_rows, self.n_pairs, n_new, n_events, n_cross, n_h, n_v = _kernels.accumulate(
                grams, batch.ids, batch.bounds, cats, doc, self._slots,
                self._row_info, self._row_total, self._pair_table, self._pairs,
                self.n_rows, self.n_pairs, new_tok,
                self._doc_counts, self._token_counts, self._cat_stats, self._all_stats,
                self.settings.prune_k, events, touched, touched_unigram, self.track_growth,
                cross_keys, cross_at, bits, h_bucket, h_value, h_pages,
                np.empty(len(touched), np.uint64), vec_fid, vec_tf, vec_pages[first:],
            )
            if n_h:
                end = h_pages[n_h]
                self._gram_pending.append((h_pages[: n_h + 1].copy(), h_bucket[:end].copy(), h_value[:end].copy()))
                if sum(len(b) for _, b, _ in self._gram_pending) >= GRAM_BATCH_ENTRIES:
                    self.packed_gram()
            self._learn_words(batch, new_tok[:n_new])
            if n_events:
                self._growth.append(events[:n_events].copy())
            if n_cross:
                self._crossings.append((cross_keys[:n_cross].copy(), cross_at[:n_cross].copy()))
            if n_v:
                self._vectors.append(_batch_vectors(batch, cats, first, doc, vec_pages, vec_fid, vec_tf))
            if doc < batch.n_docs:
                need = int(batch.bounds[doc + 1] - batch.bounds[doc]) * self.settings.max_order
                self._reserve(self.n_rows + need, self.n_pairs + need)

    def subtract(self, vectors: PageVectors) -> None:
        """Take pages that were added here back out, exactly, given their vectors (as
        :meth:`take_vectors` gave them): their counts, weights, Gram terms, pages and
        tokens. Features and pairs left at zero are dropped, so the counts, weights, Gram,
        lexicon and growth statistics equal those of an accumulator that never saw these
        pages (features keyed by id; categories stay, even when they lose every page).
        The growth *log* is history and keeps its rows.

        Raises
        ------
        ValueError
            When a page was not added here (one of its features was counted less often
            in its category); nothing is taken out then.
        """
        if not vectors.n_pages:
            return
        missing = [c for c in vectors.categories if c not in self._cat_index]
        if missing:
            raise ValueError(f"cannot take back pages of categories this accumulator never counted: {missing[:3]}")
        codes = np.array([self._cat_index[c] for c in vectors.categories], np.int64)
        cats = codes[vectors.labels] if len(vectors.labels) else np.zeros(0, np.int64)
        rows = self.rows_of(vectors.fids)
        unigram = (rows >= 0) & (self._row_info[np.maximum(rows, 0), 3] == 1)
        weights, gram = page_terms(vectors, unigram, self.settings)
        done = _kernels.subtract_pages(vectors.fids, vectors.tfs, weights, vectors.bounds, cats, self._pair_table,
                                       self._pairs, self._row_total)
        if done < 0:
            raise ValueError(f"page {-1 - done} of the vectors was not added to this accumulator (a feature of it "
                             "was counted less often in its category); nothing was taken out")
        self.take_out_totals(cats, vectors.n_tokens, gram)
        self._drop_zeros()

    def take_out_totals(self, cats: np.ndarray, n_tokens: np.ndarray, gram: np.ndarray | None) -> None:
        """Take pages (their categories and tokens, and their own Gram as
        :func:`page_terms` gives it) out of the pages, tokens and Gram."""
        if gram is not None:
            self.packed_gram()[:] -= gram
        np.subtract.at(self._doc_counts, cats, 1)
        np.subtract.at(self._token_counts, cats, n_tokens)

    def _drop_zeros(self) -> None:
        """Rebuild without the pairs whose count is zero and the rows left without any
        (and their spellings), keeping what is not counts (logs, flags)."""
        if self._crossings:  # they name rows, which this renumbers
            raise RuntimeError("take the crossings before taking pages out")
        fresh = Accumulator.from_arrays(without_zero_counts(self.to_arrays()))
        for name in ("_slots", "_row_info", "_row_total", "_pair_table", "_pairs", "_doc_counts", "_token_counts",
                     "_cat_stats", "_all_stats", "_gram", "_gram_pending", "n_rows", "n_pairs", "lexicon"):
            setattr(self, name, getattr(fresh, name))

    def packed_gram(self) -> np.ndarray:
        """The Gram's packed triangle (int64; see :attr:`gram`), with the pages' vectors
        still waiting (see :data:`GRAM_BATCH_ENTRIES`) added first: the accumulator's own
        array, not a copy (read it, do not change it)."""
        if self._gram_pending:
            bounds = [np.zeros(1, np.int64)]
            for pages, _, _ in self._gram_pending:
                bounds.append(pages[1:] + bounds[-1][-1])
            _gram_kernels.gram_add_pages(self._gram, self.settings.n_gram_buckets, np.concatenate(bounds),
                                         np.concatenate([b for _, b, _ in self._gram_pending]),
                                         np.concatenate([v for _, _, v in self._gram_pending]))
            self._gram_pending = []
        return self._gram

    def _learn_words(self, batch: TokenBatch, tokens: np.ndarray) -> None:
        """Record the text of tokens whose ids are new to the lexicon, each cut to
        :data:`MAX_SPELLING_BYTES`."""
        if len(tokens):
            self.lexicon.update(zip(batch.ids[tokens].tolist(), batch.spellings(tokens, MAX_SPELLING_BYTES)))

    def merge(self, other: "Accumulator") -> "Accumulator":
        """Add ``other``'s counts into this accumulator (in place) and return it.

        Growth logs describe one stream of pages and do not merge; the growth statistics
        of the result are recomputed from its counts.
        """
        if other.settings != self.settings:
            raise ValueError(f"cannot merge accumulators with settings {self.settings} and {other.settings}")
        cats = np.array([self.category_index(c) for c in other.categories], np.int64)
        self._reserve(self.n_rows + other.n_rows, self.n_pairs + other.n_pairs)
        self.n_rows, self.n_pairs = _kernels.merge_rows(
            other._row_info[: other.n_rows], other._pairs[: other.n_pairs], cats, self._slots,
            self._row_info, self._row_total, self._pair_table, self._pairs, self.n_rows, self.n_pairs,
        )
        np.add.at(self._doc_counts, cats, other.doc_counts)
        np.add.at(self._token_counts, cats, other.token_counts)
        self.packed_gram()[:] += other.packed_gram()
        for key, text in other.lexicon.items():
            self.lexicon.setdefault(key, text)
        self._recompute_stats()
        return self

    def _recompute_stats(self) -> None:
        """Growth statistics from the counts (after a merge or a load)."""
        _kernels.count_stats(self._pairs, self.n_pairs, self._row_total[: self.n_rows], self.row_order,
                             self.settings.prune_k, self._cat_stats[: self.n_categories], self._all_stats)

    def _grow_categories(self, cap: int) -> None:
        """Room for exactly ``cap`` categories, at least those in use (only the per-category
        arrays: counts are per pair)."""
        keep = min(len(self._doc_counts), cap)
        for name in ("_doc_counts", "_token_counts", "_cat_stats"):
            arr = getattr(self, name)
            grown = np.zeros((cap,) + arr.shape[1:], np.int64)
            grown[:keep] = arr[:keep]
            setattr(self, name, grown)

    def _reserve(self, rows: int, pairs: int) -> None:
        """Grow the tables, row and pair arrays so that ``rows`` rows and ``pairs`` pairs
        fit, each table at most half full."""
        if rows > _kernels.PAIR_LIMIT or pairs > _kernels.PAIR_LIMIT:
            raise ValueError(f"an accumulator holds at most {_kernels.PAIR_LIMIT:,} features and as many "
                             "non-zero counts")
        # the arrays grow 4x: their unused end is never touched, so it takes no memory
        if rows > len(self._row_info):
            size = max(rows, 4 * len(self._row_info))
            for name in ("_row_info", "_row_total"):
                old = getattr(self, name)
                new = np.zeros((size,) + old.shape[1:], old.dtype)
                new[: self.n_rows] = old[: self.n_rows]
                setattr(self, name, new)
        if 2 * rows > len(self._slots):
            self._slots = np.zeros(_table_size(len(self._slots), rows), np.uint32)
            _kernels.table_build(self._row_info, self.n_rows, self._slots)
        if pairs > len(self._pairs):
            new = np.zeros((max(pairs, 4 * len(self._pairs)), 4), np.int64)
            new[: self.n_pairs] = self._pairs[: self.n_pairs]
            self._pairs = new
        if 2 * pairs > len(self._pair_table):
            grown = np.zeros(_table_size(len(self._pair_table), pairs), np.uint64)
            _kernels.pair_table_grow(self._pair_table, grown)
            self._pair_table = grown

    # -- exchange ------------------------------------------------------------------------

    def to_arrays(self) -> dict:
        """The state as plain arrays and lists (what a snapshot stores). Some arrays are
        views of the accumulator's own (not copied, to keep a snapshot's memory small):
        read or copy them before adding more pages.

        Counts are sparse: ``count_value[i]`` is the count of row ``count_row[i]`` in
        category ``count_category[i]``, for every non-zero count, and ``count_weight[i]``
        its document weight in fixed point (see :attr:`weights`). The Gram's packed
        triangle (see :attr:`gram`) is ``gram_value`` whole, or, when most of it is zero,
        ``gram_value[i]`` at position ``gram_index[i]`` (uint32).
        """
        keys = np.fromiter(self.lexicon.keys(), np.uint64, len(self.lexicon))
        rows, cats, values, weights = self.pairs()
        return {
            "settings": self.settings.to_dict(),
            "categories": list(self.categories),
            "doc_counts": self.doc_counts.copy(),
            "token_counts": self.token_counts.copy(),
            "row_info": self._row_info[: self.n_rows],
            "count_row": rows,
            "count_category": cats,
            "count_value": values,
            "count_weight": weights,
            "lexicon_keys": keys,
            "lexicon_text": list(self.lexicon.values()),
            **self._gram_arrays(),
        }

    def _gram_arrays(self) -> dict:
        """The Gram for :meth:`to_arrays`: sparse (12 bytes per non-zero) or whole (8 per entry)."""
        gram = self.packed_gram()
        if 12 * np.count_nonzero(gram) >= 8 * len(gram):
            return {"gram_value": gram}
        index, value = _gram_kernels.gram_nonzero(gram)
        return {"gram_index": index, "gram_value": value}

    @classmethod
    def from_arrays(cls, state: dict) -> "Accumulator":
        """Rebuild an accumulator from :meth:`to_arrays` output (arrays may be read-only)."""
        acc = cls(Settings.from_dict(state["settings"]))
        acc._grow_categories(max(len(state["categories"]), 1))  # exact: no spare columns
        for name in state["categories"]:
            acc.category_index(name)
        n_cats = acc.n_categories
        acc._doc_counts[:n_cats] = state["doc_counts"]
        acc._token_counts[:n_cats] = state["token_counts"]
        n = len(state["row_info"])
        rows, cats, values, weights = nonzero_counts(state)
        n_pairs = len(values)
        acc._reserve(n, n_pairs)
        acc._row_info[:n] = state["row_info"]
        acc.n_rows = n
        acc._pairs[:n_pairs, _kernels.P_KEY] = (rows << 32) | cats
        acc._pairs[:n_pairs, _kernels.P_COUNT] = values
        acc._pairs[:n_pairs, _kernels.P_WEIGHT] = weights
        acc.n_pairs = n_pairs
        np.add.at(acc._row_total, rows, values)
        _kernels.table_build(acc._row_info, n, acc._slots)
        _kernels.pair_table_build(acc._pairs, n_pairs, acc._row_info, acc._pair_table)
        acc.lexicon = dict(zip(np.asarray(state["lexicon_keys"]).tolist(), state["lexicon_text"]))
        acc._set_gram(state)
        acc._recompute_stats()
        return acc

    @classmethod
    def without_counts(cls, state: dict, **options) -> "Accumulator":
        """An accumulator with the categories, pages, tokens and Gram of a
        :meth:`to_arrays` state (its ``row_*``, ``count_*`` and ``lexicon_*`` entries may
        be absent) but no counts: what an ingest with a memory budget counts on (see
        :meth:`take_counts`). ``options`` as the constructor's."""
        acc = cls(Settings.from_dict(state["settings"]), **options)
        for name in state["categories"]:
            acc.category_index(name)
        acc._doc_counts[: acc.n_categories] = state["doc_counts"]
        acc._token_counts[: acc.n_categories] = state["token_counts"]
        acc._set_gram(state)
        return acc

    def _set_gram(self, state: dict) -> None:
        if "gram_index" in state:
            self._gram[np.asarray(state["gram_index"], np.int64)] = state["gram_value"]
        elif len(self._gram) and "gram_value" in state:
            self._gram[:] = state["gram_value"]

    def __getstate__(self) -> dict:
        """Pickle the counts sparsely (as a snapshot does), with logs not yet taken."""
        return {"arrays": self.to_arrays(), "track_growth": self.track_growth,
                "log_crossings": self.log_crossings, "growth": self._growth, "crossings": self._crossings}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(Accumulator.from_arrays(state["arrays"]).__dict__)
        self.track_growth, self.log_crossings = state["track_growth"], state["log_crossings"]
        self._growth, self._crossings = state["growth"], state["crossings"]

    def canonical(self) -> dict[int, dict[str, int]]:
        """Feature id -> {category: count} without zeros: equal for equal content."""
        keys = self.row_key.tolist()
        out = {key: {} for key in keys}
        rows, cats, values, _ = self.pairs()
        for r, c, v in zip(rows.tolist(), cats.tolist(), values.tolist()):
            out[keys[r]][self.categories[c]] = v
        return out

    def __repr__(self) -> str:
        return (
            f"Accumulator({self.n_categories} categories, {self.n_documents} documents, "
            f"{self.n_tokens} tokens, {self.n_rows} features)"
        )


def page_terms(vectors: PageVectors, unigram: np.ndarray, settings: Settings) -> tuple[np.ndarray, np.ndarray | None]:
    """What counting pages added beyond their counts, from their vectors: each entry's
    fixed-point document weight (int64[nnz]) and, when ``settings`` keep a Gram, the
    pages' own packed Gram (``unigram``: which entries are unigrams), else None. Exact:
    what :func:`accum._kernels.accumulate` added, bit for bit."""
    n_h = vectors.nnz if settings.gram_bits else 0
    h_bucket, h_value = np.empty(n_h, np.uint16), np.empty(n_h, np.int32)
    h_pages = np.zeros(vectors.n_pages + 1, np.int64)
    weights = np.empty(vectors.nnz, np.int64)
    _kernels.page_terms(vectors.fids, vectors.tfs, vectors.bounds, unigram, settings.gram_bits, weights, h_bucket,
                        h_value, h_pages)
    if not n_h:
        return weights, None
    # h hᵀ is the same for -h: pages' Gram is taken out by subtracting theirs, added up apart
    n = settings.n_gram_buckets
    gram = np.zeros(n * (n + 1) // 2, np.int64)
    _gram_kernels.gram_add_pages(gram, n, h_pages, h_bucket, h_value)
    return weights, gram


def _batch_vectors(batch: TokenBatch, cats: np.ndarray, first: int, stop: int, vec_pages: np.ndarray,
                   vec_fid: np.ndarray, vec_tf: np.ndarray) -> PageVectors:
    """The vectors of pages ``first`` to ``stop`` of ``batch`` that one call of the
    counting kernel wrote (copies: the arrays are reused by the next call)."""
    start, end = int(vec_pages[first]), int(vec_pages[stop])
    tokens = np.diff(batch.bounds[first : stop + 1])
    return PageVectors(vec_pages[first : stop + 1] - start, vec_fid[start:end].copy(), vec_tf[start:end].copy(),
                       cats[first:stop].astype(np.int32), tokens.astype(np.int64))


def _table_size(cap: int, entries: int) -> int:
    """The size from ``cap`` up, growing 4x below :data:`_FAST_GROWTH_SLOTS` and 2x from
    there, that holds ``entries`` at most half full."""
    while 2 * entries > cap:
        cap *= 4 if cap < _FAST_GROWTH_SLOTS else 2
    return cap


def _read_only(view: np.ndarray) -> np.ndarray:
    view.flags.writeable = False
    return view

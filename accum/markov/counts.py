"""The generator's counts: every n-gram of orders 1..order and every sentence opener, per
category, in sparse rows that only ever add.

Each n-gram row keeps its key, prefix, last token and order, its total and the first
category that counted it; only counts in further categories go to a (row, category)
hash table (most n-grams occur in one category), so many categories cost little. Two
:class:`NgramCounts` merge by addition exactly.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from .. import _kernels
from .. import _markov_kernels as K
from ..counts import CategoryTotals
from .tokens import ABBREVIATIONS, MarkovTokens, abbreviation_ids

DEFAULT_LABEL = "default"
_MIN_TABLE = 1 << 12

#: Bytes of one row in memory: key, prefix and last token (8 each), order (1), total
#: count and first category (16).
ROW_BYTES = 41
#: Bytes of a count in a further category: a 16-byte slot of the pair table, at most half full.
PAIR_BYTES = 32
#: Rows beyond those of the counts: at most this many reserved at once.
MAX_RESERVE = 1 << 23
#: New rows per position and order the row table is sized for up front: measured 0.21
#: (KJV) to 0.45 (a novel) at order 3, 0.32 to 0.57 at order 4; a batch that needs more
#: grows it once more.
NEW_ROWS_PER_POSITION = 0.35
MIN_TABLE_RESERVE = 1024


def row_reservation(positions: int, order: int) -> tuple[int, int]:
    """Rows and table rows to reserve before counting ``positions`` token positions
    (tokens and document ends) at ``order``: one growth up front instead of many rehashes.

    Rows: at most one per (position, order) and opener, about half that in natural text
    (reserved, not touched, so generous). The table (zeroed and touched all over):
    :data:`NEW_ROWS_PER_POSITION` new rows per position and order.
    """
    rows = min(positions * (order + 1) // 2, MAX_RESERVE)
    table_rows = min(int(NEW_ROWS_PER_POSITION * positions * order) + MIN_TABLE_RESERVE, MAX_RESERVE)
    return rows, table_rows


@dataclass(frozen=True)
class RowLinks:
    """How the rows hang together (derived from the counts, see :meth:`NgramCounts.links`)."""

    vocab: np.ndarray  # uint64[V]: token ids of the unigram rows, sorted (dense token v is vocab[v])
    last_dense: np.ndarray  # int64[n_rows]: dense index of each row's last token
    prefix_row: np.ndarray  # int64[n_rows]: row of the context (-1 empty, -2 BOS, -3 an opener row)
    suffix_row: np.ndarray  # int64[n_rows]: row without the first token (-1: none)
    bos_initial: np.ndarray  # bool[n_rows]: the n-gram starts with BOS


@dataclass
class Derived:
    """What is derived from the counts on demand and dropped when they change."""

    links: RowLinks | None = None
    vocabulary: object = None  # accum.markov.chain.Vocabulary
    spellings: object = None  # accum.markov.chain.Spellings
    chains: dict = field(default_factory=dict)  # (column, order, discount) -> accum.markov.chain.Chain
    parameters: list | None = None


class NgramCounts(CategoryTotals):
    """Per-category n-gram and sentence-opener counts (the state of a
    :class:`~accum.markov.MarkovAccumulator`).

    Parameters
    ----------
    order : int
        Highest n-gram order (contexts of up to ``order - 1`` tokens).
    """

    #: Words after which a terminal mark does not end a sentence (a hook).
    abbreviations: frozenset = ABBREVIATIONS

    def __init__(self, order: int):
        self.order = int(order)
        self.categories: list[str] = []
        self._cat_index: dict[str, int] = {}
        self.doc_counts = np.zeros(0, np.int64)
        self.token_counts = np.zeros(0, np.int64)
        self.lexicon: dict[int, str] = {int(K.EOS_ID): "\n"}
        self.token_info: dict[int, int] = {int(K.EOS_ID): K.K_PUNCT}
        self.n_rows = 0
        self._table = np.zeros((_MIN_TABLE, 2), np.uint64)
        self._row_key = np.zeros(_MIN_TABLE // 2, np.uint64)
        self._row_prefix = np.zeros(_MIN_TABLE // 2, np.uint64)
        self._row_last = np.zeros(_MIN_TABLE // 2, np.uint64)
        self._row_order = np.zeros(_MIN_TABLE // 2, np.int8)
        self._row_count = np.zeros((_MIN_TABLE // 2, 2), np.int64)  # total, first category
        # counts in a row's other categories, sparse: (row, category) -> count
        self._pairs = np.zeros((_MIN_TABLE, 2), np.uint64)
        self.n_pairs = 0
        self._derived = Derived()

    # -- categories ----------------------------------------------------------------------

    def category_index(self, label: str) -> int:
        """Column of ``label``, adding the category when it is new."""
        if not isinstance(label, str) or not label:
            raise ValueError(f"a category label must be a non-empty str, got {label!r}")
        index = self._cat_index.get(label)
        if index is None:
            index = len(self.categories)
            if index >= 1 << K.CAT_BITS:
                raise ValueError(f"a MarkovAccumulator keeps at most {1 << K.CAT_BITS} categories")
            self.categories.append(label)
            self._cat_index[label] = index
            self.doc_counts = np.append(self.doc_counts, 0)
            self.token_counts = np.append(self.token_counts, 0)
        return index

    def _column_of(self, category) -> int:
        """Column of an existing category (-1 for None: all categories together)."""
        if category is None:
            return -1
        if category not in self._cat_index:
            raise ValueError(f"unknown category {category!r}; the model has {self.categories}")
        return self._cat_index[category]

    # -- views ---------------------------------------------------------------------------

    @property
    def counts(self) -> np.ndarray:
        """Counts, int64[n_rows, n_categories]: a dense copy built on demand.

        The model stores each row's total and the first category that counted it, and
        the other non-zero (row, category) counts in a hash table (see
        :meth:`sparse_counts`); this matrix is for inspection of small models.
        """
        out = np.zeros((self.n_rows, self.n_categories), np.int64)
        rows, cats, values = self.sparse_counts()
        out[rows, cats] = values
        return out

    @property
    def row_total(self) -> np.ndarray:
        """Count of each row over all categories, int64[n_rows] (a view)."""
        return self._row_count[: self.n_rows, 0]

    def sparse_counts(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The non-zero counts as (row, category, count) arrays, by row then category."""
        return K.sparse_counts(self._row_count[: self.n_rows], self._pairs)

    def _column(self, column: int) -> np.ndarray:
        """Counts of one category (-1: all), int64[n_rows]."""
        if column < 0 or self.n_categories == 1:
            return np.ascontiguousarray(self.row_total)
        return K.count_column(self._row_count[: self.n_rows], self._pairs, column)

    @property
    def row_key(self) -> np.ndarray:
        return self._row_key[: self.n_rows]

    @property
    def row_prefix(self) -> np.ndarray:
        return self._row_prefix[: self.n_rows]

    @property
    def row_last(self) -> np.ndarray:
        return self._row_last[: self.n_rows]

    @property
    def row_order(self) -> np.ndarray:
        """n-gram order of each row, int8[n_rows] (0 for a sentence-opener row)."""
        return self._row_order[: self.n_rows]

    @property
    def nbytes(self) -> int:
        """Bytes of the count state: rows, table and lexicon (not the compiled chains)."""
        return int(self.n_rows * ROW_BYTES + self._table.nbytes + self._pairs.nbytes
                   + sum(len(s) + 9 for s in self.lexicon.values()))

    def _count_of(self, ids: np.ndarray, category: str | None) -> int:
        """Count of the n-gram of token ids ``ids`` (its last token after the others) in a
        category (None: all)."""
        key = K.ROOT_ID
        for k, t in enumerate(ids):
            key = np.uint64(K.ngram_id(key, t, k + 1))
        row = K.table_lookup(self._table, key)
        if row < 0:
            return 0
        column = self._column_of(category)
        total, first = self._row_count[row]
        if column < 0:
            return int(total)
        if column != first:
            return int(K.pairs_lookup(self._pairs, row, column))
        return int(total) - sum(int(K.pairs_lookup(self._pairs, row, c))
                                for c in range(self.n_categories) if c != first)

    def links(self) -> RowLinks:
        """The vocabulary and each row's prefix and suffix rows (derived, cached)."""
        if self._derived.links is None:
            orders = self.row_order
            vocab = np.sort(self.row_key[orders == 1])
            last_dense = np.searchsorted(vocab, self.row_last).astype(np.int64)
            prefix_row, suffix_row, bos_initial, bad = K.derive_rows(
                self.row_key, self.row_prefix, self.row_last, orders, self._table, self.order)
            if bad:
                raise ValueError(f"{bad} rows lack their prefix or suffix n-gram: the counts are inconsistent")
            self._derived.links = RowLinks(vocab, last_dense, prefix_row, suffix_row, bos_initial)
        return self._derived.links

    # -- adding --------------------------------------------------------------------------

    def add_tokens(self, batch: MarkovTokens, labels: Sequence[str] | None = None) -> None:
        """Add already tokenised documents (see :meth:`tokenize`), all to ``"default"``
        without labels."""
        if labels is None:
            cats = np.full(batch.n_docs, self.category_index(DEFAULT_LABEL), np.int64)
        else:
            index = {label: self.category_index(label) for label in dict.fromkeys(labels)}
            cats = np.array([index[label] for label in labels], np.int64)
        if len(cats) != batch.n_docs:
            raise ValueError(f"got {batch.n_docs} documents but {len(cats)} labels")
        abbrev = abbreviation_ids(self.abbreviations)
        new_tok = np.empty(len(batch.ids), np.int64)
        rows, table_rows = row_reservation(len(batch.ids) + batch.n_docs, self.order)
        self._reserve(self.n_rows + rows, self.n_rows + table_rows)
        multi = self.n_categories > 1
        if multi:
            self._reserve_pairs(self.n_pairs + min(rows, 1 << 21))
        doc = 0
        while doc < batch.n_docs:
            doc, self.n_rows, self.n_pairs, n_new = K.count_ngrams(
                batch.ids, batch.info, batch.bounds, cats, doc, self.order, abbrev, self._table,
                self._row_key, self._row_prefix, self._row_last, self._row_order, self._row_count,
                self.n_rows, self._pairs, self.n_pairs, multi, new_tok,
            )
            self._learn_words(batch, new_tok[:n_new])
            if doc < batch.n_docs:
                need = int(batch.bounds[doc + 1] - batch.bounds[doc] + 1) * (self.order + 1)
                self._reserve(self.n_rows + need)
                if multi:
                    self._reserve_pairs(self.n_pairs + need)
        n_cat = self.n_categories
        self.doc_counts += np.bincount(cats, minlength=n_cat)
        self.token_counts += np.bincount(cats, batch.doc_lengths(), minlength=n_cat).astype(np.int64)
        self._derived = Derived()

    def add_in_chunks(self, texts: list, labels, ends: np.ndarray, chunks: int,
                      tokenize: Callable[[list], MarkovTokens]) -> None:
        """:meth:`add_tokens` of ``tokenize(texts)`` with a second thread that tokenises the
        batch in ``chunks`` pieces ahead of the counting (``ends``: the cumulative
        characters of the texts). The pieces are counted in order, so the rows, counts and
        lexicon are those of one call on the whole batch."""
        if labels is not None:  # every label checked (and new categories added, in order) before any counting
            for label in dict.fromkeys(labels):
                self.category_index(label)
        cuts = np.searchsorted(ends, ends[-1] * np.arange(1, chunks) // chunks, side="right")
        cuts = np.unique(np.concatenate([[0], cuts, [len(texts)]]))
        # room for the whole batch up front (tokens: about one per 4 characters of text)
        rows, table_rows = row_reservation(int(ends[-1]) // 4 + len(texts), self.order)
        self._reserve(self.n_rows + rows, self.n_rows + table_rows)
        with ThreadPoolExecutor(1) as pool:
            parts = [(a, b, pool.submit(tokenize, texts[a:b])) for a, b in zip(cuts[:-1].tolist(), cuts[1:].tolist())]
            for a, b, batch in parts:
                self.add_tokens(batch.result(), None if labels is None else labels[a:b])

    def _learn_words(self, batch: MarkovTokens, tokens: np.ndarray) -> None:
        """Add the text and info of new tokens to the lexicon.

        One decode of the tokens' bytes joined by newlines, not one per token (a decoding
        error stays inside its token either way); token by token only when a token holds
        a newline (never with the default tokeniser).
        """
        if len(tokens) == 0:
            return
        texts = str(_kernels.gather_tokens(batch.buf, batch.starts, batch.lengths, tokens, ord("\n")), "utf-8",
                    "replace").split("\n")
        if len(texts) != len(tokens):
            raw = batch.buf.tobytes()
            texts = [raw[a : a + n].decode("utf-8", "replace")
                     for a, n in zip(batch.starts[tokens].tolist(), batch.lengths[tokens].tolist())]
        keys = batch.ids[tokens].tolist()
        self.lexicon.update(zip(keys, texts))
        self.token_info.update(zip(keys, batch.info[tokens].tolist()))

    def merge(self, other: "NgramCounts") -> "NgramCounts":
        """Add ``other``'s counts into this model (in place) and return it."""
        if not isinstance(other, NgramCounts):
            raise TypeError(f"can only merge a MarkovAccumulator, got {type(other).__name__}")
        if other.order != self.order:
            raise ValueError(f"cannot merge models of order {self.order} and {other.order}")
        cats = np.array([self.category_index(c) for c in other.categories], np.int64)
        self._reserve(self.n_rows + other.n_rows)
        other_first = other._row_count[: other.n_rows, 1]
        where, self.n_rows = K.merge_rows(
            other.row_key, other.row_prefix, other.row_last, other.row_order,
            np.ascontiguousarray(other.row_total), cats[other_first] if len(cats) else other_first,
            self._table, self._row_key, self._row_prefix, self._row_last, self._row_order,
            self._row_count, self.n_rows,
        )
        rows, ocats, values = other.sparse_counts()
        rows, ocats = where[rows], cats[ocats] if len(cats) else ocats
        other_cat = self._row_count[rows, 1] != ocats  # counts beyond our rows' first categories
        self._reserve_pairs(self.n_pairs + int(other_cat.sum()))
        self.n_pairs = K.pairs_add(self._pairs, rows[other_cat], ocats[other_cat], values[other_cat], self.n_pairs)
        np.add.at(self.doc_counts, cats, other.doc_counts)
        np.add.at(self.token_counts, cats, other.token_counts)
        lexicon = self.lexicon
        new = [key for key in other.lexicon if key not in lexicon]  # in the other model's order
        lexicon.update((key, other.lexicon[key]) for key in new)
        self.token_info.update((key, other.token_info[key]) for key in new)
        self._derived = Derived()
        return self

    def _reserve(self, rows: int, table_rows: int | None = None) -> None:
        """Grow the row arrays so that ``rows`` rows fit, and the table so that
        ``table_rows`` (default ``rows``) fit at most half full."""
        if rows >= 1 << 32:
            raise ValueError(f"a MarkovAccumulator keeps fewer than 2**32 rows, asked for {rows:,}")
        if rows > len(self._row_key):
            size = max(rows, 2 * len(self._row_key))
            for name in ("_row_key", "_row_prefix", "_row_last", "_row_order", "_row_count"):
                old = getattr(self, name)
                new = np.empty((size,) + old.shape[1:], old.dtype)
                new[: self.n_rows] = old[: self.n_rows]
                setattr(self, name, new)
        table_rows = rows if table_rows is None else table_rows
        if 2 * table_rows > len(self._table):
            cap = len(self._table)
            while 2 * table_rows > cap:
                cap *= 2
            self._table = np.zeros((cap, 2), np.uint64)
            K.table_build(self._row_key, self.n_rows, self._table)

    def _reserve_pairs(self, pairs: int) -> None:
        """Grow the (row, category) table so that ``pairs`` pairs fit at most half full."""
        if 2 * pairs > len(self._pairs):
            cap = len(self._pairs)
            while 2 * pairs > cap:
                cap *= 2
            new = np.zeros((cap, 2), np.uint64)
            K.pairs_rehash(self._pairs, new)
            self._pairs = new

    # -- exchange ------------------------------------------------------------------------

    def settings(self) -> dict:
        """The constructor's arguments, JSON-able."""
        return {"order": self.order}

    def to_arrays(self) -> dict:
        """The state as plain numpy arrays, lists and a JSON-able ``settings`` dict.

        Counts are sparse: ``count_value[i]`` is the count of row ``count_row[i]`` in
        category ``count_category[i]``. ``lexicon_info`` holds each token's kind and
        spacing (see :class:`~accum.markov.MarkovTokens`).
        """
        keys = np.fromiter(self.lexicon.keys(), np.uint64, len(self.lexicon))
        rows, cats, values = self.sparse_counts()
        return {
            "settings": self.settings(),
            "categories": list(self.categories),
            "doc_counts": self.doc_counts.copy(),
            "token_counts": self.token_counts.copy(),
            "row_key": self.row_key.copy(),
            "row_prefix": self.row_prefix.copy(),
            "row_last": self.row_last.copy(),
            "row_order": self.row_order.copy(),
            "count_row": rows,
            "count_category": cats,
            "count_value": values,
            "lexicon_keys": keys,
            "lexicon_text": list(self.lexicon.values()),
            "lexicon_info": np.array([self.token_info[k] for k in self.lexicon], np.uint8),
        }

    @classmethod
    def from_arrays(cls, state: dict):
        """Rebuild a model from :meth:`to_arrays` output (arrays may be read-only)."""
        model = cls(**state["settings"])
        for name in state["categories"]:
            model.category_index(name)
        model.doc_counts = np.array(state["doc_counts"], np.int64)
        model.token_counts = np.array(state["token_counts"], np.int64)
        n = len(state["row_key"])
        model._reserve(n)
        model._row_key[:n] = state["row_key"]
        model._row_prefix[:n] = state["row_prefix"]
        model._row_last[:n] = state["row_last"]
        model._row_order[:n] = state["row_order"]
        rows = np.asarray(state["count_row"], np.int64)
        cats = np.asarray(state["count_category"], np.int64)
        values = np.asarray(state["count_value"], np.int64)
        # each row's first listed category keeps its count in the row, the others go to pairs
        model._row_count[:n] = 0
        model._reserve_pairs(max(len(rows) - n, 0))
        model.n_pairs = K.load_counts(rows, cats, values, model._row_count, model._pairs)
        model.n_rows = n
        K.table_build(model._row_key, n, model._table)
        keys = np.asarray(state["lexicon_keys"]).tolist()
        model.lexicon = dict(zip(keys, state["lexicon_text"]))
        model.token_info = dict(zip(keys, np.asarray(state["lexicon_info"]).tolist()))
        return model

    def canonical(self) -> dict:
        """(order, prefix id, token id) -> {category: count}: equal for equal content."""
        out = {(k, p, w): {} for k, p, w in zip(self.row_order.tolist(), self.row_prefix.tolist(),
                                                 self.row_last.tolist())}
        keys = list(out)
        for r, c, v in zip(*(a.tolist() for a in self.sparse_counts())):
            out[keys[r]][self.categories[c]] = v
        return out

    def __getstate__(self) -> dict:
        """Pickle the counts, not what is derived from them (rebuilt on demand)."""
        state = self.__dict__.copy()
        state["_derived"] = Derived()
        return state

    def __setstate__(self, state: dict) -> None:
        state["_derived"] = Derived()
        self.__dict__.update(state)

    # -- accounting ----------------------------------------------------------------------

    def parameters(self) -> list[dict]:
        """Per order 1..order: distinct contexts, distinct (context, next) pairs, bytes.

        ``pairs`` are the rows of that order (the model's parameters are their counts,
        one per category where non-zero); ``contexts`` the distinct contexts of length
        order-1 that have a continuation; ``bytes`` the in-memory size of those rows
        (:data:`ROW_BYTES` each, plus :data:`PAIR_BYTES` for every further category with
        a non-zero count). The cumulative columns describe a model of that order (orders
        1..n).
        """
        if self._derived.parameters is None:
            self._derived.parameters = self._count_parameters()
        return [dict(r) for r in self._derived.parameters]

    def _count_parameters(self) -> list[dict]:
        orders = self.row_order
        prefix_row = self.links().prefix_row if self.n_rows else np.zeros(0, np.int64)
        out = []
        cum_pairs = cum_ctx = cum_bytes = 0
        nonzero = np.bincount(self.sparse_counts()[0], minlength=self.n_rows)
        for k in range(1, self.order + 1):
            sel = orders == k
            pairs = int(sel.sum())
            mark = np.zeros(self.n_rows + 3, bool)
            mark[prefix_row[sel] + 3] = True
            contexts = int(mark.sum())
            counts = int(nonzero[sel].sum())
            n_bytes = pairs * ROW_BYTES + (counts - pairs) * PAIR_BYTES
            cum_pairs += pairs
            cum_ctx += contexts
            cum_bytes += n_bytes
            out.append({"order": k, "contexts": contexts, "pairs": pairs,
                        "counts": counts, "bytes": n_bytes,
                        "cumulative_contexts": cum_ctx, "cumulative_pairs": cum_pairs,
                        "cumulative_bytes": cum_bytes})
        return out

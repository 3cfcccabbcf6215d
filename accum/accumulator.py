"""Dirichlet accumulators: per-category n-gram counts that only ever add.

Counts are the state. Two accumulators merge by addition, so a page can be added at any
time and a shard built elsewhere merges exactly; smoothed probabilities are derived from
the counts by the models in :mod:`accum.classify`, never stored as the source of truth.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from . import _kernels
from .tokens import TokenBatch, tokenize

_MIN_TABLE = 1 << 12


@dataclass(frozen=True)
class Settings:
    """How text becomes features; fixed for the life of a store.

    Attributes
    ----------
    max_order : int
        Highest n-gram order counted: 1 = unigrams, 2 = unigrams and bigrams (default).
    lowercase : bool
        Fold case before tokenising.
    """

    max_order: int = 2
    lowercase: bool = True

    def __post_init__(self):
        if not isinstance(self.max_order, int) or not 1 <= self.max_order <= 8:
            raise ValueError(f"max_order must be an integer from 1 to 8, got {self.max_order!r}")


class Accumulator:
    """Per-category counts of unigram and n-gram features, plus documents and tokens.

    Parameters
    ----------
    settings : Settings, optional
        Feature settings (default: unigrams and bigrams, case folded).

    Examples
    --------
    >>> acc = Accumulator()
    >>> acc.partial_fit(["Chinese Beijing Chinese", "Tokyo Japan Chinese"], ["c", "j"])
    >>> acc.categories, acc.doc_counts.tolist(), acc.token_counts.tolist()
    (['c', 'j'], [1, 1], [3, 3])
    >>> acc.count("chinese"), acc.count("chinese beijing")
    ({'c': 2, 'j': 1}, {'c': 1, 'j': 0})
    """

    def __init__(self, settings: Settings | None = None):
        self.settings = settings or Settings()
        self.categories: list[str] = []
        self._cat_index: dict[str, int] = {}
        self.doc_counts = np.zeros(0, np.int64)
        self.token_counts = np.zeros(0, np.int64)
        self.lexicon: dict[int, str] = {}
        self.n_rows = 0
        self._keys = np.zeros(_MIN_TABLE, np.uint64)
        self._slots = np.zeros(_MIN_TABLE, np.int64)
        self._row_key = np.zeros(_MIN_TABLE // 2, np.uint64)
        self._row_prefix = np.zeros(_MIN_TABLE // 2, np.uint64)
        self._row_last = np.zeros(_MIN_TABLE // 2, np.uint64)
        self._counts = np.zeros((_MIN_TABLE // 2, 4), np.int64)

    # -- views ---------------------------------------------------------------------------

    @property
    def n_categories(self) -> int:
        return len(self.categories)

    @property
    def counts(self) -> np.ndarray:
        """Counts, int64[n_features, n_categories] (a view)."""
        return self._counts[: self.n_rows, : self.n_categories]

    @property
    def row_key(self) -> np.ndarray:
        """Feature id of each row, uint64[n_features] (a view)."""
        return self._row_key[: self.n_rows]

    @property
    def row_prefix(self) -> np.ndarray:
        """Feature id of each row's n-gram without its last token (0 for unigrams)."""
        return self._row_prefix[: self.n_rows]

    @property
    def row_last(self) -> np.ndarray:
        """Token id of each row's last token."""
        return self._row_last[: self.n_rows]

    @property
    def n_documents(self) -> int:
        return int(self.doc_counts.sum())

    @property
    def n_tokens(self) -> int:
        return int(self.token_counts.sum())

    @property
    def nbytes(self) -> int:
        """Bytes of the arrays that hold the model (in memory, at their current size)."""
        return int(
            self.n_rows * (3 * 8 + 8 * self.n_categories)
            + 2 * 8 * len(self._keys)
            + sum(len(s) + 8 for s in self.lexicon.values())
        )

    def row_orders(self) -> np.ndarray:
        """n-gram order of each row, int64[n_features]."""
        orders = np.ones(self.n_rows, np.int64)
        prefix = self.row_prefix
        pending = prefix != 0
        while pending.any():
            orders[pending] += 1
            rows = self.rows_of(prefix[pending])
            prefix = np.zeros(self.n_rows, np.uint64)
            prefix[pending] = self.row_prefix[rows]
            pending = prefix != 0
        return orders

    def rows_of(self, feature_ids: np.ndarray) -> np.ndarray:
        """Row of each feature id (-1 when unseen)."""
        ids = np.asarray(feature_ids, np.uint64).reshape(-1, 1)
        return _kernels.lookup_rows(ids, self._keys, self._slots)[:, 0]

    def feature_text(self, row: int) -> str:
        """The words of the feature in ``row`` ("new york" for a bigram)."""
        words = []
        while True:
            words.append(self.lexicon.get(int(self._row_last[row]), "?"))
            prefix = int(self._row_prefix[row])
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
        values = self.counts[row] if row >= 0 else np.zeros(self.n_categories, np.int64)
        return {c: int(v) for c, v in zip(self.categories, values)}

    # -- learning ------------------------------------------------------------------------

    def category_index(self, label: str) -> int:
        """Column of ``label``, adding the category when it is new."""
        if not isinstance(label, str) or not label:
            raise ValueError(f"a category label must be a non-empty str, got {label!r}")
        index = self._cat_index.get(label)
        if index is None:
            index = len(self.categories)
            self.categories.append(label)
            self._cat_index[label] = index
            self.doc_counts = np.append(self.doc_counts, 0)
            self.token_counts = np.append(self.token_counts, 0)
            if index >= self._counts.shape[1]:
                # np.zeros maps untouched pages lazily: only the rows in use are copied
                grown = np.zeros((self._counts.shape[0], 2 * self._counts.shape[1]), np.int64)
                grown[: self.n_rows, : self._counts.shape[1]] = self._counts[: self.n_rows]
                self._counts = grown
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
        doc = 0
        while doc < batch.n_docs:
            doc, self.n_rows, n_new = _kernels.accumulate(
                grams, batch.ids, batch.bounds, cats, doc, self._keys, self._slots,
                self._row_key, self._row_prefix, self._row_last, self._counts,
                self.n_rows, new_tok,
            )
            self._learn_words(batch, new_tok[:n_new])
            if doc < batch.n_docs:
                need = int(batch.bounds[doc + 1] - batch.bounds[doc]) * self.settings.max_order
                self._reserve(self.n_rows + need)
        np.add.at(self.doc_counts, cats, 1)
        np.add.at(self.token_counts, cats, batch.doc_lengths())

    def _learn_words(self, batch: TokenBatch, tokens: np.ndarray) -> None:
        """Record the text of tokens whose ids are new to the lexicon."""
        raw = batch.buf.tobytes()
        ids = batch.ids[tokens].tolist()
        starts = batch.starts[tokens].tolist()
        ends = (batch.starts[tokens] + batch.lengths[tokens]).tolist()
        for key, a, b in zip(ids, starts, ends):
            self.lexicon[key] = raw[a:b].decode("utf-8", "replace")

    def merge(self, other: "Accumulator") -> "Accumulator":
        """Add ``other``'s counts into this accumulator (in place) and return it."""
        if other.settings != self.settings:
            raise ValueError(f"cannot merge accumulators with settings {self.settings} and {other.settings}")
        cats = np.array([self.category_index(c) for c in other.categories], np.int64)
        self._reserve(self.n_rows + other.n_rows)
        self.n_rows = _kernels.merge_rows(
            other.row_key, other.row_prefix, other.row_last, other.counts, cats,
            self._keys, self._slots, self._row_key, self._row_prefix, self._row_last,
            self._counts, self.n_rows,
        )
        np.add.at(self.doc_counts, cats, other.doc_counts)
        np.add.at(self.token_counts, cats, other.token_counts)
        for key, text in other.lexicon.items():
            self.lexicon.setdefault(key, text)
        return self

    def _reserve(self, rows: int) -> None:
        """Grow the table and row arrays so that ``rows`` rows fit at most half full."""
        if rows > len(self._row_key):
            size = max(rows, 2 * len(self._row_key))
            for name in ("_row_key", "_row_prefix", "_row_last"):
                old = getattr(self, name)
                new = np.zeros(size, np.uint64)
                new[: self.n_rows] = old[: self.n_rows]
                setattr(self, name, new)
            counts = np.zeros((size, self._counts.shape[1]), np.int64)
            counts[: self.n_rows] = self._counts[: self.n_rows]
            self._counts = counts
        if 2 * rows > len(self._keys):
            cap = len(self._keys)
            while 2 * rows > cap:
                cap *= 2
            self._keys = np.zeros(cap, np.uint64)
            self._slots = np.zeros(cap, np.int64)
            _kernels.table_build(self._row_key, self.n_rows, self._keys, self._slots)

    # -- exchange ------------------------------------------------------------------------

    def to_arrays(self) -> dict:
        """The state as plain arrays and lists (what a snapshot stores).

        Counts are sparse: ``count_value[i]`` is the count of row ``count_row[i]`` in
        category ``count_category[i]``, for every non-zero count.
        """
        keys = np.fromiter(self.lexicon.keys(), np.uint64, len(self.lexicon))
        rows, cats = np.nonzero(self.counts)
        return {
            "settings": {"max_order": self.settings.max_order, "lowercase": self.settings.lowercase},
            "categories": list(self.categories),
            "doc_counts": self.doc_counts.copy(),
            "token_counts": self.token_counts.copy(),
            "row_key": self.row_key.copy(),
            "row_prefix": self.row_prefix.copy(),
            "row_last": self.row_last.copy(),
            "count_row": rows,
            "count_category": cats,
            "count_value": self.counts[rows, cats],
            "lexicon_keys": keys,
            "lexicon_text": list(self.lexicon.values()),
        }

    @classmethod
    def from_arrays(cls, state: dict) -> "Accumulator":
        """Rebuild an accumulator from :meth:`to_arrays` output (arrays may be read-only)."""
        acc = cls(Settings(**state["settings"]))
        for name in state["categories"]:
            acc.category_index(name)
        acc.doc_counts = np.array(state["doc_counts"], np.int64)
        acc.token_counts = np.array(state["token_counts"], np.int64)
        n = len(state["row_key"])
        acc._reserve(n)
        acc._row_key[:n] = state["row_key"]
        acc._row_prefix[:n] = state["row_prefix"]
        acc._row_last[:n] = state["row_last"]
        acc._counts[state["count_row"], state["count_category"]] = state["count_value"]
        acc.n_rows = n
        _kernels.table_build(acc._row_key, n, acc._keys, acc._slots)
        acc.lexicon = dict(zip(np.asarray(state["lexicon_keys"]).tolist(), state["lexicon_text"]))
        return acc

    def canonical(self) -> dict[int, dict[str, int]]:
        """Feature id -> {category: count} without zeros: equal for equal content."""
        out = {}
        counts = self.counts
        for r, key in enumerate(self.row_key.tolist()):
            out[key] = {c: int(v) for c, v in zip(self.categories, counts[r]) if v}
        return out

    def __repr__(self) -> str:
        return (
            f"Accumulator({self.n_categories} categories, {self.n_documents} documents, "
            f"{self.n_tokens} tokens, {self.n_rows} features)"
        )


def accumulate_all(pairs: Iterable[tuple[str, str]], settings: Settings | None = None,
                   batch_size: int = 1000) -> Accumulator:
    """Build an accumulator from ``(text, label)`` pairs, in batches."""
    acc = Accumulator(settings)
    texts, labels = [], []
    for text, label in pairs:
        texts.append(text)
        labels.append(label)
        if len(texts) >= batch_size:
            acc.partial_fit(texts, labels)
            texts, labels = [], []
    if texts:
        acc.partial_fit(texts, labels)
    return acc

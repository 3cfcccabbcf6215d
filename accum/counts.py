"""Counts as plain arrays, and the summary reports read: no tables, no Gram, no lexicon.

:class:`Counts` holds the non-zero counts of a snapshot (what an
:meth:`~accum.accumulator.Accumulator.to_arrays` state lists) for reports that need the
counts but not an accumulator; :class:`CountsSummary` the few numbers per category and
n-gram order that ``accum categories``, ``info`` and ``saturation`` need, small enough
for the catalog. Also here: the growth statistics' names and the page counts at which
the growth log has a row. Importing it does not import numba (the kernels load when
first needed), so reports that read a summary stay light.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .settings import Settings

#: Names of the per-order growth statistics, in kernel order.
GROWTH_FIELDS = ("distinct", "singletons", "doubletons", "at_least_k")


class CategoryTotals:
    """``n_categories``, ``n_documents`` and ``n_tokens`` of a class with ``categories``,
    ``doc_counts`` and ``token_counts`` (pages and tokens per category)."""

    @property
    def n_categories(self) -> int:
        return len(self.categories)

    @property
    def n_documents(self) -> int:
        return int(self.doc_counts.sum())

    @property
    def n_tokens(self) -> int:
        return int(self.token_counts.sum())


def checkpoints(limit: int) -> np.ndarray:
    """The page counts up to ``limit`` at which the growth log has a row (see
    :func:`accum._kernels.is_checkpoint`), int64[n]."""
    from ._kernels import CHECKPOINT_GROWTH

    out, s = [], 1
    while s <= limit:
        out.append(s)
        s = max(s + 1, int(s * CHECKPOINT_GROWTH))
    return np.array(out, np.int64)


def nonzero_counts(state: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Row, category, count and weight (int64 each) of every non-zero count of a
    :meth:`~accum.accumulator.Accumulator.to_arrays` state (a snapshot holds non-zero counts only)."""
    columns = [np.asarray(state[k]) for k in ("count_row", "count_category", "count_value", "count_weight")]
    kept = columns[2] != 0
    if not kept.all():
        columns = [c[kept] for c in columns]
    return tuple(c.astype(np.int64, copy=False) for c in columns)


def without_zero_counts(state: dict) -> dict:
    """A :meth:`~accum.accumulator.Accumulator.to_arrays` state (changed in place)
    without its zero counts, the rows left without any and their spellings (rows
    renumbered in order).

    Raises
    ------
    ValueError
        When a zero count has a non-zero weight (pages were not taken back exactly).
    """
    kept = np.asarray(state["count_value"]) != 0
    if not np.all(np.asarray(state["count_weight"])[~kept] == 0):
        raise ValueError("pairs left at zero count with a non-zero weight: pages were not taken back exactly")
    rows = np.zeros(len(state["row_info"]), bool)
    rows[np.asarray(state["count_row"])[kept]] = True
    new_row = np.cumsum(rows) - 1
    for key in ("count_row", "count_category", "count_value", "count_weight"):
        state[key] = np.asarray(state[key])[kept]
    state["count_row"] = new_row[state["count_row"]]
    state["row_info"] = np.asarray(state["row_info"])[rows]
    words = set(state["row_info"][state["row_info"][:, 3] == 1, 0].tolist())
    keys = np.asarray(state["lexicon_keys"]).tolist()
    state["lexicon_text"] = [t for k, t in zip(keys, state["lexicon_text"]) if k in words]
    state["lexicon_keys"] = np.array([k for k in keys if k in words], np.uint64)
    return state


@dataclass(frozen=True)
class Counts(CategoryTotals):
    """The counts of an :meth:`~accum.accumulator.Accumulator.to_arrays` state as plain arrays, without the
    accumulator's tables, Gram or lexicon: what reporting needs (categories, growth
    statistics), read in a fraction of the time and memory of a whole accumulator
    (20 Newsgroups: 0.3 s and 110 MB instead of 1.1 s and 450 MB). Same names and meanings as the
    accumulator's; nothing can be added to it.
    """

    settings: Settings
    categories: list
    doc_counts: np.ndarray
    token_counts: np.ndarray
    row_order: np.ndarray  # int64[n_rows]
    count_row: np.ndarray  # int64[n], one entry per non-zero (row, category) count, by row then category
    count_category: np.ndarray
    count_value: np.ndarray
    count_weight: np.ndarray

    @classmethod
    def from_arrays(cls, state: dict) -> "Counts":
        """The counts of a state (which needs no ``lexicon_*`` or ``gram_*`` entries)."""
        rows, cats, values, weights = nonzero_counts(state)
        return cls(Settings.from_dict(state["settings"]), list(state["categories"]),
                   np.asarray(state["doc_counts"], np.int64), np.asarray(state["token_counts"], np.int64),
                   np.asarray(state["row_info"])[:, 3].astype(np.int64), rows, cats, values, weights)

    def pairs(self, ordered: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """As :meth:`~accum.accumulator.Accumulator.pairs`: by row, then category, whatever ``ordered``, as
        :meth:`~accum.accumulator.Accumulator.to_arrays` lists them."""
        return self.count_row, self.count_category, self.count_value, self.count_weight

    def growth_stats(self) -> tuple[np.ndarray, np.ndarray]:
        """As :meth:`~accum.accumulator.Accumulator.growth_stats`, from the counts."""
        from ._kernels import count_stats

        max_order = self.settings.max_order
        cat_stats = np.zeros((self.n_categories, max_order, 4), np.int64)
        all_stats = np.zeros((max_order, 4), np.int64)
        row_total = np.zeros(len(self.row_order), np.int64)
        np.add.at(row_total, self.count_row, self.count_value)
        pairs = np.stack([(self.count_row << 32) | self.count_category, self.count_value], axis=1)  # P_KEY, P_COUNT
        count_stats(pairs, len(pairs), row_total, self.row_order, self.settings.prune_k, cat_stats, all_stats)
        return cat_stats, all_stats


@dataclass(frozen=True)
class CountsSummary(CategoryTotals):
    """What reports need of a snapshot's counts, small enough for the catalog (a few
    numbers per category and n-gram order): pages and tokens per category, the growth
    statistics, and the n-gram occurrences per category and order (for Good-Turing).
    ``accum categories``, ``info`` and ``saturation`` read it instead of the counts."""

    settings: Settings
    categories: list
    doc_counts: np.ndarray  # int64[n_categories]
    token_counts: np.ndarray  # int64[n_categories]
    cat_stats: np.ndarray  # int64[n_categories, max_order, 4] (GROWTH_FIELDS)
    all_stats: np.ndarray  # int64[max_order, 4]
    occurrences: np.ndarray  # int64[n_categories, max_order]

    @classmethod
    def of(cls, counts) -> "CountsSummary":
        """The summary of an :class:`~accum.accumulator.Accumulator` or :class:`Counts`."""
        cat_stats, all_stats = counts.growth_stats()
        rows, cats, values, _ = counts.pairs(ordered=False)
        max_order = counts.settings.max_order
        occurrences = np.zeros((counts.n_categories, max_order), np.int64)
        np.add.at(occurrences, (cats, counts.row_order[rows] - 1), values)
        return cls(counts.settings, list(counts.categories), np.asarray(counts.doc_counts, np.int64).copy(),
                   np.asarray(counts.token_counts, np.int64).copy(), cat_stats, all_stats, occurrences)

    def growth_stats(self) -> tuple[np.ndarray, np.ndarray]:
        return self.cat_stats, self.all_stats

    @property
    def features(self) -> np.ndarray:
        """Distinct features counted in each category (every order), int64[n_categories]."""
        return self.cat_stats[:, :, 0].sum(axis=1)

    def to_dict(self) -> dict:
        return {"settings": self.settings.to_dict(), "categories": list(self.categories),
                **{k: getattr(self, k).tolist() for k in ("doc_counts", "token_counts", "cat_stats", "all_stats",
                                                          "occurrences")}}

    @classmethod
    def from_dict(cls, value: dict) -> "CountsSummary":
        max_order = value["settings"]["max_order"]
        n = len(value["categories"])
        shapes = {"doc_counts": (n,), "token_counts": (n,), "cat_stats": (n, max_order, 4),
                  "all_stats": (max_order, 4), "occurrences": (n, max_order)}
        return cls(Settings.from_dict(value["settings"]), list(value["categories"]),
                   **{k: np.array(value[k], np.int64).reshape(shape) for k, shape in shapes.items()})

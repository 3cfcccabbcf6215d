"""Page vectors: each page's distinct features and their counts, kept beside the counts.

The accumulator's counts are sums over pages; a page vector is one term of those sums.
Keeping them (the store writes them as segments that are appended, never rewritten) is
what lets the store train discriminative models, cross-validate its choice of model on
its own pages, and forget a page exactly (subtract its vector from every sum).

A page's entries are its distinct features (64-bit feature ids, so a vector means the
same in any accumulator, shard or process) with their counts in the page, in the order
they first occur in the page: the order in which the counting kernel summed the page's
norm, so that the page's weights can be recomputed bit for bit (see
:func:`accum._kernels.accumulate`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np


@dataclass(frozen=True)
class PageVectors:
    """The sparse vectors of a sequence of pages (CSR-like).

    Attributes
    ----------
    bounds : int64[n_pages + 1]
        Page ``i`` holds entries ``bounds[i]`` to ``bounds[i + 1]``.
    fids : uint64[nnz]
        Feature ids (unigrams and n-grams, as the accumulator counts them).
    tfs : uint32[nnz]
        Occurrences of each feature in its page.
    labels : int32[n_pages]
        Each page's category, an index into ``categories``.
    n_tokens : int64[n_pages]
        Tokens of each page.
    categories : tuple of str
        Category names (``labels`` index them).
    """

    bounds: np.ndarray
    fids: np.ndarray
    tfs: np.ndarray
    labels: np.ndarray
    n_tokens: np.ndarray
    categories: tuple = field(default=())

    def __post_init__(self):
        n = len(self.labels)
        if len(self.bounds) != n + 1 or len(self.n_tokens) != n:
            raise ValueError(f"{n} labels need {n + 1} bounds and {n} token counts, got "
                             f"{len(self.bounds)} and {len(self.n_tokens)}")
        if len(self.fids) != len(self.tfs) or (n and self.bounds[-1] != len(self.fids)):
            raise ValueError("bounds, fids and tfs of page vectors disagree")
        object.__setattr__(self, "categories", tuple(self.categories))

    @property
    def n_pages(self) -> int:
        return len(self.labels)

    @property
    def nnz(self) -> int:
        """Entries over all pages."""
        return len(self.fids)

    @property
    def entry_bytes(self) -> int:
        """Bytes of the entries' feature ids and counts (what an ingest bounds before it
        spills them: :data:`accum.ingest.SPILL_BYTES`)."""
        return self.fids.nbytes + self.tfs.nbytes

    @property
    def label_names(self) -> list[str]:
        """The category name of each page."""
        return [self.categories[i] for i in self.labels.tolist()]

    def page(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Feature ids and counts of page ``i``."""
        a, b = self.bounds[i], self.bounds[i + 1]
        return self.fids[a:b], self.tfs[a:b]

    @classmethod
    def empty(cls, categories: Sequence[str] = ()) -> "PageVectors":
        return cls(np.zeros(1, np.int64), np.zeros(0, np.uint64), np.zeros(0, np.uint32),
                   np.zeros(0, np.int32), np.zeros(0, np.int64), tuple(categories))

    @classmethod
    def concat(cls, parts: Sequence["PageVectors"], categories: Sequence[str] | None = None) -> "PageVectors":
        """The pages of ``parts`` one after the other, labelled against ``categories``
        (default: the first part's, extended by the names of later parts in order)."""
        names = list(categories) if categories is not None else []
        index = {name: i for i, name in enumerate(names)}
        if categories is None:
            for part in parts:
                for name in part.categories:
                    index.setdefault(name, len(index))
            names = list(index)
        if not parts:
            return cls.empty(names)
        labels = []
        for part in parts:
            if part.categories and tuple(part.categories) != tuple(names[: len(part.categories)]):
                codes = np.array([index[name] for name in part.categories], np.int32)
                labels.append(codes[part.labels] if len(part.labels) else part.labels)
            else:
                labels.append(part.labels)
        offsets = np.cumsum([0] + [p.nnz for p in parts[:-1]])
        bounds = np.concatenate([np.zeros(1, np.int64)] + [p.bounds[1:] + o for p, o in zip(parts, offsets)])
        return cls(bounds, np.concatenate([p.fids for p in parts]), np.concatenate([p.tfs for p in parts]),
                   np.concatenate(labels).astype(np.int32), np.concatenate([p.n_tokens for p in parts]), names)

    def subset(self, pages: np.ndarray) -> "PageVectors":
        """The pages at indices ``pages`` (in that order), as new arrays."""
        pages = np.asarray(pages, np.int64)
        starts, ends = self.bounds[pages], self.bounds[pages + 1]
        lengths = ends - starts
        bounds = np.zeros(len(pages) + 1, np.int64)
        np.cumsum(lengths, out=bounds[1:])
        take = np.repeat(starts - bounds[:-1], lengths) + np.arange(bounds[-1])
        return PageVectors(bounds, self.fids[take], self.tfs[take], self.labels[pages], self.n_tokens[pages],
                           self.categories)

"""How text becomes features: the settings fixed for the life of a store."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Settings:
    """How text becomes features; fixed for the life of a store.

    Attributes
    ----------
    max_order : int
        Highest n-gram order counted: 1 = unigrams, 2 = unigrams and bigrams (default).
    lowercase : bool
        Fold case before tokenising.
    prune_k : int
        The growth log counts features seen at least this many times (a pruned
        vocabulary), besides those seen at least twice.
    markov_order : int
        Order of the n-gram generator (:mod:`accum.markov`) built beside the classifier
        from the same pages, keeping case and punctuation; 0 builds none.
    gram_bits : int
        The accumulator also keeps the Gram ``sum h hᵀ`` of the pages' unigram weights
        hashed into ``2 ** gram_bits`` signed buckets (12: 4,096 buckets, a 64 MiB
        triangle), which only the "ridge-complement" count model reads; 0 (the default)
        keeps none: counting is then about a third faster, and the store's classifier is
        chosen among the models of :mod:`accum.selection`, which do not read it.
    """

    max_order: int = 2
    lowercase: bool = True
    prune_k: int = 5
    markov_order: int = 0
    gram_bits: int = 0

    def __post_init__(self):
        if not isinstance(self.max_order, int) or not 1 <= self.max_order <= 8:
            raise ValueError(f"max_order must be an integer from 1 to 8, got {self.max_order!r}")
        if not isinstance(self.prune_k, int) or not 3 <= self.prune_k <= 255:
            raise ValueError(f"prune_k must be an integer from 3 to 255, got {self.prune_k!r}")
        if not isinstance(self.markov_order, int) or not 0 <= self.markov_order <= 32:
            raise ValueError(f"markov_order must be an integer from 0 (none) to 32, got {self.markov_order!r}")
        if not isinstance(self.gram_bits, int) or not 0 <= self.gram_bits <= 14:
            raise ValueError(f"gram_bits must be an integer from 0 (no Gram) to 14, got {self.gram_bits!r}")

    @property
    def n_gram_buckets(self) -> int:
        """Buckets of the Gram (0 when there is none)."""
        return 1 << self.gram_bits if self.gram_bits else 0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "Settings":
        """Settings as stored by :meth:`to_dict`; those of stores made before the Gram
        existed have no ``gram_bits`` and keep none."""
        return cls(**{"gram_bits": 0, **values})

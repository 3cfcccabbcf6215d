"""Generation tokens: words that keep their case and punctuation marks that keep their spacing."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

import numpy as np

from .. import _markov_kernels as K
from ..tokens import TokenBatch, encode

#: Words after which a terminal mark does not end a sentence (a hook: override
#: :attr:`MarkovAccumulator.abbreviations <accum.markov.MarkovAccumulator.abbreviations>`).
ABBREVIATIONS = frozenset(
    "Mr Mrs Ms Dr St Jr Sr Mt Prof Rev Hon Gen Col Capt Lt Sgt Messrs Mme Mlle vs viz cf "
    "Co Inc Ltd Jan Feb Apr Jun Jul Aug Sep Sept Oct Nov Dec".split()
)


@dataclass(frozen=True)
class MarkovTokens(TokenBatch):
    """Generation tokens of a batch of documents: a :class:`~accum.tokens.TokenBatch`
    whose ids are the generator's (see :mod:`accum._markov_kernels`), plus

    Attributes
    ----------
    info : uint8[n_tokens]
        Kind and spacing of each token: ``kind | space_before << 3 | space_after << 4``.
    """

    info: np.ndarray


def tokenize(texts: Sequence[str]) -> MarkovTokens:
    """Split texts into generation tokens: words (case kept) and punctuation marks.

    Examples
    --------
    >>> t = tokenize(['He said, "Don\\'t." The Lord\\'s day...'])
    >>> t.doc_tokens(0)
    ['He', 'said', ',', '"', "Don't", '.', '"', 'The', "Lord's", 'day', '.', '.', '.']
    >>> bool(t.ids[3] == t.ids[6])  # an opening and a closing quote differ
    False
    """
    if isinstance(texts, str):
        raise TypeError("tokenize() takes a sequence of texts, not one str; wrap it in a list")
    buf, bounds = encode(texts, lowercase=False)
    ids, starts, lengths, info, tok_bounds = K.tokenize(buf, bounds)
    return MarkovTokens(buf, ids, starts, lengths, tok_bounds, info)


def token_ids(words: Sequence[str]) -> np.ndarray:
    """Ids of words (as :func:`tokenize` hashes them), uint64[len(words)]."""
    if not words:
        return np.zeros(0, np.uint64)
    return tokenize([" ".join(words)]).ids


@lru_cache(maxsize=16)
def _abbreviation_ids(words: frozenset) -> np.ndarray:
    return np.unique(token_ids(sorted(words)))


def abbreviation_ids(words) -> np.ndarray:
    """Sorted, distinct ids of a set of abbreviations (cached per set of words: do not
    modify the array)."""
    return _abbreviation_ids(frozenset(words))


def dense_index(sorted_ids: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Position of each of ``ids`` in the sorted, distinct ``sorted_ids`` (-1 when absent),
    int64[len(ids)]."""
    ids = np.asarray(ids, np.uint64)
    if len(sorted_ids) == 0:
        return np.full(len(ids), -1, np.int64)
    pos = np.minimum(np.searchsorted(sorted_ids, ids), len(sorted_ids) - 1)
    return np.where(sorted_ids[pos] == ids, pos, -1).astype(np.int64)

"""Text to token ids: the public face of the tokenising kernel.

A token is a maximal run of letters and digits (any script); punctuation, symbols,
spaces and invalid UTF-8 split tokens. Classification folds case (``str.lower``) first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from . import _kernels


@dataclass(frozen=True)
class TokenBatch:
    """Tokens of a batch of documents.

    Attributes
    ----------
    buf : uint8[n_bytes]
        The documents' UTF-8 bytes, concatenated.
    ids : uint64[n_tokens]
        Token ids (64-bit hashes of the token bytes).
    starts, lengths : int64[n_tokens], int32[n_tokens]
        Where each token's bytes are in ``buf``.
    bounds : int64[n_docs + 1]
        Document d owns tokens ``bounds[d]:bounds[d + 1]``.
    """

    buf: np.ndarray
    ids: np.ndarray
    starts: np.ndarray
    lengths: np.ndarray
    bounds: np.ndarray

    @property
    def n_docs(self) -> int:
        return len(self.bounds) - 1

    def token_text(self, i: int) -> str:
        """The text of token ``i``."""
        a = int(self.starts[i])
        return bytes(self.buf[a : a + int(self.lengths[i])]).decode("utf-8", "replace")

    def doc_tokens(self, d: int) -> list[str]:
        """The token strings of document ``d``."""
        return [self.token_text(i) for i in range(self.bounds[d], self.bounds[d + 1])]

    def doc_lengths(self) -> np.ndarray:
        """Tokens per document, int64[n_docs]."""
        return np.diff(self.bounds)

    def ngrams(self, max_order: int) -> np.ndarray:
        """Feature ids of the n-grams ending at each token, uint64[n_tokens, max_order]."""
        return _kernels.ngram_ids(self.ids, self.bounds, max_order)


def encode(texts: Sequence[str], lowercase: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """The texts' UTF-8 bytes, concatenated (uint8[n_bytes]; case folded with
    ``lowercase``), and where each starts (int64[n_texts + 1]), as the kernels read them."""
    if isinstance(texts, str):
        raise TypeError("expected a sequence of texts, not one str; wrap it in a list")
    encoded = [(t.lower() if lowercase else t).encode("utf-8", "surrogatepass") for t in texts]
    bounds = np.zeros(len(encoded) + 1, np.int64)
    np.cumsum([len(e) for e in encoded], out=bounds[1:])
    return np.frombuffer(b"".join(encoded), np.uint8), bounds


def tokenize(texts: Sequence[str], lowercase: bool = True) -> TokenBatch:
    """Tokenise documents into a :class:`TokenBatch`.

    Examples
    --------
    >>> batch = tokenize(["Chinese Beijing, Chinese!"])
    >>> [batch.token_text(i) for i in range(len(batch.ids))]
    ['chinese', 'beijing', 'chinese']
    >>> bool(batch.ids[0] == batch.ids[2])
    True
    """
    buf, bounds = encode(texts, lowercase)
    ids, starts, lengths, tok_bounds = _kernels.tokenize(buf, bounds)
    return TokenBatch(buf, ids, starts, lengths, tok_bounds)

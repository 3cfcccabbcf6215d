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

    def spellings(self, tokens: np.ndarray, max_bytes: int) -> list[str]:
        """The text of each of ``tokens`` (indices), a longer one cut to ``max_bytes``
        UTF-8 bytes on a character boundary and ending in "…". Decoded at once: a token
        holds no space, so they are joined with spaces and split again."""
        lengths = self.lengths
        long = np.flatnonzero(lengths[tokens] > max_bytes)
        if len(long):  # rare: only these are looked at one by one
            lengths = lengths.copy()
            for t in tokens[long].tolist():
                lengths[t] = _cut_bytes(self.buf, int(self.starts[t]), max_bytes)
        joined = _kernels.gather_tokens(self.buf, self.starts, lengths, tokens, ord(" "))
        words = joined.tobytes().decode("utf-8", "replace").split(" ")
        for k in long.tolist():
            words[k] += "\u2026"
        return words


def _cut_bytes(buf: np.ndarray, start: int, max_bytes: int) -> int:
    """Bytes of the first ``max_bytes`` at ``buf[start]`` less those of a character the cut
    would split."""
    end = start + max_bytes
    while end > start and buf[end] & 0xC0 == 0x80:  # a UTF-8 continuation byte
        end -= 1
    return end - start


def encode(texts: Sequence[str], lowercase: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """The texts' UTF-8 bytes, concatenated (uint8[n_bytes]; case folded with
    ``lowercase``), and where each starts (int64[n_texts + 1]), as the kernels read them.

    Lone surrogates are kept (``surrogatepass``; see :mod:`accum._primitives`). Runs of
    ASCII texts are joined as str and encoded at once; only the other texts are encoded
    one by one, to learn their byte lengths.
    """
    if isinstance(texts, str):
        raise TypeError("expected a sequence of texts, not one str; wrap it in a list")
    texts = [t.lower() for t in texts] if lowercase else texts if isinstance(texts, list) else list(texts)
    n = len(texts)
    lengths = np.fromiter(map(len, texts), np.int64, n)
    wide = np.flatnonzero(~np.fromiter(map(str.isascii, texts), bool, n)).tolist()
    pieces = []
    start = 0
    for i in wide:
        if i > start:
            pieces.append("".join(texts[start:i]).encode("ascii"))
        pieces.append(texts[i].encode("utf-8", "surrogatepass"))
        lengths[i] = len(pieces[-1])
        start = i + 1
    if start < n:
        pieces.append("".join(texts[start:]).encode("ascii"))
    bounds = np.zeros(n + 1, np.int64)
    np.cumsum(lengths, out=bounds[1:])
    return np.frombuffer(pieces[0] if len(pieces) == 1 else b"".join(pieces), np.uint8), bounds


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

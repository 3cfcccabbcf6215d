"""Generator kernels: split text into words and punctuation marks, hash them, find sentences.

Private (see :mod:`accum._markov_kernels` for the conventions: ids, the info byte).
Hashing, UTF-8 decoding and the word-character rule are :mod:`accum._primitives`', so a
word's id equals the classifier's id of the same (case-kept) word.
"""

import numpy as np
from numba import njit

from .._primitives import (BYTE_CLASS, FNV_OFFSET, FNV_PRIME, SALT, decode_utf8, finish, is_word_char, mix64,
                           token_arrays)
from .._primitives import ngram_id as _ngram_id
from ..config import NJIT_OPTIONS

PUNCT_SALT = np.uint64(0xD6E8FEB86659FD93)
OPENER_SALT = np.uint64(0xA0761D6478BD642F)

ROOT_ID = np.uint64(1)
BOS_ID = np.uint64(2)
EOS_ID = np.uint64(3)
UNK_ID = np.uint64(4)
MIN_ID = np.uint64(16)

K_LOWER = 0
K_WORD = 1
K_TERMINAL = 2
K_CLOSER = 3
K_PUNCT = 4

SPACE_BEFORE = 8  # info bits: whitespace stood before the token
SPACE_AFTER = 16  # and after it

TOKEN_BYTES = 4  # tokenize's first guess of the bytes per token (English text has about 4.5)

# -- hashing -------------------------------------------------------------------------------


@njit(**NJIT_OPTIONS)
def ngram_id(prefix_id, token_id, order):
    """Id of an n-gram from its prefix's id and its last token (``order == 1``: the token),
    clear of the reserved ids below ``MIN_ID``."""
    return _ngram_id(prefix_id, token_id, order, MIN_ID)


@njit(**NJIT_OPTIONS)
def opener_id(prev_id, token_id):
    """Id of a sentence-opener row (the token before the sentence, its first token)."""
    return finish(mix64((prev_id ^ OPENER_SALT) + SALT) ^ token_id, MIN_ID)


# -- tokenising ----------------------------------------------------------------------------


@njit(**NJIT_OPTIONS)
def _is_space(cp):
    """Whitespace, controls, invisible format characters and invalid bytes (``INVALID``)."""
    if cp <= 32:
        return True
    if cp < 0x7F:
        return False
    if cp == 0x7F or (cp >= 0x80 and cp <= 0xA0):
        return True
    if cp == 0x1680 or (cp >= 0x2000 and cp <= 0x200F) or (cp >= 0x2028 and cp <= 0x202F):
        return True
    return cp == 0x205F or cp == 0x3000 or cp == 0xFEFF


@njit(**NJIT_OPTIONS)
def _is_lower(cp):
    """Lowercase initial letters (ASCII, Latin-1, Greek, Cyrillic)."""
    if cp >= 97 and cp <= 122:
        return True
    if cp < 0xDF:
        return False
    return (cp <= 0xFF and cp != 0xF7) or (cp >= 0x3B1 and cp <= 0x3C9) or (cp >= 0x430 and cp <= 0x45F)


@njit(**NJIT_OPTIONS)
def _is_apostrophe(cp):
    return cp == 39 or cp == 0x2019


@njit(**NJIT_OPTIONS)
def _punct_kind(cp, sb):
    """Kind of a punctuation mark given whether whitespace stands before it."""
    if cp == 46 or cp == 33 or cp == 63 or cp == 0x2026 or cp == 0x203D or cp == 0x3002 \
            or cp == 0xFF01 or cp == 0xFF1F or cp == 0xFF0E:
        return K_TERMINAL
    if cp == 41 or cp == 93 or cp == 125 or cp == 0xBB or cp == 0x203A or cp == 0x201D \
            or cp == 0x300D or cp == 0x300F or cp == 0xFF09:
        return K_CLOSER
    if (cp == 34 or cp == 39 or cp == 0x2019) and not sb:
        return K_CLOSER
    return K_PUNCT


@njit(**NJIT_OPTIONS)
def _grown(a, n, cap):
    """A copy of ``a[:n]`` with room for ``cap`` items."""
    out = np.empty(cap, a.dtype)
    out[:n] = a[:n]
    return out


@njit(**NJIT_OPTIONS)
def tokenize(buf, doc_bounds):
    """Split UTF-8 documents into words and punctuation marks and hash each token.

    A word is a maximal run of letters and digits; an apostrophe (``'`` or U+2019)
    between two letters stays inside it (``Lord's``, ``don't``). Every other visible
    character is a token of its own. Whitespace, controls and invalid bytes separate.

    Takes the documents and returns ``ids``, ``starts``, ``lengths`` and ``tok_bounds``
    as :func:`accum._kernels.features.tokenize` does, with ``info`` (uint8[n_tokens],
    ``kind | sb << 3 | sa << 4``, see the module notes) before ``tok_bounds``.
    """
    n_docs = doc_bounds.shape[0] - 1
    # room for a token every TOKEN_BYTES bytes, grown when a document could overflow it
    # (it has at most a token per byte): fresh memory is slow to touch, and copying less helps
    cap = buf.shape[0] // TOKEN_BYTES + 16
    ids, starts, lengths, tok_bounds = token_arrays(cap, n_docs)
    info = np.empty(cap, np.uint8)
    n = 0
    for d in range(n_docs):
        tok_bounds[d] = n
        end = doc_bounds[d + 1]
        if n + end - doc_bounds[d] > cap:
            cap = max(2 * cap, n + end - doc_bounds[d])
            ids = _grown(ids, n, cap)
            starts = _grown(starts, n, cap)
            lengths = _grown(lengths, n, cap)
            info = _grown(info, n, cap)
        i = doc_bounds[d]
        prev_space = True
        while i < end:
            if buf[i] <= 32:  # ASCII whitespace and controls
                prev_space = True
                i += 1
                continue
            cp, width = decode_utf8(buf, i, end)
            if _is_space(cp):
                prev_space = True
                i += width
                continue
            if is_word_char(cp):
                start = i
                h = FNV_OFFSET
                while i < end:
                    b0 = buf[i]
                    if b0 < 128 and b0 != 39:  # ASCII: a letter or digit, or the word's end
                        if BYTE_CLASS[b0] != 1:
                            break
                        h = (h ^ np.uint64(b0)) * FNV_PRIME
                        i += 1
                        continue
                    cp2, w2 = decode_utf8(buf, i, end)
                    if is_word_char(cp2):
                        pass
                    elif _is_apostrophe(cp2) and i + w2 < end:
                        cp3, w3 = decode_utf8(buf, i + w2, end)
                        if not is_word_char(cp3):
                            break
                    else:
                        break
                    for k in range(w2):
                        h = (h ^ np.uint64(buf[i + k])) * FNV_PRIME
                    i += w2
                ids[n] = finish(h, MIN_ID)
                starts[n] = start
                lengths[n] = i - start
                info[n] = (K_LOWER if _is_lower(cp) else K_WORD) | 8 | 16
                n += 1
                prev_space = False
                continue
            # one punctuation mark
            h = FNV_OFFSET
            for k in range(width):
                h = (h ^ np.uint64(buf[i + k])) * FNV_PRIME
            sb = prev_space
            sa = True
            if i + width < end:
                cp2, w2 = decode_utf8(buf, i + width, end)
                sa = _is_space(cp2)
            flags = (1 if sb else 0) | (2 if sa else 0)
            ids[n] = finish(h ^ (PUNCT_SALT * np.uint64(flags + 1)), MIN_ID)
            starts[n] = i
            lengths[n] = width
            info[n] = _punct_kind(cp, sb) | (flags << 3)
            n += 1
            prev_space = False
            i += width
    tok_bounds[n_docs] = n
    return ids[:n], starts[:n], lengths[:n], info[:n], tok_bounds


@njit(**NJIT_OPTIONS)
def _lower_bound(values, lo, hi, x):
    """The first ``i`` in ``lo:hi`` with ``values[i] >= x`` (``values[lo:hi]`` sorted), or ``hi``."""
    while lo < hi:
        mid = (lo + hi) >> 1
        if values[mid] < x:
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(**NJIT_OPTIONS)
def _in_sorted(values, x):
    """True when ``x`` is in the sorted array ``values``."""
    i = _lower_bound(values, 0, values.shape[0], x)
    return i < values.shape[0] and values[i] == x


@njit(**NJIT_OPTIONS)
def _starts_sentence(ids, info, a, t, abbrev):
    """True when token ``t`` of the document starting at ``a`` begins a sentence.

    The first token of a document does. Otherwise token ``t`` must not be a lowercase
    word, terminal or closer; before it come one or more terminals, then any closers,
    then whitespace; and the word before the terminals is not an abbreviation.
    """
    if t == a:
        return True
    kind = info[t] & 7
    if kind == K_LOWER or kind == K_TERMINAL or kind == K_CLOSER:
        return False
    if not (info[t - 1] & 16):
        return False
    j = t - 1
    while j >= a and (info[j] & 7) == K_CLOSER:
        j -= 1
    if j < a or (info[j] & 7) != K_TERMINAL:
        return False
    while j >= a and (info[j] & 7) == K_TERMINAL:
        j -= 1
    if j >= a and _in_sorted(abbrev, ids[j]):
        return False
    return True


@njit(**NJIT_OPTIONS)
def sentence_starts(ids, info, tok_bounds, abbrev):
    """Whether each token begins a sentence, bool[n_tokens] (see :func:`_starts_sentence`)."""
    out = np.zeros(ids.shape[0], np.bool_)
    for d in range(tok_bounds.shape[0] - 1):
        a = tok_bounds[d]
        for t in range(a, tok_bounds[d + 1]):
            out[t] = _starts_sentence(ids, info, a, t, abbrev)
    return out

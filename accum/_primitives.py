"""numba primitives every kernel file shares: hashing, UTF-8 decoding, the word-character rule.

Private, like every kernel module. One home for each, so that the classifier
(:mod:`accum._kernels`) and the generator (:mod:`accum._markov_kernels`) hash the same
bytes to the same ids and split the same bytes into the same words. A kernel file that
calls these is compiled with them; :mod:`accum.config` clears a kernel file's numba
cache when any kernel source it imports changes, so sharing is safe.

Hashing
    Token ids are FNV-1a of the token's UTF-8 bytes, then murmur3's 64-bit finaliser
    (:func:`mix64`). An n-gram's id mixes its prefix's id, a per-order salt and its
    last token (:func:`ngram_id`). Each product reserves a few small ids (the
    classifier 0 for "empty", the generator 1-15 for the start, end and unknown
    tokens): :func:`finish` moves a hash below the caller's ``floor`` above it, the
    only difference between their ids (it touches 16 hashes in 2**64).
UTF-8
    One rule for the whole product, Unicode's (Table 3-7, as Python's decoder) with
    surrogates allowed: lead bytes C2-DF take one continuation byte, E0-EF two, F0-F4
    three; the second byte after E0 is A0-BF (no overlong forms), after F0 90-BF, after
    F4 80-8F (nothing above U+10FFFF). 80-C1 and F5-FF never start a character. Encoded
    surrogates (ED A0-BF ..) decode, because the engine encodes text with
    ``surrogatepass`` (a lone surrogate from a JSON ``"\\udc80"`` stays one character
    and round-trips). A sequence decodes exactly when ``bytes.decode("utf-8",
    "surrogatepass")`` decodes it; anything else is one invalid byte (:data:`INVALID`),
    which separates tokens.
Words
    A word character is a letter or digit of any script (:func:`is_word_char`); the
    tokenisers read ASCII through :data:`BYTE_CLASS` and decode only other bytes.
"""

import numpy as np
from numba import njit

from .config import NJIT_OPTIONS

FNV_OFFSET = np.uint64(0xCBF29CE484222325)
FNV_PRIME = np.uint64(0x100000001B3)
MIX_1 = np.uint64(0xFF51AFD7ED558CCD)
MIX_2 = np.uint64(0xC4CEB9FE1A85EC53)
SALT = np.uint64(0x9E3779B97F4A7C15)  # 2**64 / golden ratio; also SplitMix64's increment
S32 = np.uint64(32)
S33 = np.uint64(33)
LOW32 = np.uint64(0xFFFFFFFF)
ZERO = np.uint64(0)
ONE = np.uint64(1)

#: Code point :func:`decode_utf8` returns for a byte that does not start a valid sequence.
INVALID = -1

#: Class of each byte: 0 an ASCII separator, 1 an ASCII letter or digit (part of a word),
#: 2 not ASCII (decode it, then :func:`is_word_char` decides).
BYTE_CLASS = np.array([1 if (48 <= b <= 57 or 65 <= b <= 90 or 97 <= b <= 122) else 0 if b < 128 else 2
                       for b in range(256)], np.uint8)


@njit(**NJIT_OPTIONS)
def mix64(h):
    """murmur3's 64-bit finaliser: every input bit affects every output bit."""
    h ^= h >> S33
    h *= MIX_1
    h ^= h >> S33
    h *= MIX_2
    h ^= h >> S33
    return h


@njit(**NJIT_OPTIONS)
def finish(h, floor):
    """The final mix of a hash, moved up by ``floor`` when it falls below it (the ids
    below ``floor`` are reserved by the caller)."""
    h = mix64(h)
    if h < floor:
        h += floor
    return h


@njit(**NJIT_OPTIONS)
def ngram_id(prefix_id, token_id, order, floor):
    """Id of an n-gram from the id of its first n-1 tokens and its last token, clear of
    the ids below ``floor`` (``order == 1``: the token's id, the prefix ignored)."""
    if order == 1:
        return token_id
    return finish(mix64((prefix_id ^ (SALT * np.uint64(order))) + SALT) ^ token_id, floor)


@njit(**NJIT_OPTIONS)
def decode_utf8(buf, i, end):
    """Code point and byte length of the UTF-8 sequence at ``buf[i]`` (``buf[i:end]``
    holds the text): ``(INVALID, 1)`` when no valid sequence starts there (module notes)."""
    b = np.int64(buf[i])
    if b < 0x80:
        return b, 1
    if b < 0xC2 or b > 0xF4:
        return np.int64(INVALID), 1
    lo = 0x80
    hi = 0xBF
    if b < 0xE0:
        n = 2
        cp = b & 0x1F
    elif b < 0xF0:
        n = 3
        cp = b & 0x0F
        if b == 0xE0:
            lo = 0xA0
    else:
        n = 4
        cp = b & 0x07
        if b == 0xF0:
            lo = 0x90
        elif b == 0xF4:
            hi = 0x8F
    if i + n > end:
        return np.int64(INVALID), 1
    c = np.int64(buf[i + 1])
    if c < lo or c > hi:
        return np.int64(INVALID), 1
    cp = (cp << 6) | (c & 0x3F)
    for k in range(2, n):
        c = np.int64(buf[i + k])
        if c & 0xC0 != 0x80:
            return np.int64(INVALID), 1
        cp = (cp << 6) | (c & 0x3F)
    return cp, n


@njit(**NJIT_OPTIONS)
def is_word_char(cp):
    """True for letters and digits of any script (what a word is made of); False for
    punctuation, spaces, symbols, controls, emoji and :data:`INVALID`."""
    if cp < 128:
        return (cp >= 48 and cp <= 57) or (cp >= 65 and cp <= 90) or (cp >= 97 and cp <= 122)
    if cp <= 0xBF or cp == 0xD7 or cp == 0xF7:  # C1 controls, Latin-1 punctuation, × ÷
        return False
    if cp >= 0x2000 and cp <= 0x2BFF:  # general punctuation, symbols, arrows, shapes
        return False
    if (cp >= 0x3000 and cp <= 0x303F) or (cp >= 0xFE30 and cp <= 0xFE4F) or cp == 0xFEFF:
        return False
    if (cp >= 0xFF00 and cp <= 0xFF0F) or (cp >= 0xFF1A and cp <= 0xFF20) or (cp >= 0xFFF0 and cp <= 0xFFFF):
        return False
    if cp >= 0x1F000 and cp <= 0x1FAFF:  # emoji and pictographs
        return False
    return True


@njit(**NJIT_OPTIONS)
def token_arrays(cap, n_docs):
    """The arrays a tokenizer fills, for up to ``cap`` tokens of ``n_docs`` documents:
    ``ids`` (uint64), ``starts`` (int64), ``lengths`` (int32) and ``tok_bounds``
    (int64[n_docs + 1]); document d's tokens are ``[tok_bounds[d], tok_bounds[d + 1])``."""
    return (np.empty(cap, np.uint64), np.empty(cap, np.int64), np.empty(cap, np.int32),
            np.empty(n_docs + 1, np.int64))

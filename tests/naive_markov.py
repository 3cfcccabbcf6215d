"""Pure-Python oracles for the n-gram generator: slow, obvious, written from the spec.

Tokeniser, counts (n-grams and sentence openers, per category), Kneser-Ney continuation
counts, and the probabilities of the Dirichlet back-off, interpolated Kneser-Ney and
plain (MLE) models, computed by their textbook recursions over dicts.
"""

from __future__ import annotations

import math
from collections import defaultdict

from naive import M64, SALT, mix64  # word ids are the classifier's: one hash oracle serves both

PUNCT_SALT = 0xD6E8FEB86659FD93
OPENER_SALT = 0xA0761D6478BD642F
ROOT, BOS, EOS = 1, 2, 3
K_LOWER, K_WORD, K_TERMINAL, K_CLOSER, K_PUNCT = range(5)


def finish(h: int) -> int:
    h = mix64(h)
    return h + 16 if h < 16 else h


def fnv(data: bytes) -> int:
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & M64
    return h


def ngram_id(prefix: int, token: int, order: int) -> int:
    if order == 1:
        return token
    return finish(mix64(((prefix ^ ((SALT * order) & M64)) + SALT) & M64) ^ token)


def opener_id(prev: int, token: int) -> int:
    return finish(mix64(((prev ^ OPENER_SALT) + SALT) & M64) ^ token)


# -- tokeniser --------------------------------------------------------------------------


def is_space(ch: str) -> bool:
    cp = ord(ch)
    return (cp <= 32 or 0x7F <= cp <= 0xA0 or cp == 0x1680 or 0x2000 <= cp <= 0x200F
            or 0x2028 <= cp <= 0x202F or cp in (0x205F, 0x3000, 0xFEFF))


def is_word_char(ch: str) -> bool:
    """The classifier's definition: not punctuation, space, symbol or control."""
    cp = ord(ch)
    if cp < 128:
        return ch.isascii() and ch.isalnum()
    return not (
        cp <= 0xBF or cp in (0xD7, 0xF7, 0xFEFF)
        or 0x2000 <= cp <= 0x2BFF or 0x3000 <= cp <= 0x303F or 0xFE30 <= cp <= 0xFE4F
        or 0xFF00 <= cp <= 0xFF0F or 0xFF1A <= cp <= 0xFF20 or 0xFFF0 <= cp <= 0xFFFF
        or 0x1F000 <= cp <= 0x1FAFF
    )


def is_lower(ch: str) -> bool:
    cp = ord(ch)
    return 97 <= cp <= 122 or (0xDF <= cp <= 0xFF and cp != 0xF7) or 0x3B1 <= cp <= 0x3C9 \
        or 0x430 <= cp <= 0x45F


def punct_kind(ch: str, space_before: bool) -> int:
    if ch in ".!?\u2026\u203d\u3002\uff01\uff1f\uff0e":
        return K_TERMINAL
    if ch in ")]}\u00bb\u203a\u201d\u300d\u300f\uff09":
        return K_CLOSER
    if ch in "\"'\u2019" and not space_before:
        return K_CLOSER
    return K_PUNCT


def tokenize(text: str) -> list[tuple[str, int, int]]:
    """(text, id, info) of each token: words keep inner apostrophes, marks stand alone."""
    out = []
    i, n = 0, len(text)
    prev_space = True
    while i < n:
        ch = text[i]
        if is_space(ch):
            prev_space = True
            i += 1
        elif is_word_char(ch):
            j = i
            while j < n and (is_word_char(text[j]) or (
                    text[j] in "'\u2019" and j + 1 < n and is_word_char(text[j + 1]))):
                j += 1
            word = text[i:j]
            kind = K_LOWER if is_lower(word[0]) else K_WORD
            out.append((word, finish(fnv(word.encode("utf-8", "surrogatepass"))), kind | 8 | 16))
            i = j
            prev_space = False
        else:
            sb = prev_space
            sa = i + 1 >= n or is_space(text[i + 1])
            flags = int(sb) | (2 * int(sa))
            h = fnv(ch.encode("utf-8", "surrogatepass")) ^ ((PUNCT_SALT * (flags + 1)) & M64)
            out.append((ch, finish(h), punct_kind(ch, sb) | (flags << 3)))
            i += 1
            prev_space = False
    return out


def token_ids(text: str) -> list[int]:
    return [t[1] for t in tokenize(text)]


def sentence_starts(tokens: list[tuple[str, int, int]], abbreviations: set[str]) -> list[bool]:
    """The sentence-start rule: terminal(s), closers, whitespace, then a non-lowercase token."""
    out = []
    for t, (_, _, info) in enumerate(tokens):
        if t == 0:
            out.append(True)
            continue
        kind = info & 7
        ok = kind not in (K_LOWER, K_TERMINAL, K_CLOSER) and bool(tokens[t - 1][2] & 16)
        j = t - 1
        while ok and j >= 0 and tokens[j][2] & 7 == K_CLOSER:
            j -= 1
        ok = ok and j >= 0 and tokens[j][2] & 7 == K_TERMINAL
        while ok and j >= 0 and tokens[j][2] & 7 == K_TERMINAL:
            j -= 1
        if ok and j >= 0 and tokens[j][0] in abbreviations:
            ok = False
        out.append(ok)
    return out


# -- counts -----------------------------------------------------------------------------


def canonical_counts(texts, labels, order, abbreviations) -> dict:
    """(order, prefix id, token id) -> {label: count}, openers as order 0: the model's canonical()."""
    out: dict = defaultdict(lambda: defaultdict(int))
    for text, label in zip(texts, labels):
        toks = tokenize(text)
        starts = sentence_starts(toks, abbreviations)
        seq = [BOS] + [t[1] for t in toks] + [EOS]
        for t in range(1, len(seq)):
            w = seq[t]
            if t < len(seq) - 1 and starts[t - 1]:
                out[(0, seq[t - 1], w)][label] += 1
            for k in range(0, min(order - 1, t) + 1):  # context length k
                ctx = seq[t - k : t]
                prefix = ROOT
                for j, tok in enumerate(ctx):
                    prefix = ngram_id(prefix, tok, j + 1)
                out[(k + 1, prefix, w)][label] += 1
    return {key: dict(v) for key, v in out.items()}


class NaiveModel:
    """Counts of (context tuple, token) with contexts of length 0..order-1 after BOS."""

    def __init__(self, docs: list[list[int]], order: int, vocab_size: int | None = None):
        """``vocab_size``: size of the base measure's vocabulary (default: this text's)."""
        self.order = order
        self.c: dict = defaultdict(lambda: defaultdict(int))  # context -> token -> count
        for doc in docs:
            seq = [BOS] + doc + [EOS]
            for t in range(1, len(seq)):
                for k in range(0, min(order - 1, t) + 1):
                    self.c[tuple(seq[t - k : t])][seq[t]] += 1
        self.vocab = sorted(self.c[()])
        self.vocab_size = len(self.vocab) if vocab_size is None else vocab_size
        # continuation counts: N1+(. h w) = distinct u with c(u h w) > 0
        self.n1: dict = defaultdict(lambda: defaultdict(int))
        for ctx, nexts in self.c.items():
            if len(ctx) >= 1:
                for w in nexts:
                    self.n1[ctx[1:]][w] += 1

    def x(self, h: tuple, w: int) -> int:
        """The Kneser-Ney count: raw at the top order and for BOS-initial n-grams."""
        if len(h) + 1 == self.order or (h and h[0] == BOS):
            return self.c[h].get(w, 0)
        return self.n1[h].get(w, 0)

    def prob(self, h: tuple, w, method: str, discount=0.75, alpha=3.0, alpha_per_type=True) -> float:
        """p(w | h) by the textbook recursion; ``w = None`` is the unknown token."""
        V = self.vocab_size
        if h is None:
            return 1.0 / (V + 1)
        lower = self.prob(h[1:] if h else None, w, method, discount, alpha, alpha_per_type)
        nexts = self.c.get(h, {})
        if not nexts:
            return lower
        if method == "dirichlet":
            a = alpha * len(nexts) if alpha_per_type else alpha
            return (nexts.get(w, 0) + a * lower) / (sum(nexts.values()) + a)
        if method == "mle":
            return nexts.get(w, 0) / sum(nexts.values())
        xs = {v: self.x(h, v) for v in nexts}
        total = sum(xs.values())
        kept = sum(max(x - discount, 0) for x in xs.values()) / total
        return max(xs.get(w, 0) - discount, 0) / total + (1 - kept) * lower

    def log_probs(self, docs: list[list[int]], method: str, **kw) -> list[float]:
        """log p of each token and document end, contexts clipped at BOS."""
        out = []
        for doc in docs:
            seq = [BOS] + doc + [EOS]
            for t in range(1, len(seq)):
                h = tuple(seq[max(0, t - self.order + 1) : t])
                w = seq[t] if seq[t] in self.c[()] else None
                p = self.prob(h, w, method, **kw)
                out.append(math.log(p) if p > 0 else float("-inf"))
        return out

    def greedy(self, history: list[int], n: int, method: str, **kw) -> list[int]:
        """Greedy continuation (ties: the smallest token id)."""
        seq = list(history)
        for _ in range(n):
            h = tuple(seq[max(0, len(seq) - self.order + 1) :])
            best = max(self.vocab, key=lambda v: (self.prob(h, v, method, **kw), -v))
            seq.append(best)
        return seq[len(history) :]

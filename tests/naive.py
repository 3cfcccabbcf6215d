"""Pure-Python oracles for the numba kernels: slow, obvious, written from the spec."""

from __future__ import annotations

from collections import defaultdict

M64 = (1 << 64) - 1
SALT = 0x9E3779B97F4A7C15


def mix64(h: int) -> int:
    h ^= h >> 33
    h = (h * 0xFF51AFD7ED558CCD) & M64
    h ^= h >> 33
    h = (h * 0xC4CEB9FE1A85EC53) & M64
    h ^= h >> 33
    return h


def token_id(token: str) -> int:
    h = 0xCBF29CE484222325
    for b in token.encode("utf-8"):
        h = ((h ^ b) * 0x100000001B3) & M64
    return mix64(h) or 1


def ngram_id(prefix: int, token: int, order: int) -> int:
    if order == 1:
        return token
    h = mix64(((prefix ^ ((SALT * order) & M64)) + SALT) & M64) ^ token
    return mix64(h) or 1


def is_separator(ch: str) -> bool:
    cp = ord(ch)
    if cp < 128:
        return not ch.isascii() or not ch.isalnum()
    return (
        cp <= 0xBF or cp in (0xD7, 0xF7, 0xFEFF)
        or 0x2000 <= cp <= 0x2BFF or 0x3000 <= cp <= 0x303F or 0xFE30 <= cp <= 0xFE4F
        or 0xFF00 <= cp <= 0xFF0F or 0xFF1A <= cp <= 0xFF20 or 0xFFF0 <= cp <= 0xFFFF
        or 0x1F000 <= cp <= 0x1FAFF
    )


def tokenize(text: str, lowercase: bool = True) -> list[str]:
    if lowercase:
        text = text.lower()
    tokens, cur = [], []
    for ch in text:
        if is_separator(ch):
            if cur:
                tokens.append("".join(cur))
                cur = []
        else:
            cur.append(ch)
    if cur:
        tokens.append("".join(cur))
    return tokens


def feature_ids(tokens: list[str], max_order: int) -> list[tuple[int, tuple[str, ...]]]:
    """(feature id, words) of every n-gram, orders 1..max_order, in counting order."""
    ids = [token_id(t) for t in tokens]
    out = []
    for t in range(len(tokens)):
        fid = 0
        for k in range(1, max_order + 1):
            if t - k + 1 < 0:
                break
            # the k-gram ending at t: fold the ids left to right
            start = t - k + 1
            fid = ids[start]
            for j in range(2, k + 1):
                fid = ngram_id(fid, ids[start + j - 1], j)
            out.append((fid, tuple(tokens[start : t + 1])))
    return out


def accumulate(texts: list[str], labels: list[str], max_order: int = 2) -> dict[int, dict[str, int]]:
    """Feature id -> {label: count}: what Accumulator.canonical() must equal."""
    counts: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for text, label in zip(texts, labels):
        for fid, _ in feature_ids(tokenize(text), max_order):
            counts[fid][label] += 1
    return {k: dict(v) for k, v in counts.items()}


def checkpoints(limit: int) -> set[int]:
    """Log-spaced page counts at which growth is logged: 1..10, then x1.12 steps."""
    out, s = set(), 1
    while s <= limit:
        out.add(s)
        s = max(s + 1, int(s * 1.12))
    return out


def _stats(counter: dict, order: int, prune_k: int) -> list[int]:
    values = [v for (k, _), v in counter.items() if k == order]
    return [len(values), values.count(1), values.count(2), sum(v >= prune_k for v in values)]


def growth_log(texts, labels, max_order=2, prune_k=5) -> list[list[int]]:
    """Growth-log rows as Accumulator.take_growth() must give them (category by first appearance)."""
    cats: dict[str, int] = {}
    per_cat: dict[str, dict] = defaultdict(lambda: defaultdict(int))
    overall: dict = defaultdict(int)
    pages: dict[str, int] = defaultdict(int)
    tokens: dict[str, int] = defaultdict(int)
    marks = checkpoints(len(texts))
    rows = []
    for text, label in zip(texts, labels):
        cats.setdefault(label, len(cats))
        toks = tokenize(text)
        for fid, words in feature_ids(toks, max_order):
            per_cat[label][(len(words), fid)] += 1
            overall[(len(words), fid)] += 1
        pages[label] += 1
        tokens[label] += len(toks)
        if pages[label] in marks:
            rows.append([cats[label], pages[label], tokens[label]]
                        + [x for k in range(1, max_order + 1) for x in _stats(per_cat[label], k, prune_k)])
        total = sum(pages.values())
        if total in marks:
            rows.append([-1, total, sum(tokens.values())]
                        + [x for k in range(1, max_order + 1) for x in _stats(overall, k, prune_k)])
    return rows

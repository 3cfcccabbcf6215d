"""Verbatim recall: how much of its training text a generator reproduces.

Prompted extraction (Carlini et al. 2022) gives a model a training document's first
tokens and checks whether greedy decoding continues it verbatim; free recall measures
the longest runs of generated text found verbatim in the training text, through a
suffix array over it (:class:`VerbatimIndex`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from .. import _markov_kernels as K
from .chain import Chain, Vocabulary
from .tokens import MarkovTokens, dense_index


@dataclass(frozen=True)
class RecallResult:
    """Prompted-extraction recall at one order (see :meth:`MarkovAccumulator.recall
    <accum.markov.MarkovAccumulator.recall>`)."""

    order: int
    method: str
    protocol: str
    prefix: int
    continuation: int
    samples: int
    skipped: int
    extractable: int
    fraction: float
    ci95_low: float
    ci95_high: float
    mean_match: float
    parameters: int
    contexts: int
    chain_bytes: int

    @property
    def fraction_per_million_parameters(self) -> float:
        return self.fraction / self.parameters * 1e6 if self.parameters else 0.0

    def to_dict(self) -> dict:
        out = asdict(self)
        out["fraction_per_million_parameters"] = self.fraction_per_million_parameters
        return out


def wilson(k: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score 95 % interval of a proportion k/n ((0, 1) when n = 0)."""
    if n == 0:
        return 0.0, 1.0
    p = k / n
    den = 1 + z * z / n
    mid = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return max(0.0, mid - half), min(1.0, mid + half)


@dataclass(frozen=True)
class Prompts:
    """Where prompted extraction takes its prompts: document ``docs[i]``, token ``pos[i]``
    (the prompt is the ``prefix`` tokens before it); ``skipped`` documents had no room."""

    docs: np.ndarray
    pos: np.ndarray
    skipped: int

    @classmethod
    def draw(cls, batch: MarkovTokens, protocol: str, prefix: int, continuation: int, sample: int | None,
             seed) -> "Prompts":
        """``"document"``: each document's first ``prefix`` tokens (documents shorter than
        prefix + continuation skipped), a seeded sample of ``sample`` of them; ``"stream"``:
        ``sample`` (default 1000) positions drawn uniformly from every window of
        prefix + continuation tokens inside a document."""
        lengths = batch.doc_lengths()
        rng = np.random.default_rng(seed)
        if protocol == "document":
            docs = np.flatnonzero(lengths >= prefix + continuation)
            skipped = batch.n_docs - len(docs)
            if sample is not None and sample < len(docs):
                docs = np.sort(rng.choice(docs, sample, replace=False))
            pos = np.full(len(docs), prefix, np.int64)
        else:
            windows = np.maximum(lengths - prefix - continuation + 1, 0)
            cum = np.concatenate([[0], np.cumsum(windows)])
            n_win = int(cum[-1])
            skipped = int((windows == 0).sum())
            take = min(1000 if sample is None else sample, n_win)
            flat = np.sort(rng.choice(n_win, take, replace=False)) if take else np.zeros(0, np.int64)
            docs = np.searchsorted(cum, flat, side="right") - 1
            pos = flat - cum[docs] + prefix
        return cls(docs.astype(np.int64), pos.astype(np.int64), int(skipped))


def prompted_recall(chain: Chain, query: K.Query, method: str, dense: np.ndarray, bounds: np.ndarray,
                    prompts: Prompts, prefix: int, continuation: int) -> tuple[int, int, float]:
    """Greedy continuations of the prompts: (samples, samples continued verbatim for all
    ``continuation`` tokens, mean number of leading tokens reproduced)."""
    match = K.prompted_recall(chain.arrays, query, dense, bounds, prompts.docs, prompts.pos, prefix, continuation,
                              chain.rank(method), chain.bos_ctx)
    n = len(match)
    return n, int((match == continuation).sum()), float(match.mean()) if n else 0.0


def copied_words(index: "VerbatimIndex", vocabulary: Vocabulary, dense: np.ndarray) -> int:
    """Most words in one run of ``dense`` tokens found verbatim in ``index``."""
    ms = index.matching_statistics(vocabulary.ids[np.minimum(dense, vocabulary.size - 1)])
    cum = np.concatenate([[0], np.cumsum(vocabulary.is_word(dense))])
    ends = np.minimum(np.arange(len(dense)) + ms, len(dense))
    return int((cum[ends] - cum[: len(dense)]).max()) if len(dense) else 0


def free_recall(index: "VerbatimIndex", vocabulary: Vocabulary, out: np.ndarray, abbreviations: np.ndarray,
                max_overlap_ratio: float, max_overlap_total: int) -> dict:
    """Verbatim copying in generated dense tokens ``out`` (see
    :meth:`MarkovAccumulator.free_recall <accum.markov.MarkovAccumulator.free_recall>`)."""
    eos = vocabulary.eos
    ids = vocabulary.ids[out]
    ids[out == eos] = K.EOS_ID  # never in the index: runs stop at document ends
    ms = index.matching_statistics(ids)
    # sentences: split at document ends and where the tokeniser would start one
    info = vocabulary.spelling_info()[out]
    starts = K.sentence_starts(ids, info, np.array([0, len(out)], np.int64), abbreviations)
    starts[1:] |= out[:-1] == eos
    keep = out != eos
    sent_id = np.cumsum(starts) - 1
    rejected = n_sent = 0
    for sid in np.unique(sent_id[keep]):
        where = np.flatnonzero((sent_id == sid) & keep)
        is_word = vocabulary.is_word(out[where])
        words = int(is_word.sum())
        if words == 0:
            continue
        n_sent += 1
        local = np.minimum(ms[where], len(where) - np.arange(len(where)))
        cum = np.concatenate([[0], np.cumsum(is_word)])
        copied = int((cum[np.arange(len(where)) + local] - cum[:-1]).max())
        rejected += copied > min(max_overlap_total, round(max_overlap_ratio * words))
    return {
        "tokens": int(keep.sum()),
        "longest_verbatim_run": int(ms.max()) if len(ms) else 0,
        "mean_verbatim_match": float(ms[keep].mean()) if keep.any() else 0.0,
        "sentences": n_sent, "rejected_by_overlap_rule": rejected,
        "rejected_share": rejected / n_sent if n_sent else 0.0,
    }


class VerbatimIndex:
    """Suffix array over training tokens, for verbatim look-ups of generated text.

    Parameters
    ----------
    batch : MarkovTokens
        The training documents; a match never crosses a document boundary.

    Examples
    --------
    >>> from accum.markov import tokenize
    >>> index = VerbatimIndex(tokenize(["the cat sat on the mat", "a dog"]))
    >>> index.longest_match(tokenize(["on the cat sat on a dog"]).ids)
    4
    """

    def __init__(self, batch: MarkovTokens):
        self.vocab, inverse = np.unique(batch.ids, return_inverse=True)
        lengths = batch.doc_lengths()
        text = np.empty(len(batch.ids) + batch.n_docs, np.int64)
        where = np.arange(len(batch.ids)) + np.repeat(np.arange(batch.n_docs), lengths)
        text[where] = inverse
        seps = batch.bounds[1:] + np.arange(batch.n_docs)
        text[seps] = -1 - np.arange(batch.n_docs)
        self.text = text
        self.sa = _suffix_array(text)

    @property
    def n_tokens(self) -> int:
        return len(self.text)

    @property
    def nbytes(self) -> int:
        return int(self.text.nbytes + self.sa.nbytes + self.vocab.nbytes)

    def symbols(self, ids: np.ndarray) -> np.ndarray:
        """Index symbols of token ids (-1 for tokens the training text lacks)."""
        return dense_index(self.vocab, ids)

    def matching_statistics(self, ids: np.ndarray) -> np.ndarray:
        """For each position i, the length of the longest run ``ids[i:i+L]`` in the text."""
        return K.matching_statistics(self.text, self.sa, self.symbols(ids))

    def longest_match(self, ids: np.ndarray) -> int:
        """Length of the longest run of ``ids`` found verbatim in the text."""
        ms = self.matching_statistics(ids)
        return int(ms.max()) if len(ms) else 0


def _suffix_array(text: np.ndarray) -> np.ndarray:
    """Suffix array of an int64 sequence by prefix doubling (O(n log^2 n), numpy sorts)."""
    n = len(text)
    if n == 0:
        return np.zeros(0, np.int64)
    rank = np.unique(text, return_inverse=True)[1].astype(np.int64)
    k = 1
    while True:
        second = np.zeros(n, np.int64)
        second[: n - k] = rank[k:] + 1
        key = rank * (n + 1) + second
        sa = np.argsort(key, kind="stable")
        ordered = key[sa]
        new = np.empty(n, np.int64)
        new[sa] = np.concatenate([[0], np.cumsum(ordered[1:] != ordered[:-1])])
        rank = new
        if rank[sa[-1]] == n - 1 or k >= n:
            return sa.astype(np.int64)
        k *= 2

"""Super Markov generators: n-gram accumulators that regenerate text and measure recall.

A :class:`MarkovAccumulator` counts, per category, every token after each of its
contexts of length 0..order-1 (words keep their case, punctuation marks are tokens,
documents start with ``BOS`` and end with ``EOS``). Like the classifier's accumulators,
counts only add: two models merge by addition exactly, and smoothed probabilities are
derived from the counts on demand, never stored as the source of truth.

Two smoothers back off from each context to its suffix:

- **Dirichlet back-off** (hierarchical Dirichlet / MacKay & Peto): with ``c(h, w)`` the
  count of ``w`` after context ``h``, ``c(h)`` their sum, ``T(h)`` the number of distinct
  continuations and ``h'`` the context without its oldest token,
  ``p(w|h) = (c(h, w) + a(h) p(w|h')) / (c(h) + a(h))`` with ``a(h) = alpha * T(h)``
  (``alpha_per_type=True``, a Witten-Bell-like prior that measured better here) or
  ``a(h) = alpha``;
- **interpolated Kneser-Ney** (Chen & Goodman): ``p(w|h) = max(x(h, w) - D, 0) / x(h)
  + D T(h) / x(h) p(w|h')`` with ``x`` the raw count at the top order and the number of
  distinct left extensions (continuation count) below it, except for n-grams that start
  with ``BOS``, which have no left extension and keep raw counts (as KenLM does).

Both end in a uniform base measure over the vocabulary plus one unknown-token slot, so
every held-out token has a probability and ``p(.|h)`` sums to one over ``V + 1``.

Counts are stored sparsely: each n-gram row keeps its total and the first category that
counted it, and only counts in further categories go to a (row, category) hash table
(most n-grams occur in one category), so many categories cost little.

For generation, the counts of one category column at one order are compiled lazily into
a *chain*: contexts with their continuations sorted (CSR), prefix sums for scoring and,
for every continuation, the context that follows it, so decoding is pointer-chasing
without hashing. Sampling uses tables derived from the chain once per smoother: an
alias table per context over its continuations' full smoothed probabilities, plus the
probability that a draw stays among them (else it backs off, rejecting continuations
the context already has), so one token costs two dependent reads (the context's row,
then one entry row that holds its alias too). The plain table never backs off, so a
context's block holds its alias table and the token that leads into it, and each bucket
where the next block is: mostly one cache line a token. Documents
are sampled 64 at a time, each read fetched a step before it is needed, so that those
reads overlap, and the text is written by the same kernel. The draws are exact (up to
31-bit alias thresholds). Greedy decoding stops adding up levels as soon as the
leader is certain.

Examples
--------
>>> m = MarkovAccumulator(order=2)
>>> m.partial_fit(["The cat sat.", "The cat ran."])
>>> m.count("cat sat"), m.count("The"), m.count("cat.")
(1, 2, 0)

With a constant Dirichlet prior ``a = 1``: the root gives "sat" ``(1 + 1/7) / (10 + 1)``
(10 tokens, 6 types plus the unknown slot), so ``p(sat | cat) = (1 + 8/77) / (2 + 1)``:

>>> from fractions import Fraction
>>> p = m.distribution("The cat", method="dirichlet", alpha=1.0, alpha_per_type=False)
>>> Fraction(p["sat"]).limit_denominator(1000), round(sum(p.values()), 12)
(Fraction(85, 231), 1.0)
>>> print(m.generate(8, seed=0, method="mle"))
The cat sat.
The cat ran.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np

from . import _kernels
from . import _markov_kernels as K
from .accumulator import CategoryTotals
from .tokens import TokenBatch

DEFAULT_ORDER = 4
#: Threads for building from a large batch (``partial_fit``): with two, a second thread
#: tokenises the batch chunk by chunk while the first counts the chunks already made, in
#: order (so the same rows, counts and lexicon as one thread). ``ACCUM_MARKOV_THREADS=1``
#: keeps one thread; more than two are not used.
THREADS = min(2, int(os.environ.get("ACCUM_MARKOV_THREADS") or 0)
              or (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1))
PARALLEL_MIN_CHARS = 1 << 20  # smaller batches are built by one thread
PIPELINE_CHUNKS = 8  # a large batch is tokenised in this many chunks, each counted as soon as it is ready
DEFAULT_LABEL = "default"
METHODS = {"dirichlet": K.DIRICHLET, "kn": K.KNESER_NEY, "mle": K.MLE}
_MIN_TABLE = 1 << 12
_MAX_SENTENCE_TOKENS = 256
_NO_RANK = np.zeros(0, np.int64)
_NO_BLOCKS = (np.zeros(1, np.int32), np.zeros(1, np.int64))  # the plain blocks, when a call does not use them

#: Words after which a terminal mark does not end a sentence (a hook: override on a subclass).
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
    buf, bounds = _utf8(texts)
    ids, starts, lengths, info, tok_bounds = K.tokenize(buf, bounds)
    return MarkovTokens(buf, ids, starts, lengths, tok_bounds, info)


def _utf8(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """The texts' UTF-8 bytes, concatenated, and where each text starts (int64[n + 1]).

    Runs of ASCII texts are joined as str and encoded at once (a copy); only the other
    texts are encoded one by one, to learn their byte lengths.
    """
    texts = texts if isinstance(texts, list) else list(texts)
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


def _token_ids(words: Sequence[str]) -> np.ndarray:
    """Ids of words (as the tokeniser hashes them), uint64[len(words)]."""
    if not words:
        return np.zeros(0, np.uint64)
    return tokenize([" ".join(words)]).ids


@dataclass
class _Chain:
    """A compiled category column at one order (see :mod:`accum._markov_kernels`)."""

    ch: tuple
    bos_ctx: int
    ctx_order: np.ndarray
    entry_row: np.ndarray
    open_cum: np.ndarray
    open_state: np.ndarray
    open_first: np.ndarray

    def __post_init__(self):
        self._ranks: dict = {}

    @property
    def nbytes(self) -> int:
        """Bytes of the arrays generation and scoring use (ranks for greedy not included)."""
        return int(sum(a.nbytes for a in self.ch))

    def sampler(self, params: tuple) -> tuple[np.ndarray, np.ndarray]:
        """Packed contexts and alias-table entries for plain sampling (cached per method)."""
        key = ("sampler",) + tuple(float(x) for x in params[:4])
        if key not in self._ranks:
            # allocated here, by numpy (huge pages where allowed), and filled by the kernel
            pc = np.empty((len(self.ch[0]) - 1, 4), np.int64)
            pe = np.empty((len(self.ch[4]), 5), np.int32)
            K.sampler_tables(self.ch, params, self.ctx_order, pc, pe)
            self._ranks[key] = (pc, pe)
        return self._ranks[key]

    def plain(self, params: tuple, eos: int) -> tuple | None:
        """Blocks for sampling the plain table with mostly one cache line a token
        (``plain_tables``) and where each context's block is, or None when this chain's
        draws can back off."""
        key = ("plain",) + tuple(float(x) for x in params[:4])
        if key not in self._ranks:
            pc, pe = self.sampler(params)
            off, size = K.plain_layout(pc)
            blocks = None
            if size < 2**31 - K.PLAIN_LINE:
                raw = np.zeros(size + K.PLAIN_LINE, np.int32)  # numpy: huge pages where allowed
                shift = (-raw.ctypes.data // 4) % K.PLAIN_LINE  # blocks laid out from a cache line's start
                blk = raw[shift : shift + size]
                if K.plain_tables(pc, pe, self.bos_ctx, eos, off, blk):
                    blocks = (blk, off)
            self._ranks[key] = blocks
        return self._ranks[key]

    def rank(self, method: str) -> np.ndarray:
        """Entries by context, then decreasing weight, then token (for greedy decoding)."""
        family = "rank-kn" if method == "kn" else "rank-raw"
        if family not in self._ranks:
            ctx_start, _, _, _, _, _, cum_raw, cum_kn = self.ch
            self._ranks[family] = K.rank_entries(ctx_start, cum_kn if family == "rank-kn" else cum_raw)
        return self._ranks[family]


@dataclass(frozen=True)
class RecallResult:
    """Prompted-extraction recall at one order (see :meth:`MarkovAccumulator.recall`)."""

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


def _wilson(k: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score 95 % interval of a proportion k/n ((0, 1) when n = 0)."""
    if n == 0:
        return 0.0, 1.0
    p = k / n
    den = 1 + z * z / n
    mid = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return max(0.0, mid - half), min(1.0, mid + half)


def _seed_state(seed) -> np.ndarray:
    """The kernel's RNG state from an int, a numpy Generator or None (fresh entropy)."""
    if isinstance(seed, np.random.Generator):
        seed = int(seed.integers(0, 2**63))
    elif seed is None:
        seed = int(np.random.default_rng().integers(0, 2**63))
    elif isinstance(seed, (bool, float)) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int, a numpy Generator or None, got {seed!r}")
    return np.array([int(seed) % 2**64], np.uint64)


class MarkovAccumulator(CategoryTotals):
    """Per-category n-gram counts for generation, smoothing and verbatim recall.

    Parameters
    ----------
    order : int
        Highest n-gram order (contexts of up to ``order - 1`` tokens), 1 to 32.
    method : {"kn", "dirichlet"}
        Default smoother for probabilities and generation.
    discount : float
        Kneser-Ney discount D, in (0, 1).
    alpha : float
        Dirichlet concentration (per distinct continuation when ``alpha_per_type``).
    alpha_per_type : bool
        Concentration ``alpha * T(h)`` (True) or a constant ``alpha`` (False).

    Notes
    -----
    Hooks a subclass may override one at a time: :meth:`prepare` (text before
    tokenising), :meth:`tokenize` (texts to :class:`MarkovTokens`), :meth:`join_tokens`
    (token strings back to text) and :attr:`abbreviations`.
    """

    abbreviations: frozenset = ABBREVIATIONS

    def __init__(self, order: int = DEFAULT_ORDER, *, method: str = "kn", discount: float = 0.75,
                 alpha: float = 3.0, alpha_per_type: bool = True):
        if isinstance(order, bool) or not isinstance(order, (int, np.integer)) or not 1 <= order <= 32:
            raise ValueError(f"order must be an integer from 1 to 32, got {order!r}")
        self.order = int(order)
        self.method = self._check_method(method)
        self.discount = self._check_discount(discount)
        self.alpha = self._check_alpha(alpha)
        self.alpha_per_type = bool(alpha_per_type)
        self.categories: list[str] = []
        self._cat_index: dict[str, int] = {}
        self.doc_counts = np.zeros(0, np.int64)
        self.token_counts = np.zeros(0, np.int64)
        self.lexicon: dict[int, str] = {int(K.EOS_ID): "\n"}
        self.token_info: dict[int, int] = {int(K.EOS_ID): K.K_PUNCT}
        self.n_rows = 0
        self.text_index: VerbatimIndex | None = None
        self._table = np.zeros((_MIN_TABLE, 2), np.uint64)
        self._row_key = np.zeros(_MIN_TABLE // 2, np.uint64)
        self._row_prefix = np.zeros(_MIN_TABLE // 2, np.uint64)
        self._row_last = np.zeros(_MIN_TABLE // 2, np.uint64)
        self._row_order = np.zeros(_MIN_TABLE // 2, np.int8)
        self._row_count = np.zeros((_MIN_TABLE // 2, 2), np.int64)  # total, first category
        # counts in a row's other categories, sparse: (row, category) -> count
        self._pairs = np.zeros((_MIN_TABLE, 2), np.uint64)
        self.n_pairs = 0
        self._cache: dict = {}

    # -- validation ----------------------------------------------------------------------

    @staticmethod
    def _check_method(method: str) -> str:
        if method not in METHODS:
            raise ValueError(f"method must be one of {sorted(METHODS)}, got {method!r}")
        return method

    @staticmethod
    def _check_discount(discount: float) -> float:
        if not 0.0 < float(discount) < 1.0:
            raise ValueError(f"discount must be in (0, 1), got {discount!r}")
        return float(discount)

    @staticmethod
    def _check_alpha(alpha: float) -> float:
        if not float(alpha) > 0.0:
            raise ValueError(f"alpha must be positive, got {alpha!r}")
        return float(alpha)

    def _require_fitted(self) -> None:
        if self.n_documents == 0:
            raise ValueError(
                "this MarkovAccumulator has no documents yet: call partial_fit(texts) or "
                "learn_one(text) first, or load one with MarkovAccumulator.from_arrays()"
            )

    def _order_of(self, order) -> int:
        if order is None:
            return self.order
        if isinstance(order, bool) or not isinstance(order, (int, np.integer)) or not 1 <= order <= self.order:
            raise ValueError(f"order must be an integer from 1 to the model's order {self.order}, got {order!r}")
        return int(order)

    def _column_of(self, category) -> int:
        if category is None:
            return -1
        if category not in self._cat_index:
            raise ValueError(f"unknown category {category!r}; the model has {self.categories}")
        return self._cat_index[category]

    # -- views ---------------------------------------------------------------------------

    @property
    def counts(self) -> np.ndarray:
        """Counts, int64[n_rows, n_categories]: a dense copy built on demand.

        The model stores each row's total and the first category that counted it, and
        the other non-zero (row, category) counts in a hash table (see
        :meth:`sparse_counts`); this matrix is for inspection of small models.
        """
        out = np.zeros((self.n_rows, self.n_categories), np.int64)
        rows, cats, values = self.sparse_counts()
        out[rows, cats] = values
        return out

    @property
    def row_total(self) -> np.ndarray:
        """Count of each row over all categories, int64[n_rows] (a view)."""
        return self._row_count[: self.n_rows, 0]

    def sparse_counts(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The non-zero counts as (row, category, count) arrays, by row then category."""
        return K.sparse_counts(self._row_count[: self.n_rows], self._pairs)

    def _column(self, column: int) -> np.ndarray:
        """Counts of one category (-1: all), int64[n_rows]."""
        if column < 0 or self.n_categories == 1:
            return np.ascontiguousarray(self.row_total)
        return K.count_column(self._row_count[: self.n_rows], self._pairs, column)

    @property
    def row_key(self) -> np.ndarray:
        return self._row_key[: self.n_rows]

    @property
    def row_prefix(self) -> np.ndarray:
        return self._row_prefix[: self.n_rows]

    @property
    def row_last(self) -> np.ndarray:
        return self._row_last[: self.n_rows]

    @property
    def row_order(self) -> np.ndarray:
        """n-gram order of each row, int8[n_rows] (0 for a sentence-opener row)."""
        return self._row_order[: self.n_rows]

    @property
    def nbytes(self) -> int:
        """Bytes of the count state: rows, table and lexicon (not the compiled chains)."""
        return int(self.n_rows * 41 + self._table.nbytes + self._pairs.nbytes
                   + sum(len(s) + 9 for s in self.lexicon.values()))

    def count(self, text: str, *, category: str | None = None) -> int:
        """Count of the n-gram spelled by ``text``: its last token after the others.

        Marks are written as in running text (``"God said,"``), since a mark's spacing
        is part of its token.
        """
        ids = self.tokenize([self.prepare(text)]).ids
        if not 1 <= len(ids) <= self.order:
            raise ValueError(f"count() takes 1 to {self.order} tokens, got {len(ids)} in {text!r}")
        key = K.ROOT_ID
        for k, t in enumerate(ids):
            key = np.uint64(K.ngram_id(key, t, k + 1))
        row = K.table_lookup(self._table, key)
        if row < 0:
            return 0
        col = self._column_of(category)
        total, first = self._row_count[row]
        if col < 0:
            return int(total)
        if col != first:
            return int(K.pairs_lookup(self._pairs, row, col))
        return int(total) - sum(int(K.pairs_lookup(self._pairs, row, c))
                                for c in range(self.n_categories) if c != first)

    # -- hooks ---------------------------------------------------------------------------

    def prepare(self, text: str) -> str:
        """Text before tokenising (hook; default: unchanged)."""
        return text

    def tokenize(self, texts: Sequence[str]) -> MarkovTokens:
        """Texts (already through :meth:`prepare`) to tokens (hook)."""
        return tokenize(texts)

    def join_tokens(self, texts: np.ndarray, space: np.ndarray) -> str:
        """Token strings back to text (hook): ``space[i]`` puts whitespace before token i."""
        return "".join(np.where(space, np.char.add(" ", texts.astype(str)), texts).tolist()) \
            if len(texts) else ""

    # -- learning ------------------------------------------------------------------------

    def category_index(self, label: str) -> int:
        """Column of ``label``, adding the category when it is new."""
        if not isinstance(label, str) or not label:
            raise ValueError(f"a category label must be a non-empty str, got {label!r}")
        index = self._cat_index.get(label)
        if index is None:
            index = len(self.categories)
            if index >= 1 << K.CAT_BITS:
                raise ValueError(f"a MarkovAccumulator keeps at most {1 << K.CAT_BITS} categories")
            self.categories.append(label)
            self._cat_index[label] = index
            self.doc_counts = np.append(self.doc_counts, 0)
            self.token_counts = np.append(self.token_counts, 0)
        return index

    def learn_one(self, text: str, label: str | None = None) -> None:
        """Add one document (to category ``label``, default ``"default"``)."""
        self.partial_fit([text], None if label is None else [label])

    def partial_fit(self, texts: Sequence[str], labels: Sequence[str] | None = None) -> None:
        """Add documents, each to its label's category (all to ``"default"`` without labels)."""
        if isinstance(texts, str) or isinstance(labels, str):
            raise TypeError("partial_fit() takes sequences of texts and labels; use learn_one() for one text")
        texts = list(texts)
        if labels is not None and len(labels) != len(texts):
            raise ValueError(f"got {len(texts)} texts but {len(labels)} labels")
        if type(self).prepare is not MarkovAccumulator.prepare:
            texts = [self.prepare(t) for t in texts]
        if THREADS > 1 and type(self).tokenize is MarkovAccumulator.tokenize and len(texts) > 1 \
                and all(isinstance(t, str) for t in texts):  # (else the error comes before any counting)
            ends = np.cumsum(np.fromiter(map(len, texts), np.int64, len(texts)))
            if ends[-1] >= PARALLEL_MIN_CHARS:
                self._add_pipelined(texts, labels, ends)
                return
        self.add_tokens(self.tokenize(texts), labels)

    def _add_pipelined(self, texts: list, labels, ends: np.ndarray) -> None:
        """:meth:`partial_fit` with a second thread that tokenises the batch chunk by chunk
        ahead of the counting: the chunks are counted in order, so the rows, counts and
        lexicon are those of one call on the whole batch."""
        if labels is not None:  # every label checked (and new categories added, in order) before any counting
            for label in dict.fromkeys(labels):
                self.category_index(label)
        n_chunks = PIPELINE_CHUNKS
        cuts = np.searchsorted(ends, ends[-1] * np.arange(1, n_chunks) // n_chunks, side="right")
        cuts = np.unique(np.concatenate([[0], cuts, [len(texts)]]))
        # room for the whole batch up front (tokens: about one per 4 characters of text)
        positions = int(ends[-1]) // 4 + len(texts)
        self._reserve(self.n_rows + min(positions * (self.order + 1) // 2, 1 << 23),
                      self.n_rows + min(int(0.35 * positions * self.order) + 1024, 1 << 23))
        with ThreadPoolExecutor(1) as pool:
            parts = [(a, b, pool.submit(tokenize, texts[a:b])) for a, b in zip(cuts[:-1].tolist(), cuts[1:].tolist())]
            for a, b, batch in parts:
                self.add_tokens(batch.result(), None if labels is None else labels[a:b])

    def add_tokens(self, batch: MarkovTokens, labels: Sequence[str] | None = None) -> None:
        """Add already tokenised documents (see :meth:`tokenize`), all to ``"default"``
        without labels."""
        if labels is None:
            cats = np.full(batch.n_docs, self.category_index(DEFAULT_LABEL), np.int64)
        else:
            index = {label: self.category_index(label) for label in dict.fromkeys(labels)}
            cats = np.array([index[label] for label in labels], np.int64)
        if len(cats) != batch.n_docs:
            raise ValueError(f"got {batch.n_docs} documents but {len(cats)} labels")
        abbrev = self._abbrev_ids()
        new_tok = np.empty(len(batch.ids), np.int64)
        # one growth up front instead of many rehashes. Rows: at most one per (position,
        # order) and opener, about half that in natural text (reserved, not touched, so
        # generous); the table (zeroed and touched all over) for about 0.35 new rows per
        # position and order: measured 0.21 (KJV) to 0.45 (a novel) at order 3, 0.32 to
        # 0.57 at order 4; a batch that needs more grows it once more
        positions = len(batch.ids) + batch.n_docs
        estimate = positions * (self.order + 1) // 2
        self._reserve(self.n_rows + min(estimate, 1 << 23),
                      self.n_rows + min(int(0.35 * positions * self.order) + 1024, 1 << 23))
        multi = self.n_categories > 1
        if multi:
            self._reserve_pairs(self.n_pairs + min(estimate, 1 << 21))
        doc = 0
        while doc < batch.n_docs:
            doc, self.n_rows, self.n_pairs, n_new = K.count_ngrams(
                batch.ids, batch.info, batch.bounds, cats, doc, self.order, abbrev, self._table,
                self._row_key, self._row_prefix, self._row_last, self._row_order, self._row_count,
                self.n_rows, self._pairs, self.n_pairs, multi, new_tok,
            )
            self._learn_words(batch, new_tok[:n_new])
            if doc < batch.n_docs:
                need = int(batch.bounds[doc + 1] - batch.bounds[doc] + 1) * (self.order + 1)
                self._reserve(self.n_rows + need)
                if multi:
                    self._reserve_pairs(self.n_pairs + need)
        n_cat = self.n_categories
        self.doc_counts += np.bincount(cats, minlength=n_cat)
        self.token_counts += np.bincount(cats, batch.doc_lengths(), minlength=n_cat).astype(np.int64)
        self._cache.clear()

    def _abbrev_ids(self) -> np.ndarray:
        """Sorted ids of :attr:`abbreviations` (cached per set)."""
        cached = getattr(type(self), "_abbrev_cache", None)
        if cached is None or cached[0] is not self.abbreviations:
            cached = (self.abbreviations, np.unique(_token_ids(sorted(self.abbreviations))))
            type(self)._abbrev_cache = cached
        return cached[1]

    def _learn_words(self, batch: MarkovTokens, tokens: np.ndarray) -> None:
        """Add the text and info of new tokens to the lexicon.

        One decode of the tokens' bytes joined by newlines, not one per token (a decoding
        error stays inside its token either way); token by token only when a token holds
        a newline (never with the default tokeniser).
        """
        if len(tokens) == 0:
            return
        texts = str(_kernels.gather_tokens(batch.buf, batch.starts, batch.lengths, tokens, ord("\n")), "utf-8",
                    "replace").split("\n")
        if len(texts) != len(tokens):
            raw = batch.buf.tobytes()
            texts = [raw[a : a + n].decode("utf-8", "replace")
                     for a, n in zip(batch.starts[tokens].tolist(), batch.lengths[tokens].tolist())]
        keys = batch.ids[tokens].tolist()
        self.lexicon.update(zip(keys, texts))
        self.token_info.update(zip(keys, batch.info[tokens].tolist()))

    def merge(self, other: "MarkovAccumulator") -> "MarkovAccumulator":
        """Add ``other``'s counts into this model (in place) and return it."""
        if not isinstance(other, MarkovAccumulator):
            raise TypeError(f"can only merge a MarkovAccumulator, got {type(other).__name__}")
        if other.order != self.order:
            raise ValueError(f"cannot merge models of order {self.order} and {other.order}")
        cats = np.array([self.category_index(c) for c in other.categories], np.int64)
        self._reserve(self.n_rows + other.n_rows)
        other_first = other._row_count[: other.n_rows, 1]
        where, self.n_rows = K.merge_rows(
            other.row_key, other.row_prefix, other.row_last, other.row_order,
            np.ascontiguousarray(other.row_total), cats[other_first] if len(cats) else other_first,
            self._table, self._row_key, self._row_prefix, self._row_last, self._row_order,
            self._row_count, self.n_rows,
        )
        rows, ocats, values = other.sparse_counts()
        rows, ocats = where[rows], cats[ocats] if len(cats) else ocats
        other_cat = self._row_count[rows, 1] != ocats  # counts beyond our rows' first categories
        self._reserve_pairs(self.n_pairs + int(other_cat.sum()))
        self.n_pairs = K.pairs_add(self._pairs, rows[other_cat], ocats[other_cat], values[other_cat], self.n_pairs)
        np.add.at(self.doc_counts, cats, other.doc_counts)
        np.add.at(self.token_counts, cats, other.token_counts)
        lexicon = self.lexicon
        new = [key for key in other.lexicon if key not in lexicon]  # in the other model's order
        lexicon.update((key, other.lexicon[key]) for key in new)
        self.token_info.update((key, other.token_info[key]) for key in new)
        self._cache.clear()
        return self

    def _reserve(self, rows: int, table_rows: int | None = None) -> None:
        """Grow the row arrays so that ``rows`` rows fit, and the table so that
        ``table_rows`` (default ``rows``) fit at most half full."""
        if rows >= 1 << 32:
            raise ValueError(f"a MarkovAccumulator keeps fewer than 2**32 rows, asked for {rows:,}")
        if rows > len(self._row_key):
            size = max(rows, 2 * len(self._row_key))
            for name in ("_row_key", "_row_prefix", "_row_last", "_row_order", "_row_count"):
                old = getattr(self, name)
                new = np.empty((size,) + old.shape[1:], old.dtype)
                new[: self.n_rows] = old[: self.n_rows]
                setattr(self, name, new)
        table_rows = rows if table_rows is None else table_rows
        if 2 * table_rows > len(self._table):
            cap = len(self._table)
            while 2 * table_rows > cap:
                cap *= 2
            self._table = np.zeros((cap, 2), np.uint64)
            K.table_build(self._row_key, self.n_rows, self._table)

    def _reserve_pairs(self, pairs: int) -> None:
        """Grow the (row, category) table so that ``pairs`` pairs fit at most half full."""
        if 2 * pairs > len(self._pairs):
            cap = len(self._pairs)
            while 2 * pairs > cap:
                cap *= 2
            new = np.zeros((cap, 2), np.uint64)
            K.pairs_rehash(self._pairs, new)
            self._pairs = new

    # -- exchange ------------------------------------------------------------------------

    def settings(self) -> dict:
        """The constructor's arguments, JSON-able."""
        return {"order": self.order, "method": self.method, "discount": self.discount,
                "alpha": self.alpha, "alpha_per_type": self.alpha_per_type}

    def to_arrays(self) -> dict:
        """The state as plain numpy arrays, lists and a JSON-able ``settings`` dict.

        Counts are sparse: ``count_value[i]`` is the count of row ``count_row[i]`` in
        category ``count_category[i]``. ``lexicon_info`` holds each token's kind and
        spacing (see :class:`MarkovTokens`).
        """
        keys = np.fromiter(self.lexicon.keys(), np.uint64, len(self.lexicon))
        rows, cats, values = self.sparse_counts()
        return {
            "settings": self.settings(),
            "categories": list(self.categories),
            "doc_counts": self.doc_counts.copy(),
            "token_counts": self.token_counts.copy(),
            "row_key": self.row_key.copy(),
            "row_prefix": self.row_prefix.copy(),
            "row_last": self.row_last.copy(),
            "row_order": self.row_order.copy(),
            "count_row": rows,
            "count_category": cats,
            "count_value": values,
            "lexicon_keys": keys,
            "lexicon_text": list(self.lexicon.values()),
            "lexicon_info": np.array([self.token_info[k] for k in self.lexicon], np.uint8),
        }

    @classmethod
    def from_arrays(cls, state: dict) -> "MarkovAccumulator":
        """Rebuild a model from :meth:`to_arrays` output (arrays may be read-only)."""
        model = cls(**state["settings"])
        for name in state["categories"]:
            model.category_index(name)
        model.doc_counts = np.array(state["doc_counts"], np.int64)
        model.token_counts = np.array(state["token_counts"], np.int64)
        n = len(state["row_key"])
        model._reserve(n)
        model._row_key[:n] = state["row_key"]
        model._row_prefix[:n] = state["row_prefix"]
        model._row_last[:n] = state["row_last"]
        model._row_order[:n] = state["row_order"]
        rows = np.asarray(state["count_row"], np.int64)
        cats = np.asarray(state["count_category"], np.int64)
        values = np.asarray(state["count_value"], np.int64)
        # each row's first listed category keeps its count in the row, the others go to pairs
        model._row_count[:n] = 0
        model._reserve_pairs(max(len(rows) - n, 0))
        model.n_pairs = K.load_counts(rows, cats, values, model._row_count, model._pairs)
        model.n_rows = n
        K.table_build(model._row_key, n, model._table)
        keys = np.asarray(state["lexicon_keys"]).tolist()
        model.lexicon = dict(zip(keys, state["lexicon_text"]))
        model.token_info = dict(zip(keys, np.asarray(state["lexicon_info"]).tolist()))
        return model

    def canonical(self) -> dict:
        """(order, prefix id, token id) -> {category: count}: equal for equal content."""
        out = {(k, p, w): {} for k, p, w in zip(self.row_order.tolist(), self.row_prefix.tolist(),
                                                 self.row_last.tolist())}
        keys = list(out)
        for r, c, v in zip(*(a.tolist() for a in self.sparse_counts())):
            out[keys[r]][self.categories[c]] = v
        return out

    def __getstate__(self) -> dict:
        """Pickle the counts, not the derived chains (rebuilt on demand)."""
        state = self.__dict__.copy()
        state["_cache"] = {}
        return state

    def __setstate__(self, state: dict) -> None:
        if "_counts" in state:  # pickled before counts were sparse: rebuild through to_arrays' format
            n, n_cat = state["n_rows"], len(state["categories"])
            rows, cats = np.nonzero(state["_counts"][:n, :n_cat])
            arrays = {"settings": {k: state[k] for k in ("order", "method", "discount", "alpha", "alpha_per_type")},
                      "categories": state["categories"], "doc_counts": state["doc_counts"],
                      "token_counts": state["token_counts"], "count_row": rows, "count_category": cats,
                      "count_value": state["_counts"][rows, cats],
                      "lexicon_keys": np.fromiter(state["lexicon"], np.uint64, len(state["lexicon"])),
                      "lexicon_text": list(state["lexicon"].values()),
                      "lexicon_info": np.array([state["token_info"][k] for k in state["lexicon"]], np.uint8)}
            for name in ("row_key", "row_prefix", "row_last", "row_order"):
                arrays[name] = state["_" + name][:n]
            fresh = type(self).from_arrays(arrays)
            fresh.text_index = state.get("text_index")
            state = fresh.__dict__
        self.__dict__.update(state)

    def __repr__(self) -> str:
        return (f"MarkovAccumulator(order={self.order}, {self.n_categories} categories, "
                f"{self.n_documents} documents, {self.n_tokens} tokens, {self.n_rows} rows)")

    # -- compiled chains -----------------------------------------------------------------

    def _structure(self) -> dict:
        """Vocabulary, dense ids and row links (derived from the counts, cached)."""
        if "structure" in self._cache:
            return self._cache["structure"]
        orders = self.row_order
        vocab = np.sort(self.row_key[orders == 1])
        last_dense = np.searchsorted(vocab, self.row_last).astype(np.int64)
        prefix_row, suffix_row, bos_initial, bad = K.derive_rows(
            self.row_key, self.row_prefix, self.row_last, orders, self._table, self.order)
        if bad:
            raise ValueError(f"{bad} rows lack their prefix or suffix n-gram: the counts are inconsistent")
        n_v = len(vocab)
        texts = np.array([self.lexicon.get(int(v), "?") for v in vocab] + ["<unk>"], dtype=object)
        info = np.array([self.token_info.get(int(v), K.K_WORD | 24) for v in vocab] + [K.K_WORD | 24], np.int64)
        eos = int(np.searchsorted(vocab, K.EOS_ID))
        eos = eos if eos < n_v and vocab[eos] == K.EOS_ID else -1
        abbrev = np.isin(vocab, _token_ids(sorted(self.abbreviations)))
        s = {
            "vocab": vocab, "last_dense": last_dense, "prefix_row": prefix_row,
            "suffix_row": suffix_row, "bos_initial": bos_initial, "texts": texts,
            "kind": info & 7, "sb": (info & 8) > 0, "sa": (info & 16) > 0, "eos": eos,
            "is_abbrev": np.append(abbrev, False),
        }
        if eos >= 0:
            s["sb"][eos] = s["sa"][eos] = False
        self._cache["structure"] = s
        return s

    def _chain(self, column: int, order: int, discount: float) -> _Chain:
        key = ("chain", column, order, discount)
        if key in self._cache:
            return self._cache[key]
        s = self._structure()
        col = self._column(column)
        (ctx_start, ctx_parent, ctx_raw, ctx_kn, ctx_order, e_tok, e_next, cum_raw, cum_kn,
         entry_row, bos_ctx) = K.build_chain(
            self.row_order, s["last_dense"], s["prefix_row"], s["suffix_row"], s["bos_initial"],
            col, order, discount, len(s["vocab"]), s["eos"])
        ch = (ctx_start, ctx_parent, ctx_raw, ctx_kn, e_tok, e_next, cum_raw, cum_kn)
        # sentence openers of this column, by (previous token, first token)
        opener = (self.row_order == 0) & (col > 0)
        rows = np.flatnonzero(opener)
        rows = rows[np.lexsort((s["last_dense"][rows], self.row_prefix[rows]))]
        open_cum = np.zeros(len(rows) + 1, np.int64)
        np.cumsum(col[rows], out=open_cum[1:])
        prev = self.row_prefix[rows]
        after_bos = prev == K.BOS_ID
        open_state = K.next_states(ch, len(s["vocab"]), np.zeros(len(rows), np.int64),
                                   np.where(after_bos, 0, self._dense(prev)))
        open_state[after_bos] = bos_ctx
        chain = _Chain(ch, int(bos_ctx), ctx_order, entry_row, open_cum, open_state,
                       s["last_dense"][rows].copy())
        self._cache[key] = chain
        return chain

    @staticmethod
    def _params(method: str, discount: float, alpha: float, per_type: bool, n_vocab: int) -> tuple:
        return (np.int64(METHODS[method]), np.float64(alpha), np.bool_(per_type),
                np.float64(discount), np.int64(n_vocab))

    def _setup(self, category, order, method, discount, alpha, alpha_per_type):
        """Chain and kernel parameters for one query; validates every argument."""
        self._require_fitted()
        method = self._check_method(self.method if method is None else method)
        discount = self.discount if discount is None else self._check_discount(discount)
        alpha = self.alpha if alpha is None else self._check_alpha(alpha)
        per_type = self.alpha_per_type if alpha_per_type is None else bool(alpha_per_type)
        chain = self._chain(self._column_of(category), self._order_of(order), discount)
        params = self._params(method, discount, alpha, per_type, len(self._structure()["vocab"]))
        return chain, params, method

    def _dense(self, ids: np.ndarray) -> np.ndarray:
        """Dense vocabulary index of token ids (-1 when unknown)."""
        vocab = self._structure()["vocab"]
        if len(vocab) == 0:
            return np.full(len(ids), -1, np.int64)
        pos = np.minimum(np.searchsorted(vocab, ids), len(vocab) - 1)
        return np.where(vocab[pos] == ids, pos, -1).astype(np.int64)

    def _batch(self, texts) -> MarkovTokens:
        if isinstance(texts, MarkovTokens):
            return texts
        if isinstance(texts, str):
            raise TypeError("pass a sequence of texts, not one str; wrap it in a list")
        return self.tokenize([self.prepare(t) for t in texts])

    def _prompt_state(self, chain, params, prompt) -> tuple[int, np.ndarray]:
        if prompt is None:
            return chain.bos_ctx, np.zeros(0, np.int64)
        dense = self._dense(self._batch([prompt]).ids)
        dense[dense < 0] = params[4]
        return int(K.advance(chain.ch, params, 0, dense)), dense

    # -- probabilities -------------------------------------------------------------------

    def distribution(self, prompt: str | None = None, *, category: str | None = None,
                     order: int | None = None, method: str | None = None,
                     discount: float | None = None, alpha: float | None = None,
                     alpha_per_type: bool | None = None) -> dict[str, float]:
        """p(next token | prompt) over the vocabulary and ``"<unk>"`` (sums to one).

        Without a prompt the context is the start of a document. Keys are token strings
        (a punctuation mark written with different spacing appears once per spelling;
        their probabilities add up).
        """
        chain, params, _ = self._setup(category, order, method, discount, alpha, alpha_per_type)
        state, _ = self._prompt_state(chain, params, prompt)
        probs = K.distribution(chain.ch, params, state)
        out: dict[str, float] = {}
        for text, p in zip(self._structure()["texts"].tolist(), probs.tolist()):
            text = "</s>" if text == "\n" else text
            out[text] = out.get(text, 0.0) + p
        return out

    def log_probs(self, texts, *, category: str | None = None, order: int | None = None,
                  method: str | None = None, discount: float | None = None,
                  alpha: float | None = None, alpha_per_type: bool | None = None) -> np.ndarray:
        """Natural log-probability of every held-out token and document end.

        Returns float64[n_tokens + n_docs]: for each document its tokens, then its end.
        Unknown tokens get the unknown-token slot's probability.
        """
        chain, params, _ = self._setup(category, order, method, discount, alpha, alpha_per_type)
        batch = self._batch(texts)
        return K.log_probs(chain.ch, params, self._dense(batch.ids), batch.bounds, chain.bos_ctx,
                           self._structure()["eos"])

    def perplexity(self, texts, **kwargs) -> float:
        """Held-out perplexity ``exp(-mean log p)`` over tokens and document ends.

        Takes the keyword arguments of :meth:`log_probs` (``order``, ``method``, ...).
        """
        lp = self.log_probs(texts, **kwargs)
        if len(lp) == 0:
            raise ValueError("perplexity() needs at least one document")
        return float(np.exp(-lp.mean()))

    # -- generation ----------------------------------------------------------------------

    def _lexicon_bytes(self) -> dict:
        """The structure with every token's UTF-8 bytes (``lex_buf``, ``lex_off``) and, for
        the kernels that write text, each token's bytes and spacing in one int64
        (``tok_pack``; None when a token is too long for it)."""
        s = self._structure()
        if "lex_buf" not in s:
            encoded = [t.encode("utf-8", "surrogatepass") for t in s["texts"].tolist()]
            s["lex_off"] = np.zeros(len(encoded) + 1, np.int64)
            np.cumsum([len(e) for e in encoded], out=s["lex_off"][1:])
            s["lex_buf"] = np.frombuffer(b"".join(encoded) + bytes(K.JOIN_BLOCK), np.uint8)
            s["max_len"] = max(map(len, encoded))
            fits = s["max_len"] <= K.PACK_LENGTH and s["lex_off"][-1] <= K.PACK_OFFSET
            s["tok_pack"] = K.token_pack(s["lex_off"], s["sb"], s["sa"]) if fits else None
        return s

    def _join(self, dense: np.ndarray) -> str:
        s = self._structure()
        dense = np.asarray(dense, np.int64)
        if len(dense) == 0:
            return ""
        if type(self).join_tokens is MarkovAccumulator.join_tokens:
            # the default hook, in one kernel pass over the tokens' UTF-8 bytes
            s = self._lexicon_bytes()
            raw = K.join_tokens(dense, s["lex_buf"], s["lex_off"], s["sb"], s["sa"])
            return str(raw, "utf-8", "surrogatepass")
        space = np.zeros(len(dense), bool)
        space[1:] = s["sa"][dense[:-1]] & s["sb"][dense[1:]]
        return self.join_tokens(s["texts"][dense], space)

    def generate(self, n_tokens: int = 100, prompt: str | None = None, seed=None,
                 temperature: float = 1.0, top_k: int | None = None, greedy: bool = False,
                 category: str | None = None, *, order: int | None = None,
                 method: str | None = None, discount: float | None = None,
                 alpha: float | None = None, alpha_per_type: bool | None = None,
                 include_prompt: bool = True) -> str:
        """Generate ``n_tokens`` tokens (words and marks; document ends print as newlines).

        Parameters
        ----------
        n_tokens : int
        prompt : str, optional
            Text to continue; without one, generation starts a document.
        seed : int, numpy Generator or None
            The same seed gives the same text; None draws fresh entropy.
        temperature : float
            Divides log-probabilities (< 1 sharper, > 1 flatter).
        top_k : int, optional
            Sample among the k most probable tokens only.
        greedy : bool
            Always take the most probable token (ignores seed, temperature, top_k).
        category : str, optional
            Generate from one category's counts (default: all categories together).
        include_prompt : bool
            Start the returned text with the prompt.
        """
        fused = type(self).join_tokens is MarkovAccumulator.join_tokens
        out, prompt_dense = self._generate(n_tokens, prompt, seed, temperature, top_k, greedy, category,
                                           order, method, discount, alpha, alpha_per_type, text=fused)
        if isinstance(out, tuple):  # written as text by the kernel
            text, first = out
        else:
            text, first = self._join(out), (int(out[0]) if len(out) else -1)
        text = text.strip("\n")
        if include_prompt and prompt:
            s = self._structure()
            if first < 0 or not text:
                gap = ""
            elif first == s["eos"]:
                gap = "\n"  # the prompt ended a document
            else:
                gap = " " if (len(prompt_dense) == 0 or s["sa"][prompt_dense[-1]]) and s["sb"][first] else ""
            text = prompt.rstrip() + gap + text
        return text

    def generate_ids(self, n_tokens: int = 100, prompt: str | None = None, seed=None, **kwargs) -> np.ndarray:
        """Like :meth:`generate`, but the token ids (uint64; ``EOS_ID`` = 3 ends a document)."""
        kwargs.pop("include_prompt", None)
        keys = ("temperature", "top_k", "greedy", "category", "order", "method", "discount", "alpha",
                "alpha_per_type")
        unknown = set(kwargs) - set(keys)
        if unknown:
            raise TypeError(f"unexpected arguments {sorted(unknown)}")
        defaults = {"temperature": 1.0, "top_k": None, "greedy": False}
        args = [kwargs.get(k, defaults.get(k)) for k in keys]
        out, _ = self._generate(n_tokens, prompt, seed, *args)
        return self._structure()["vocab"][out]

    def _generate(self, n_tokens, prompt, seed, temperature, top_k, greedy, category, order, method,
                  discount, alpha, alpha_per_type, text: bool = False) -> tuple:
        """Dense tokens and the prompt's dense tokens; with ``text``, plain sampling may give
        ``(text, first dense token or -1)`` in place of the tokens (the default join, written
        by the sampling kernel)."""
        chain, params, method = self._setup(category, order, method, discount, alpha, alpha_per_type)
        if isinstance(n_tokens, bool) or not isinstance(n_tokens, (int, np.integer)) or n_tokens < 0:
            raise ValueError(f"n_tokens must be a non-negative integer, got {n_tokens!r}")
        mode, temperature, top_k = self._mode(greedy, temperature, top_k)
        state, prompt_dense = self._prompt_state(chain, params, prompt)
        eos = self._structure()["eos"]
        if mode == 0 and max(len(chain.ch[4]), len(chain.ch[0]), int(params[4]) + 1) < 2**31 - 1:
            pc, pe = chain.sampler(params)
            blocks = chain.plain(params, eos) if method == "mle" else None
            plain = blocks is not None
            blk, off = blocks if plain else _NO_BLOCKS
            tok_pack = self._lexicon_bytes()["tok_pack"] if text else None
            args = (state, int(n_tokens), _seed_state(seed))
            if tok_pack is not None:
                s = self._structure()
                raw, first = K.generate_text(pc, pe, blk, off, plain, tok_pack, s["lex_buf"], s["max_len"], *args,
                                             params[4], eos, chain.bos_ctx, K.LANES)
                return (str(raw, "utf-8", "surrogatepass"), int(first)), prompt_dense
            if plain:
                return K.generate_plain(pc, blk, off, *args, eos, chain.bos_ctx, K.LANES), prompt_dense
            return K.generate_fast(pc, pe, *args, params[4], eos, chain.bos_ctx, K.LANES), prompt_dense
        rank = chain.rank(method) if mode == 1 else _NO_RANK
        out = K.generate(chain.ch, params, state, int(n_tokens), _seed_state(seed), mode, temperature,
                         top_k, rank, self._structure()["eos"], chain.bos_ctx)
        return out, prompt_dense

    @staticmethod
    def _mode(greedy, temperature, top_k) -> tuple[int, float, int]:
        if greedy:
            return 1, 1.0, 0
        if not float(temperature) > 0:
            raise ValueError(f"temperature must be positive, got {temperature!r} (use greedy=True for 0)")
        if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 1):
            raise ValueError(f"top_k must be a positive integer or None, got {top_k!r}")
        if float(temperature) == 1.0 and top_k is None:
            return 0, 1.0, 0
        return 2, float(temperature), int(top_k or 0)

    def make_sentence(self, tries: int = 10, *, seed=None, category: str | None = None,
                      order: int | None = None, method: str | None = None,
                      temperature: float = 1.0, top_k: int | None = None, min_words: int = 1,
                      max_words: int | None = None, test_output: bool = True,
                      max_overlap_ratio: float = 0.7, max_overlap_total: int = 15) -> str | None:
        """One sentence, or None when ``tries`` attempts all fail (never raises for that).

        A sentence starts from a sentence opener drawn by its count (its first token and
        the token before it, e.g. ``BOS`` or a full stop) and runs to where the next
        token would begin a new sentence or the document ends. Attempts with fewer than
        ``min_words`` or more than ``max_words`` words fail; with ``test_output`` and a
        :attr:`text_index` (see :meth:`index_text`), so do those that copy a run of more
        than ``min(max_overlap_total, round(max_overlap_ratio * words))`` words verbatim
        from the training text (markovify's rule).
        """
        chain, params, method = self._setup(category, order, method, None, None, None)
        mode, temperature, top_k = self._mode(False, temperature, top_k)
        if len(chain.open_first) == 0 or tries < 1:
            return None
        s = self._structure()
        tokens, bounds = K.make_sentences(
            chain.ch, params, int(tries), _MAX_SENTENCE_TOKENS, _seed_state(seed), mode,
            temperature, top_k, _NO_RANK, s["eos"], s["kind"], s["sa"], s["is_abbrev"],
            chain.open_cum, chain.open_state, chain.open_first)
        for i in range(int(tries)):
            sent = tokens[bounds[i] : bounds[i + 1]]
            words = int(np.isin(s["kind"][sent], (K.K_LOWER, K.K_WORD)).sum())
            if words < min_words or (max_words is not None and words > max_words):
                continue
            if test_output and self.text_index is not None:
                if self._copied_words(sent) > min(max_overlap_total, round(max_overlap_ratio * words)):
                    continue
            return self._join(sent)
        return None

    def _copied_words(self, dense: np.ndarray) -> int:
        """Most words in one run of ``dense`` tokens found verbatim in :attr:`text_index`."""
        s = self._structure()
        ms = self.text_index.matching_statistics(s["vocab"][np.minimum(dense, len(s["vocab"]) - 1)])
        is_word = np.isin(s["kind"][dense], (K.K_LOWER, K.K_WORD))
        cum = np.concatenate([[0], np.cumsum(is_word)])
        ends = np.minimum(np.arange(len(dense)) + ms, len(dense))
        return int((cum[ends] - cum[: len(dense)]).max()) if len(dense) else 0

    # -- verbatim recall -----------------------------------------------------------------

    def index_text(self, texts) -> "VerbatimIndex":
        """Index training texts for verbatim look-ups; sets :attr:`text_index`.

        The index is not part of the counts: :meth:`merge` and :meth:`to_arrays` leave
        it out.
        """
        self.text_index = VerbatimIndex(self._batch(texts))
        return self.text_index

    def recall(self, texts, *, prefix: int = 32, continuation: int = 50, sample: int | None = None,
               seed=0, orders: Sequence[int] | None = None, method: str | None = None,
               protocol: str = "document", category: str | None = None) -> list[RecallResult]:
        """Prompted extraction (Carlini et al. 2022) of training texts, per order.

        Parameters
        ----------
        texts : sequence of str or MarkovTokens
            The training documents (the model does not keep them).
        prefix, continuation : int
            Prompt length k and continuation length m, in tokens.
        sample : int, optional
            Seeded sample of that many prompts (default: every eligible document in the
            ``"document"`` protocol, 1000 positions in the ``"stream"`` protocol).
        orders : sequence of int, optional
            Orders to measure (default: 2..order).
        protocol : {"document", "stream"}
            ``"document"``: the prompt is a document's first k tokens (after ``BOS``);
            documents shorter than k + m are skipped. ``"stream"``: prompts start at
            positions drawn uniformly from every window of k + m tokens inside a
            document (pass a whole book as one document to sample across it).

        Returns
        -------
        list of RecallResult, one per order: a sample counts as extractable when greedy
        decoding reproduces all m tokens; ``mean_match`` is the mean number of leading
        tokens reproduced.
        """
        self._require_fitted()
        if protocol not in ("document", "stream"):
            raise ValueError(f"protocol must be 'document' or 'stream', got {protocol!r}")
        if prefix < 0 or continuation < 1:
            raise ValueError(f"need prefix >= 0 and continuation >= 1, got {prefix}, {continuation}")
        method = self._check_method(self.method if method is None else method)
        batch = self._batch(texts)
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
        docs = docs.astype(np.int64)
        dense = self._dense(batch.ids)
        params_table = self.parameters()
        results = []
        for order in (range(2, self.order + 1) if orders is None else orders):
            chain, params, _ = self._setup(category, order, method, None, None, None)
            match = K.prompted_recall(chain.ch, params, dense, batch.bounds, docs, pos.astype(np.int64),
                                      prefix, continuation, chain.rank(method), chain.bos_ctx)
            hits = int((match == continuation).sum())
            n = len(match)
            low, high = _wilson(hits, n)
            stats = params_table[order - 1]
            results.append(RecallResult(
                order=order, method=method, protocol=protocol, prefix=prefix, continuation=continuation,
                samples=n, skipped=int(skipped), extractable=hits, fraction=hits / n if n else 0.0,
                ci95_low=low, ci95_high=high, mean_match=float(match.mean()) if n else 0.0,
                parameters=stats["cumulative_pairs"], contexts=stats["cumulative_contexts"],
                chain_bytes=chain.nbytes))
        return results

    def free_recall(self, index: "VerbatimIndex | None" = None, n_tokens: int = 10_000, seed=0, *,
                    category: str | None = None, order: int | None = None, method: str | None = None,
                    temperature: float = 1.0, top_k: int | None = None, max_overlap_ratio: float = 0.7,
                    max_overlap_total: int = 15) -> dict:
        """Verbatim copying in free generation, measured against the training text.

        Generates ``n_tokens`` tokens and reports the longest run found verbatim in the
        index (default :attr:`text_index`), the mean verbatim match length per position,
        and the share of generated sentences that markovify's overlap rule would reject
        (a run of more than ``min(max_overlap_total, round(max_overlap_ratio * words))``
        words copied).
        """
        index = index or self.text_index
        if index is None:
            raise ValueError("free_recall() needs the training text: call index_text(texts) first or pass index=")
        chain, params, method = self._setup(category, order, method, None, None, None)
        mode, temperature, top_k = self._mode(False, temperature, top_k)
        s = self._structure()
        out = K.generate(chain.ch, params, chain.bos_ctx, int(n_tokens), _seed_state(seed), mode,
                         temperature, top_k, _NO_RANK, s["eos"], chain.bos_ctx)
        ids = s["vocab"][out]
        ids[out == s["eos"]] = K.EOS_ID  # never in the index: runs stop at document ends
        ms = index.matching_statistics(ids)
        # sentences: split at document ends and where the tokeniser would start one
        info = (s["kind"] | (s["sb"] << 3) | (s["sa"] << 4)).astype(np.uint8)[out]
        bounds = np.array([0, len(out)], np.int64)
        starts = K.sentence_starts(ids, info, bounds, np.unique(_token_ids(sorted(self.abbreviations))))
        starts[1:] |= out[:-1] == s["eos"]
        keep = out != s["eos"]
        sent_id = np.cumsum(starts) - 1
        rejected = n_sent = 0
        for sid in np.unique(sent_id[keep]):
            where = np.flatnonzero((sent_id == sid) & keep)
            dense = out[where]
            words = int(np.isin(s["kind"][dense], (K.K_LOWER, K.K_WORD)).sum())
            if words == 0:
                continue
            n_sent += 1
            local = np.minimum(ms[where], len(where) - np.arange(len(where)))
            is_word = np.isin(s["kind"][dense], (K.K_LOWER, K.K_WORD))
            cum = np.concatenate([[0], np.cumsum(is_word)])
            copied = int((cum[np.arange(len(where)) + local] - cum[:-1]).max())
            rejected += copied > min(max_overlap_total, round(max_overlap_ratio * words))
        return {
            "order": self._order_of(order),
            "method": method, "tokens": int(keep.sum()),
            "longest_verbatim_run": int(ms.max()) if len(ms) else 0,
            "mean_verbatim_match": float(ms[keep].mean()) if keep.any() else 0.0,
            "sentences": n_sent, "rejected_by_overlap_rule": rejected,
            "rejected_share": rejected / n_sent if n_sent else 0.0,
        }

    # -- accounting ----------------------------------------------------------------------

    def parameters(self) -> list[dict]:
        """Per order 1..order: distinct contexts, distinct (context, next) pairs, bytes.

        ``pairs`` are the rows of that order (the model's parameters are their counts,
        one per category where non-zero); ``contexts`` the distinct contexts of length
        order-1 that have a continuation; ``bytes`` the in-memory size of those rows
        (key, prefix, last token, order, total count and first category: 41 bytes, plus
        32 for every further category with a non-zero count: a 16-byte slot of the pair
        table, at most half full). The cumulative columns describe a model of that order
        (orders 1..n).
        """
        if "parameters" in self._cache:
            return [dict(r) for r in self._cache["parameters"]]
        orders = self.row_order
        prefix_row = self._structure()["prefix_row"] if self.n_rows else np.zeros(0, np.int64)
        out = []
        cum_pairs = cum_ctx = cum_bytes = 0
        nonzero = np.bincount(self.sparse_counts()[0], minlength=self.n_rows)
        for k in range(1, self.order + 1):
            sel = orders == k
            pairs = int(sel.sum())
            mark = np.zeros(self.n_rows + 3, bool)
            mark[prefix_row[sel] + 3] = True
            contexts = int(mark.sum())
            counts = int(nonzero[sel].sum())
            n_bytes = pairs * 41 + (counts - pairs) * 32
            cum_pairs += pairs
            cum_ctx += contexts
            cum_bytes += n_bytes
            out.append({"order": k, "contexts": contexts, "pairs": pairs,
                        "counts": counts, "bytes": n_bytes,
                        "cumulative_contexts": cum_ctx, "cumulative_pairs": cum_pairs,
                        "cumulative_bytes": cum_bytes})
        self._cache["parameters"] = out
        return [dict(r) for r in out]


class VerbatimIndex:
    """Suffix array over training tokens, for verbatim look-ups of generated text.

    Parameters
    ----------
    batch : MarkovTokens
        The training documents; a match never crosses a document boundary.

    Examples
    --------
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
        ids = np.asarray(ids, np.uint64)
        if len(self.vocab) == 0:
            return np.full(len(ids), -1, np.int64)
        pos = np.minimum(np.searchsorted(self.vocab, ids), len(self.vocab) - 1)
        return np.where(self.vocab[pos] == ids, pos, -1).astype(np.int64)

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

"""The chain view of the counts: a vocabulary, and per category column and order a
compiled chain that scores, samples and decodes.

The counts of one category column at one order are compiled lazily into a
:class:`Chain`: contexts with their continuations sorted (CSR), prefix sums for scoring
and, for every continuation, the context that follows it, so decoding is
pointer-chasing without hashing. Sampling uses tables derived from the chain once per
smoother (see :mod:`accum._markov_kernels.sampling`): an alias table per context over
its continuations' full smoothed probabilities, plus the probability that a draw stays
among them; the plain table never backs off, so its contexts' blocks hold their alias
tables and the token that leads into them. Greedy decoding reads each context's
entries by decreasing weight (:meth:`Chain.rank`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import _markov_kernels as K
from .counts import NgramCounts
from .tokens import abbreviation_ids, dense_index

METHODS = {"dirichlet": K.DIRICHLET, "kn": K.KNESER_NEY, "mle": K.MLE}
_NO_RANK = np.zeros(0, np.int64)
_NO_BLOCKS = (np.zeros(1, np.int32), np.zeros(1, np.int64))  # the plain blocks, when a call does not use them
_UNKNOWN_INFO = K.K_WORD | K.SPACE_BEFORE | K.SPACE_AFTER  # a token the lexicon lacks: a word between spaces


@dataclass(frozen=True)
class Vocabulary:
    """The tokens of a model in dense order (the sorted ids of its unigram rows), plus the
    unknown token at index ``V``: what generation writes and the sentence rule reads.

    Attributes
    ----------
    ids : uint64[V]
    texts : object[V + 1]
        Each token's text (``"<unk>"`` for the unknown token).
    kind : int64[V + 1]
        ``K_LOWER`` ... ``K_PUNCT`` (see :mod:`accum._markov_kernels`).
    space_before, space_after : bool[V + 1]
        Whether whitespace stood before (after) the token (never around ``EOS``).
    is_abbrev : bool[V + 1]
        The token is an abbreviation (a terminal after it does not end a sentence).
    eos : int
        Dense index of the document end (-1 when no document was counted).
    """

    ids: np.ndarray
    texts: np.ndarray
    kind: np.ndarray
    space_before: np.ndarray
    space_after: np.ndarray
    is_abbrev: np.ndarray
    eos: int

    @property
    def size(self) -> int:
        """V, the number of known tokens."""
        return len(self.ids)

    @classmethod
    def of(cls, counts: NgramCounts) -> "Vocabulary":
        """The vocabulary of ``counts`` (its lexicon gives texts and kinds)."""
        vocab = counts.links().vocab
        texts = np.array([counts.lexicon.get(int(v), "?") for v in vocab] + ["<unk>"], dtype=object)
        info = np.array([counts.token_info.get(int(v), _UNKNOWN_INFO) for v in vocab] + [_UNKNOWN_INFO], np.int64)
        eos = int(np.searchsorted(vocab, K.EOS_ID))
        eos = eos if eos < len(vocab) and vocab[eos] == K.EOS_ID else -1
        space_before = (info & K.SPACE_BEFORE) > 0
        space_after = (info & K.SPACE_AFTER) > 0
        if eos >= 0:
            space_before[eos] = space_after[eos] = False
        is_abbrev = np.append(np.isin(vocab, abbreviation_ids(counts.abbreviations)), False)
        return cls(vocab, texts, info & 7, space_before, space_after, is_abbrev, eos)

    def sentence_rule(self) -> K.SentenceRule:
        return K.SentenceRule(self.kind, self.space_after, self.is_abbrev)

    def is_word(self, dense: np.ndarray) -> np.ndarray:
        """Whether each dense token is a word (not a mark or a document end)."""
        return np.isin(self.kind[dense], (K.K_LOWER, K.K_WORD))

    def spelling_info(self) -> np.ndarray:
        """The info byte of every token (``kind | space_before << 3 | space_after << 4``)."""
        return (self.kind | (self.space_before << 3) | (self.space_after << 4)).astype(np.uint8)


@dataclass(frozen=True)
class Spellings:
    """Every token's UTF-8 bytes, for the kernels that write text.

    Attributes
    ----------
    buf : uint8[n_bytes + JOIN_BLOCK]
        Token w's bytes are ``buf[offsets[w]:offsets[w + 1]]``; spare bytes at the end.
    offsets : int64[V + 2]
    max_len : int
        Bytes of the longest token.
    pack : int64[V + 1] or None
        Each token's bytes and spacing in one int64 (``token_pack``); None when a token
        is too long for it.
    """

    buf: np.ndarray
    offsets: np.ndarray
    max_len: int
    pack: np.ndarray | None

    @classmethod
    def of(cls, vocabulary: Vocabulary) -> "Spellings":
        encoded = [t.encode("utf-8", "surrogatepass") for t in vocabulary.texts.tolist()]
        offsets = np.zeros(len(encoded) + 1, np.int64)
        np.cumsum([len(e) for e in encoded], out=offsets[1:])
        buf = np.frombuffer(b"".join(encoded) + bytes(K.JOIN_BLOCK), np.uint8)
        max_len = max(map(len, encoded))
        fits = max_len <= K.PACK_LENGTH and offsets[-1] <= K.PACK_OFFSET
        pack = K.token_pack(offsets, vocabulary.space_before, vocabulary.space_after) if fits else None
        return cls(buf, offsets, max_len, pack)

    def join(self, dense: np.ndarray, vocabulary: Vocabulary) -> str:
        """Dense tokens joined as text (a space where one stood after the previous token
        and before this one)."""
        raw = K.join_tokens(dense, self.buf, self.offsets, vocabulary.space_before, vocabulary.space_after)
        return str(raw, "utf-8", "surrogatepass")


def make_query(method: str, discount: float, alpha: float, per_type: bool, n_vocab: int) -> K.Query:
    """The kernels' :class:`~accum._markov_kernels.chains.Query`."""
    return K.Query(np.int64(METHODS[method]), np.float64(alpha), np.bool_(per_type), np.float64(discount),
                   np.int64(n_vocab))


@dataclass
class Chain:
    """A compiled category column at one order (see the module notes)."""

    arrays: K.ChainArrays
    bos_ctx: int
    ctx_order: np.ndarray
    openers: K.Openers
    _tables: dict = field(default_factory=dict, repr=False)  # sampling tables and ranks, by smoother

    @classmethod
    def compile(cls, counts: NgramCounts, vocabulary: Vocabulary, column: int, order: int,
                discount: float) -> "Chain":
        """The chain of ``counts``' column (-1: all categories) at ``order``."""
        links = counts.links()
        col = counts._column(column)
        arrays, ctx_order, bos_ctx = K.build_chain(
            counts.row_order, links.last_dense, links.prefix_row, links.suffix_row, links.bos_initial,
            col, order, discount, vocabulary.size, vocabulary.eos)
        # sentence openers of this column, by (previous token, first token)
        rows = np.flatnonzero((counts.row_order == 0) & (col > 0))
        rows = rows[np.lexsort((links.last_dense[rows], counts.row_prefix[rows]))]
        open_cum = np.zeros(len(rows) + 1, np.int64)
        np.cumsum(col[rows], out=open_cum[1:])
        prev = counts.row_prefix[rows]
        after_bos = prev == K.BOS_ID
        prev_dense = np.where(after_bos, 0, dense_index(links.vocab, prev))
        open_state = K.next_states(arrays, vocabulary.size, np.zeros(len(rows), np.int64), prev_dense)
        open_state[after_bos] = bos_ctx
        openers = K.Openers(open_cum, open_state, links.last_dense[rows].copy())
        return cls(arrays, int(bos_ctx), ctx_order, openers)

    @property
    def nbytes(self) -> int:
        """Bytes of the arrays generation and scoring use (ranks for greedy not included)."""
        return int(sum(a.nbytes for a in self.arrays))

    @property
    def n_contexts(self) -> int:
        return len(self.arrays.ctx_start) - 1

    @property
    def n_entries(self) -> int:
        return len(self.arrays.e_tok)

    @staticmethod
    def table_key(kind: str, query: K.Query) -> tuple:
        """Key of the ``kind`` tables ("sampler", "plain") of one smoother in the cache."""
        return kind, int(query.method), float(query.alpha), bool(query.per_type), float(query.discount)

    def sampler(self, query: K.Query) -> tuple[np.ndarray, np.ndarray]:
        """Packed contexts and alias-table entries for sampling (cached per smoother)."""
        key = self.table_key("sampler", query)
        if key not in self._tables:
            # allocated here, by numpy (huge pages where allowed), and filled by the kernel
            pc = np.empty((self.n_contexts, 4), np.int64)
            pe = np.empty((self.n_entries, 5), np.int32)
            K.sampler_tables(self.arrays, query, self.ctx_order, pc, pe)
            self._tables[key] = (pc, pe)
        return self._tables[key]

    def plain(self, query: K.Query, eos: int) -> tuple | None:
        """Blocks for sampling the plain table with mostly one cache line a token
        (``plain_tables``) and where each context's block is, or None when this chain's
        draws can back off."""
        key = self.table_key("plain", query)
        if key not in self._tables:
            pc, pe = self.sampler(query)
            off, size = K.plain_layout(pc)
            blocks = None
            if size < 2**31 - K.PLAIN_LINE:
                raw = np.zeros(size + K.PLAIN_LINE, np.int32)  # numpy: huge pages where allowed
                shift = (-raw.ctypes.data // 4) % K.PLAIN_LINE  # blocks laid out from a cache line's start
                blk = raw[shift : shift + size]
                if K.plain_tables(pc, pe, self.bos_ctx, eos, off, blk):
                    blocks = (blk, off)
            self._tables[key] = blocks
        return self._tables[key]

    def rank(self, method: str) -> np.ndarray:
        """Entries by context, then decreasing weight, then token (for greedy decoding)."""
        family = "rank-kn" if method == "kn" else "rank-raw"
        if family not in self._tables:
            cum = self.arrays.cum_kn if family == "rank-kn" else self.arrays.cum_raw
            self._tables[family] = K.rank_entries(self.arrays.ctx_start, cum)
        return self._tables[family]

    def decoding(self, mode: int, temperature: float, top_k: int, method: str) -> K.Decoding:
        """The kernels' :class:`~accum._markov_kernels.decoding.Decoding` (the rank only
        when greedy)."""
        rank = self.rank(method) if mode == K.GREEDY else _NO_RANK
        return K.Decoding(np.int64(mode), np.float64(temperature), np.int64(top_k), rank)

    def fast_sampling(self, query: K.Query) -> bool:
        """Whether plain sampling may use the packed tables (their items fit in 31 bits)."""
        return max(self.n_entries, self.n_contexts + 1, int(query.n_vocab) + 1) < 2**31 - 1

    def sample(self, query: K.Query, method: str, state: int, n_tokens: int, rng: np.ndarray, eos: int,
               spellings: Spellings | None = None):
        """Plain sampling from the packed tables (see :meth:`fast_sampling`): dense tokens,
        or with ``spellings`` whose tokens fit its pack, ``(text, first dense token or
        -1)`` written by the kernel."""
        pc, pe = self.sampler(query)
        blocks = self.plain(query, eos) if method == "mle" else None
        plain = blocks is not None
        blk, off = blocks if plain else _NO_BLOCKS
        if spellings is not None and spellings.pack is not None:
            raw, first = K.generate_text(pc, pe, blk, off, plain, spellings.pack, spellings.buf, spellings.max_len,
                                         state, n_tokens, rng, query.n_vocab, eos, self.bos_ctx, K.LANES)
            return str(raw, "utf-8", "surrogatepass"), int(first)
        if plain:
            return K.generate_plain(pc, blk, off, state, n_tokens, rng, eos, self.bos_ctx, K.LANES)
        return K.generate_fast(pc, pe, state, n_tokens, rng, query.n_vocab, eos, self.bos_ctx, K.LANES)

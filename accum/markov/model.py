"""MarkovAccumulator: the generator's front, as markovify's Text is to its Chain: the
hooks that turn text into tokens and back, argument checks, and the queries
(probabilities, generation, sentences, recall) over the chain view of the counts."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .. import _markov_kernels as K
from .chain import Chain, Spellings, Vocabulary, make_query, METHODS
from .counts import NgramCounts
from .recall import Prompts, RecallResult, VerbatimIndex, copied_words, free_recall, prompted_recall, wilson
from .tokens import MarkovTokens, abbreviation_ids, dense_index, tokenize

DEFAULT_ORDER = 4
_MAX_SENTENCE_TOKENS = 256
#: The hooks a subclass (or an instance) may override one at a time.
HOOKS = ("prepare", "tokenize", "join_tokens")


def _seed_state(seed) -> np.ndarray:
    """The kernel's RNG state from an int, a numpy Generator or None (fresh entropy)."""
    if isinstance(seed, np.random.Generator):
        seed = int(seed.integers(0, 2**63))
    elif seed is None:
        seed = int(np.random.default_rng().integers(0, 2**63))
    elif isinstance(seed, (bool, float)) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int, a numpy Generator or None, got {seed!r}")
    return np.array([int(seed) % 2**64], np.uint64)


class MarkovAccumulator(NgramCounts):
    """Per-category n-gram counts for generation, smoothing and verbatim recall.

    Parameters
    ----------
    order : int
        Highest n-gram order (contexts of up to ``order - 1`` tokens), 1 to 32.
    method : {"kn", "dirichlet", "mle"}
        Default smoother for probabilities and generation.
    discount : float
        Kneser-Ney discount D, in (0, 1).
    alpha : float
        Dirichlet concentration (per distinct continuation when ``alpha_per_type``).
    alpha_per_type : bool
        Concentration ``alpha * T(h)`` (True) or a constant ``alpha`` (False).

    Notes
    -----
    Hooks a subclass (or an instance) may override one at a time: :meth:`prepare` (text
    before tokenising), :meth:`tokenize` (texts to :class:`MarkovTokens`),
    :meth:`join_tokens` (token strings back to text) and :attr:`abbreviations`. The
    default hooks have fused fast paths (tokenising on a second thread, text written by
    the sampling kernel); an overridden hook is always called.
    """

    #: The hooks of :data:`HOOKS` this class overrides (set for each subclass).
    _custom_hooks: frozenset = frozenset()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        mro = cls.__mro__
        mine = mro[: mro.index(MarkovAccumulator)]  # classes that come before ours
        cls._custom_hooks = frozenset(h for h in HOOKS if any(h in vars(k) for k in mine))

    def __init__(self, order: int = DEFAULT_ORDER, *, method: str = "kn", discount: float = 0.75,
                 alpha: float = 3.0, alpha_per_type: bool = True):
        if isinstance(order, bool) or not isinstance(order, (int, np.integer)) or not 1 <= order <= 32:
            raise ValueError(f"order must be an integer from 1 to 32, got {order!r}")
        super().__init__(int(order))
        self.method = self._check_method(method)
        self.discount = self._check_discount(discount)
        self.alpha = self._check_alpha(alpha)
        self.alpha_per_type = bool(alpha_per_type)
        self.text_index: VerbatimIndex | None = None

    def _default_hook(self, name: str) -> bool:
        """True when hook ``name`` is the default one: neither a subclass nor this instance
        overrides it."""
        return name not in self._custom_hooks and name not in vars(self)

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

    @staticmethod
    def _mode(greedy, temperature, top_k) -> tuple[int, float, int]:
        """Decoding mode (see :class:`~accum._markov_kernels.decoding.Decoding`), temperature, top-k."""
        if greedy:
            return K.GREEDY, 1.0, 0
        if not float(temperature) > 0:
            raise ValueError(f"temperature must be positive, got {temperature!r} (use greedy=True for 0)")
        if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 1):
            raise ValueError(f"top_k must be a positive integer or None, got {top_k!r}")
        if float(temperature) == 1.0 and top_k is None:
            return K.SAMPLE, 1.0, 0
        return K.FULL, float(temperature), int(top_k or 0)

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
        if not self._default_hook("prepare"):
            texts = [self.prepare(t) for t in texts]
        from .. import markov as package  # THREADS and the pipeline's sizes, read at each call

        if package.THREADS > 1 and self._default_hook("tokenize") and len(texts) > 1 \
                and all(isinstance(t, str) for t in texts):  # (else the error comes before any counting)
            ends = np.cumsum(np.fromiter(map(len, texts), np.int64, len(texts)))
            if ends[-1] >= package.PARALLEL_MIN_CHARS:
                self.add_in_chunks(texts, labels, ends, package.PIPELINE_CHUNKS, tokenize)
                return
        self.add_tokens(self.tokenize(texts), labels)

    def _batch(self, texts) -> MarkovTokens:
        if isinstance(texts, MarkovTokens):
            return texts
        if isinstance(texts, str):
            raise TypeError("pass a sequence of texts, not one str; wrap it in a list")
        return self.tokenize([self.prepare(t) for t in texts])

    # -- exchange ------------------------------------------------------------------------

    def settings(self) -> dict:
        """The constructor's arguments, JSON-able."""
        return {"order": self.order, "method": self.method, "discount": self.discount,
                "alpha": self.alpha, "alpha_per_type": self.alpha_per_type}

    def __repr__(self) -> str:
        return (f"MarkovAccumulator(order={self.order}, {self.n_categories} categories, "
                f"{self.n_documents} documents, {self.n_tokens} tokens, {self.n_rows} rows)")

    def count(self, text: str, *, category: str | None = None) -> int:
        """Count of the n-gram spelled by ``text``: its last token after the others.

        Marks are written as in running text (``"God said,"``), since a mark's spacing
        is part of its token.
        """
        ids = self.tokenize([self.prepare(text)]).ids
        if not 1 <= len(ids) <= self.order:
            raise ValueError(f"count() takes 1 to {self.order} tokens, got {len(ids)} in {text!r}")
        return self._count_of(ids, category)

    # -- the chain view ------------------------------------------------------------------

    def _vocabulary(self) -> Vocabulary:
        if self._derived.vocabulary is None:
            self._derived.vocabulary = Vocabulary.of(self)
        return self._derived.vocabulary

    def _spellings(self) -> Spellings:
        if self._derived.spellings is None:
            self._derived.spellings = Spellings.of(self._vocabulary())
        return self._derived.spellings

    def _chain(self, column: int, order: int, discount: float) -> Chain:
        key = (column, order, discount)
        if key not in self._derived.chains:
            self._derived.chains[key] = Chain.compile(self, self._vocabulary(), column, order, discount)
        return self._derived.chains[key]

    def _setup(self, category, order, method, discount, alpha, alpha_per_type) -> tuple[Chain, K.Query, str]:
        """Chain, kernel query and method for one query; validates every argument."""
        self._require_fitted()
        method = self._check_method(self.method if method is None else method)
        discount = self.discount if discount is None else self._check_discount(discount)
        alpha = self.alpha if alpha is None else self._check_alpha(alpha)
        per_type = self.alpha_per_type if alpha_per_type is None else bool(alpha_per_type)
        chain = self._chain(self._column_of(category), self._order_of(order), discount)
        return chain, make_query(method, discount, alpha, per_type, self._vocabulary().size), method

    def _prompt_state(self, chain: Chain, query: K.Query, prompt) -> tuple[int, np.ndarray]:
        """The context after a prompt (``BOS``'s without one) and the prompt's dense tokens."""
        if prompt is None:
            return chain.bos_ctx, np.zeros(0, np.int64)
        dense = dense_index(self._vocabulary().ids, self._batch([prompt]).ids)
        dense[dense < 0] = query.n_vocab
        return int(K.advance(chain.arrays, query.n_vocab, 0, dense)), dense

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
        chain, query, _ = self._setup(category, order, method, discount, alpha, alpha_per_type)
        state, _ = self._prompt_state(chain, query, prompt)
        probs = K.distribution(chain.arrays, query, state)
        out: dict[str, float] = {}
        for text, p in zip(self._vocabulary().texts.tolist(), probs.tolist()):
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
        chain, query, _ = self._setup(category, order, method, discount, alpha, alpha_per_type)
        batch = self._batch(texts)
        vocabulary = self._vocabulary()
        return K.log_probs(chain.arrays, query, dense_index(vocabulary.ids, batch.ids), batch.bounds, chain.bos_ctx,
                           vocabulary.eos)

    def perplexity(self, texts, **kwargs) -> float:
        """Held-out perplexity ``exp(-mean log p)`` over tokens and document ends.

        Takes the keyword arguments of :meth:`log_probs` (``order``, ``method``, ...).
        """
        lp = self.log_probs(texts, **kwargs)
        if len(lp) == 0:
            raise ValueError("perplexity() needs at least one document")
        return float(np.exp(-lp.mean()))

    # -- generation ----------------------------------------------------------------------

    def _join(self, dense: np.ndarray) -> str:
        """Dense tokens back to text, through :meth:`join_tokens`."""
        vocabulary = self._vocabulary()
        dense = np.asarray(dense, np.int64)
        if len(dense) == 0:
            return ""
        if self._default_hook("join_tokens"):
            return self._spellings().join(dense, vocabulary)  # the default hook, in one kernel pass
        space = np.zeros(len(dense), bool)
        space[1:] = vocabulary.space_after[dense[:-1]] & vocabulary.space_before[dense[1:]]
        return self.join_tokens(vocabulary.texts[dense], space)

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
        out, prompt_dense = self._generate(n_tokens, prompt, seed, temperature, top_k, greedy, category, order,
                                           method, discount, alpha, alpha_per_type,
                                           text=self._default_hook("join_tokens"))
        if isinstance(out, tuple):  # written as text by the kernel
            text, first = out
        else:
            text, first = self._join(out), (int(out[0]) if len(out) else -1)
        text = text.strip("\n")
        if include_prompt and prompt:
            vocabulary = self._vocabulary()
            if first < 0 or not text:
                gap = ""
            elif first == vocabulary.eos:
                gap = "\n"  # the prompt ended a document
            else:
                spaced = len(prompt_dense) == 0 or vocabulary.space_after[prompt_dense[-1]]
                gap = " " if spaced and vocabulary.space_before[first] else ""
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
        return self._vocabulary().ids[out]

    def _generate(self, n_tokens, prompt, seed, temperature, top_k, greedy, category, order, method,
                  discount, alpha, alpha_per_type, text: bool = False) -> tuple:
        """Dense tokens and the prompt's dense tokens; with ``text``, plain sampling may give
        ``(text, first dense token or -1)`` in place of the tokens (the default join, written
        by the sampling kernel)."""
        chain, query, method = self._setup(category, order, method, discount, alpha, alpha_per_type)
        if isinstance(n_tokens, bool) or not isinstance(n_tokens, (int, np.integer)) or n_tokens < 0:
            raise ValueError(f"n_tokens must be a non-negative integer, got {n_tokens!r}")
        mode, temperature, top_k = self._mode(greedy, temperature, top_k)
        state, prompt_dense = self._prompt_state(chain, query, prompt)
        eos = self._vocabulary().eos
        if mode == K.SAMPLE and chain.fast_sampling(query):
            spellings = self._spellings() if text else None
            return chain.sample(query, method, state, int(n_tokens), _seed_state(seed), eos, spellings), prompt_dense
        out = K.generate(chain.arrays, query, chain.decoding(mode, temperature, top_k, method), state, int(n_tokens),
                         _seed_state(seed), eos, chain.bos_ctx)
        return out, prompt_dense

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
        chain, query, method = self._setup(category, order, method, None, None, None)
        mode, temperature, top_k = self._mode(False, temperature, top_k)
        if len(chain.openers.first) == 0 or tries < 1:
            return None
        vocabulary = self._vocabulary()
        tokens, bounds = K.make_sentences(chain.arrays, query, chain.decoding(mode, temperature, top_k, method),
                                          int(tries), _MAX_SENTENCE_TOKENS, _seed_state(seed), vocabulary.eos,
                                          vocabulary.sentence_rule(), chain.openers)
        for i in range(int(tries)):
            sent = tokens[bounds[i] : bounds[i + 1]]
            words = int(vocabulary.is_word(sent).sum())
            if words < min_words or (max_words is not None and words > max_words):
                continue
            if test_output and self.text_index is not None:
                if copied_words(self.text_index, vocabulary, sent) > min(max_overlap_total,
                                                                         round(max_overlap_ratio * words)):
                    continue
            return self._join(sent)
        return None

    # -- verbatim recall -----------------------------------------------------------------

    def index_text(self, texts) -> VerbatimIndex:
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
        prompts = Prompts.draw(batch, protocol, prefix, continuation, sample, seed)
        dense = dense_index(self._vocabulary().ids, batch.ids)
        params_table = self.parameters()
        results = []
        for order in (range(2, self.order + 1) if orders is None else orders):
            chain, query, _ = self._setup(category, order, method, None, None, None)
            n, hits, mean_match = prompted_recall(chain, query, method, dense, batch.bounds, prompts, prefix,
                                                  continuation)
            low, high = wilson(hits, n)
            stats = params_table[order - 1]
            results.append(RecallResult(
                order=order, method=method, protocol=protocol, prefix=prefix, continuation=continuation,
                samples=n, skipped=prompts.skipped, extractable=hits, fraction=hits / n if n else 0.0,
                ci95_low=low, ci95_high=high, mean_match=mean_match,
                parameters=stats["cumulative_pairs"], contexts=stats["cumulative_contexts"],
                chain_bytes=chain.nbytes))
        return results

    def free_recall(self, index: VerbatimIndex | None = None, n_tokens: int = 10_000, seed=0, *,
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
        chain, query, method = self._setup(category, order, method, None, None, None)
        mode, temperature, top_k = self._mode(False, temperature, top_k)
        vocabulary = self._vocabulary()
        out = K.generate(chain.arrays, query, chain.decoding(mode, temperature, top_k, method), chain.bos_ctx,
                         int(n_tokens), _seed_state(seed), vocabulary.eos, chain.bos_ctx)
        measured = free_recall(index, vocabulary, out, abbreviation_ids(self.abbreviations), max_overlap_ratio,
                               max_overlap_total)
        return {"order": self._order_of(order), "method": method, **measured}

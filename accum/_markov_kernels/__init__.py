"""numba kernels of the n-gram generator, by concern.

Private: :mod:`accum.markov` validates input and calls these.

=================  =====================================================================
:mod:`.tokens`     words and punctuation marks, their ids, sentence starts
:mod:`.counts`     the row table, counting n-grams and openers, merging, sparse counts
:mod:`.chains`     compiling a category column into a chain; the back-off walk
:mod:`.decoding`   choosing tokens one at a time (sample, greedy, temperature, top-k),
                   sentences
:mod:`.sampling`   exact sampling from packed alias tables, many documents at once, text
                   written by the kernel
:mod:`.recall`     prompted recall and matching statistics
=================  =====================================================================

Hashing, UTF-8 decoding and the word-character rule come from :mod:`accum._primitives`
(shared with the classifier). Kernels call each other across these files;
:mod:`accum.config` keeps numba's cache right when any of them changes.

Conventions
-----------
Token ids
    64-bit hashes (FNV-1a of the UTF-8 bytes, then murmur3's finaliser), bumped to at
    least ``MIN_ID``; a word's id equals the classifier's id of the same (case-kept)
    word. A punctuation mark's id also mixes in whether whitespace stood before it
    (``sb``) and after it (``sa``), so ``"`` opening a quotation and ``"`` closing one
    are different tokens and text joins back with the spacing it was written with.
    Reserved ids: ``ROOT_ID`` (the empty context), ``BOS_ID``/``EOS_ID`` (start and end
    of a document), ``UNK_ID`` (unknown token).
Token info byte
    ``kind | sb << 3 | sa << 4``; kinds: ``K_LOWER`` (word starting with a lowercase
    letter), ``K_WORD`` (other words), ``K_TERMINAL`` (``. ? !`` and kin), ``K_CLOSER``
    (closing quote or bracket), ``K_PUNCT`` (any other mark).
n-gram rows
    An n-gram's id is ``ngram_id(prefix id, last token, order)`` with the prefix being
    the (n-1)-gram (``ROOT_ID`` for a unigram, whose id is its token id). A context is
    itself an n-gram, so a row ``(key, prefix, last, order, total, first category)``
    serves both as "``last`` follows context ``prefix``" and as the context ``key``.
    Rows of order 0 are sentence openers: ``prefix`` is the token before a sentence (or
    ``BOS_ID``) and ``last`` the sentence's first token.
Tables
    Open addressing with linear probing, ``cap`` a power of two, at most half full:
    ``table[cap, 2]`` holds (key, row) (key 0 = empty), one cache line per probe.
    Counts in a row's categories other than its first are in ``pairs[pcap, 2]``:
    (``((row + 1) << CAT_BITS) | category``, count), slot by the key's hash.
Chains (the compiled index of one category column at one order)
    Contexts ``0..n_ctx-1`` (0 is the empty context), each owning the entries
    ``ctx_start[c]:ctx_start[c + 1]`` sorted by dense token index, with its back-off
    ``ctx_parent`` (-1 below the empty context), raw total, Kneser-Ney total and order.
    Entry ``e`` holds ``e_tok`` (dense token), ``e_next`` (the context after emitting
    that token: the longest known suffix), prefix sums ``cum_raw`` of raw counts and
    ``cum_kn`` of discounted Kneser-Ney counts (``max(x - D, 0)``): a
    :class:`~.chains.ChainArrays`. A query's smoother is a :class:`~.chains.Query`
    (method ``DIRICHLET``, ``KNESER_NEY`` or ``MLE``, the plain table: the longest known
    context's relative frequencies, no interpolation); how tokens are chosen, a
    :class:`~.decoding.Decoding`.
Speed notes
    Avoid chained comparisons (``a <= x < b``) in byte loops: one such decoder measured
    30 times slower than the same tests joined with ``and``. Random reads of big tables
    dominate counting and sampling: keep a probe to one cache line, keep loops that
    wait on such reads free of branches that mispredict (a select instead) and of array
    (re)allocation (numba then adds reference counting to every iteration), and
    interleave independent work (lanes of documents) so that several reads are in
    flight: counting makes the keys of ``COUNT_BLOCK`` positions and fetches their table
    slots, then finds their rows and fetches their counts, then counts; sampling reads a
    context, then one entry row that holds its alias too. The counting kernel tracks
    sentence starts incrementally (a call of ``_starts_sentence`` per token cost more
    than the hashing and probing together). Fresh memory is slow to touch: size outputs
    close to what they need. Arrays that are read at random are allocated by numpy
    (huge pages where the system allows), not inside kernels.
"""

from .chains import (DIRICHLET, KNESER_NEY, MLE, ChainArrays, Query, advance, backoff_scratch, build_chain,
                     derive_rows, distribution, log_probs, next_state, next_states, rank_entries)
from .counts import (CAT_BITS, count_column, count_ngrams, load_counts, merge_rows, pairs_add, pairs_lookup,
                     pairs_rehash, sparse_counts, table_build, table_lookup)
from .decoding import FULL, GREEDY, SAMPLE, Decoding, Openers, SentenceRule, generate, make_sentences
from .recall import matching_statistics, prompted_recall
from .sampling import (JOIN_BLOCK, LANES, PACK_LENGTH, PACK_OFFSET, PLAIN_LINE, generate_fast, generate_plain,
                       generate_text, join_tokens, plain_layout, plain_tables, sampler_tables, token_pack)
from .tokens import (BOS_ID, EOS_ID, K_CLOSER, K_LOWER, K_PUNCT, K_TERMINAL, K_WORD, MIN_ID, ROOT_ID,
                     SPACE_AFTER, SPACE_BEFORE, TOKEN_BYTES, UNK_ID, ngram_id, opener_id, sentence_starts, tokenize)

from .._prefetch import prefetch_row as _prefetch_row  # noqa: E402,F401  (benchmarks/markov_peers.py's floor kernels)

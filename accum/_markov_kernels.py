"""numba kernels of the n-gram generator: tokenise with punctuation, count, index, decode.

Private: :mod:`accum.markov` validates input and calls these. Kernels that call each
other share this file, because numba's cache does not notice changes in other files; the
small hash helpers are copies of those in :mod:`accum._kernels` for that reason.

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
    ``cum_kn`` of discounted Kneser-Ney counts (``max(x - D, 0)``). The chain is packed in
    a tuple ``ch = (ctx_start, ctx_parent, ctx_raw, ctx_kn, e_tok, e_next, cum_raw,
    cum_kn)``; query parameters in ``params = (method, alpha, alpha_per_type, discount,
    n_vocab)`` with method ``DIRICHLET``, ``KNESER_NEY`` or ``MLE`` (the plain table: the
    longest known context's relative frequencies, no interpolation). For sampling,
    :func:`sampler_tables` packs a chain into per-context rows and alias-table entries
    (see there).
Speed notes
    Hot loops compute each level's mass inline: a helper returning a (float, float)
    tuple measured 3-4 times slower here. Avoid chained comparisons (``a <= x < b``) in
    byte loops: one such decoder measured 30 times slower than the same tests joined
    with ``and``. Random reads of big tables dominate counting and sampling: keep a
    probe to one cache line, keep loops that wait on such reads free of branches that
    mispredict (a select instead) and of array (re)allocation (numba then adds
    reference counting to every iteration), and interleave independent work (lanes of
    documents) so that several reads are in flight. A read that misses costs about
    160 ns on the benchmark machine, and about 20 ns when eight independent ones are
    in flight: so fetch well ahead (counting makes the keys of ``COUNT_BLOCK`` positions
    and fetches their table slots, then finds their rows and fetches their counts, then
    counts: 30 % faster than a ring that fetched slots 7 tokens ahead and read each count
    as the row was found; one token ahead was 30 % slower still)
    and keep a dependent chain short (sampling reads a context, then one entry row that
    holds its alias too; the plain table's blocks hold a context's alias table and the
    token that leads in, so mostly one cache line a token). Sampling 32 lanes took 10-13
    ns a token on the Xeon where 8 took 28 (a plain-table step is mostly arithmetic then:
    an integer bucket pick instead of a float one saved 2-3 ns). On that machine (a VM)
    a random read beyond the 2 MB L2 costs 6-10 ns even with many in flight, so hashing
    every n-gram into a 32-64 MB table stays the floor of counting; a smaller table at a
    higher load (5/8) measured slower, per-order regions of the table too. The counting
    kernel tracks sentence starts incrementally: calling ``_starts_sentence`` per token
    cost more than the hashing and probing together. Fresh memory is slow to touch: size
    outputs close to what they need. Arrays that are read at random are allocated by
    numpy (huge pages where the system allows), not inside kernels.
"""

import numpy as np
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from ._prefetch import emit_prefetch
from .config import NJIT_OPTIONS

FNV_OFFSET = np.uint64(0xCBF29CE484222325)
FNV_PRIME = np.uint64(0x100000001B3)
MIX_1 = np.uint64(0xFF51AFD7ED558CCD)
MIX_2 = np.uint64(0xC4CEB9FE1A85EC53)
SALT = np.uint64(0x9E3779B97F4A7C15)
PUNCT_SALT = np.uint64(0xD6E8FEB86659FD93)
OPENER_SALT = np.uint64(0xA0761D6478BD642F)
SM_1 = np.uint64(0xBF58476D1CE4E5B9)
SM_2 = np.uint64(0x94D049BB133111EB)
S33 = np.uint64(33)
S32 = np.uint64(32)
M32 = np.uint64(0xFFFFFFFF)
ZERO = np.uint64(0)
ONE = np.uint64(1)

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

DIRICHLET = 0
KNESER_NEY = 1
MLE = 2

JOIN_BLOCK = 16  # bytes join_tokens copies per token at once; its lexicon ends with as many spare

# -- memory --------------------------------------------------------------------------------


@intrinsic
def _prefetch_row(typingctx, arr, idx):
    """Hint the CPU to fetch the cache lines of row ``arr[idx]`` (a 2-D C array; its first
    and last item): LLVM's ``prefetch`` (read, high locality), so that a table read a step
    ahead overlaps this one."""
    sig = types.void(arr, idx)

    def codegen(context, builder, signature, args):
        aryty = signature.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        last = builder.sub(cgutils.unpack_tuple(builder, ary.shape)[1], context.get_constant(types.intp, 1))
        for col in (context.get_constant(types.intp, 0), last):
            emit_prefetch(builder, cgutils.get_item_pointer(context, builder, aryty, ary, [args[1], col],
                                                            wraparound=False))
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def _prefetch_word(typingctx, arr, idx):
    """Hint the CPU to fetch the cache line of ``arr[idx]`` (a 1-D array), as :func:`_prefetch_row`."""
    sig = types.void(arr, idx)

    def codegen(context, builder, signature, args):
        aryty = signature.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        emit_prefetch(builder, cgutils.get_item_pointer(context, builder, aryty, ary, [args[1]], wraparound=False))
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def _copy_block(typingctx, dst, di, src, si):
    """Copy ``JOIN_BLOCK`` bytes from ``src[si:]`` to ``dst[di:]`` (1-D uint8 arrays with room):
    one fixed-size ``memcpy``, which LLVM turns into a pair of vector moves."""
    sig = types.void(dst, di, src, si)

    def codegen(context, builder, signature, args):
        ptrs = []
        for aryty, ary, idx in ((signature.args[0], args[0], args[1]), (signature.args[2], args[2], args[3])):
            arr = context.make_array(aryty)(context, builder, ary)
            ptrs.append(cgutils.get_item_pointer(context, builder, aryty, arr, [idx], wraparound=False))
        cgutils.raw_memcpy(builder, ptrs[0], ptrs[1], context.get_constant(types.intp, JOIN_BLOCK), 1)
        return context.get_dummy_value()

    return sig, codegen


# -- hashing -------------------------------------------------------------------------------


@njit(**NJIT_OPTIONS)
def _mix64(h):
    """murmur3's 64-bit finaliser."""
    h ^= h >> S33
    h *= MIX_1
    h ^= h >> S33
    h *= MIX_2
    h ^= h >> S33
    return h


@njit(**NJIT_OPTIONS)
def _finish(h):
    """Final mix, keeping clear of the reserved ids below ``MIN_ID``."""
    h = _mix64(h)
    if h < MIN_ID:
        h += MIN_ID
    return h


@njit(**NJIT_OPTIONS)
def ngram_id(prefix_id, token_id, order):
    """Id of an n-gram from its prefix's id and its last token (``order == 1``: the token)."""
    if order == 1:
        return token_id
    return _finish(_mix64((prefix_id ^ (SALT * np.uint64(order))) + SALT) ^ token_id)


@njit(**NJIT_OPTIONS)
def opener_id(prev_id, token_id):
    """Id of a sentence-opener row (the token before the sentence, its first token)."""
    return _finish(_mix64((prev_id ^ OPENER_SALT) + SALT) ^ token_id)


# -- tokenising ----------------------------------------------------------------------------


@njit(**NJIT_OPTIONS)
def _decode(buf, i, end):
    """Code point and byte length at ``buf[i]``; -1 for an invalid or truncated sequence."""
    b = np.int64(buf[i])
    if b < 0x80:
        return b, 1
    if b >= 0xF0 and b < 0xF5:
        n = 4
        cp = b & 0x07
    elif b >= 0xE0 and b < 0xF0:
        n = 3
        cp = b & 0x0F
    elif b >= 0xC2 and b < 0xE0:
        n = 2
        cp = b & 0x1F
    else:
        return np.int64(-1), 1
    if i + n > end:
        return np.int64(-1), 1
    for k in range(1, n):
        c = np.int64(buf[i + k])
        if c & 0xC0 != 0x80:
            return np.int64(-1), 1
        cp = (cp << 6) | (c & 0x3F)
    return cp, n


@njit(**NJIT_OPTIONS)
def _is_space(cp):
    """Whitespace, controls, invisible format characters and invalid bytes (-1)."""
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
def _is_word_char(cp):
    """Letters and digits of any script: what the classifier's tokeniser keeps."""
    if cp < 128:
        return (48 <= cp <= 57) or (65 <= cp <= 90) or (97 <= cp <= 122)
    if cp <= 0xBF or cp == 0xD7 or cp == 0xF7:
        return False
    if 0x2000 <= cp <= 0x2BFF:
        return False
    if 0x3000 <= cp <= 0x303F or 0xFE30 <= cp <= 0xFE4F or cp == 0xFEFF:
        return False
    if 0xFF00 <= cp <= 0xFF0F or 0xFF1A <= cp <= 0xFF20 or 0xFFF0 <= cp <= 0xFFFF:
        return False
    if 0x1F000 <= cp <= 0x1FAFF:
        return False
    return True


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


_ASCII_WORD = np.zeros(128, np.bool_)
_ASCII_WORD[48:58] = True
_ASCII_WORD[65:91] = True
_ASCII_WORD[97:123] = True


TOKEN_BYTES = 4  # tokenize's first guess of the bytes per token (English text has about 4.5)


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

    Parameters
    ----------
    buf : uint8[n_bytes]
        The documents' bytes, concatenated.
    doc_bounds : int64[n_docs + 1]
        Document d is ``buf[doc_bounds[d]:doc_bounds[d + 1]]``.

    Returns
    -------
    ids : uint64[n_tokens]
    starts : int64[n_tokens]
        Byte offset of each token in ``buf``.
    lengths : int32[n_tokens]
    info : uint8[n_tokens]
        ``kind | sb << 3 | sa << 4`` (see the module notes).
    tok_bounds : int64[n_docs + 1]
    """
    n_docs = doc_bounds.shape[0] - 1
    # room for a token every TOKEN_BYTES bytes, grown when a document could overflow it
    # (it has at most a token per byte): fresh memory is slow to touch, and copying less helps
    cap = buf.shape[0] // TOKEN_BYTES + 16
    ids = np.empty(cap, np.uint64)
    starts = np.empty(cap, np.int64)
    lengths = np.empty(cap, np.int32)
    info = np.empty(cap, np.uint8)
    tok_bounds = np.empty(n_docs + 1, np.int64)
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
            cp, width = _decode(buf, i, end)
            if _is_space(cp):
                prev_space = True
                i += width
                continue
            if _is_word_char(cp):
                start = i
                h = FNV_OFFSET
                while i < end:
                    b0 = buf[i]
                    if b0 < 128 and b0 != 39:  # ASCII: a letter or digit, or the word's end
                        if not _ASCII_WORD[b0]:
                            break
                        h = (h ^ np.uint64(b0)) * FNV_PRIME
                        i += 1
                        continue
                    cp2, w2 = _decode(buf, i, end)
                    if _is_word_char(cp2):
                        pass
                    elif _is_apostrophe(cp2) and i + w2 < end:
                        cp3, w3 = _decode(buf, i + w2, end)
                        if not _is_word_char(cp3):
                            break
                    else:
                        break
                    for k in range(w2):
                        h = (h ^ np.uint64(buf[i + k])) * FNV_PRIME
                    i += w2
                ids[n] = _finish(h)
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
                cp2, w2 = _decode(buf, i + width, end)
                sa = _is_space(cp2)
            flags = (1 if sb else 0) | (2 if sa else 0)
            ids[n] = _finish(h ^ (PUNCT_SALT * np.uint64(flags + 1)))
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
def _first_above(cum, lo, hi, target):
    """The first ``e`` in ``lo:hi`` with ``cum[e + 1] > target`` (prefix sums, so
    non-decreasing; ``hi - 1`` when none is): the entry a draw of ``target`` falls in."""
    hi -= 1
    while lo < hi:
        mid = (lo + hi) >> 1
        if cum[mid + 1] > target:
            hi = mid
        else:
            lo = mid + 1
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


# -- counting ------------------------------------------------------------------------------


COUNT_BLOCK = 64  # positions count_ngrams makes keys for (fetching their slots) before it counts them
CAT_BITS = 20  # a category-count pair's key is ((row + 1) << CAT_BITS) | category
CAT_MASK = np.uint64((1 << 20) - 1)


@njit(**NJIT_OPTIONS)
def _probe(table, key, start):
    """Slot of ``key`` in ``table[:, 0]``, or of the empty slot where it would go, probing
    linearly from slot ``start`` (taken modulo the table's power-of-two size)."""
    mask = np.uint64(table.shape[0] - 1)
    s = start & mask
    while True:
        k = table[s, 0]
        if k == key or k == ZERO:
            return np.int64(s)
        s = (s + ONE) & mask


@njit(**NJIT_OPTIONS)
def _find_slot(table, key):
    """Slot of ``key`` in the row table (its keys are hashes: probing starts at the key)."""
    return _probe(table, key, key)


@njit(**NJIT_OPTIONS)
def table_lookup(table, key):
    """Row of ``key``, or -1 when absent."""
    s = _find_slot(table, key)
    if table[s, 0] == ZERO:
        return np.int64(-1)
    return np.int64(table[s, 1])


@njit(**NJIT_OPTIONS)
def table_build(row_key, n_rows, table):
    """Fill an empty table with rows ``0..n_rows-1``."""
    for r in range(n_rows):
        s = _find_slot(table, row_key[r])
        table[s, 0] = row_key[r]
        table[s, 1] = r


@njit(**NJIT_OPTIONS)
def _pair_slot(pairs, pk):
    """Slot of pair key ``pk`` in ``pairs[:, 0]`` (hashed: pair keys are not random)."""
    return _probe(pairs, pk, _mix64(pk))


@njit(**NJIT_OPTIONS)
def pair_key(row, cat):
    return (np.uint64(row + 1) << np.uint64(CAT_BITS)) | np.uint64(cat)


@njit(**NJIT_OPTIONS)
def pairs_add(pairs, rows, cats, values, n_pairs):
    """Add ``values`` to the (row, category) pairs; returns the pairs in use.

    The caller keeps the table at most half full after the additions.
    """
    for i in range(rows.shape[0]):
        if values[i] == 0:
            continue
        pk = pair_key(rows[i], cats[i])
        s = _pair_slot(pairs, pk)
        if pairs[s, 0] == ZERO:
            pairs[s, 0] = pk
            n_pairs += 1
        pairs[s, 1] += np.uint64(values[i])
    return n_pairs


@njit(**NJIT_OPTIONS)
def pairs_lookup(pairs, row, cat):
    """Count of ``row`` in category ``cat`` (0 when absent)."""
    s = _pair_slot(pairs, pair_key(row, cat))
    return np.int64(pairs[s, 1]) if pairs[s, 0] != ZERO else np.int64(0)


@njit(**NJIT_OPTIONS)
def sparse_counts(row_count, pairs):
    """Every non-zero count as (row, category, count), sorted by row then category.

    A row's count in its first category ``row_count[r, 1]`` is its total less the counts
    the pair table holds for its other categories. Counting sort by row, O(rows + pairs).
    """
    n = row_count.shape[0]
    others = np.zeros(n, np.int64)
    per_row = np.ones(n + 1, np.int64)
    per_row[n] = 0
    for s in range(pairs.shape[0]):
        k = pairs[s, 0]
        if k != ZERO:
            r = np.int64(k >> np.uint64(CAT_BITS)) - 1
            others[r] += np.int64(pairs[s, 1])
            per_row[r] += 1
    start = np.zeros(n + 1, np.int64)
    for r in range(n):
        start[r + 1] = start[r] + per_row[r]
    rows = np.empty(start[n], np.int64)
    cats = np.empty(start[n], np.int64)
    vals = np.empty(start[n], np.int64)
    fill = start[:n].copy()
    for r in range(n):
        rows[fill[r]] = r
        cats[fill[r]] = row_count[r, 1]
        vals[fill[r]] = row_count[r, 0] - others[r]
        fill[r] += 1
    for s in range(pairs.shape[0]):
        k = pairs[s, 0]
        if k != ZERO:
            r = np.int64(k >> np.uint64(CAT_BITS)) - 1
            rows[fill[r]] = r
            cats[fill[r]] = np.int64(k & CAT_MASK)
            vals[fill[r]] = np.int64(pairs[s, 1])
            fill[r] += 1
    # categories in order inside each row (rows hold few pairs: insertion sort)
    for r in range(n):
        for i in range(start[r] + 1, start[r + 1]):
            c = cats[i]
            v = vals[i]
            j = i - 1
            while j >= start[r] and cats[j] > c:
                cats[j + 1] = cats[j]
                vals[j + 1] = vals[j]
                j -= 1
            cats[j + 1] = c
            vals[j + 1] = v
    return rows, cats, vals


@njit(**NJIT_OPTIONS)
def load_counts(rows, cats, values, row_count, pairs):
    """Fill empty rows' totals and first categories, and the pairs, from sparse counts.

    A row's first listed category keeps its count in the row; the others go to the
    pairs (reserved by the caller). Returns the pairs in use.
    """
    for i in range(rows.shape[0]):
        row_count[rows[i], 0] = 0
        row_count[rows[i], 1] = -1
    n_pairs = 0
    for i in range(rows.shape[0]):
        r = rows[i]
        if values[i] == 0:
            continue
        if row_count[r, 1] < 0:
            row_count[r, 1] = cats[i]
        elif row_count[r, 1] != cats[i]:
            s = _pair_slot(pairs, pair_key(r, cats[i]))
            if pairs[s, 0] == ZERO:
                pairs[s, 0] = pair_key(r, cats[i])
                n_pairs += 1
            pairs[s, 1] += np.uint64(values[i])
        row_count[r, 0] += values[i]
    for i in range(rows.shape[0]):
        if row_count[rows[i], 1] < 0:
            row_count[rows[i], 1] = 0
    return n_pairs


@njit(**NJIT_OPTIONS)
def count_column(row_count, pairs, cat):
    """The counts of one category, int64[n_rows] (dense)."""
    n = row_count.shape[0]
    others = np.zeros(n, np.int64)
    out = np.zeros(n, np.int64)
    for s in range(pairs.shape[0]):
        k = pairs[s, 0]
        if k != ZERO:
            r = np.int64(k >> np.uint64(CAT_BITS)) - 1
            others[r] += np.int64(pairs[s, 1])
            if (k & CAT_MASK) == np.uint64(cat):
                out[r] = np.int64(pairs[s, 1])
    for r in range(n):
        if row_count[r, 1] == cat:
            out[r] = row_count[r, 0] - others[r]
    return out


@njit(**NJIT_OPTIONS)
def pairs_rehash(old, new):
    """Move every pair of ``old`` into the empty table ``new``."""
    for s in range(old.shape[0]):
        if old[s, 0] != ZERO:
            t = _pair_slot(new, old[s, 0])
            new[t, 0] = old[s, 0]
            new[t, 1] = old[s, 1]


@njit(**NJIT_OPTIONS)
def count_ngrams(ids, info, tok_bounds, doc_cats, first_doc, order, abbrev, table, row_key,
                 row_prefix, row_last, row_order, row_count, n_rows, pairs, n_pairs, multi, new_tok):
    """Count the n-grams (orders 1..``order``) and sentence openers of documents.

    Each document is ``BOS t_1 .. t_n EOS``; every ``t_i`` and the ``EOS`` are counted
    after each of their contexts of length 0..order-1 that fits after ``BOS``. A row
    keeps its total and the first category that counted it (``row_count[r] = (total,
    category)``); counts in other categories go to the (row, category) pairs (most
    n-grams occur in one category only, so the pairs stay few). Stops before a document
    that could overfill the rows or push the table or the pairs past half full; the
    caller grows them and calls again from the returned document.

    Sentence starts follow :func:`_starts_sentence`, tracked incrementally: the phase of
    the run of terminals and closers before the token, and whether the word before the
    terminals is an abbreviation.

    A document goes by blocks of ``COUNT_BLOCK`` positions in three passes: the keys of
    the block's n-grams (their table slots fetched as they are made), then each key's
    row (found or added; its count's row fetched), then the counts. Every read of the
    big tables is thus requested a pass before it is needed.

    Parameters
    ----------
    ids, info, tok_bounds : from :func:`tokenize`.
    doc_cats : int64[n_docs]
        Category column of each document.
    first_doc : int
    order : int
    abbrev : uint64[n_abbrev]
        Sorted ids of abbreviations (a terminal after one does not end a sentence).
    table : uint64[cap, 2]
        (key, row) by open addressing.
    row_key, row_prefix, row_last, row_order : the rows.
    row_count : int64[rows_cap, 2]
        Total and first category of each row.
    n_rows : int
        Rows in use on entry.
    pairs : uint64[pcap, 2]
        (pair key, count) of (row, category) pairs beyond each row's first category.
    n_pairs : int
    multi : bool
        The documents may have several categories (else no pair is ever added, and
        the pairs need no room).
    n_pairs : int
    new_tok : int64[n_tokens]
        Receives the index of each token whose unigram row is new (for the lexicon).

    Returns
    -------
    next_doc, n_rows, n_pairs, n_new : int
    """
    n_docs = tok_bounds.shape[0] - 1
    rows_cap = row_key.shape[0]
    half = table.shape[0] // 2
    pair_half = pairs.shape[0] // 2
    cap = COUNT_BLOCK * (order + 1)
    bk = np.empty(cap, np.uint64)  # the block's n-grams: key, prefix, last token, order, position
    bp = np.empty(cap, np.uint64)
    bw = np.empty(cap, np.uint64)
    bo = np.empty(cap, np.int64)
    bt = np.empty(cap, np.int64)
    br = np.empty(cap, np.int64)  # and row
    ctx = np.empty(order + 1, np.uint64)  # ctx[k]: key of the k-gram before the position (0: ROOT)
    mask = np.uint64(table.shape[0] - 1)
    n_new = 0
    for d in range(first_doc, n_docs):
        a = tok_bounds[d]
        b = tok_bounds[d + 1]
        worst = (b - a + 1) * (order + 1)
        if n_rows + worst > rows_cap or n_rows + worst > half or (multi and n_pairs + worst > pair_half):
            return d, n_rows, n_pairs, n_new
        c = doc_cats[d]
        phase = 0  # 1: after terminals, 2: after terminals and closers
        after_abbrev = False
        ctx[0] = ROOT_ID
        ctx[1] = BOS_ID
        n_ctx = 2 if order > 1 else 1
        u = a
        while u <= b:  # positions u..end_u-1 (b is the document's EOS)
            end_u = min(u + COUNT_BLOCK, b + 1)
            m = 0
            for t in range(u, end_u):
                if t < b:
                    w = ids[t]
                    kind = info[t] & 7
                    opener = t == a or (phase > 0 and not after_abbrev and kind != K_LOWER and kind != K_TERMINAL
                                        and kind != K_CLOSER and (info[t - 1] & 16) != 0)
                    if kind == K_TERMINAL:
                        if phase != 1:
                            after_abbrev = t > a and _in_sorted(abbrev, ids[t - 1])
                            phase = 1
                    elif kind == K_CLOSER:
                        if phase != 0:
                            phase = 2
                    else:
                        phase = 0
                    if opener:
                        prev = ids[t - 1] if t > a else BOS_ID
                        key = opener_id(prev, w)
                        bk[m] = key
                        bp[m] = prev
                        bw[m] = w
                        bo[m] = 0
                        bt[m] = t
                        _prefetch_row(table, np.int64(key & mask))
                        m += 1
                else:
                    w = EOS_ID
                first = m
                for k in range(n_ctx):
                    key = ngram_id(ctx[k], w, k + 1)
                    bk[m] = key
                    bp[m] = ctx[k]
                    bw[m] = w
                    bo[m] = k + 1
                    bt[m] = t
                    _prefetch_row(table, np.int64(key & mask))
                    m += 1
                nxt = min(n_ctx + 1, order)
                for j in range(1, nxt):
                    ctx[j] = bk[first + j - 1]
                n_ctx = nxt
            for i in range(m):
                key = bk[i]
                s = _find_slot(table, key)
                if table[s, 0] == ZERO:
                    table[s, 0] = key
                    table[s, 1] = np.uint64(n_rows)
                    row_key[n_rows] = key
                    row_prefix[n_rows] = bp[i]
                    row_last[n_rows] = bw[i]
                    row_order[n_rows] = bo[i]
                    row_count[n_rows, 0] = 0
                    row_count[n_rows, 1] = c
                    if bo[i] == 1 and bt[i] < b:
                        new_tok[n_new] = bt[i]
                        n_new += 1
                    n_rows += 1
                row = np.int64(table[s, 1])
                br[i] = row
                _prefetch_row(row_count, row)
            for i in range(m):
                row = br[i]
                row_count[row, 0] += 1
                if multi and row_count[row, 1] != c:
                    pk = pair_key(row, c)
                    q = _pair_slot(pairs, pk)
                    if pairs[q, 0] == ZERO:
                        pairs[q, 0] = pk
                        n_pairs += 1
                    pairs[q, 1] += ONE
            u = end_u
    return n_docs, n_rows, n_pairs, n_new


@njit(**NJIT_OPTIONS)
def merge_rows(o_key, o_prefix, o_last, o_order, o_total, o_cat, table, row_key, row_prefix,
               row_last, row_order, row_count, n_rows):
    """Add another model's rows and totals; returns our row of each of its rows, and the
    rows in use. A new row takes its first category from ``o_cat`` (already mapped to
    ours); new rows keep their order. The caller reserves room for every incoming row.

    By blocks of ``COUNT_BLOCK`` rows, as :func:`count_ngrams`: the table slots of a
    block fetched, then its rows found (or added) and their counts fetched, then added.
    """
    n = o_key.shape[0]
    where = np.empty(n, np.int64)
    mask = np.uint64(table.shape[0] - 1)
    for a in range(0, n, COUNT_BLOCK):
        b = min(a + COUNT_BLOCK, n)
        for r in range(a, b):
            _prefetch_row(table, np.int64(o_key[r] & mask))
        for r in range(a, b):
            s = _find_slot(table, o_key[r])
            if table[s, 0] == ZERO:
                table[s, 0] = o_key[r]
                table[s, 1] = np.uint64(n_rows)
                row_key[n_rows] = o_key[r]
                row_prefix[n_rows] = o_prefix[r]
                row_last[n_rows] = o_last[r]
                row_order[n_rows] = o_order[r]
                row_count[n_rows, 0] = 0
                row_count[n_rows, 1] = o_cat[r]
                n_rows += 1
            row = np.int64(table[s, 1])
            where[r] = row
            _prefetch_row(row_count, row)
        for r in range(a, b):
            row_count[where[r], 0] += o_total[r]
    return where, n_rows


# -- derived structure ---------------------------------------------------------------------


@njit(**NJIT_OPTIONS)
def _by_order(order, max_order):
    """Indices sorted by ``order`` (int, 0 to ``max_order``), stably: a counting sort."""
    n_per = np.zeros(max_order + 2, np.int64)
    for i in range(order.shape[0]):
        n_per[order[i] + 1] += 1
    for k in range(1, max_order + 2):
        n_per[k] += n_per[k - 1]
    by_order = np.empty(order.shape[0], np.int64)
    for i in range(order.shape[0]):
        by_order[n_per[order[i]]] = i
        n_per[order[i]] += 1
    return by_order


@njit(**NJIT_OPTIONS)
def derive_rows(row_key, row_prefix, row_last, row_order, table, max_order):
    """Prefix row, suffix row and "starts with BOS" of every row.

    Returns
    -------
    prefix_row : int64[n_rows]
        Row of the context (-1: the empty context, -2: ``BOS``, -3: an opener row).
    suffix_row : int64[n_rows]
        Row of the n-gram without its first token (-1: the empty n-gram or an opener).
    bos_initial : bool[n_rows]
        The n-gram starts with ``BOS`` (so it has no left extension).
    bad : int
        Rows whose prefix or suffix is missing (0 for a consistent model).

    Rows go by order, in blocks of ``COUNT_BLOCK`` rows of one order, each read of the
    table or of a row fetched a pass before it is needed (KJV at order 8, 4.6 M rows:
    0.53 -> 0.28 s against one row at a time).
    """
    n = row_key.shape[0]
    prefix_row = np.full(n, -1, np.int64)
    suffix_row = np.full(n, -1, np.int64)
    bos_initial = np.zeros(n, np.bool_)
    mask = np.uint64(table.shape[0] - 1)
    sp = np.empty(COUNT_BLOCK, np.int64)  # per row of a block: its prefix's suffix row
    keys = np.empty(COUNT_BLOCK, np.uint64)  # and its own suffix's key
    by_order = _by_order(row_order, max_order)  # so a prefix is done before its extensions
    bad = 0
    a = 0
    while a < n:
        # a block of rows of one order: independent of each other, their prefixes and
        # suffixes (of lower orders) done; each random read is fetched a pass ahead
        k = row_order[by_order[a]]
        b = a + 1
        while b < n and b - a < COUNT_BLOCK and row_order[by_order[b]] == k:
            b += 1
        if k == 0:
            for i in range(a, b):
                prefix_row[by_order[i]] = -3
        elif k >= 2:
            for i in range(a, b):
                r = by_order[i]
                _prefetch_row(table, np.int64(row_prefix[r] & mask))
                if k == 2:
                    _prefetch_row(table, np.int64(row_last[r] & mask))
            for i in range(a, b):
                r = by_order[i]
                p = row_prefix[r]
                if k == 2:
                    suffix_row[r] = table_lookup(table, row_last[r])
                    if p == BOS_ID:
                        prefix_row[r] = -2
                        bos_initial[r] = True
                    else:
                        prefix_row[r] = table_lookup(table, p)
                else:
                    prefix_row[r] = table_lookup(table, p)
                    if prefix_row[r] >= 0:
                        _prefetch_word(suffix_row, prefix_row[r])
            if k >= 3:
                for i in range(a, b):
                    r = by_order[i]
                    pr = prefix_row[r]
                    sp[i - a] = -1
                    if pr >= 0:
                        bos_initial[r] = bos_initial[pr]
                        sp[i - a] = suffix_row[pr]
                        if sp[i - a] >= 0:
                            _prefetch_word(row_key, sp[i - a])
                for i in range(a, b):
                    if sp[i - a] >= 0:
                        keys[i - a] = ngram_id(row_key[sp[i - a]], row_last[by_order[i]], k - 1)
                        _prefetch_row(table, np.int64(keys[i - a] & mask))
                for i in range(a, b):
                    if sp[i - a] >= 0:
                        suffix_row[by_order[i]] = table_lookup(table, keys[i - a])
            for i in range(a, b):
                r = by_order[i]
                if prefix_row[r] == -1 or suffix_row[r] < 0:
                    bad += 1
        a = b
    return prefix_row, suffix_row, bos_initial, bad


@njit(**NJIT_OPTIONS)
def build_chain(row_order, row_last_dense, prefix_row, suffix_row, bos_initial, col_count,
                order, discount, n_vocab, eos_dense):
    """Compile one category column's counts at one order into a chain (module notes).

    Parameters
    ----------
    row_order : int8[n_rows]
    row_last_dense : int64[n_rows]
        Dense vocabulary index of each row's last token.
    prefix_row, suffix_row, bos_initial : from :func:`derive_rows`.
    col_count : int64[n_rows]
        The column's count of each row.
    order : int
        Model order (contexts of length 0..order-1).
    discount : float
        Kneser-Ney discount D.
    n_vocab : int
        Vocabulary size (dense indices 0..n_vocab-1).
    eos_dense : int
        Dense index of ``EOS`` (-1 when absent).

    Returns
    -------
    ctx_start : int64[n_ctx + 1]
    ctx_parent : int64[n_ctx]
    ctx_raw : int64[n_ctx]
        Sum of raw counts of the context's entries.
    ctx_kn : int64[n_ctx]
        Sum of the Kneser-Ney counts (continuation counts below the top order).
    ctx_order : int64[n_ctx]
    e_tok, e_next : int64[n_entries]
    cum_raw : int64[n_entries + 1]
    cum_kn : float64[n_entries + 1]
    entry_row : int64[n_entries]
        Row of each entry.
    bos_ctx : int
        Context index of ``BOS`` (the empty context's 0 when the order is 1).
    """
    n = row_order.shape[0]
    # Kneser-Ney counts: distinct left extensions below the top order
    adj = np.zeros(n, np.int64)
    n_sel = 0
    for r in range(n):
        k = row_order[r]
        if k >= 1 and k <= order and col_count[r] > 0:
            n_sel += 1
            if k >= 2:
                adj[suffix_row[r]] += 1
    # contexts, numbered in order of first appearance; key = prefix row + 2
    ctx_of = np.full(n + 2, -1, np.int64)
    ctx_key = np.empty(n_sel + 2, np.int64)
    ctx_of[1] = 0  # the empty context (prefix row -1)
    ctx_key[0] = -1
    n_ctx = 1
    if order > 1:
        ctx_of[0] = 1  # BOS (prefix row -2)
        ctx_key[1] = -2
        n_ctx = 2
    ent_ctx = np.empty(n_sel, np.int64)
    ent_row = np.empty(n_sel, np.int64)
    i = 0
    for r in range(n):
        k = row_order[r]
        if k >= 1 and k <= order and col_count[r] > 0:
            p = prefix_row[r] + 2
            if ctx_of[p] < 0:
                ctx_of[p] = n_ctx
                ctx_key[n_ctx] = prefix_row[r]
                n_ctx += 1
            ent_ctx[i] = ctx_of[p]
            ent_row[i] = r
            i += 1
    # sort entries by (context, dense token): counting sort by token, then by context
    cnt = np.zeros(n_vocab + 1, np.int64)
    for i in range(n_sel):
        cnt[row_last_dense[ent_row[i]] + 1] += 1
    for v in range(1, n_vocab + 1):
        cnt[v] += cnt[v - 1]
    by_tok = np.empty(n_sel, np.int64)
    for i in range(n_sel):
        v = row_last_dense[ent_row[i]]
        by_tok[cnt[v]] = i
        cnt[v] += 1
    ctx_start = np.zeros(n_ctx + 1, np.int64)
    for i in range(n_sel):
        ctx_start[ent_ctx[i] + 1] += 1
    for c in range(1, n_ctx + 1):
        ctx_start[c] += ctx_start[c - 1]
    fill = ctx_start[:n_ctx].copy()
    entry_row = np.empty(n_sel, np.int64)
    for j in range(n_sel):
        i = by_tok[j]
        c = ent_ctx[i]
        entry_row[fill[c]] = ent_row[i]
        fill[c] += 1
    # entries
    e_tok = np.empty(n_sel, np.int64)
    e_next = np.empty(n_sel, np.int64)
    cum_raw = np.zeros(n_sel + 1, np.int64)
    cum_kn = np.zeros(n_sel + 1, np.float64)
    bos_ctx = 1 if order > 1 else 0
    ctx_raw = np.zeros(n_ctx, np.int64)
    ctx_kn = np.zeros(n_ctx, np.int64)
    ctx_order = np.zeros(n_ctx, np.int64)
    ctx_parent = np.full(n_ctx, -1, np.int64)
    for c in range(n_ctx):
        for e in range(ctx_start[c], ctx_start[c + 1]):
            r = entry_row[e]
            k = row_order[r]
            raw = col_count[r]
            x = raw if (k == order or bos_initial[r]) else adj[r]
            e_tok[e] = row_last_dense[r]
            cum_raw[e + 1] = cum_raw[e] + raw
            cum_kn[e + 1] = cum_kn[e] + max(x - discount, 0.0)
            ctx_raw[c] += raw
            ctx_kn[c] += x
            ctx_order[c] = k - 1
            if e_tok[e] == eos_dense:
                e_next[e] = bos_ctx
                continue
            cand = r if k <= order - 1 else suffix_row[r]
            while cand >= 0 and ctx_of[cand + 2] < 0:
                cand = suffix_row[cand]
            e_next[e] = ctx_of[cand + 2] if cand >= 0 else 0
        key = ctx_key[c]
        if key == -1:
            ctx_parent[c] = -1
        elif key == -2:
            ctx_parent[c] = 0
        elif row_order[key] == 1:
            ctx_parent[c] = 0
        else:
            ctx_parent[c] = ctx_of[suffix_row[key] + 2]
    return (ctx_start, ctx_parent, ctx_raw, ctx_kn, ctx_order, e_tok, e_next, cum_raw,
            cum_kn, entry_row, bos_ctx)


@njit(**NJIT_OPTIONS)
def rank_entries(ctx_start, cum):
    """Every context's entries by decreasing weight (``cum`` prefix sums), ties by token.

    Entries are sorted by token within a context, so a stable sort by weight keeps ties
    in token order. Returns int64[n_entries] of entry indices.
    """
    out = np.arange(cum.shape[0] - 1)
    for c in range(ctx_start.shape[0] - 1):
        lo = ctx_start[c]
        hi = ctx_start[c + 1]
        if hi - lo > 1:
            neg = np.empty(hi - lo, np.float64)
            for e in range(lo, hi):
                neg[e - lo] = -(np.float64(cum[e + 1]) - np.float64(cum[e]))
            order = np.argsort(neg, kind="mergesort")
            for i in range(hi - lo):
                out[lo + i] = lo + order[i]
    return out


# -- probabilities -------------------------------------------------------------------------


@njit(**NJIT_OPTIONS)
def _context_mass(method, alpha, per_type, c, lo, hi, ctx_raw, ctx_kn, cum_kn):
    """Denominator of context ``c``'s smoothed probabilities (its entries are ``lo:hi``) and
    the part of it its own entries carry; the rest backs off to the parent context."""
    if method == KNESER_NEY:
        return np.float64(ctx_kn[c]), cum_kn[hi] - cum_kn[lo]
    den = np.float64(ctx_raw[c])
    if method == DIRICHLET:
        den += alpha * (hi - lo) if per_type else alpha
    return den, np.float64(ctx_raw[c])


@njit(**NJIT_OPTIONS)
def _find_entry(e_tok, lo, hi, w):
    """Entry of dense token ``w`` in ``e_tok[lo:hi]`` (sorted), or -1."""
    e = _lower_bound(e_tok, lo, hi, w)
    return e if e < hi and e_tok[e] == w else -1


@njit(**NJIT_OPTIONS)
def _weight(ch, params, e):
    """Unnormalised weight of entry ``e`` at its level."""
    cum_raw = ch[6]
    cum_kn = ch[7]
    if params[0] == KNESER_NEY:
        return cum_kn[e + 1] - cum_kn[e]
    return np.float64(cum_raw[e + 1] - cum_raw[e])


@njit(**NJIT_OPTIONS)
def _prob(ch, params, state, w):
    """p(w | context ``state``) and the context after ``w``.

    ``w == n_vocab`` is the unknown token: it gets the base measure's share only, and the
    context after it is the empty one.
    """
    ctx_start, ctx_parent, ctx_raw, ctx_kn, e_tok, e_next, cum_raw, cum_kn = ch
    method = params[0]
    alpha = params[1]
    per_type = params[2]
    n_vocab = params[4]
    p = 0.0
    mass = 1.0
    c = state
    nxt = -1
    while c >= 0:
        lo = ctx_start[c]
        hi = ctx_start[c + 1]
        den, level = _context_mass(method, alpha, per_type, c, lo, hi, ctx_raw, ctx_kn, cum_kn)
        if den > 0.0:
            if w < n_vocab:
                e = _find_entry(e_tok, lo, hi, w)
                if e >= 0:
                    if method == KNESER_NEY:
                        p += mass * (cum_kn[e + 1] - cum_kn[e]) / den
                    else:
                        p += mass * np.float64(cum_raw[e + 1] - cum_raw[e]) / den
                    if nxt < 0:
                        nxt = e_next[e]
            mass *= 1.0 - level / den
        c = ctx_parent[c]
    p += mass / (n_vocab + 1)
    return p, (nxt if nxt >= 0 else 0)


@njit(**NJIT_OPTIONS)
def log_probs(ch, params, dense, tok_bounds, bos_ctx, eos_dense):
    """Natural log-probability of every token and of each document's end.

    Parameters
    ----------
    dense : int64[n_tokens]
        Dense token indices (``n_vocab`` for unknown tokens).
    tok_bounds : int64[n_docs + 1]

    Returns
    -------
    float64[n_tokens + n_docs]: document d's events are its tokens, then its ``EOS``.
    """
    n_docs = tok_bounds.shape[0] - 1
    out = np.empty(dense.shape[0] + n_docs, np.float64)
    j = 0
    for d in range(n_docs):
        state = bos_ctx
        for t in range(tok_bounds[d], tok_bounds[d + 1] + 1):
            w = dense[t] if t < tok_bounds[d + 1] else eos_dense
            if w < 0:
                w = params[4]
            p, state = _prob(ch, params, state, w)
            out[j] = np.log(p)
            j += 1
    return out


@njit(**NJIT_OPTIONS)
def _fill_probs(ch, params, state, probs):
    """``probs[w]`` = p(w | context ``state``) for every dense token w and the unknown
    token (``probs[V]``), equal bit for bit to :func:`_prob`'s, in O(V + entries on the
    back-off path) instead of a search per token and level: each level adds its entries'
    terms in the same order as :func:`_prob`, then every token gets the base measure."""
    ctx_start, ctx_parent, ctx_raw, ctx_kn, e_tok, e_next, cum_raw, cum_kn = ch
    method = params[0]
    alpha = params[1]
    per_type = params[2]
    n_vocab = params[4]
    probs[: n_vocab + 1] = 0.0
    mass = 1.0
    c = state
    while c >= 0:
        lo = ctx_start[c]
        hi = ctx_start[c + 1]
        den, level = _context_mass(method, alpha, per_type, c, lo, hi, ctx_raw, ctx_kn, cum_kn)
        if den > 0.0:
            for e in range(lo, hi):
                if method == KNESER_NEY:
                    probs[e_tok[e]] += mass * (cum_kn[e + 1] - cum_kn[e]) / den
                else:
                    probs[e_tok[e]] += mass * np.float64(cum_raw[e + 1] - cum_raw[e]) / den
            mass *= 1.0 - level / den
        c = ctx_parent[c]
    base = mass / (n_vocab + 1)
    for w in range(n_vocab + 1):
        probs[w] += base


@njit(**NJIT_OPTIONS)
def distribution(ch, params, state):
    """p(w | context ``state``) for every dense token and the unknown token, float64[V + 1]."""
    out = np.empty(params[4] + 1, np.float64)
    _fill_probs(ch, params, state, out)
    return out


@njit(**NJIT_OPTIONS)
def advance(ch, params, state, tokens):
    """Context after reading ``tokens`` (dense; ``n_vocab`` = unknown) from ``state``."""
    for i in range(tokens.shape[0]):
        state = _next_state(ch, state, tokens[i], params[4])
    return state


@njit(**NJIT_OPTIONS)
def next_states(ch, n_vocab, states, tokens):
    """The context after each ``tokens[i]`` (dense) read in context ``states[i]``."""
    out = np.empty(states.shape[0], np.int64)
    for i in range(states.shape[0]):
        out[i] = _next_state(ch, states[i], tokens[i], n_vocab)
    return out


@njit(**NJIT_OPTIONS)
def _next_state(ch, state, w, n_vocab):
    """Longest known context after emitting ``w`` in context ``state``."""
    ctx_start = ch[0]
    ctx_parent = ch[1]
    e_tok = ch[4]
    e_next = ch[5]
    if w >= n_vocab or w < 0:
        return 0
    c = state
    while c >= 0:
        e = _find_entry(e_tok, ctx_start[c], ctx_start[c + 1], w)
        if e >= 0:
            return e_next[e]
        c = ctx_parent[c]
    return 0


# -- generation ----------------------------------------------------------------------------


@njit(**NJIT_OPTIONS)
def _rand(rng):
    """Uniform float in [0, 1) from a SplitMix64 state ``rng[0]`` (advanced in place)."""
    rng[0] += SALT
    z = rng[0]
    z = (z ^ (z >> np.uint64(30))) * SM_1
    z = (z ^ (z >> np.uint64(27))) * SM_2
    z ^= z >> np.uint64(31)
    return np.float64(z >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@njit(**NJIT_OPTIONS)
def _sample(ch, params, state, rng):
    """Draw a token from p(. | state) exactly, level by level (no scan of any level).

    At each context, one uniform decides whether the draw stays there (with the mass the
    level keeps) and, if so, which entry (by binary search on the prefix sums); below
    the empty context the base measure is uniform over the vocabulary.

    Returns the token and, when it was drawn from ``state`` itself, the context that
    follows it (else -1: the caller looks it up with :func:`_next_state`).
    """
    ctx_start, ctx_parent, ctx_raw, ctx_kn, e_tok, e_next, cum_raw, cum_kn = ch
    method = params[0]
    alpha = params[1]
    per_type = params[2]
    n_vocab = params[4]
    c = state
    while c >= 0:
        lo = ctx_start[c]
        hi = ctx_start[c + 1]
        if hi > lo:
            if method == KNESER_NEY:
                u = _rand(rng) * ctx_kn[c]
                if u < cum_kn[hi] - cum_kn[lo]:
                    a = _first_above(cum_kn, lo, hi, cum_kn[lo] + u)
                    return e_tok[a], (e_next[a] if c == state else -1)
            else:
                den = np.float64(ctx_raw[c])
                if method == DIRICHLET:
                    den += alpha * (hi - lo) if per_type else alpha
                u = _rand(rng) * den
                if u < ctx_raw[c]:
                    a = _first_above(cum_raw, lo, hi, cum_raw[lo] + np.int64(u))
                    return e_tok[a], (e_next[a] if c == state else -1)
        c = ctx_parent[c]
    return min(np.int64(_rand(rng) * n_vocab), n_vocab - 1), -1


@njit(**NJIT_OPTIONS)
def _greedy(ch, params, state, rank, levels, scale):
    """The most probable token in context ``state`` (ties: the lowest dense index).

    Fagin's threshold algorithm over the levels (the context and its back-offs): read
    each level's entries in decreasing weight (``rank`` lists every context's entries
    that way), score each token read exactly, and stop once the leader beats what any
    unread token could still reach. Usually one or two rounds; no level is scanned.
    ``levels`` and ``scale`` (int64/float64[max order + 1]) are scratch space.
    """
    ctx_start, ctx_parent, ctx_raw, ctx_kn, e_tok, e_next, cum_raw, cum_kn = ch
    n_vocab = params[4]
    method = params[0]
    alpha = params[1]
    per_type = params[2]
    n_lv = 0
    mass = 1.0
    c = state
    while c >= 0:
        lo = ctx_start[c]
        hi = ctx_start[c + 1]
        den, level = _context_mass(method, alpha, per_type, c, lo, hi, ctx_raw, ctx_kn, cum_kn)
        if den > 0.0:
            levels[n_lv] = c
            scale[n_lv] = mass / den
            n_lv += 1
            mass *= 1.0 - level / den
        c = ctx_parent[c]
    base = mass / (n_vocab + 1)
    best = -1
    best_p = -1.0
    depth = 0
    while True:
        bound = base
        more = False
        for i in range(n_lv):
            c = levels[i]
            e = ctx_start[c] + depth
            if e < ctx_start[c + 1] and scale[i] > 0.0:
                more = True
                bound += scale[i] * _weight(ch, params, rank[e])
                w = e_tok[rank[e]]
                p = base
                for j in range(n_lv):
                    cj = levels[j]
                    if scale[j] > 0.0:
                        f = _find_entry(e_tok, ctx_start[cj], ctx_start[cj + 1], w)
                        if f >= 0:
                            p += scale[j] * _weight(ch, params, f)
                if p > best_p or (p == best_p and w < best):
                    best = w
                    best_p = p
        if not more or best_p > bound:
            break
        depth += 1
    if best < 0:
        best = 0  # nothing seen at all: everything is uniform
    return best


@njit(**NJIT_OPTIONS)
def _sample_full(ch, params, state, rng, probs, temperature, top_k):
    """Draw from the full distribution with a temperature and/or a top-k cut (O(V))."""
    n_vocab = params[4]
    _fill_probs(ch, params, state, probs)
    if top_k > 0 and top_k < n_vocab:
        kth = -np.partition(-probs[:n_vocab], top_k - 1)[top_k - 1]
        above = 0
        for w in range(n_vocab):
            if probs[w] > kth:
                above += 1
        room = top_k - above
        for w in range(n_vocab):
            if probs[w] < kth:
                probs[w] = 0.0
            elif probs[w] == kth:
                if room > 0:
                    room -= 1
                else:
                    probs[w] = 0.0
    top = probs[:n_vocab].max()
    total = 0.0
    for w in range(n_vocab):
        if probs[w] > 0.0:
            probs[w] = np.exp(np.log(probs[w] / top) / temperature)
            total += probs[w]
    u = _rand(rng) * total
    acc = 0.0
    last = 0
    for w in range(n_vocab):
        if probs[w] > 0.0:
            acc += probs[w]
            last = w
            if u < acc:
                return w
    return last


@njit(**NJIT_OPTIONS)
def _choose(ch, params, state, rng, mode, temperature, top_k, probs, rank, levels, scale):
    """One token by ``mode``: 0 sample, 1 greedy, 2 full distribution (temperature/top-k).

    Returns the token and the context after it (-1 when not known yet).
    """
    if mode == 0:
        return _sample(ch, params, state, rng)
    if mode == 1:
        return _greedy(ch, params, state, rank, levels, scale), -1
    return _sample_full(ch, params, state, rng, probs, temperature, top_k), -1


@njit(**NJIT_OPTIONS)
def generate(ch, params, state, n_tokens, rng, mode, temperature, top_k, rank,
             eos_dense, bos_ctx):
    """Generate ``n_tokens`` tokens (document ends, as ``eos_dense``, not counted).

    Returns int64[n_out] of dense tokens, ``EOS`` included where a document ended (the
    next one starts from the ``BOS`` context).
    """
    n_vocab = params[4]
    probs = np.zeros(n_vocab + 1 if mode == 2 else 1, np.float64)
    levels = np.empty(40, np.int64)
    scale = np.empty(40, np.float64)
    out = np.empty(n_tokens + 16, np.int64)
    n = 0
    made = 0
    ends = 0
    while made < n_tokens:
        w, after = _choose(ch, params, state, rng, mode, temperature, top_k, probs, rank, levels, scale)
        if n >= out.shape[0]:
            grown = np.empty(2 * out.shape[0], np.int64)
            grown[:n] = out[:n]
            out = grown
        out[n] = w
        n += 1
        if w == eos_dense:
            state = bos_ctx
            ends += 1
            if ends > 1000:
                break  # a model of empty documents only ends them
        else:
            ends = 0
            made += 1
            state = after if after >= 0 else _next_state(ch, state, w, n_vocab)
    return out[:n].copy()


TWO53 = 9007199254740992.0  # 2**53: thresholds compare against 53-bit uniforms


TWO31 = 2147483648.0
ALWAYS = np.int64(1) << 53  # a context's q (times 2**53) when every draw stays in its table


@njit(**NJIT_OPTIONS)
def _bloom_bit(w):
    """Bit of token ``w`` in a context's 64-bit bloom word (multiplicative hash)."""
    return np.int64((np.uint64(w) * SALT) >> np.uint64(58))


@njit(**NJIT_OPTIONS)
def _outside(pc, pe, d, w):
    """True when token ``w`` is not among context d's entries (bloom word, then search)."""
    if (pc[d, 2] >> _bloom_bit(w)) & 1 == 0:
        return True
    lo = pc[d, 0]
    return _find_packed(pe, lo, lo + (pc[d, 1] & 0xFFFFFFFF), w) < 0


@njit(**NJIT_OPTIONS)
def sampler_tables(ch, params, ctx_order, pc, pe):
    """Packed tables for sampling the smoothed distribution with O(1) work per token.

    Each context h gets an alias table over its own entries weighted by their full
    smoothed probability ``p(w | h)`` (all levels added up, computed context by context
    in increasing order from the parent's entry), and keeps a draw there with
    probability ``q(h) = sum_{w in E(h)} p(w | h) / (1 - p(unk | h))``. Otherwise the
    draw goes to the parent context and is rejected while it lands in ``E(h)``, so
    tokens outside ``E(h)`` come out in proportion to ``p(w | h')``: the result is
    exactly ``p(w | h)`` conditioned on not being the unknown token (generation never
    emits it). For Kneser-Ney and Dirichlet ``q(h)`` is close to one, so most draws
    finish in one table; the plain table has ``q = 1``.

    The caller allocates the outputs (with numpy, whose large arrays are backed by huge
    pages where the system allows, which spares the random reads of sampling most TLB
    misses; arrays made inside a kernel are not).

    Fills
    -----
    pc : int64[n_ctx, 4]
        ``(first entry, entries | (parent context + 1) << 32, bloom, q * 2**53)``: the
        bloom word has bit :func:`_bloom_bit` of each of the context's tokens set, so
        that most tokens outside the context are known to be outside without a search.
    pe : int32[n_entries, 5]
        ``(token, threshold * 2**31, next context, alias token, alias next context)``,
        entries in token order inside each context (for look-ups); a draw picks bucket
        ``lo + floor(u n)`` and keeps its entry when the fraction of ``u n`` is below its
        threshold, else its alias (Vose's method; a full bucket is its own alias). The
        alias's token and next context are copied into the bucket, so that a draw reads
        one row. The caller checks that entries, tokens and contexts fit in 31 bits.
    """
    ctx_start, ctx_parent, ctx_raw, ctx_kn, e_tok, e_next, cum_raw, cum_kn = ch
    method = params[0]
    alpha = params[1]
    per_type = params[2]
    n_vocab = params[4]
    n_ctx = ctx_start.shape[0] - 1
    n_e = e_tok.shape[0]
    # contexts by increasing order, so a parent is done before its children
    depth = np.empty(n_ctx, np.int64)  # an empty context (BOS of an empty column) has order 0 in ctx_order
    max_k = 0
    for c in range(n_ctx):
        depth[c] = ctx_order[c] if ctx_parent[c] < 0 or ctx_order[c] > 0 else 1
        max_k = max(max_k, depth[c])
    by_order = _by_order(depth, max_k)
    prob = np.empty(n_e, np.float64)
    unk = np.empty(n_ctx, np.float64)
    for i in range(n_ctx):
        c = by_order[i]
        lo = ctx_start[c]
        hi = ctx_start[c + 1]
        par = ctx_parent[c]
        den, level = _context_mass(method, alpha, per_type, c, lo, hi, ctx_raw, ctx_kn, cum_kn)
        gamma = 1.0 - level / den if den > 0.0 else 1.0
        unk_below = unk[par] if par >= 0 else 1.0 / (n_vocab + 1)
        unk[c] = gamma * unk_below
        kept = 0.0
        for e in range(lo, hi):
            w = e_tok[e]
            below = 0.0
            if gamma == 0.0:
                pass  # nothing backs off (the plain table): no look-up below
            elif par >= 0:
                f = _find_entry(e_tok, ctx_start[par], ctx_start[par + 1], w)
                below = prob[f] if f >= 0 else _prob(ch, params, par, w)[0]
            else:
                below = 1.0 / (n_vocab + 1)
            own = 0.0
            if den > 0.0:
                if method == KNESER_NEY:
                    own = (cum_kn[e + 1] - cum_kn[e]) / den
                else:
                    own = np.float64(cum_raw[e + 1] - cum_raw[e]) / den
            prob[e] = own + gamma * below
            kept += prob[e]
        q = kept / (1.0 - unk[c]) if hi > lo else 0.0
        if hi - lo >= n_vocab or (gamma == 0.0 and hi > lo):
            q = 1.0  # nothing backs off, or only the unknown token lies outside (never drawn)
        bloom = np.int64(0)
        for e in range(lo, hi):
            bloom |= np.int64(1) << _bloom_bit(e_tok[e])
        pc[c, 0] = lo
        pc[c, 1] = (hi - lo) | ((par + 1) << 32)
        pc[c, 2] = bloom
        pc[c, 3] = np.int64(min(q, 1.0) * TWO53)
    # alias tables
    width = 0
    for c in range(n_ctx):
        width = max(width, ctx_start[c + 1] - ctx_start[c])
    p = np.empty(width, np.float64)
    small = np.empty(width, np.int64)
    large = np.empty(width, np.int64)
    for c in range(n_ctx):
        lo = ctx_start[c]
        hi = ctx_start[c + 1]
        n = hi - lo
        if n == 0:
            continue
        total = 0.0
        for e in range(lo, hi):
            total += prob[e]
        n_small = 0
        n_large = 0
        for i in range(n):
            e = lo + i
            pe[e, 0] = e_tok[e]
            pe[e, 1] = 0
            pe[e, 2] = e_next[e]
            pe[e, 3] = e_tok[e]
            pe[e, 4] = e_next[e]
            p[i] = prob[e] * n / total if total > 0.0 else 1.0
            if p[i] < 1.0:
                small[n_small] = i
                n_small += 1
            else:
                large[n_large] = i
                n_large += 1
        while n_small > 0 and n_large > 0:
            n_small -= 1
            i = small[n_small]
            g = large[n_large - 1]
            pe[lo + i, 1] = np.int32(min(p[i] * TWO31, TWO31 - 1.0))
            pe[lo + i, 3] = e_tok[lo + g]
            pe[lo + i, 4] = e_next[lo + g]
            p[g] = (p[g] + p[i]) - 1.0
            if p[g] < 1.0:
                n_large -= 1
                small[n_small] = g
                n_small += 1
        # what is left holds probability one (up to rounding): its own alias
    return pc, pe


@njit(**NJIT_OPTIONS)
def _rand53(rng):
    """Uniform 53-bit integer (as int64) from the SplitMix64 state ``rng[0]``."""
    rng[0] += SALT
    z = rng[0]
    z = (z ^ (z >> np.uint64(30))) * SM_1
    z = (z ^ (z >> np.uint64(27))) * SM_2
    z ^= z >> np.uint64(31)
    return np.int64(z >> np.uint64(11))


@njit(**NJIT_OPTIONS)
def _rand64(rng):
    """Uniform 64-bit integer from the SplitMix64 state ``rng[0]``."""
    rng[0] += SALT
    z = rng[0]
    z = (z ^ (z >> np.uint64(30))) * SM_1
    z = (z ^ (z >> np.uint64(27))) * SM_2
    return z ^ (z >> np.uint64(31))


@njit(**NJIT_OPTIONS)
def _split_uniform(z, k):
    """A bucket ``floor(u k)`` of ``k`` (< 2**32) and the next 31 bits of ``u k``'s fraction
    (the alias test), for the 64-bit uniform ``z = u * 2**64``: integer arithmetic only
    (the 64 x 32-bit product's high part from two 32 x 32-bit products)."""
    k = np.uint64(k)
    mid = (z >> S32) * k + (((z & M32) * k) >> S32)
    return np.int64(mid >> S32), np.int64((mid & M32) >> ONE)


@njit(**NJIT_OPTIONS)
def _find_packed(pe, lo, hi, w):
    """Entry of token ``w`` among the packed entries ``lo:hi`` (sorted by token), or -1."""
    end = hi
    while lo < hi:
        mid = (lo + hi) >> 1
        if pe[mid, 0] < w:
            lo = mid + 1
        else:
            hi = mid
    if lo < end and pe[lo, 0] == w:
        return lo
    return -1


LANES = 64  # documents sampled side by side, so that their memory reads overlap (64 measured a little
# faster than 32 once lanes took documents as they freed up; 128 no better)


@njit(**NJIT_OPTIONS)
def _bucket(pc, c, rng):
    """A bucket of context c's alias table: its entry and the threshold test's value."""
    b, test = _split_uniform(_rand64(rng), pc[c, 1] & 0xFFFFFFFF)
    return pc[c, 0] + b, test


@njit(**NJIT_OPTIONS)
def _resolve(pe, e, test):
    """Token and next context drawn from bucket e: its entry's, or its alias's (a select)."""
    alias = np.int64(test >= pe[e, 1])
    return np.int64(pe[e, 3 * alias]), np.int64(pe[e, 2 + 2 * alias])


@njit(**NJIT_OPTIONS)
def _draw_in(pc, pe, c, rng):
    """A token from context c's own alias table, and the context after it."""
    e, test = _bucket(pc, c, rng)
    return _resolve(pe, e, test)


@njit(**NJIT_OPTIONS)
def _pick_bucket(pc, c, rng):
    """The bucket a draw at context c reads (see :func:`_bucket`), or (-1, 0) when the draw
    backs off (one uniform against ``q``).

    Under the plain table every context keeps its draws (``q = 1``): that uniform is then
    skipped rather than computed (the stream advances just the same)."""
    q = pc[c, 3]
    if q >= ALWAYS:
        rng[0] += SALT
    elif _rand53(rng) >= q:
        return np.int64(-1), np.int64(0)
    return _bucket(pc, c, rng)


@njit(**NJIT_OPTIONS)
def _draw_below(pc, pe, state, rng, n_vocab):
    """The out-of-table part of :func:`_draw_packed`: a token not in ``state``'s entries.

    Draws from ``p(. | h')`` restricted to tokens outside ``E(h)`` (h = ``state``, h' its
    parent) by rejection: the parent keeps the draw with probability ``q(h')`` (see
    :func:`sampler_tables`) and a token it draws inside ``E(h)`` is rejected; otherwise
    the draw is the parent's own out-of-table draw, which lies outside ``E(h')`` and so
    outside ``E(h)`` (a context's continuations are continuations of its suffix too).
    Below the empty context the draw is uniform over the vocabulary.
    """
    d = state
    while True:
        if (pc[d, 1] & 0xFFFFFFFF) >= n_vocab:
            return _draw_in(pc, pe, d, rng)  # nothing outside (a rounding error got us here)
        c = (pc[d, 1] >> 32) - 1
        if c < 0:
            w = min(np.int64(np.float64(_rand53(rng)) * (1.0 / TWO53) * n_vocab), n_vocab - 1)
            if _outside(pc, pe, d, w):
                return w, 0
        elif _rand53(rng) < pc[c, 3]:
            w, nxt = _draw_in(pc, pe, c, rng)
            if _outside(pc, pe, d, w):
                return w, nxt
        else:
            d = c


@njit(**NJIT_OPTIONS)
def _draw_packed(pc, pe, state, rng, n_vocab):
    """One token from p(. | state) with the packed tables, and the context after it.

    One uniform decides whether the draw stays in ``state``'s own alias table (with
    probability ``q``, see :func:`sampler_tables`), a second picks the bucket there;
    otherwise :func:`_draw_below` draws a token outside the table, whose next context is
    the one its lower-order entry gives. :func:`_lane_rounds` runs the same steps for
    several documents at once.
    """
    e, test = _pick_bucket(pc, state, rng)
    if e >= 0:
        return _resolve(pe, e, test)
    return _draw_below(pc, pe, state, rng, n_vocab)


@njit(**NJIT_OPTIONS)
def _end_document(docs, cur, l, r):
    """Lane ``l``'s document ends with the token of round ``r - 1``: the next document
    (the next index, whatever lane) starts on that lane at round ``r``.

    ``docs`` is int64[3, cap]: each document's lane, first round and end round (one past
    its ``EOS``), in order of their start; ``cur`` holds each lane's current document and,
    at ``cur[lanes]``, the documents started.
    """
    docs[2, cur[l]] = r
    d = cur[cur.shape[0] - 1]
    docs[0, d] = l
    docs[1, d] = r
    cur[l] = d
    cur[cur.shape[0] - 1] = d + 1


@njit(**NJIT_OPTIONS)
def _lane_rounds(pc, pe, n_vocab, eos_dense, bos_ctx, state, lane_rng, buf, docs, cur, rounds, n_rounds, pick):
    """Advance every lane by ``n_rounds`` tokens (the caller makes room and passes the scratch
    ``pick``, int64[lanes, 3]: no allocation here, which keeps the loop free of reference
    counting).

    A round makes two passes over the lanes, so that each lane's table read was requested
    (prefetched) a pass before it is needed: the first reads each lane's context, picks
    the bucket of its draw (:func:`_pick_bucket`) and fetches it; when the draw backs off
    it finishes it there (:func:`_draw_below`; ``pick[l] = (-1, token, next)``). The
    second reads the bucket (:func:`_resolve`), emits the token and fetches the next
    context. Each lane draws its uniforms in the same order as :func:`_draw_packed`.
    """
    L = state.shape[0]
    one = np.empty(1, np.uint64)
    for r in range(rounds, rounds + n_rounds):
        for l in range(L):
            one[0] = lane_rng[l]
            c = state[l]
            e, test = _pick_bucket(pc, c, one)
            pick[l, 0] = e
            pick[l, 1] = test
            if e >= 0:
                _prefetch_row(pe, e)
            else:
                pick[l, 1], pick[l, 2] = _draw_below(pc, pe, c, one, n_vocab)
            lane_rng[l] = one[0]
        for l in range(L):
            e = pick[l, 0]
            if e >= 0:
                w, nxt = _resolve(pe, e, pick[l, 1])
            else:
                w = pick[l, 1]
                nxt = pick[l, 2]
            buf[r * L + l] = w
            if w == eos_dense:
                _end_document(docs, cur, l, r + 1)
                nxt = bos_ctx
            state[l] = nxt
            _prefetch_row(pc, nxt)


PLAIN_LINE = 16  # int32 words in a 64-byte cache line


@njit(**NJIT_OPTIONS)
def plain_layout(pc):
    """Where each context's block starts in :func:`plain_tables`' array, and its words.

    A block is two words and three per entry; one that fits a cache line is moved to
    the next line rather than straddle two (about 8 % more words on the KJV).
    """
    n_ctx = pc.shape[0]
    off = np.empty(n_ctx, np.int64)
    size = 0
    for c in range(n_ctx):
        words = 2 + 3 * (pc[c, 1] & 0xFFFFFFFF)
        if words <= PLAIN_LINE and size % PLAIN_LINE + words > PLAIN_LINE:
            size += PLAIN_LINE - size % PLAIN_LINE
        off[c] = size
        size += words
    return off, size


@njit(**NJIT_OPTIONS)
def plain_tables(pc, pe, bos_ctx, eos_dense, off, blk):
    """Sampling blocks for a chain whose draws never back off (the plain table).

    When every context keeps its draws (``q = 1``, see :func:`sampler_tables`), a draw
    needs only the context's alias table, and a lane's state can be where that table
    is. Context c's block at ``off[c]`` (see :func:`plain_layout`) holds its number of
    entries, the token that leads into it, then per bucket ``(threshold * 2**31, next
    block, alias's next block)``: the token a draw emits is read from the next block's
    second word when the next draw reads its first, so a token costs one read of a
    block that mostly lies in one cache line (half the bytes of a row holding tokens
    and the next contexts' entries). Every context but ``BOS``'s is entered after one
    token only (its last); ``BOS``'s after ``EOS``.

    Fills ``blk`` (int32, zeroed, allocated by the caller as in :func:`sampler_tables`)
    and returns False when that does not hold, or some reachable context backs off or
    has no entries (use :func:`generate_fast` then).
    """
    n_ctx = pc.shape[0]
    n_e = pe.shape[0]
    ok = n_ctx > 0 and 0 <= bos_ctx < n_ctx and (pc[bos_ctx, 1] & 0xFFFFFFFF) > 0
    into = np.full(n_ctx, -1, np.int64)  # the token that leads into each context
    if ok:
        into[bos_ctx] = eos_dense
    for c in range(n_ctx):
        if (pc[c, 1] & 0xFFFFFFFF) > 0 and pc[c, 3] < ALWAYS:
            ok = False
    for e in range(n_e):
        for j in range(2):
            w = np.int64(pe[e, 3 * j])
            nxt = np.int64(pe[e, 2 + 2 * j])
            if (pc[nxt, 1] & 0xFFFFFFFF) == 0 or (w == eos_dense) != (nxt == bos_ctx):
                ok = False
            elif into[nxt] < 0:
                into[nxt] = w
            elif into[nxt] != w:
                ok = False
    if not ok:
        return False
    for c in range(n_ctx):
        o = off[c]
        n = pc[c, 1] & 0xFFFFFFFF
        blk[o] = n
        blk[o + 1] = max(into[c], 0)
        for i in range(n):
            e = pc[c, 0] + i
            blk[o + 2 + 3 * i] = pe[e, 1]
            blk[o + 3 + 3 * i] = off[pe[e, 2]]
            blk[o + 4 + 3 * i] = off[pe[e, 4]]
    return True


@njit(**NJIT_OPTIONS)
def _plain_rounds(blk, eos_dense, state, lane_rng, buf, docs, cur, rounds, n_rounds, pick):
    """:func:`_lane_rounds` for the blocks of :func:`plain_tables`: a lane's state is
    where its context's block is; ``pick`` (int64[3, lanes]) is scratch.

    Each lane reads its block's first words (fetched a round before): the token the
    last step emitted, recorded now, and the entries; it draws one uniform and picks
    its bucket (integer arithmetic, see :func:`_split_uniform`); the buckets are
    fetched; then each is resolved (a select, no branch) to the next block, which is
    fetched. The tokens of the call's last round are read at its end.
    """
    L = state.shape[0]
    bucket = pick[0]
    test = pick[1]
    for r in range(rounds, rounds + n_rounds):
        for l in range(L):
            s = state[l]
            if r > rounds:  # the previous step's token
                w = np.int64(blk[s + 1])
                buf[(r - 1) * L + l] = w
                if w == eos_dense:
                    _end_document(docs, cur, l, r)
            z = lane_rng[l] + SALT
            lane_rng[l] = z
            z = (z ^ (z >> np.uint64(30))) * SM_1
            z = (z ^ (z >> np.uint64(27))) * SM_2
            z ^= z >> np.uint64(31)
            b, t = _split_uniform(z, blk[s])
            bucket[l] = s + 2 + 3 * b
            test[l] = t
        for l in range(L):
            _prefetch_word(blk, bucket[l])
        for l in range(L):
            e = bucket[l]
            nxt = np.int64(blk[e + 1 + np.int64(test[l] >= blk[e])])
            state[l] = nxt
            _prefetch_word(blk, nxt)
    r = rounds + n_rounds
    for l in range(L):
        w = np.int64(blk[state[l] + 1])
        buf[(r - 1) * L + l] = w
        if w == eos_dense:
            _end_document(docs, cur, l, r)


@njit(**NJIT_OPTIONS)
def _run_lanes(pc, pe, blk, off, plain, state0, n_tokens, rng, n_vocab, eos_dense, bos_ctx, lanes):
    """Run the lanes until documents 0..last hold ``n_tokens`` tokens (see :func:`generate_fast`).

    ``plain`` picks the rounds: :func:`_plain_rounds` over ``blk`` and ``off`` (from
    :func:`plain_tables`) or :func:`_lane_rounds` over ``pc`` and ``pe``. Returns ``buf``
    (the token of round r of lane l at ``r * lanes + l``), ``docs`` (each document's
    lane, first and end round, see :func:`_end_document`), the last document, the steps
    taken from it, and the steps in all.
    """
    L = lanes
    lane_rng = np.empty(L, np.uint64)
    for l in range(L):
        lane_rng[l] = _mix64(rng[0] + SALT * np.uint64(l + 1))
    state = np.full(L, bos_ctx, np.int64)
    state[0] = state0
    if plain:  # the plain rounds' states: where each lane's context's block is
        for l in range(L):
            state[l] = off[state[l]]
    cap = max(n_tokens // L * 9 // 8 + 64, 64)  # rounds: the lanes run a little past n_tokens / L
    buf = np.empty(cap * L, np.int64)
    dcap = cap * L // 16 + 2 * L  # documents (text has far fewer than one per 16 tokens; grown when short)
    docs = np.empty((3, dcap), np.int64)
    cur = np.empty(L + 1, np.int64)
    for l in range(L):  # documents 0..L-1 start on lanes 0..L-1
        docs[0, l] = l
        docs[1, l] = 0
        cur[l] = l
    cur[L] = L
    pick = np.empty((L, 3), np.int64)  # scratch of the general rounds
    pick_plain = np.empty((3, L), np.int64)  # and of the plain ones
    rounds = 0
    k = 0  # first document not yet complete, in document order
    prefix = 0  # tokens of documents 0..k-1
    empty_run = 0
    last = -1  # the document cut at the budget
    need = 0
    while last < 0:
        # rounds in the next step: half of what the documents still missing need, so that
        # generation overshoots the budget by little
        chunk = min(max((n_tokens - prefix) // L // 2, 16), 4096)
        if rounds + chunk > cap:
            grown = np.empty(2 * (rounds + chunk) * L, np.int64)
            grown[: rounds * L] = buf[: rounds * L]
            buf = grown
            cap = 2 * (rounds + chunk)
        if cur[L] + chunk * L >= dcap:  # room for a document a token
            dcap = 2 * (cur[L] + chunk * L)
            more = np.empty((3, dcap), np.int64)
            more[:, : cur[L]] = docs[:, : cur[L]]
            docs = more
        if plain:
            _plain_rounds(blk, eos_dense, state, lane_rng, buf, docs, cur, rounds, chunk, pick_plain)
        else:
            _lane_rounds(pc, pe, n_vocab, eos_dense, bos_ctx, state, lane_rng, buf, docs, cur, rounds, chunk, pick)
        rounds += chunk
        while True:
            if cur[docs[0, k]] != k:  # complete
                length = docs[2, k] - docs[1, k] - 1
                if prefix + length >= n_tokens:
                    last = k
                    need = n_tokens - prefix
                    break
                prefix += length
                k += 1
                empty_run = empty_run + 1 if length == 0 else 0
                if empty_run > 1000:
                    last = k  # a model of empty documents only ends them
                    need = 0
                    break
            else:
                if prefix + rounds - docs[1, k] >= n_tokens:
                    last = k
                    need = n_tokens - prefix
                break
    return buf, docs, last, need, prefix + k + need


@njit(**NJIT_OPTIONS)
def _lane_tokens(buf, docs, last, need, n_out, lanes):
    """Documents 0..last of the lanes' output, in order, as dense tokens."""
    L = lanes
    out = np.empty(n_out, np.int64)
    n = 0
    for d in range(last + 1):
        l = docs[0, d]
        a = docs[1, d]
        b = docs[2, d] if d < last else a + need
        for r in range(a, b):
            out[n] = buf[r * L + l]
            n += 1
    return out[:n]


PACK_OFFSET = np.int64((1 << 40) - 1)  # token_pack: byte offset in bits 0-39, length in 40-61,
PACK_LENGTH = np.int64((1 << 22) - 1)  # space before in bit 62, space after in bit 63 (as int64: < 0)


@njit(**NJIT_OPTIONS)
def _lane_text(buf, docs, last, need, n_out, lanes, pack, lex_buf, max_len):
    """Documents 0..last of the lanes' output joined as UTF-8 text (see :func:`join_tokens`):
    ``pack`` maps what ``buf`` holds to its token's bytes in ``lex_buf`` and its spacing
    (see :func:`token_pack`); ``max_len`` bounds a token's bytes. Returns the bytes and
    the first token (-1 when none was made).

    One pass into room for ``n_out`` tokens of ``max_len`` bytes and a space each (not
    touched beyond what is written), or, when tokens can be long, a first pass that
    measures the text.
    """
    L = lanes
    first = np.int64(-1)
    if n_out > 0:
        first = buf[0]  # document 0 starts lane 0 at round 0
    exact = max_len > 64
    total = n_out * (max_len + 1)
    if exact:
        total = 0
        prev_sa = np.int64(0)
        for d in range(last + 1):
            l = docs[0, d]
            a = docs[1, d]
            b = docs[2, d] if d < last else a + need
            for r in range(a, b):
                p = pack[buf[r * L + l]]
                total += ((p >> 40) & PACK_LENGTH) + (prev_sa & (p >> 62) & 1)
                prev_sa = (p >> 63) & 1
    out = np.empty(total + JOIN_BLOCK + 1, np.uint8)
    j = 0
    prev_sa = np.int64(0)
    for d in range(last + 1):
        l = docs[0, d]
        a = docs[1, d]
        b = docs[2, d] if d < last else a + need
        for r in range(a, b):
            p = pack[buf[r * L + l]]
            out[j] = 32
            j += prev_sa & (p >> 62) & 1
            off = p & PACK_OFFSET
            length = (p >> 40) & PACK_LENGTH
            _copy_block(out, j, lex_buf, off)
            for k in range(JOIN_BLOCK, length):  # a long token: the rest byte by byte
                out[j + k] = lex_buf[off + k]
            j += length
            prev_sa = (p >> 63) & 1
    return out[:j], first


@njit(**NJIT_OPTIONS)
def token_pack(lex_off, sb, sa):
    """Each token's bytes and spacing in one int64 (see :data:`PACK_OFFSET`), for :func:`_lane_text`."""
    n = lex_off.shape[0] - 1
    out = np.empty(n, np.int64)
    for w in range(n):
        out[w] = lex_off[w] | ((lex_off[w + 1] - lex_off[w]) << 40) | (np.int64(sb[w]) << 62) \
            | (np.int64(sa[w]) << 63)
    return out


@njit(**NJIT_OPTIONS)
def generate_fast(pc, pe, state0, n_tokens, rng, n_vocab, eos_dense, bos_ctx, lanes):
    """Sample ``n_tokens`` tokens (document ends not counted) from the packed tables.

    Documents are independent runs from ``BOS`` to ``EOS``, so ``lanes`` of them are
    sampled side by side, each lane with its own random stream, and their reads of the
    tables overlap in memory. Documents are numbered as they start: lanes 0..L-1 start
    documents 0..L-1 (document 0 from ``state0``, the prompt's context), and a lane that
    ends one starts the next number (lanes that end one at the same step in lane
    order), so no lane waits for another. The output is documents 0, 1, 2, ... in that
    order, each followed by ``EOS``, the last one cut at the budget. A document's
    tokens come from uniforms its lane draws after the document got its number, so the
    documents are independent draws whatever their numbers, and the text is distributed
    exactly as one chain run document after document; a longer budget with the same
    seed extends the same text. (Lanes that each kept a fixed share of the documents
    ran 15-30 % more steps than they kept: the others waited for the lane with the
    longest document.)

    Returns int64[n_out] of dense tokens, ``EOS`` included where a document ended.
    """
    if n_tokens <= 0:
        return np.zeros(0, np.int64)
    buf, docs, last, need, n_out = _run_lanes(pc, pe, np.zeros(1, np.int32), np.zeros(1, np.int64), False, state0,
                                                n_tokens, rng, n_vocab, eos_dense, bos_ctx, lanes)
    return _lane_tokens(buf, docs, last, need, n_out, lanes)


@njit(**NJIT_OPTIONS)
def generate_plain(pc, blk, off, state0, n_tokens, rng, eos_dense, bos_ctx, lanes):
    """:func:`generate_fast` with the blocks of :func:`plain_tables` (one uniform and
    mostly one cache line a token)."""
    if n_tokens <= 0:
        return np.zeros(0, np.int64)
    buf, docs, last, need, n_out = _run_lanes(pc, np.zeros((1, 5), np.int32), blk, off, True, state0, n_tokens,
                                                rng, 0, eos_dense, bos_ctx, lanes)
    return _lane_tokens(buf, docs, last, need, n_out, lanes)


@njit(**NJIT_OPTIONS)
def generate_text(pc, pe, blk, off, plain, pack, lex_buf, max_len, state0, n_tokens, rng, n_vocab, eos_dense,
                  bos_ctx, lanes):
    """:func:`generate_fast` (or :func:`generate_plain` when ``plain``) straight to text:
    the UTF-8 bytes of :func:`join_tokens` and the first token (-1 when no token was
    made). ``pack`` comes from :func:`token_pack`; ``max_len`` is the longest token's bytes."""
    if n_tokens <= 0:
        return np.zeros(0, np.uint8), np.int64(-1)
    buf, docs, last, need, n_out = _run_lanes(pc, pe, blk, off, plain, state0, n_tokens, rng, n_vocab, eos_dense,
                                                bos_ctx, lanes)
    return _lane_text(buf, docs, last, need, n_out, lanes, pack, lex_buf, max_len)


@njit(**NJIT_OPTIONS)
def join_tokens(dense, lex_buf, lex_off, sb, sa):
    """UTF-8 bytes of dense tokens joined as text: a space where ``sa[prev] and sb[cur]``.

    ``lex_buf`` holds token ``w``'s bytes at ``lex_off[w]:lex_off[w + 1]`` followed by
    ``JOIN_BLOCK`` spare bytes at the end. Each token is copied as one fixed block (the
    next token overwrites the excess) and the space is written unconditionally, so the
    loop has no branch that depends on the text (a length-dependent byte loop spent
    most of its time on mispredicted loop exits).
    """
    n = dense.shape[0]
    if n == 0:
        return np.empty(0, np.uint8)
    total = lex_off[dense[0] + 1] - lex_off[dense[0]]
    for i in range(1, n):
        w = dense[i]
        total += lex_off[w + 1] - lex_off[w] + np.int64(sa[dense[i - 1]] & sb[w])
    out = np.empty(total + JOIN_BLOCK + 1, np.uint8)
    j = 0
    for i in range(n):
        w = dense[i]
        out[j] = 32
        j += np.int64(i > 0 and sa[dense[i - 1]] & sb[w])
        a = lex_off[w]
        length = lex_off[w + 1] - a
        _copy_block(out, j, lex_buf, a)
        for k in range(JOIN_BLOCK, length):  # a long token: the rest byte by byte
            out[j + k] = lex_buf[a + k]
        j += length
    return out[:total]


@njit(**NJIT_OPTIONS)
def _ends_sentence(sent, n, w, kind, info_sa, is_abbrev):
    """True when token ``w`` would begin a new sentence after ``sent[:n]``."""
    k = kind[w]
    if k == K_LOWER or k == K_TERMINAL or k == K_CLOSER:
        return False
    if n == 0 or not info_sa[sent[n - 1]]:
        return False
    j = n - 1
    while j >= 0 and kind[sent[j]] == K_CLOSER:
        j -= 1
    if j < 0 or kind[sent[j]] != K_TERMINAL:
        return False
    while j >= 0 and kind[sent[j]] == K_TERMINAL:
        j -= 1
    if j >= 0 and is_abbrev[sent[j]]:
        return False
    return True


@njit(**NJIT_OPTIONS)
def make_sentences(ch, params, n_sentences, max_tokens, rng, mode, temperature,
                   top_k, rank, eos_dense, kind, info_sa, is_abbrev, open_cum,
                   open_state, open_first):
    """Generate sentences: each from a sentence opener drawn by its count, up to its end.

    A sentence ends where the next token would begin a new one (the rule the tokeniser
    uses) or at a document's end; one that reaches ``max_tokens`` is abandoned
    (length -1).

    Returns
    -------
    tokens : int64[total]
    bounds : int64[n_sentences + 1]
        Sentence i is ``tokens[bounds[i]:bounds[i + 1]]`` (empty when abandoned).
    """
    n_vocab = params[4]
    probs = np.zeros(n_vocab + 1 if mode == 2 else 1, np.float64)
    levels = np.empty(40, np.int64)
    scale = np.empty(40, np.float64)
    out = np.empty(n_sentences * max_tokens, np.int64)
    bounds = np.zeros(n_sentences + 1, np.int64)
    n = 0
    total_open = open_cum[open_cum.shape[0] - 1]
    for s in range(n_sentences):
        start = n
        a = _first_above(open_cum, 0, open_cum.shape[0] - 1, np.int64(_rand(rng) * total_open))
        w = open_first[a]
        state = _next_state(ch, open_state[a], w, n_vocab)
        out[n] = w
        n += 1
        ok = False
        while n - start < max_tokens:
            w, after = _choose(ch, params, state, rng, mode, temperature, top_k, probs, rank, levels,
                               scale)
            if w == eos_dense or _ends_sentence(out[start:n], n - start, w, kind, info_sa, is_abbrev):
                ok = True
                break
            out[n] = w
            n += 1
            state = after if after >= 0 else _next_state(ch, state, w, n_vocab)
        if not ok:
            n = start
        bounds[s + 1] = n
    return out[:n].copy(), bounds


# -- verbatim recall -----------------------------------------------------------------------


@njit(**NJIT_OPTIONS)
def prompted_recall(ch, params, dense, tok_bounds, sample_doc, sample_pos, prefix,
                    continuation, rank, bos_ctx):
    """Greedy continuation of prompts taken from the training text (Carlini et al.).

    For sample i the prompt is the ``prefix`` tokens of document ``sample_doc[i]``
    before token ``sample_pos[i]`` (preceded by ``BOS`` when they start the document);
    the model decodes greedily and the match length is the number of leading tokens
    equal to the next ``continuation`` tokens of the text.

    Returns int64[n_samples]: the exact-match length of each sample (0..continuation).
    """
    n_vocab = params[4]
    levels = np.empty(40, np.int64)
    scale = np.empty(40, np.float64)
    out = np.zeros(sample_doc.shape[0], np.int64)
    for i in range(sample_doc.shape[0]):
        a = tok_bounds[sample_doc[i]]
        t = a + sample_pos[i]
        state = bos_ctx if t - prefix == a else 0
        for j in range(t - prefix, t):
            w = dense[j]
            state = _next_state(ch, state, w if w >= 0 else n_vocab, n_vocab)
        m = 0
        while m < continuation:
            w = _greedy(ch, params, state, rank, levels, scale)
            if w != dense[t + m]:
                break
            m += 1
            state = _next_state(ch, state, w, n_vocab)
        out[i] = m
    return out


@njit(**NJIT_OPTIONS)
def matching_statistics(text, sa, query):
    """Length of the longest prefix of ``query[i:]`` found anywhere in ``text``, per i.

    ``sa`` is the suffix array of ``text`` (int64 symbols; negative symbols are unique
    separators and never match). Query symbols below 0 never match.
    """
    n = text.shape[0]
    m = query.shape[0]
    out = np.zeros(m, np.int64)
    for i in range(m):
        lo = 0
        hi = n
        L = 0
        while i + L < m and query[i + L] >= 0:
            x = query[i + L]
            # narrow [lo, hi) to suffixes whose symbol at offset L equals x
            a = lo
            b = hi
            while a < b:
                mid = (a + b) >> 1
                p = sa[mid] + L
                s = text[p] if p < n else -1
                if s < x:
                    a = mid + 1
                else:
                    b = mid
            new_lo = a
            b = hi
            while a < b:
                mid = (a + b) >> 1
                p = sa[mid] + L
                s = text[p] if p < n else -1
                if s <= x:
                    a = mid + 1
                else:
                    b = mid
            if a == new_lo:
                break
            lo = new_lo
            hi = a
            L += 1
        out[i] = L
    return out

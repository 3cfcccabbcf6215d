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
    itself an n-gram, so a row ``(key, prefix, last, order, counts[categories])`` serves
    both as "``last`` follows context ``prefix``" and as the context ``key``. Rows of
    order 0 are sentence openers: ``prefix`` is the token before a sentence (or
    ``BOS_ID``) and ``last`` the sentence's first token.
Table
    Open addressing with linear probing: ``keys[cap]`` (0 = empty) and ``slots[cap]``
    (the row of that key); ``cap`` is a power of two, at most half full.
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
    longest known context's relative frequencies, no interpolation).
Speed notes
    Hot loops compute each level's mass inline: a helper returning a (float, float)
    tuple measured 3-4 times slower here. Avoid chained comparisons (``a <= x < b``) in
    byte loops: one such decoder measured 30 times slower than the same tests joined
    with ``and``.
"""

import numpy as np
from numba import njit

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
    cap = buf.shape[0] + 1
    ids = np.empty(cap, np.uint64)
    starts = np.empty(cap, np.int64)
    lengths = np.empty(cap, np.int32)
    info = np.empty(cap, np.uint8)
    tok_bounds = np.empty(n_docs + 1, np.int64)
    n = 0
    for d in range(n_docs):
        tok_bounds[d] = n
        end = doc_bounds[d + 1]
        i = doc_bounds[d]
        prev_space = True
        while i < end:
            cp, width = _decode(buf, i, end)
            if _is_space(cp):
                prev_space = True
                i += width
                continue
            if _is_word_char(cp):
                start = i
                h = FNV_OFFSET
                while i < end:
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
    return ids[:n].copy(), starts[:n].copy(), lengths[:n].copy(), info[:n].copy(), tok_bounds


@njit(**NJIT_OPTIONS)
def _in_sorted(values, x):
    """True when ``x`` is in the sorted array ``values``."""
    lo = 0
    hi = values.shape[0]
    while lo < hi:
        mid = (lo + hi) >> 1
        if values[mid] < x:
            lo = mid + 1
        else:
            hi = mid
    return lo < values.shape[0] and values[lo] == x


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


@njit(**NJIT_OPTIONS)
def _find_slot(keys, key):
    """Slot of ``key``, or of the empty slot where it would go."""
    mask = np.uint64(keys.shape[0] - 1)
    s = key & mask
    while True:
        k = keys[s]
        if k == key or k == ZERO:
            return np.int64(s)
        s = (s + ONE) & mask


@njit(**NJIT_OPTIONS)
def table_lookup(keys, slots, key):
    """Row of ``key``, or -1 when absent."""
    s = _find_slot(keys, key)
    if keys[s] == ZERO:
        return np.int64(-1)
    return np.int64(slots[s])


@njit(**NJIT_OPTIONS)
def table_build(row_key, n_rows, keys, slots):
    """Fill an empty table with rows ``0..n_rows-1``."""
    for r in range(n_rows):
        s = _find_slot(keys, row_key[r])
        keys[s] = row_key[r]
        slots[s] = r


@njit(**NJIT_OPTIONS)
def count_ngrams(ids, info, tok_bounds, doc_cats, first_doc, order, abbrev, keys, slots,
                 row_key, row_prefix, row_last, row_order, counts, n_rows, new_tok):
    """Count the n-grams (orders 1..``order``) and sentence openers of documents.

    Each document is ``BOS t_1 .. t_n EOS``; every ``t_i`` and the ``EOS`` are counted
    after each of their contexts of length 0..order-1 that fits after ``BOS``. Stops
    before a document that could overfill the rows or push the table past half full;
    the caller grows them and calls again from the returned document.

    Parameters
    ----------
    ids, info, tok_bounds : from :func:`tokenize`.
    doc_cats : int64[n_docs]
        Category column of each document.
    first_doc : int
    order : int
    abbrev : uint64[n_abbrev]
        Sorted ids of abbreviations (a terminal after one does not end a sentence).
    keys, slots, row_key, row_prefix, row_last, row_order, counts : the table and rows.
    n_rows : int
        Rows in use on entry.
    new_tok : int64[n_tokens]
        Receives the index of each token whose unigram row is new (for the lexicon).

    Returns
    -------
    next_doc, n_rows, n_new : int
    """
    n_docs = tok_bounds.shape[0] - 1
    rows_cap = row_key.shape[0]
    half = keys.shape[0] // 2
    ctx = np.empty(order + 1, np.uint64)
    nxt = np.empty(order + 1, np.uint64)
    mask = np.uint64(keys.shape[0] - 1)
    n_new = 0
    for d in range(first_doc, n_docs):
        a = tok_bounds[d]
        b = tok_bounds[d + 1]
        worst = (b - a + 1) * (order + 1)
        if n_rows + worst > rows_cap or n_rows + worst > half:
            return d, n_rows, n_new
        c = doc_cats[d]
        ctx[0] = ROOT_ID
        ctx[1] = BOS_ID
        n_ctx = 2 if order > 1 else 1
        prev = BOS_ID
        for t in range(a, b + 1):
            w = ids[t] if t < b else EOS_ID
            first = 0
            if t < b and _starts_sentence(ids, info, a, t, abbrev):
                first = -1
            for k in range(first, n_ctx):
                if k < 0:
                    key = opener_id(prev, w)
                    p = prev
                else:
                    key = ngram_id(ctx[k], w, k + 1)
                    p = ctx[k]
                    nxt[k + 1] = key
                s = key & mask
                while True:
                    kk = keys[s]
                    if kk == key or kk == ZERO:
                        break
                    s = (s + ONE) & mask
                if kk == ZERO:
                    keys[s] = key
                    slots[s] = n_rows
                    row_key[n_rows] = key
                    row_prefix[n_rows] = p
                    row_last[n_rows] = w
                    row_order[n_rows] = k + 1
                    if k == 0 and t < b:
                        new_tok[n_new] = t
                        n_new += 1
                    n_rows += 1
                counts[slots[s], c] += 1
            n_ctx = min(n_ctx + 1, order)
            for k in range(1, n_ctx):
                ctx[k] = nxt[k]
            prev = w
    return n_docs, n_rows, n_new


@njit(**NJIT_OPTIONS)
def merge_rows(o_key, o_prefix, o_last, o_order, o_counts, cat_map, keys, slots,
               row_key, row_prefix, row_last, row_order, counts, n_rows):
    """Add another model's rows; ``cat_map`` maps its category columns to ours.

    The caller reserves room for every incoming row. Returns the rows in use.
    """
    for r in range(o_key.shape[0]):
        s = _find_slot(keys, o_key[r])
        if keys[s] == ZERO:
            keys[s] = o_key[r]
            slots[s] = n_rows
            row_key[n_rows] = o_key[r]
            row_prefix[n_rows] = o_prefix[r]
            row_last[n_rows] = o_last[r]
            row_order[n_rows] = o_order[r]
            n_rows += 1
        row = slots[s]
        for c in range(o_counts.shape[1]):
            counts[row, cat_map[c]] += o_counts[r, c]
    return n_rows


# -- derived structure ---------------------------------------------------------------------


@njit(**NJIT_OPTIONS)
def derive_rows(row_key, row_prefix, row_last, row_order, keys, slots, max_order):
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
    """
    n = row_key.shape[0]
    prefix_row = np.full(n, -1, np.int64)
    suffix_row = np.full(n, -1, np.int64)
    bos_initial = np.zeros(n, np.bool_)
    bad = 0
    # rows by increasing order (counting sort), so a prefix is done before its extensions
    n_per = np.zeros(max_order + 2, np.int64)
    for r in range(n):
        n_per[row_order[r] + 1] += 1
    for k in range(1, max_order + 2):
        n_per[k] += n_per[k - 1]
    by_order = np.empty(n, np.int64)
    for r in range(n):
        by_order[n_per[row_order[r]]] = r
        n_per[row_order[r]] += 1
    for i in range(n):
        r = by_order[i]
        k = row_order[r]
        if k == 0:
            prefix_row[r] = -3
            continue
        if k == 1:
            continue
        p = row_prefix[r]
        if k == 2:
            suffix_row[r] = table_lookup(keys, slots, row_last[r])
            if p == BOS_ID:
                prefix_row[r] = -2
                bos_initial[r] = True
            else:
                prefix_row[r] = table_lookup(keys, slots, p)
        else:
            pr = table_lookup(keys, slots, p)
            prefix_row[r] = pr
            if pr >= 0:
                bos_initial[r] = bos_initial[pr]
                sp = suffix_row[pr]
                if sp >= 0:
                    suffix_row[r] = table_lookup(keys, slots, ngram_id(row_key[sp], row_last[r], k - 1))
        if prefix_row[r] == -1 or suffix_row[r] < 0:
            bad += 1
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
def _find_entry(e_tok, lo, hi, w):
    """Entry of dense token ``w`` in ``e_tok[lo:hi]`` (sorted), or -1."""
    end = hi
    while lo < hi:
        mid = (lo + hi) >> 1
        if e_tok[mid] < w:
            lo = mid + 1
        else:
            hi = mid
    if lo < end and e_tok[lo] == w:
        return lo
    return -1


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
        if method == KNESER_NEY:
            den = np.float64(ctx_kn[c])
            level = cum_kn[hi] - cum_kn[lo]
        else:
            den = np.float64(ctx_raw[c])
            if method == DIRICHLET:
                den += alpha * (hi - lo) if per_type else alpha
            level = np.float64(ctx_raw[c])
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
def distribution(ch, params, state):
    """p(w | context ``state``) for every dense token and the unknown token, float64[V + 1]."""
    n_vocab = params[4]
    out = np.empty(n_vocab + 1, np.float64)
    for w in range(n_vocab + 1):
        out[w] = _prob(ch, params, state, w)[0]
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
                    target = cum_kn[lo] + u
                    a = lo
                    b = hi - 1
                    while a < b:  # first e with cum_kn[e + 1] > target
                        m = (a + b) >> 1
                        if cum_kn[m + 1] > target:
                            b = m
                        else:
                            a = m + 1
                    return e_tok[a], (e_next[a] if c == state else -1)
            else:
                den = np.float64(ctx_raw[c])
                if method == DIRICHLET:
                    den += alpha * (hi - lo) if per_type else alpha
                u = _rand(rng) * den
                if u < ctx_raw[c]:
                    target = cum_raw[lo] + np.int64(u)
                    a = lo
                    b = hi - 1
                    while a < b:  # first e with cum_raw[e + 1] > target
                        m = (a + b) >> 1
                        if cum_raw[m + 1] > target:
                            b = m
                        else:
                            a = m + 1
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
        if method == KNESER_NEY:
            den = np.float64(ctx_kn[c])
            level = cum_kn[hi] - cum_kn[lo]
        else:
            den = np.float64(ctx_raw[c])
            if method == DIRICHLET:
                den += alpha * (hi - lo) if per_type else alpha
            level = np.float64(ctx_raw[c])
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
    for w in range(n_vocab):
        probs[w] = _prob(ch, params, state, w)[0]
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
        target = np.int64(_rand(rng) * total_open)
        a = 0
        b = open_cum.shape[0] - 2
        while a < b:
            m = (a + b) >> 1
            if open_cum[m + 1] > target:
                b = m
            else:
                a = m + 1
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

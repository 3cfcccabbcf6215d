"""Generator kernels: sample a chain fast, from packed alias tables, many documents at once,
and write the text.

Private (see :mod:`accum._markov_kernels`). :func:`sampler_tables` packs a chain into
per-context rows and alias-table entries so that a token costs two dependent reads (the
context's row, then one entry row that holds its alias too); the plain table never
backs off, so :func:`plain_tables` lays each context's alias table and the token that
leads into it in one block (mostly one cache line a token). Documents are sampled
``LANES`` at a time, each read fetched a step before it is needed, so that those reads
overlap; :func:`generate_text` also writes the text. The draws are exact (up to 31-bit
alias thresholds).
"""

import numpy as np
from numba import njit, types
from numba.core import cgutils
from numba.core import config as numba_config
from numba.extending import intrinsic

from .._prefetch import prefetch, prefetch_row
from .._primitives import LOW32 as M32
from .._primitives import ONE, S32, SALT, mix64
from ..config import NJIT_OPTIONS
from .chains import _by_order, _context_mass, _find_entry, _prob, _weight, backoff_scratch
from .decoding import TWO53, _rand53, _rand64, splitmix

JOIN_BLOCK = 16  # bytes join_tokens copies per token at once; its lexicon ends with as many spare


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



if numba_config.DISABLE_JIT:  # kernel bodies run as Python (NUMBA_DISABLE_JIT=1)

    def _copy_block(dst, di, src, si):  # noqa: F811
        dst[di : di + JOIN_BLOCK] = src[si : si + JOIN_BLOCK]

# -- alias tables --------------------------------------------------------------------------


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
def sampler_tables(ch, query, ctx_order, pc, pe):
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
    ctx_start, ctx_parent, e_tok, e_next = ch.ctx_start, ch.ctx_parent, ch.e_tok, ch.e_next
    n_vocab = query.n_vocab
    scratch = backoff_scratch()
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
        den, level = _context_mass(ch, query, c)
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
                below = prob[f] if f >= 0 else _prob(ch, query, par, w, scratch)[0]
            else:
                below = 1.0 / (n_vocab + 1)
            own = _weight(ch, query, e) / den if den > 0.0 else 0.0
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


# -- drawing -------------------------------------------------------------------------------


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
                prefetch_row(pe, e)
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
            prefetch_row(pc, nxt)


# -- the plain table -----------------------------------------------------------------------


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
            z = splitmix(z)
            b, t = _split_uniform(z, blk[s])
            bucket[l] = s + 2 + 3 * b
            test[l] = t
        for l in range(L):
            prefetch(blk, bucket[l])
        for l in range(L):
            e = bucket[l]
            nxt = np.int64(blk[e + 1 + np.int64(test[l] >= blk[e])])
            state[l] = nxt
            prefetch(blk, nxt)
    r = rounds + n_rounds
    for l in range(L):
        w = np.int64(blk[state[l] + 1])
        buf[(r - 1) * L + l] = w
        if w == eos_dense:
            _end_document(docs, cur, l, r)


# -- documents and text ----------------------------------------------------------------------


#: Rounds the lanes take at least between two looks at their documents.
MIN_ROUNDS = 16


@njit(**NJIT_OPTIONS)
def _first_documents(pc, pe, state0, n_tokens, lane_rng, n_vocab, eos_dense, bos_ctx):
    """What :func:`_run_lanes` returns when documents 0..L-1 hold ``n_tokens`` tokens,
    drawn one lane after another (document d is lane d's first, from the same uniforms
    as in step, so the text is the same); ``last`` is -1 when they hold fewer."""
    L = lane_rng.shape[0]
    buf = np.empty((n_tokens + 1) * L, np.int64)
    docs = np.empty((3, L), np.int64)
    one = np.empty(1, np.uint64)
    prefix = np.int64(0)
    for l in range(L):
        one[0] = lane_rng[l]
        c = state0 if l == 0 else bos_ctx
        docs[0, l] = l
        docs[1, l] = 0
        r = np.int64(0)
        while True:
            if prefix + r >= n_tokens:  # document l holds the rest
                return buf, docs, np.int64(l), n_tokens - prefix, n_tokens + l
            w, c = _draw_packed(pc, pe, c, one, n_vocab)
            buf[r * L + l] = w
            r += 1
            if w == eos_dense:
                break
        docs[2, l] = r
        prefix += r - 1
    return buf, docs, np.int64(-1), np.int64(0), np.int64(0)


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
        lane_rng[l] = mix64(rng[0] + SALT * np.uint64(l + 1))
    state = np.full(L, bos_ctx, np.int64)
    state[0] = state0
    if plain:  # the plain rounds' states: where each lane's context's block is
        for l in range(L):
            state[l] = off[state[l]]
    if not plain and n_tokens < MIN_ROUNDS * L:
        # a short text most likely lies in documents 0..L-1, each its lane's first: drawn a
        # lane at a time they read only the contexts they visit, where the lanes' first
        # step alone would draw MIN_ROUNDS tokens in every lane (each read of a
        # memory-mapped table maps its neighbouring pages too)
        first = _first_documents(pc, pe, state[0], n_tokens, lane_rng.copy(), n_vocab, eos_dense, bos_ctx)
        if first[2] >= 0:
            return first
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
        chunk = min(max((n_tokens - prefix) // L // 2, MIN_ROUNDS), 4096)
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


@njit(inline="always", **NJIT_OPTIONS)
def _document_rounds(docs, d, last, need):
    """Lane and rounds ``a:b`` of document ``d`` in the lanes' output (the last document
    cut after ``need`` tokens)."""
    a = docs[1, d]
    return docs[0, d], a, (docs[2, d] if d < last else a + need)


@njit(**NJIT_OPTIONS)
def _lane_tokens(buf, docs, last, need, n_out, lanes):
    """Documents 0..last of the lanes' output, in order, as dense tokens."""
    L = lanes
    out = np.empty(n_out, np.int64)
    n = 0
    for d in range(last + 1):
        l, a, b = _document_rounds(docs, d, last, need)
        for r in range(a, b):
            out[n] = buf[r * L + l]
            n += 1
    return out[:n]


PACK_OFFSET = np.int64((1 << 40) - 1)  # token_pack: byte offset in bits 0-39, length in 40-61,


PACK_LENGTH = np.int64((1 << 22) - 1)  # space before in bit 62, space after in bit 63 (as int64: < 0)


@njit(inline="always", **NJIT_OPTIONS)
def _text_pass(buf, docs, last, need, lanes, pack, lex_buf, out, write):
    """The bytes of documents 0..last of the lanes' output as text (see :func:`_lane_text`),
    written to ``out`` when ``write`` (else only counted); returns their number."""
    j = 0
    prev_sa = np.int64(0)
    for d in range(last + 1):
        l, a, b = _document_rounds(docs, d, last, need)
        for r in range(a, b):
            p = pack[buf[r * lanes + l]]
            space = prev_sa & (p >> 62) & 1
            length = (p >> 40) & PACK_LENGTH
            if write:
                out[j] = 32
                j += space
                off = p & PACK_OFFSET
                _copy_block(out, j, lex_buf, off)
                for k in range(JOIN_BLOCK, length):  # a long token: the rest byte by byte
                    out[j + k] = lex_buf[off + k]
                j += length
            else:
                j += space + length
            prev_sa = (p >> 63) & 1
    return j


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
    first = np.int64(-1)
    if n_out > 0:
        first = buf[0]  # document 0 starts lane 0 at round 0
    total = n_out * (max_len + 1)
    if max_len > 64:
        total = _text_pass(buf, docs, last, need, lanes, pack, lex_buf, lex_buf, False)
    out = np.empty(total + JOIN_BLOCK + 1, np.uint8)
    return out[: _text_pass(buf, docs, last, need, lanes, pack, lex_buf, out, True)], first


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

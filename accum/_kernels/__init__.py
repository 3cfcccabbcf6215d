"""numba kernels of the classifier over arrays, by concern.

Private: the public classes in :mod:`accum.tokens`, :mod:`accum.accumulator`,
:mod:`accum.classify` and :mod:`accum.linear` validate input and call these.

=================  =====================================================================
:mod:`.features`   tokenising, n-gram feature ids, a page's distinct features
:mod:`.tables`     the feature table and the pair table (find, add, grow, rebuild, read)
:mod:`.counting`   counting pages, taking them back out, merging, growth statistics
:mod:`.scoring`    linear models' weights laid out for look-up; scoring pages
=================  =====================================================================

Hashing, UTF-8 decoding and the word-character rule come from :mod:`accum._primitives`,
shared with the generator's kernels. Kernels call each other across these files;
:mod:`accum.config` keeps numba's cache right when any of them changes.

Conventions
-----------
- Token ids are 64-bit hashes of the token's UTF-8 bytes (FNV-1a, then a murmur3 final
  mix). Feature ids: a unigram's id is its token id; an n-gram's id (n >= 2) mixes the
  ids of its tokens in order with a per-order salt. The id 0 is reserved for "empty".
- The feature table is open addressing with linear probing: ``slots[cap]`` (uint32) holds
  a row + 1 (0 = empty slot), confirmed by the row's feature id in ``row_info``: 4 bytes a
  slot. ``cap`` is a power of two.
- Rows are dense: ``row_info[r]`` holds the feature id, the id of the feature without its
  last token (0 for unigrams), the last token id and the order, and ``row_total[r]`` its
  count summed over categories.
- Counts are sparse *pairs*: only (row, category) pairs counted at least once are kept,
  as dense rows ``pairs[p] = (row << 32 | category, count, weight, scratch)`` in the order
  they were first counted, so memory follows the non-zero counts, not rows x categories.
  A second open-addressing table, ``pair_table[cap]``, finds them by feature id and
  category: the hash ``fid ^ category_salt(category)`` needs no row, so a count whose
  pair exists (most of them) reads the pair table, the pair and the row total, and not
  the feature table at all. An entry is the hash's top 32 bits (a tag, whose top bits
  are also the first slot probed) over pair + 1, so an empty slot is 0; the pair keeps
  the low 32 bits of its feature id to confirm a tag match exactly
  (see :func:`.tables._pair_probe`). Pairs are only ever appended, so a pair keeps its
  index for the life of the accumulator.
"""

from .counting import (AT_LEAST_K, CHECKPOINT_GROWTH, DISTINCT, DOUBLETONS, GRAM_SCALE, SINGLETONS, WEIGHT_SCALE,
                       accumulate, count_stats, gram_bucket, gram_buckets, is_checkpoint, merge_rows,
                       replay_crossings, subtract_pages, page_terms)
from .features import gather_tokens, ngram_id, ngram_ids, page_features, tokenize
from .scoring import (DENSE, LINEAR_LOAD, complement_rows, entry_starts, fill_entries, key_table, linear_find,
                      linear_starts, linear_weights, score_dense, score_texts, unigram_bucket_sums)
from .tables import (AHEAD, P_COUNT, P_ID_TF, P_KEY, P_WEIGHT, PAIR_LIMIT, category_salt, lookup_rows, pair_find,
                     pair_table_build, pair_table_grow, pairs_columns, pairs_dense, table_build, table_lookup)

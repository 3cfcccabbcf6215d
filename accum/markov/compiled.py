"""A generator's default chain kept apart from its counts, for queries that read only it.

Generating from all categories at the model's order needs one compiled :class:`Chain`,
its vocabulary and spellings, and the sampling tables of the smoother: a few arrays that
can be saved once and memory-mapped, so that a query touches only the contexts it visits
instead of loading every count and compiling the chain again. :func:`chain_state` takes
them from a model as plain arrays; :class:`ChainOnly` answers from them, with the same
seeded texts as the model they came from.
"""

from __future__ import annotations

import numpy as np

from .. import _markov_kernels as K
from .chain import Chain, Spellings, Vocabulary, make_query
from .model import MarkovAccumulator


def chain_state(model: MarkovAccumulator) -> dict:
    """The default chain of ``model`` (all categories, its order and discount), its
    vocabulary and spellings, and the sampling tables of its default smoother, as a dict
    of arrays plus JSON-able entries (:meth:`ChainOnly.from_state` reads it back)."""
    chain, query, _ = model._setup(None, None, None, None, None, None)
    pc, pe = chain.sampler(query)
    vocabulary, spellings = model._vocabulary(), model._spellings()
    state = {"settings": model.settings(), "categories": list(model.categories),
             "doc_counts": model.doc_counts.copy(), "token_counts": model.token_counts.copy(),
             "bos_ctx": chain.bos_ctx, "eos": vocabulary.eos, "max_len": spellings.max_len,
             "ctx_order": chain.ctx_order, "sampler_pc": pc, "sampler_pe": pe,
             "vocab_ids": vocabulary.ids, "vocab_kind": vocabulary.kind, "vocab_space_before": vocabulary.space_before,
             "vocab_space_after": vocabulary.space_after, "vocab_is_abbrev": vocabulary.is_abbrev,
             "spell_buf": spellings.buf, "spell_offsets": spellings.offsets}
    if spellings.pack is not None:
        state["spell_pack"] = spellings.pack
    state |= {f"chain_{name}": array for name, array in chain.arrays._asdict().items()}
    state |= {f"openers_{name}": array for name, array in chain.openers._asdict().items()}
    return state


class ChainOnly(MarkovAccumulator):
    """A generator that holds one chain of a :class:`MarkovAccumulator` and not its counts
    (see :func:`chain_state`): :meth:`generate`, :meth:`make_sentence`,
    :meth:`distribution` and :meth:`log_probs` over all categories at the model's order
    and discount answer as the model does, with any smoother, decoding and seed; queries
    that need another chain or the counts raise :class:`NeedsCounts`."""

    @classmethod
    def from_state(cls, state: dict) -> "ChainOnly":
        """The generator of a :func:`chain_state` (arrays may be read-only, memory-mapped)."""
        model = cls(**state["settings"])
        for name in state["categories"]:
            model.category_index(name)
        model.doc_counts = np.array(state["doc_counts"], np.int64)
        model.token_counts = np.array(state["token_counts"], np.int64)
        offsets = state["spell_offsets"]
        data = bytes(state["spell_buf"][: offsets[-1]])
        texts = np.array([str(data[offsets[i] : offsets[i + 1]], "utf-8", "surrogatepass")
                          for i in range(len(offsets) - 1)], dtype=object)
        vocabulary = Vocabulary(state["vocab_ids"], texts, state["vocab_kind"], state["vocab_space_before"],
                                state["vocab_space_after"], state["vocab_is_abbrev"], int(state["eos"]))
        arrays = K.ChainArrays(*(state[f"chain_{name}"] for name in K.ChainArrays._fields))
        openers = K.Openers(*(state[f"openers_{name}"] for name in K.Openers._fields))
        chain = Chain(arrays, int(state["bos_ctx"]), state["ctx_order"], openers)
        query = make_query(model.method, model.discount, model.alpha, model.alpha_per_type, vocabulary.size)
        chain._tables[Chain.table_key("sampler", query)] = (state["sampler_pc"], state["sampler_pe"])
        model._derived.vocabulary = vocabulary
        model._derived.spellings = Spellings(state["spell_buf"], offsets, int(state["max_len"]),
                                             state.get("spell_pack"))
        model._derived.chains[(-1, model.order, model.discount)] = chain
        return model

    def _chain(self, column: int, order: int, discount: float) -> Chain:
        key = (column, order, discount)
        if key not in self._derived.chains:
            raise NeedsCounts(f"this generator keeps only the chain of all categories at order {self.order} "
                              f"and discount {self.discount}; {_describe(key)} needs the counts")
        return self._derived.chains[key]

    def _no_counts(self, *args, **kwargs):
        raise NeedsCounts("this generator keeps one chain, not the counts: load the whole generator for that")

    partial_fit = learn_one = add_tokens = merge = to_arrays = count = recall = free_recall = _no_counts
    parameters = canonical = sparse_counts = index_text = __getstate__ = _no_counts


class NeedsCounts(LookupError):
    """A query a :class:`ChainOnly` generator cannot answer without the model's counts."""


def _describe(key: tuple) -> str:
    column, order, discount = key
    return f"category column {column}, order {order}, discount {discount}" if column >= 0 \
        else f"order {order}, discount {discount}"

"""Compile every kernel once, ahead of the first real command.

numba compiles a kernel the first time it runs and keeps the machine code in its on-disk
cache (see :mod:`accum.config`); a fresh install's first ``accum classify`` or
``generate`` would otherwise wait for that. :func:`warm_up` runs each kernel on a few
tiny pages: counting, vectors and taking pages back, spilling and merging count runs,
the count models, the SVMs of the
model search, the vocabulary forecasts, and the text generator. ``accum warm-up`` (which
``make install`` runs), the service's start and the benchmarks call it.
"""

from __future__ import annotations

import time

TEXTS = ("The goalie stopped the puck in the third period.", "A disk drive and a SCSI controller on the bus.",
         "The shuttle reached orbit and docked with the station.", "The goalie and the defence held the line.",
         "Install the controller, then the drive.", "The station's orbit decays without a boost.")
LABELS = ("hockey", "hardware", "space", "hockey", "hardware", "space")


def warm_up(settings=None, generator: bool = True) -> dict[str, float]:
    """Run every kernel once (compiling it, or loading it from numba's cache); returns the
    seconds each part took. ``settings`` (:class:`~accum.settings.Settings`) are those
    of the store to be served, so kernels specialised on them are ready too."""
    from .accumulator import Accumulator
    from .settings import Settings
    from .classify import make_model
    from .linear import PageMatrix
    from .selection import select_model

    seconds = {}
    started = time.perf_counter()
    acc = Accumulator(settings or Settings(), keep_vectors=True)
    acc.partial_fit(list(TEXTS) * 3, list(LABELS) * 3)
    vectors = acc.take_vectors()
    other = Accumulator(acc.settings)
    other.partial_fit(TEXTS[:1], LABELS[:1])
    acc.merge(other)
    acc.subtract(vectors.subset([0]))
    _warm_runs(acc.settings)
    seconds["count"] = time.perf_counter() - started
    started = time.perf_counter()
    names = ["dm", "complement"] + (["ridge-complement"] if acc.settings.gram_bits else [])
    # also as a store builds them from its segments, a shard at a time, in writable arrays
    # (numba compiles read-only arrays, such as the accumulator's views, separately)
    shard = (acc.raw_pairs.copy(), acc.n_pairs, acc.raw_rows.copy())
    for name in names:
        make_model(acc, name).predict_one(TEXTS[0], explain=True)
        make_model(acc, name, shards=[shard])
    seconds["count models"] = time.perf_counter() - started
    started = time.perf_counter()
    for families in (["svm"], ["nbsvm"]):
        select_model(acc, vectors, families=families, k=2).model.predict_one(TEXTS[0], explain=True)
    # numbered as a fit reads a store's pages: read-only views of its segment files
    fids, tfs = vectors.fids.copy(), vectors.tfs.copy()
    fids.flags.writeable = tfs.flags.writeable = False
    PageMatrix.from_parts(vectors.bounds, vectors.labels, vectors.categories, [fids], [tfs])
    seconds["model search"] = time.perf_counter() - started
    started = time.perf_counter()
    _warm_forecasts(acc, vectors)
    seconds["forecasts"] = time.perf_counter() - started
    if generator:
        from .markov import MarkovAccumulator

        started = time.perf_counter()
        markov = MarkovAccumulator(order=3)
        markov.partial_fit(list(TEXTS) * 2)
        for method in ("kn", "dirichlet", "mle"):
            markov.generate(20, seed=0, method=method)
            markov.generate(20, seed=0, method=method, temperature=0.7)
        markov.generate(10, prompt="The goalie", greedy=True)
        markov.recall(list(TEXTS[:2]), prefix=3, continuation=3)
        _warm_chain_only(markov)
        seconds["generator"] = time.perf_counter() - started
    return seconds


def _warm_runs(settings) -> None:
    """Counts spilled to a run and merged (``accum ingest --memory``)."""
    import numpy as np

    from .accumulator import Accumulator
    from .runs import CountRun, Growth, merge_shard

    acc = Accumulator(settings, log_crossings=True)
    acc.partial_fit(list(TEXTS), list(LABELS))
    sources = [CountRun.empty(), acc.take_counts()]
    growth = Growth.for_sources(len(sources), acc.n_categories, settings.max_order, acc.n_documents + 1)
    merge_shard(sources, growth.marks, settings.prune_k, growth.hist,
                np.zeros((acc.n_categories, settings.max_order), np.int64))


def _warm_forecasts(acc, vectors) -> None:
    """Incidence profiles and the forecasts checked on them (``accum forecast``)."""
    import numpy as np

    from .profiles import PageFeatures, check_forecasts

    ids = acc.row_key
    by_id = np.argsort(ids)
    check_forecasts(PageFeatures.of(vectors, ids[by_id], acc.row_order[by_id]), shuffles=1)


def _warm_chain_only(markov) -> None:
    """Generate from a saved chain as a store serves it (memory-mapped arrays are
    read-only, which numba compiles for separately)."""
    import numpy as np

    from .markov.compiled import ChainOnly, chain_state

    state = chain_state(markov)
    for value in state.values():
        if isinstance(value, np.ndarray):
            value.flags.writeable = False
    chain_only = ChainOnly.from_state(state)
    for method in ("kn", "dirichlet", "mle"):
        chain_only.generate(20, seed=0, method=method)
        chain_only.generate(20, seed=0, method=method, temperature=0.7)
    chain_only.generate(10, prompt="The goalie", greedy=True)
    chain_only.make_sentence(seed=0)

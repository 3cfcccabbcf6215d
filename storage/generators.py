"""The generator a query needs, read from a snapshot.

Generating from all categories needs only the generator's default chain
(:func:`accum.markov.compiled.chain_state`). The first such query compiles it from the
counts and, when allowed, saves it in the snapshot's directory as ``markov-chain/``
(:func:`~accum.storage.snapshots.write_model`'s layout); later queries memory-map it and
read only the contexts they visit instead of loading every n-gram. Like the saved
classifiers it is a cache: deleting it loses nothing. Queries about one category, and
recall, load the whole generator.
"""

from __future__ import annotations

from pathlib import Path

from .snapshots import read_markov, read_model, write_model

CHAIN_DIR = "markov-chain"


def open_generator(snapshot: Path, whole: bool, save: bool):
    """The generator of ``snapshot`` (None when it keeps none): with ``whole`` the
    :class:`~accum.markov.MarkovAccumulator` of its counts, else a
    :class:`~accum.markov.compiled.ChainOnly` of its saved chain, or, before one is saved,
    the whole generator, whose chain is saved when ``save``."""
    from accum.markov.compiled import ChainOnly, chain_state

    if not whole:
        try:
            return ChainOnly.from_state(read_model(snapshot / CHAIN_DIR))
        except (FileNotFoundError, ValueError):
            pass
    markov = read_markov(snapshot)
    if markov is None or markov.n_documents == 0 or whole or not save:
        return markov
    try:
        write_model(chain_state(markov), snapshot / CHAIN_DIR)
    except OSError:  # a read-only or full store: compiled again next time
        pass
    return markov

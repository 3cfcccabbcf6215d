"""accum: Dirichlet accumulators over crawled pages: classify, track saturation, regenerate.

The names below load on first use, so that ``import accum`` (and ``accum --help``)
does not pay for numba. The functions ``ingest`` and ``evaluate`` live in the submodules
of those names (``from accum.ingest import ingest``): exported here too, they would be
shadowed by their module once it is imported.
"""

__version__ = "0.1.0"

_EXPORTS = {
    "Accumulator": "accum.accumulator",
    "Settings": "accum.settings",
    "DirichletClassifier": "accum.classify",
    "make_model": "accum.classify",
    "select_model": "accum.selection",
    "PageVectors": "accum.vectors",
    "MarkovAccumulator": "accum.markov",
    "Page": "accum.pages",
    "Skipped": "accum.pages",
    "MemorySink": "accum.ingest",
    "open_source": "accum.sources",
    "iter_sources": "accum.sources",
    "tokenize": "accum.tokens",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'accum' has no attribute {name!r}")

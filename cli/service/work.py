"""The service's work, run on worker threads (and figures and fits in a report process).

The routes of :mod:`.app` validate a request, then hand it to one of these through a
thread limiter and a timeout; each answers as the matching CLI command's ``--json``.
"""

import importlib.util
import os
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from fastapi import HTTPException

from .bodies import unprocessable
from .live import LiveModel

#: Why ``POST /generate`` answers 501 in an accum without ``accum generate``.
GENERATION_OFF = (
    "generation is not available in this accum: it has no accum generate command to serve "
    "(classification, saturation and ingest work)"
)
#: What the warm start classifies once.
WARM_TEXT = "The goalie stopped the puck and the disk drive spun up in orbit."
#: Whether this accum has ``accum generate`` (the service's POST /generate answers as it does).
GENERATE_COMMAND = importlib.util.find_spec("accum.cli.generate_cmd") is not None


@dataclass
class Generator:
    """The store's text generator as ``accum generate`` opens it, or why there is none."""

    markov: object | None
    why_not: str | None
    lock: threading.Lock  # generation builds chains lazily: one at a time per generator


def generator_for(served, config, category: str | None) -> Generator:
    """The store's generator for a request about ``category`` (None: all categories), opened
    once per snapshot: the chain of all categories when the store keeps one saved, and
    the whole generator for one category or when no chain is saved (one copy serves
    both). Never saves anything; without ``accum generate`` in this accum, or for a
    store that keeps no generator, ``POST /generate`` answers 501 with the reason."""
    from accum.markov.compiled import ChainOnly

    generator = served.cached(("generator", False), lambda: _open_generator(config, whole=False))
    if category is None or not isinstance(generator.markov, ChainOnly):
        return generator
    return served.cached(("generator", True), lambda: _open_generator(config, whole=True))


def _open_generator(config, whole: bool) -> Generator:
    """:meth:`accum.storage.Store.generator`, or why there is none."""
    from accum.storage import Store, StoreError

    if not GENERATE_COMMAND:
        return Generator(None, GENERATION_OFF, threading.Lock())
    try:
        return Generator(Store(config.store, db=config.db).generator(whole=whole, save=False), None, threading.Lock())
    except StoreError as exc:
        return Generator(None, str(exc), threading.Lock())


def warm_start(live: LiveModel):
    """Load the model and classify once, so the numba kernels are compiled or loaded from cache."""
    from accum.warmup import warm_up

    settings = live.store.settings()
    warm_up(settings, generator=bool(settings and settings.markov_order))
    served = live.load_now()
    if served.clf is not None:
        served.clf.predict_one(WARM_TEXT, explain=True)
    return served


def classify(served, request) -> dict:
    try:
        clf = served.classifier(request.model, request.alpha)
    except ValueError as exc:
        raise unprocessable(("body",), str(exc)) from exc
    if clf is None:
        raise HTTPException(409, "the store has no categories yet: POST /documents or accum ingest first")
    options = {"top": request.top, "explain": request.explain, "n_terms": request.terms}
    if request.min_confidence is not None:
        options["min_confidence"] = request.min_confidence
    if request.multi_label:
        if clf.label_thresholds is None:
            raise unprocessable(("body", "multi_label"), f"multi_label needs per-category thresholds: run accum "
                                f"calibrate for model {clf.name} on held-out labelled pages first")
        options["multi_label"] = True
    texts = [request.text] if request.text is not None else request.texts
    results = [clf.predict_one(t, **options).to_dict() for t in texts]
    head = {"model": clf.name, "alpha": clf.alpha, "snapshot": served.snapshot}
    return results[0] | head if request.text is not None else {"results": results} | head


def saturation_summaries(store, served, order: int, category: str | None, threshold: float):
    """Curves and summaries, computed as ``accum saturation`` does (cached per snapshot)."""

    acc = served.summary() if served.n_categories else None
    if acc is None:
        raise HTTPException(409, "the store is empty: POST /documents or accum ingest first")
    if order > acc.settings.max_order:
        raise unprocessable(("query", "order"), f"this store counts n-grams up to order {acc.settings.max_order}")
    if category is not None and category not in acc.categories:
        raise HTTPException(404, f"no category {category!r}; the store has {', '.join(acc.categories)}")

    def compute():
        names = [category] if category is not None else [None] + list(acc.categories)
        return (names, *in_report_process(_analyse, str(store.path), store.db_url, acc.to_dict(), order, names,
                                          threshold))

    # accum forecast may record its pick for this snapshot after a first answer
    from accum.profiles import CheckRecord

    picked = CheckRecord.file(store.snapshot_dir(str(served.snapshot))).exists()
    return served.cached(("saturation", order, category, threshold, picked), compute)


#: The process that draws figures and fits curves (see :func:`in_report_process`).
_REPORTS: dict = {"pool": None, "lock": threading.Lock()}


def in_report_process(fn, *args):
    """``fn(*args)`` in the service's one process for reports. Fitting growth curves and
    drawing figures is Python and matplotlib that hold the GIL for seconds; in another
    process they cannot hold up the event loop (``/healthz`` answers meanwhile). The
    process is started on first use and stopped with the service (see :func:`_end_with`)."""
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    with _REPORTS["lock"]:
        if _REPORTS["pool"] is None:
            _REPORTS["pool"] = ProcessPoolExecutor(1, mp_context=get_context("spawn"), initializer=_end_with,
                                                   initargs=(os.getpid(),))
        pool = _REPORTS["pool"]
    return pool.submit(fn, *args).result()


def _end_with(parent: int) -> None:
    """Make the report process end once the service that started it is gone. A service
    killed outright cannot tell it, and even a service that stops cleanly may exit before
    the pool's shutdown reaches it; the process would otherwise wait for work forever
    (it holds a write end of its own work queue, so it never reads the end of it)."""
    def watch():
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=watch, name="accum-parent-watch", daemon=True).start()


def stop_report_process() -> None:
    with _REPORTS["lock"]:
        pool, _REPORTS["pool"] = _REPORTS["pool"], None
    if pool is not None:
        pool.shutdown(wait=False, cancel_futures=True)


def _analyse(store_path: str, db: str, summary: dict, order: int, names: list, threshold: float):
    """``accum saturation``'s curves and summaries (in the report process)."""
    from accum import saturation as sat
    from accum.counts import CountsSummary
    from accum.storage import Store

    store = Store(store_path, db=db)
    try:
        return sat.analyse(CountsSummary.from_dict(summary), store.growth, order, names, threshold,
                           store.forecast_record())
    finally:
        store.engine.dispose()


def _draw(curves: dict, summaries: dict, fmt: str) -> bytes:
    """The saturation figure as ``fmt`` bytes (in the report process)."""
    from accum.plots import saturation_figure

    with tempfile.TemporaryDirectory(prefix="accum-figure-") as tmp:
        path = Path(tmp) / f"growth.{fmt}"
        saturation_figure(curves, summaries, None, path)
        return path.read_bytes()


def saturation_json(served, order, category, threshold, computed) -> dict:
    """The answer of ``GET /saturation`` from :func:`saturation_summaries`' ``computed``."""
    names, _, summaries = computed
    return {
        "order": order, "threshold": threshold, "shuffles": 0,
        "overall": summaries.get(None),
        "categories": [summaries[n] for n in names if n is not None],
        "bands": None, "files": [], "snapshot": served.snapshot,
    }


def figure(store, served, fmt, order, category, threshold) -> bytes:
    """The figure (one at a time: the caller holds the figure gate)."""

    def render():
        _, curves, summaries = saturation_summaries(store, served, order, category, threshold)
        return in_report_process(_draw, curves, summaries, fmt)

    return served.cached(("figure", fmt, order, category, threshold), render)


def ingest(live: LiveModel, lock: threading.Lock, documents) -> dict:
    """``accum ingest``'s path for pages given in a request."""
    from accum.pages import Page
    from accum.settings import Settings

    store = live.store
    records = [
        Page(d.url, d.label, d.text, {"source": "POST /documents",
                                      "bytes": len(d.text.encode("utf-8", "surrogatepass"))})
        for d in documents
    ]
    command = {"sources": [], "via": "POST /documents", "format": "api", "label": "field:label",
               "pages": len(records)}
    with lock:  # one API ingest at a time in this process (the store's lock covers the rest)
        result = store.ingest(records, command, store.settings() or Settings())
    served = live.load_now()  # read your writes: answer from this snapshot from now on
    return result | {"snapshot": served.snapshot}


def generate(served, generator: Generator, request) -> dict:
    """``accum generate --json`` (plus the snapshot)."""
    import secrets

    markov = generator.markov
    if request.category is not None and request.category not in markov.categories:
        raise unprocessable(("body", "category"),
                            f"no category {request.category!r}; the store has {', '.join(markov.categories)}")
    seed = request.seed if request.seed is not None else secrets.randbelow(2**31)  # as the CLI: reported back
    try:
        with generator.lock:
            text = markov.generate(request.length, prompt=request.prompt, seed=seed,
                                   temperature=request.temperature, top_k=request.top_k, greedy=request.greedy,
                                   category=request.category, method=request.method)
    except (ValueError, TypeError) as exc:
        raise unprocessable(("body",), str(exc)) from exc
    return {"text": text, "seed": seed, "category": request.category, "order": markov.order,
            "method": request.method or markov.method, "tokens": request.length, "prompt": request.prompt,
            "snapshot": served.snapshot}

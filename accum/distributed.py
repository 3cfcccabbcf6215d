"""Ingest on a Dask cluster, with the same result as one process.

The sources are split into parts (:func:`accum.sources.partition.plan_parts`) and taken
in waves of a few parts per worker. For each wave:

1. workers read and screen their parts (:func:`accum.partials.screen_part`) and keep
   them; only the content hashes come back;
2. the client marks duplicates in stream order (pages already committed, or earlier in
   the run), exactly as a single-process ingest would;
3. workers count their parts from empty (:func:`accum.partials.count_part`) with the
   same numba kernels, and the partials merge in order by tree reduction;
4. the client adds the merged partial to the store's accumulator, which replays the
   growth log (:func:`accum.partials.apply_partial`), and commits through the sink when
   ``checkpoint_seconds`` have passed (always after the last wave), one snapshot and
   one transaction, as :func:`accum.ingest.ingest` does.

So every count, document row and growth-log row equals a single-process ingest of the
same sources, and an interrupted run resumes by running it again.

With a memory budget (a sink that hands out a ``counter``), step 3 counts each part on
top of the pages before it and writes its counts as runs and its page vectors as
segments into the store while it counts (:func:`accum.partials.count_part_spilling`;
the workers must share the store's file system); step 4 hands the runs and segments
to the sink, whose checkpoint merges the runs a shard at a time as a budgeted
single-process ingest does. No process then holds the store's counts: the workers hold
a budget's worth each, the client the pages' totals.
"""

from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from typing import Callable

from .accumulator import Accumulator
from .ingest import IngestSink, IngestSummary, Pending
from .partials import apply_partial, count_part, merge_partials, screen_part, shift_tokens

#: Hashes asked of the sink at a time (bound parameters per query).
_HASH_QUERY = 500


class DaskError(ValueError):
    """Dask cannot be used as asked: not installed, an address it does not take, or a
    scheduler it cannot reach."""


@contextmanager
def connect(address: str):
    """A Dask client (closed on exit) for ``local:N``, a new LocalCluster of N one-thread
    worker processes (shut down on exit), or the address of a running scheduler
    (``tcp://host:port``). Raises :class:`DaskError` when it cannot."""
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError as exc:  # pragma: no cover - the extra is part of the test install
        raise DaskError("distributed counting needs Dask: pip install 'accum[dask]'") from exc
    if address.startswith("local:"):
        n = address.split(":", 1)[1]
        if not n.isdigit() or int(n) < 1:
            raise DaskError(f"expected local:N with N >= 1 workers, e.g. local:2, got {address!r}")
        with LocalCluster(n_workers=int(n), threads_per_worker=1, processes=True, dashboard_address=None,
                          silence_logs=logging.ERROR) as cluster, Client(cluster) as client:
            yield client
        return
    if "://" not in address:
        raise DaskError(f"expected local:N or a scheduler address such as tcp://host:8786, got {address!r}")
    try:
        client = Client(address, timeout="30s")
    except OSError as exc:
        raise DaskError(f"cannot reach the Dask scheduler at {address} ({exc})") from exc
    with client:
        yield client


def n_workers(client) -> int:
    """Workers the scheduler knows now."""
    return max(1, len(client.scheduler_info().get("workers", {})))


def _read(part, default_label):
    return screen_part(part.read(), default_label)


def _hashes(screened):
    return screened.hashes


def _labels(screened):
    return [label for _, _, label in screened.pages]


def ingest_parts(
    client,
    parts: list,
    acc: Accumulator,
    sink: IngestSink,
    *,
    markov=None,
    default_label: str | None = None,
    checkpoint_seconds: float = 60.0,
    batch_pages: int = 500,
    parts_per_wave: int | None = None,
    progress: Callable[[int], None] | None = None,
    counter: Callable | None = None,
) -> IngestSummary:
    """Ingest ``parts`` (from :func:`accum.sources.partition.plan_parts`) on the cluster
    behind ``client`` into ``acc``/``markov``, committing to ``sink``.

    Parameters are those of :func:`accum.ingest.ingest`, plus ``parts_per_wave`` (default
    two per worker; one with a ``counter``, as a worker holds its parts' pages until it
    counts them), ``progress``, called with the number of files (or whole sources)
    of each part once it is read, and ``counter``: with a memory budget, the sink's
    picklable ``counter(part, skip, base, index)``, which counts a part on a worker with
    :func:`accum.partials.count_part_spilling` and returns its
    :class:`~accum.partials.SpilledPart`, whose runs and segments go to
    ``sink.adopt(runs, segments)`` (``acc`` then holds no counts, as a budgeted
    :func:`accum.ingest.ingest`'s between spills).
    """
    from dask.distributed import wait

    summary = IngestSummary()
    started = last_commit = time.perf_counter()
    if parts_per_wave is None:
        parts_per_wave = (1 if counter is not None else 2) * n_workers(client)
    markov_settings = None if markov is None else markov.settings()
    pending, pending_growth = Pending(acc, sink), []

    @contextmanager
    def stage(name: str):
        began = time.perf_counter()
        yield
        summary.stages[name] += time.perf_counter() - began

    def commit() -> None:
        import numpy as np

        summary.seconds = time.perf_counter() - started
        summary.checkpoints += 1
        width = 3 + 4 * acc.settings.max_order
        growth = np.concatenate(pending_growth) if pending_growth else np.zeros((0, width), np.int64)
        documents, vectors, forgotten = pending.take()
        with stage("commit"):
            sink.checkpoint(acc, documents, growth, summary, markov=markov, vectors=vectors, forgotten=forgotten)
        pending_growth.clear()

    for start in range(0, len(parts), parts_per_wave):
        wave = parts[start : start + parts_per_wave]
        with stage("read"):
            screened = client.map(_read, wave, default_label=default_label, pure=False)
            hashes = client.gather(client.map(_hashes, screened, pure=False))
        if progress is not None:
            progress(sum(p.n_inputs for p in wave))
        skips, seen = [], set()  # pages of this wave, across its parts
        for part_hashes in hashes:
            known = set()
            for i in range(0, len(part_hashes), _HASH_QUERY):
                known |= sink.known_hashes(part_hashes[i : i + _HASH_QUERY])
            skip = set()
            for i, h in enumerate(part_hashes):
                if h in known or h in pending.hashes or h in seen:
                    skip.add(i)
                else:
                    seen.add(h)
            skips.append(skip)
        if counter is not None:
            with stage("count"):
                spilled = _count_spilling(client, counter, screened, skips, acc, start)
            del screened
            with stage("apply"):
                documents = []
                for part in spilled:
                    sink.adopt([(run, shift_tokens(events, acc.token_counts)) for run, events in part.runs],
                               part.segments)
                    acc.merge(part.totals)
                    if markov is not None:
                        markov.merge(part.markov)
                    summary.add(part.summary)
                    documents += part.documents
                pending.add_spilled(documents, summary)
            del spilled
        else:
            partials = [client.submit(count_part, fut, skip, acc.settings, acc.track_growth, markov_settings,
                                      batch_pages, acc.keep_vectors, pure=False)
                        for fut, skip in zip(screened, skips)]
            del screened
            with stage("count"):
                wait(partials)
            with stage("merge"):
                while len(partials) > 1:  # tree reduction, in stream order
                    partials = [client.submit(merge_partials, partials[i], partials[i + 1], pure=False)
                                if i + 1 < len(partials) else partials[i] for i in range(0, len(partials), 2)]
                merged = partials[0].result()
            del partials
            with stage("apply"):
                pending_growth.append(apply_partial(acc, markov, merged))
            summary.add(merged.summary)
            pending.add(merged.documents, merged.vectors, summary)
        if time.perf_counter() - last_commit >= checkpoint_seconds:
            commit()
            last_commit = time.perf_counter()
    commit()
    summary.seconds = time.perf_counter() - started
    return summary


def _count_spilling(client, counter, screened: list, skips: list[set[int]], acc: Accumulator, first: int) -> list:
    """Count the wave's parts (``screened``, on the workers, but the pages ``skips``) with
    ``counter``, each on top of the pages before it, and return their
    :class:`~accum.partials.SpilledPart`, in order; ``first`` numbers the wave's first
    part. The categories of the wave's new pages are numbered here first, in stream
    order, so that every part counts against the numbering a single process would make."""
    import numpy as np

    labels = client.gather(client.map(_labels, screened, pure=False))
    codes = [np.array([acc.category_index(label) for i, label in enumerate(part) if i not in skip], np.int64)
             for part, skip in zip(labels, skips)]  # every category of the wave numbered before any base is made
    pages = acc.doc_counts.copy()
    futures = []
    for j, (fut, skip, cats) in enumerate(zip(screened, skips, codes)):
        base = {"settings": acc.settings.to_dict(), "categories": list(acc.categories), "doc_counts": pages.copy(),
                "token_counts": np.zeros(acc.n_categories, np.int64)}
        futures.append(client.submit(counter, fut, skip, base, first + j, pure=False))
        pages += np.bincount(cats, minlength=acc.n_categories)
    return client.gather(futures)

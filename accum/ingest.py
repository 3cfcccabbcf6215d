"""The ingest loop: records in, counts and document rows out, checkpointed to a sink.

The engine does not know where data is kept: :func:`ingest` writes through an
:class:`IngestSink` (``accum.storage.Store`` is the persistent one; :class:`MemorySink`
keeps everything in memory for tests and one-off use). A checkpoint hands the sink the
whole accumulator plus the documents added since the last checkpoint and the growth-log
rows they produced; the sink makes them visible together or not at all, so an interrupted ingest resumes by re-running it:
documents already committed are recognised by their content hash and skipped.
"""

from __future__ import annotations

import hashlib
import queue
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, Protocol

import numpy as np

from .accumulator import Accumulator
from .pages import Page, Record, Skipped, check_label
from .tokens import tokenize
from .vectors import PageVectors


@dataclass(frozen=True)
class DocumentRow:
    """What the catalog keeps of an ingested page."""

    content_hash: str
    url: str
    label: str
    n_tokens: int
    n_bytes: int


def content_hash(text: str) -> str:
    """Hex digest that identifies a page's text (BLAKE2b, 128 bits)."""
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


class IngestSink(Protocol):
    """Where an ingest commits its work (implemented by ``accum.storage.Store``)."""

    def known_hashes(self, hashes: list[str]) -> set[str]:
        """The subset of ``hashes`` already committed."""

    def replaced(self, urls: list[str], hashes: list[str]) -> tuple[PageVectors, list[str]]:
        """The committed pages at ``urls`` whose text differs from the new pages' (content
        ``hashes``, one per URL): their vectors and content hashes."""

    def spill(self, vectors: PageVectors, hashes: list[str]) -> None:
        """Keep the vectors of pages counted since the last checkpoint (content ``hashes``)
        until the next checkpoint commits those of them still among its documents (or the
        run ends without one: then they are dropped)."""

    def replaced_pending(self, hashes: list[str]) -> PageVectors:
        """The vectors of spilled pages (content ``hashes``) not committed yet."""

    def adopt(self, runs: list, segments: list) -> None:
        """Take ``runs`` of counts (``(run, growth rows)``) and ``segments`` of page vectors
        written elsewhere while counting pages that follow those spilled so far, to be
        merged and registered at the next checkpoint (a budgeted Dask ingest: see
        :func:`accum.distributed.ingest_parts`)."""

    def take_out(self, acc: Accumulator, vectors: PageVectors) -> None:
        """Take pages counted in ``acc`` (or committed before) back out, given their
        vectors (:meth:`Accumulator.subtract <accum.accumulator.Accumulator.subtract>`
        when ``acc`` holds every count)."""

    def checkpoint(self, acc: Accumulator, documents: list[DocumentRow], growth, summary: "IngestSummary",
                   markov=None, vectors: PageVectors | None = None, forgotten: list[str] = ()) -> None:
        """Make ``acc``, the generator ``markov`` (when kept), the new ``documents``, their
        page ``vectors`` (when the accumulator keeps them: one per document, in order)
        and their ``growth`` log rows visible together, atomically (``growth`` as
        returned by :meth:`Accumulator.take_growth`), and the committed pages whose
        content hashes are ``forgotten`` gone (``acc`` no longer counts them). The
        ``vectors`` are those of the last documents: the earlier ones' were spilled."""


class MemorySink:
    """An :class:`IngestSink` that keeps committed documents and the last model in memory."""

    def __init__(self):
        self.documents: dict[str, DocumentRow] = {}
        self.accumulator: Accumulator | None = None
        self.markov = None
        self.growth: list = []
        self.vectors: dict[str, PageVectors] = {}  # by content hash
        self._spilled: dict[str, PageVectors] = {}  # not yet committed
        self.checkpoints = 0

    def known_hashes(self, hashes: list[str]) -> set[str]:
        return {h for h in hashes if h in self.documents}

    def replaced(self, urls, hashes):
        new = dict(zip(urls, hashes))
        old = [d.content_hash for d in self.documents.values() if d.url in new and new[d.url] != d.content_hash]
        return PageVectors.concat([self.vectors[h] for h in old]), old

    def spill(self, vectors, hashes) -> None:
        self._spilled.update((h, vectors.subset([i])) for i, h in enumerate(hashes))

    def replaced_pending(self, hashes):
        return PageVectors.concat([self._spilled[h] for h in hashes])

    def take_out(self, acc, vectors) -> None:
        acc.subtract(vectors)

    def checkpoint(self, acc, documents, growth, summary, markov=None, vectors=None, forgotten=()) -> None:
        self.accumulator = Accumulator.from_arrays(acc.to_arrays())
        if vectors is not None:
            tail = documents[len(documents) - vectors.n_pages :]
            self._spilled.update((d.content_hash, vectors.subset([i])) for i, d in enumerate(tail))
            for d in documents:
                self.vectors[d.content_hash] = self._spilled[d.content_hash]
        self._spilled = {}
        for h in forgotten:
            self.documents.pop(h, None)
            self.vectors.pop(h, None)
        self.markov = None if markov is None else type(markov).from_arrays(markov.to_arrays())
        self.documents.update((d.content_hash, d) for d in documents)
        self.growth.extend(growth.tolist())
        self.checkpoints += 1


@dataclass
class IngestSummary:
    """Counts and rates of one ingest run (the CLI prints it; the catalog keeps it)."""

    pages_added: int = 0
    duplicates: int = 0
    replaced: int = 0  # pages taken back because their URL came again with other text
    skipped: Counter = field(default_factory=Counter)
    skip_examples: dict = field(default_factory=dict)
    bytes_read: int = 0
    tokens: int = 0
    seconds: float = 0.0
    checkpoints: int = 0
    stages: Counter = field(default_factory=Counter)  # seconds by stage, where measured
    notes: Counter = field(default_factory=Counter)  # pages kept but read another way, by how
    note_examples: dict = field(default_factory=dict)

    def skip(self, source: str, reason: str, detail: str = "") -> None:
        """Count a record not used, keeping the first example of each reason."""
        self.skipped[reason] += 1
        self.skip_examples.setdefault(reason, f"{source}: {detail}" if detail else source)

    def note(self, source: str, how: str) -> None:
        """Count a page that was kept but read another way than usual (its meta
        ``extract``, e.g. "fallback-deep-nesting"), keeping the first example of each."""
        self.notes[how] += 1
        self.note_examples.setdefault(how, source)

    def add(self, later: "IngestSummary") -> "IngestSummary":
        """Add the counts of ``later``, a summary of the pages after these (in place)."""
        self.pages_added += later.pages_added
        self.duplicates += later.duplicates
        self.replaced += later.replaced
        self.skipped.update(later.skipped)
        for reason, example in later.skip_examples.items():
            self.skip_examples.setdefault(reason, example)
        self.notes.update(later.notes)
        for how, example in later.note_examples.items():
            self.note_examples.setdefault(how, example)
        self.bytes_read += later.bytes_read
        self.tokens += later.tokens
        return self

    @property
    def pages_seen(self) -> int:
        return self.pages_added + self.duplicates + sum(self.skipped.values())

    def to_dict(self) -> dict:
        secs = max(self.seconds, 1e-9)
        return {
            "pages_seen": self.pages_seen,
            "pages_added": self.pages_added,
            "duplicates": self.duplicates,
            "replaced": self.replaced,
            "skipped": dict(sorted(self.skipped.items())),
            "skip_examples": self.skip_examples,
            "bytes_read": self.bytes_read,
            "tokens": self.tokens,
            "seconds": round(self.seconds, 3),
            "mb_per_s": round(self.bytes_read / secs / 1e6, 3),
            "tokens_per_s": round(self.tokens / secs, 1),
            "checkpoints": self.checkpoints,
        } | ({"stage_seconds": {k: round(v, 3) for k, v in self.stages.items()}} if self.stages else {}) | (
            {"notes": dict(sorted(self.notes.items())), "note_examples": self.note_examples} if self.notes else {})


def screen(records: Iterable[Record], summary: IngestSummary, default_label: str | None = None,
           progress: Callable[[Record], None] | None = None) -> Iterator[tuple[Page, str, str]]:
    """The pages of ``records`` worth counting, as (page, content hash, label).

    Skipped records, pages without a label (unless ``default_label``), pages whose label
    :func:`accum.pages.check_label` refuses ("malformed", with its reason) and empty
    pages are counted in ``summary`` by reason; every record's bytes are added to it, and
    pages read another way than usual (their meta ``extract``) are counted in its
    ``notes``. ``progress`` is called with each record once it has been handled.
    """
    for record in records:
        summary.bytes_read += record.n_bytes
        if isinstance(record, Skipped):
            summary.skip(record.source, record.reason, record.detail)
        else:
            label = record.label if record.label is not None else default_label
            if label is None:
                summary.skip(record.url, "no-label", "the label spec gave no label, and no default label was given")
            elif not record.text.strip():
                summary.skip(record.url, "empty", "no text")
            elif (problem := _label_problem(label)) is not None:
                # readers check labels already; pages built elsewhere (POST /documents,
                # library callers, demo corpora) and --default-label come here unchecked
                summary.skip(record.url, "malformed", problem)
            else:
                if "extract" in record.meta:
                    summary.note(record.url, record.meta["extract"])
                yield record, content_hash(record.text), label
        if progress is not None:
            progress(record)


def _label_problem(label) -> str | None:
    """Why :func:`accum.pages.check_label` refuses ``label``, or None when it is fine."""
    try:
        check_label(label)
    except (TypeError, ValueError) as exc:
        return str(exc)
    return None


#: Records a read-ahead thread hands over at a time, and how many such lists may wait.
READ_AHEAD_CHUNK, READ_AHEAD_DEPTH = 64, 32


def read_ahead(records: Iterable[Record]) -> Iterator[Record]:
    """``records``, read by a background thread up to ``READ_AHEAD_CHUNK *
    READ_AHEAD_DEPTH`` records ahead of the caller.

    Reading and extracting pages is Python and holds the GIL, but the counting kernels
    release it, so the next pages are read on a second core while the current ones are
    counted; the order is unchanged. An exception of the reader is raised here, in
    order; when the caller stops early, the reader stops too.
    """
    chunks: queue.Queue = queue.Queue(maxsize=READ_AHEAD_DEPTH)
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                chunks.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        chunk: list = []
        source = iter(records)
        try:
            for record in source:
                chunk.append(record)
                if len(chunk) >= READ_AHEAD_CHUNK:
                    if not put(chunk):
                        return
                    chunk = []
            put(chunk)
            put(None)
        except BaseException as exc:  # handed to the caller after the records before it
            if put(chunk):
                put(exc)
        finally:
            getattr(source, "close", lambda: None)()  # a generator's open files

    reader = threading.Thread(target=produce, name="accum-read-ahead", daemon=True)
    reader.start()
    try:
        while True:
            item = chunks.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield from item
    finally:
        stop.set()
        reader.join(timeout=10)  # it stops at its next record


def count_pages(acc: Accumulator, markov, pages: list[tuple[Page, str, str]],
                summary: IngestSummary) -> list[DocumentRow]:
    """Add ``pages`` (from :func:`screen`, all new) to ``acc`` and the generator ``markov``
    (when kept); count them in ``summary`` and return their document rows."""
    texts, labels = [p.text for p, _, _ in pages], [label for _, _, label in pages]
    tokens = tokenize(texts, acc.settings.lowercase)
    acc.add_tokens(tokens, labels)
    if markov is not None:
        markov.partial_fit(texts, labels)
    rows = [DocumentRow(h, page.url, label, n, page.n_bytes)
            for (page, h, label), n in zip(pages, tokens.doc_lengths().tolist())]
    summary.pages_added += len(rows)
    summary.tokens += sum(row.n_tokens for row in rows)
    return rows


#: Bytes of page vectors an ingest keeps in memory: beyond them they are spilled to the
#: sink (see :meth:`IngestSink.spill`), so memory does not grow with the pages between
#: checkpoints.
SPILL_BYTES = 64 << 20


class Pending:
    """The pages counted since the last checkpoint (document rows and vectors, in order),
    and the committed pages they replace.

    A page whose URL the store already holds with other text replaces it: the old page
    is taken back out of the accumulator (:meth:`Accumulator.subtract
    <accum.accumulator.Accumulator.subtract>`, from its vector) and forgotten at the next
    checkpoint, and a page replaced before a checkpoint is dropped from the pending ones,
    so a re-crawled page never counts twice. Pages without a URL replace nothing. Without
    page vectors (an accumulator that does not keep them) nothing can be taken back, and
    pages only add. Vectors beyond :data:`SPILL_BYTES` go to the sink at once (the pages
    before ``spilled``), the rest at the checkpoint.
    """

    def __init__(self, acc: Accumulator, sink: IngestSink):
        self.acc, self.sink = acc, sink
        self.documents: list[DocumentRow] = []
        self.vectors: list[PageVectors] = []  # of the documents from ``spilled`` on
        self.spilled = 0
        self.hashes: set[str] = set()
        self.forgotten: list[str] = []
        self._dropped: set[int] = set()
        self._by_url: dict[str, int] = {}

    def add(self, documents: list[DocumentRow], vectors: PageVectors | None, summary: "IngestSummary") -> None:
        """Count in ``documents`` (just added to the accumulator, with their ``vectors``)
        and take back what they replace."""
        if vectors is not None:
            self._replace(documents, summary)
            self.vectors.append(vectors)
        self._extend(documents)
        if sum(v.entry_bytes for v in self.vectors) > SPILL_BYTES:
            vectors = PageVectors.concat(self.vectors, self.acc.categories)
            self.sink.spill(vectors, [d.content_hash for d in self.documents[self.spilled :]])
            self.spilled, self.vectors = len(self.documents), []

    def add_spilled(self, documents: list[DocumentRow], summary: "IngestSummary") -> None:
        """:meth:`add` ``documents`` whose vectors are already spilled to the sink (see
        :meth:`IngestSink.adopt`)."""
        if self.vectors:
            raise ValueError("pages whose vectors are held cannot be followed by pages already spilled")
        self._replace(documents, summary)
        self._extend(documents)
        self.spilled = len(self.documents)

    def _extend(self, documents: list[DocumentRow]) -> None:
        first = len(self.documents)
        self.documents.extend(documents)
        self.hashes.update(d.content_hash for d in documents)
        for i, d in enumerate(documents):
            if d.url:
                self._by_url[d.url] = first + i

    def _replace(self, documents: list[DocumentRow], summary: "IngestSummary") -> None:
        with_url = [d for d in documents if d.url]
        if not with_url:
            return
        old, old_hashes = self.sink.replaced([d.url for d in with_url], [d.content_hash for d in with_url])
        keep = [i for i, h in enumerate(old_hashes) if h not in self.forgotten]
        parts, pending = [old.subset(keep)] if keep else [], []
        for d in with_url:
            i = self._by_url.get(d.url)
            if i is not None and i not in self._dropped and self.documents[i].content_hash != d.content_hash:
                pending.append(i)
        spilled = [self.documents[i].content_hash for i in pending if i < self.spilled]
        if spilled:
            parts.append(self.sink.replaced_pending(spilled))
        in_memory = [i - self.spilled for i in pending if i >= self.spilled]
        if in_memory:
            parts.append(PageVectors.concat(self.vectors).subset(np.array(in_memory, np.int64)))
        if not parts:
            return
        self.sink.take_out(self.acc, PageVectors.concat(parts, self.acc.categories))
        self.forgotten.extend(old_hashes[i] for i in keep)
        self._dropped.update(pending)
        summary.replaced += len(keep) + len(pending)

    def take(self) -> tuple[list[DocumentRow], PageVectors | None, list[str]]:
        """The pending documents, the vectors of those not spilled (the last ones of the
        documents, in order) and the forgotten hashes; then none pend."""
        kept = [i for i in range(len(self.documents)) if i not in self._dropped]
        documents = [self.documents[i] for i in kept]
        vectors = None
        if self.vectors:
            vectors = PageVectors.concat(self.vectors, self.acc.categories)
            if self._dropped:
                vectors = vectors.subset(np.array([i - self.spilled for i in kept if i >= self.spilled], np.int64))
        elif self.acc.keep_vectors:
            vectors = PageVectors.empty(self.acc.categories)
        forgotten = list(self.forgotten)
        self.__init__(self.acc, self.sink)
        return documents, vectors, forgotten


def ingest(
    records: Iterable[Record],
    acc: Accumulator,
    sink: IngestSink,
    *,
    batch_pages: int = 500,
    checkpoint_seconds: float = 60.0,
    default_label: str | None = None,
    progress: Callable[[Record], None] | None = None,
    markov=None,
    read_ahead_thread: bool = True,
    spill_bytes: int | None = None,
) -> IngestSummary:
    """Add every new labelled page of ``records`` to ``acc``, committing to ``sink``.

    Parameters
    ----------
    records : iterable of Page or Skipped
        From :func:`accum.sources.iter_sources`.
    acc : Accumulator
        Updated in place; it must hold exactly what ``sink`` has committed.
    sink : IngestSink
        Receives checkpoints: every ``checkpoint_seconds`` and at the end.
    batch_pages : int
        Pages tokenised and counted together.
    default_label : str, optional
        Category for pages without a label; without one they are skipped as "no-label".
    progress : callable, optional
        Called with each record after it is handled.
    markov : MarkovAccumulator, optional
        The text generator, fed the same new pages (it must hold what ``sink`` has
        committed, like ``acc``).
    read_ahead_thread : bool
        Read the records in a background thread (:func:`read_ahead`): the same result,
        sooner on a machine with two cores or more.
    spill_bytes : int, optional
        When the counts ``acc`` holds take this much memory
        (:attr:`~accum.accumulator.Accumulator.counting_bytes`), hand them to the sink's
        ``spill_counts(acc)``, which writes them out and empties ``acc`` (a sink with a
        memory budget: :class:`accum.storage.writer.StoreWriter`).

    Returns
    -------
    IngestSummary
    """
    summary = IngestSummary()
    started = time.perf_counter()
    last_checkpoint = started
    pending = Pending(acc, sink)  # added to acc, not yet committed
    batch: list[tuple[Page, str, str]] = []

    def flush() -> None:
        known = sink.known_hashes([h for _, h, _ in batch])
        fresh, seen = [], set()
        for item in batch:
            if item[1] in known or item[1] in pending.hashes or item[1] in seen:
                summary.duplicates += 1
            else:
                seen.add(item[1])
                fresh.append(item)
        batch.clear()
        if fresh:
            documents = count_pages(acc, markov, fresh, summary)
            pending.add(documents, acc.take_vectors() if acc.keep_vectors else None, summary)
            if spill_bytes is not None and acc.counting_bytes >= spill_bytes:
                sink.spill_counts(acc)

    def commit() -> None:
        summary.seconds = time.perf_counter() - started
        summary.checkpoints += 1
        documents, vectors, forgotten = pending.take()
        sink.checkpoint(acc, documents, acc.take_growth(), summary, markov=markov, vectors=vectors,
                        forgotten=forgotten)

    for item in screen(read_ahead(records) if read_ahead_thread else records, summary, default_label, progress):
        batch.append(item)
        if len(batch) >= batch_pages:
            flush()
            if time.perf_counter() - last_checkpoint >= checkpoint_seconds:
                commit()
                last_checkpoint = time.perf_counter()
    flush()
    commit()
    summary.seconds = time.perf_counter() - started
    return summary

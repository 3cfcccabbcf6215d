"""Page-vector segments: each checkpoint's new pages as one immutable Arrow IPC file.

A segment holds, per page: its content hash (``hash``, 16 bytes: the catalog's key of
the page), its category (``category``, dictionary-encoded), its tokens (``n_tokens``)
and its vector (``features``: feature ids, ``counts``: occurrences, two lists sharing
their offsets). Files are written once (temporary name, fsync, rename) and never
rewritten; the catalog registers a segment with the documents it holds, in the
checkpoint's transaction. A page that is forgotten stays in its file and is left out
when read (the catalog's documents say which pages exist); a page added again later
is read from its newest segment. Files are uncompressed so that readers map them; a
reader that goes through a file once lets go of the pages it has read
(:class:`_MappedSegment`), so that reading a store's pages takes the memory of what is
made of them, not of the files as well.
"""

from __future__ import annotations

import mmap
from pathlib import Path
from typing import Sequence

import numpy as np
import pyarrow as pa

from accum.vectors import PageVectors

from .snapshots import column_array, replaced_atomically

#: Directory of a store that holds the segments.
SEGMENT_DIR = "vectors"


def write_vectors(vectors: PageVectors, hashes: Sequence[str], path: Path) -> int:
    """Write the pages of ``vectors`` (content hashes ``hashes``, hex) to ``path``
    atomically; returns its size in bytes."""
    if len(hashes) != vectors.n_pages:
        raise ValueError(f"{vectors.n_pages} page vectors but {len(hashes)} hashes")
    offsets = pa.array(vectors.bounds, pa.int64())
    categories = pa.DictionaryArray.from_arrays(pa.array(vectors.labels, pa.int32()),
                                                pa.array(list(vectors.categories), pa.string()))
    table = pa.table({
        "hash": pa.array([bytes.fromhex(h) for h in hashes], pa.binary(16)),
        "category": categories,
        "n_tokens": pa.array(vectors.n_tokens, pa.int64()),
        "features": pa.LargeListArray.from_arrays(offsets, pa.array(vectors.fids, pa.uint64())),
        "counts": pa.LargeListArray.from_arrays(offsets, pa.array(vectors.tfs, pa.uint32())),
    })
    with replaced_atomically(path) as tmp, pa.OSFile(str(tmp), "wb") as sink, \
            pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    return Path(path).stat().st_size


def read_vectors(paths: Sequence[Path], keep: set[str] | None = None) -> tuple[PageVectors, list[str]]:
    """The pages of the segments ``paths`` (in order) and their hashes; with ``keep``,
    only pages whose hash is in it, each once (from the last segment holding it). The
    files are memory-mapped: the pages kept are copied straight into arrays of their
    final size (the pages' vectors are held once)."""
    pages = _Pages(paths, keep)
    fids, tfs = (np.empty(pages.bounds[-1], dtype) for dtype in (np.uint64, np.uint32))
    for column, out in (("features", fids), ("counts", tfs)):
        at = 0
        for values in pages.runs(column):
            out[at : at + len(values)] = values
            at += len(values)
    return PageVectors(pages.bounds, fids, tfs, pages.labels, pages.n_tokens, pages.categories), pages.hashes


def read_matrix(paths: Sequence[Path], keep: set[str] | None = None):
    """The pages :func:`read_vectors` reads, as an :class:`accum.linear.PageMatrix`, and
    their hashes: numbered feature by feature from the mapped files, so that their 64-bit
    feature ids are never held whole."""
    from accum.linear import PageMatrix

    pages = _Pages(paths, keep)
    matrix = PageMatrix.from_parts(pages.bounds, pages.labels, pages.categories, pages.runs("features"),
                                   pages.runs("counts"))
    return matrix, pages.hashes


def read_page_features(paths: Sequence[Path], keep: set[str] | None, feature_ids: np.ndarray,
                       feature_orders: np.ndarray):
    """The pages :func:`read_vectors` reads, as :class:`accum.profiles.PageFeatures` (each
    feature's order from the sorted ``feature_ids`` and their ``feature_orders``), and
    their hashes: numbered from the mapped files as :func:`read_matrix` numbers them."""
    from accum.profiles import PageFeatures

    pages = _Pages(paths, keep)
    features = PageFeatures.from_parts(pages.bounds, pages.labels, pages.categories, pages.runs("features"),
                                       feature_ids, feature_orders)
    return features, pages.hashes


class _Pages:
    """The pages kept of a list of segments (see :func:`read_vectors`): which pages of
    which file, their bounds, labels, tokens and hashes; their entries are read from the
    mapped files by :meth:`runs`."""

    def __init__(self, paths: Sequence[Path], keep: set[str] | None):
        wanted = None if keep is None else np.array([bytes.fromhex(h) for h in keep], "S16")
        found = np.zeros(0, "S16")
        chosen = []  # (the mapped file, its pages kept, their hashes), newest first
        for path in reversed(list(paths)):  # newest first: a page added again is read from there
            mapped = _MappedSegment(path)
            table = mapped.table
            if table.num_rows == 0:
                continue
            column = column_array(table, "hash")
            hashes = np.frombuffer(column.buffers()[1], "S16", count=len(column), offset=column.offset * 16)
            pages = np.arange(len(hashes))
            if wanted is not None:
                pages = pages[np.isin(hashes, wanted) & ~np.isin(hashes, found)]
                if not len(pages):
                    continue
                found = np.concatenate([found, hashes[pages]])
            chosen.append((mapped, pages, hashes[pages].copy()))
        self.chosen = chosen[::-1]
        names: dict[str, int] = {}
        sizes, labels, n_tokens = [np.zeros(0, np.int64)], [np.zeros(0, np.int32)], [np.zeros(0, np.int64)]
        for mapped, pages, _ in self.chosen:
            table = mapped.table
            offsets = column_array(table, "features").offsets.to_numpy()
            sizes.append(offsets[pages + 1] - offsets[pages])
            category = column_array(table, "category")
            codes = np.array([names.setdefault(n, len(names)) for n in category.dictionary.to_pylist()], np.int32)
            labels.append(codes[category.indices.to_numpy()[pages]])
            n_tokens.append(table.column("n_tokens").to_numpy()[pages])
        self.categories = list(names)
        self.labels, self.n_tokens = np.concatenate(labels).astype(np.int32), np.concatenate(n_tokens)
        self.bounds = np.zeros(len(self.labels) + 1, np.int64)
        np.cumsum(np.concatenate(sizes), out=self.bounds[1:])
        self.hashes = [h for _, _, hashes in self.chosen for h in _hex(hashes)]

    def runs(self, column: str):
        """The entries' values of ``column`` ("features" or "counts") in page order, as
        views of the mapped files: one per run of consecutive pages kept, whose pages of
        the file are let go once the next one is asked for (see :class:`_MappedSegment`)."""
        for mapped, pages, _ in self.chosen:
            values = column_array(mapped.table, column)
            offsets, values = values.offsets.to_numpy(), values.values.to_numpy()
            for run in np.split(pages, np.nonzero(np.diff(pages) != 1)[0] + 1):
                part = values[offsets[run[0]] : offsets[run[-1] + 1]]
                yield part
                mapped.release(part)


class _MappedSegment:
    """A segment file memory-mapped, whose pages read can be let go (:meth:`release`): a
    read-only shared mapping's pages leave the process's resident memory and stay in the
    page cache, read again if touched, so the views stay valid."""

    def __init__(self, path: Path):
        with open(path, "rb") as f:
            self._map = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        buffer = pa.py_buffer(self._map)
        self._address = buffer.address
        self.table = pa.ipc.open_file(buffer).read_all()

    def release(self, view: np.ndarray) -> None:
        """Let go of the file's pages under ``view`` (an array over this file)."""
        start = view.ctypes.data - self._address
        first = start - start % mmap.PAGESIZE
        if view.nbytes and 0 <= first < len(self._map):
            self._map.madvise(mmap.MADV_DONTNEED, first, min(start + view.nbytes, len(self._map)) - first)


def _hex(hashes: np.ndarray) -> list[str]:
    """16-byte hashes (numpy ``S16``, which would drop trailing NUL bytes as items) as hex."""
    text = np.ascontiguousarray(hashes).view(np.uint8).tobytes().hex()
    return [text[i : i + 32] for i in range(0, len(text), 32)]

"""Page-vector segments: each checkpoint's new pages as one immutable Arrow IPC file.

A segment holds, per page: its content hash (``hash``, 16 bytes: the catalog's key of
the page), its category (``category``, dictionary-encoded), its tokens (``n_tokens``)
and its vector (``features``: feature ids, ``counts``: occurrences, two lists sharing
their offsets). Files are written once (temporary name, fsync, rename) and never
rewritten; the catalog registers a segment with the documents it holds, in the
checkpoint's transaction. A page that is forgotten stays in its file and is left out
when read (the catalog's documents say which pages exist); a page added again later
is read from its newest segment. Files are uncompressed so that readers map them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import pyarrow as pa

from accum.vectors import PageVectors

from .snapshots import column_array, fsync

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
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)
        fsync(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync(path.parent)
    return path.stat().st_size


def read_vectors(paths: Sequence[Path], keep: set[str] | None = None) -> tuple[PageVectors, list[str]]:
    """The pages of the segments ``paths`` (in order) and their hashes; with ``keep``,
    only pages whose hash is in it, each once (from the last segment holding it). The
    files are memory-mapped: a first pass finds the pages kept, a second copies them
    straight into arrays of their final size (the pages' vectors are held once)."""
    wanted = None if keep is None else np.array([bytes.fromhex(h) for h in keep], "S16")
    found = np.zeros(0, "S16")
    chosen = []  # (path, pages, their hashes), newest first
    for path in reversed(list(paths)):  # newest first: a page added again is read from there
        table = _mapped(path)
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
        chosen.append((path, pages, hashes[pages].copy()))
    chosen.reverse()
    sizes = []
    names: dict[str, int] = {}
    for path, pages, _ in chosen:
        table = _mapped(path)
        offsets = column_array(table, "features").offsets.to_numpy()
        sizes.append(offsets[pages + 1] - offsets[pages])
        for name in column_array(table, "category").dictionary.to_pylist():
            names.setdefault(name, len(names))
    n_pages = sum(len(pages) for _, pages, _ in chosen)
    bounds = np.zeros(n_pages + 1, np.int64)
    if n_pages:
        np.cumsum(np.concatenate(sizes), out=bounds[1:])
    fids, tfs = np.empty(bounds[-1], np.uint64), np.empty(bounds[-1], np.uint32)
    labels, n_tokens = np.empty(n_pages, np.int32), np.empty(n_pages, np.int64)
    first = 0
    for path, pages, _ in chosen:
        table = _mapped(path)
        category, features, counts = (column_array(table, name) for name in ("category", "features", "counts"))
        codes = np.array([names[n] for n in category.dictionary.to_pylist()], np.int32)
        last = first + len(pages)
        labels[first:last] = codes[category.indices.to_numpy()[pages]]
        n_tokens[first:last] = table.column("n_tokens").to_numpy()[pages]
        _gather(features.offsets.to_numpy(), pages, features.values.to_numpy(), fids, bounds[first])
        _gather(counts.offsets.to_numpy(), pages, counts.values.to_numpy(), tfs, bounds[first])
        first = last
    vectors = PageVectors(bounds, fids, tfs, labels, n_tokens, list(names))
    return vectors, [h for _, _, hashes in chosen for h in _hex(hashes)]


def _mapped(path: Path) -> pa.Table:
    """The segment at ``path``, memory-mapped (its arrays are views of the file)."""
    with pa.memory_map(str(path), "r") as source:
        return pa.ipc.open_file(source).read_all()


def _gather(offsets: np.ndarray, pages: np.ndarray, values: np.ndarray, out: np.ndarray, at: int) -> None:
    """Copy the entries of ``pages`` (``values[offsets[p]:offsets[p + 1]]`` each, in
    order) to ``out`` from index ``at``: runs of consecutive pages as one slice."""
    if not len(pages):
        return
    breaks = np.nonzero(np.diff(pages) != 1)[0] + 1
    for run in np.split(pages, breaks):
        a, b = offsets[run[0]], offsets[run[-1] + 1]
        out[at : at + b - a] = values[a:b]
        at += b - a


def _hex(hashes: np.ndarray) -> list[str]:
    """16-byte hashes (numpy ``S16``, which would drop trailing NUL bytes as items) as hex."""
    text = np.ascontiguousarray(hashes).view(np.uint8).tobytes().hex()
    return [text[i : i + 32] for i in range(0, len(text), 32)]

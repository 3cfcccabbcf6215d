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
    files are memory-mapped: only the pages kept are copied out of them."""
    wanted = None if keep is None else np.array([bytes.fromhex(h) for h in keep], "S16")
    found = np.zeros(0, "S16")
    parts, hash_parts = [], []
    for path in reversed(list(paths)):  # newest first: a page added again is read from there
        with pa.memory_map(str(path), "r") as source:
            table = pa.ipc.open_file(source).read_all()
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
        category, features, counts = (column_array(table, name) for name in ("category", "features", "counts"))
        offsets = features.offsets.to_numpy()
        vectors = PageVectors(offsets - offsets[0], features.values.to_numpy()[offsets[0]:offsets[-1]],
                              counts.values.to_numpy()[offsets[0]:offsets[-1]],
                              category.indices.to_numpy().astype(np.int32),
                              table.column("n_tokens").to_numpy(), category.dictionary.to_pylist())
        parts.append(vectors.subset(pages))  # copies: the file's mapping is let go
        hash_parts.append(_hex(hashes[pages]))
    parts.reverse()
    hash_parts.reverse()
    return PageVectors.concat(parts), [h for part in hash_parts for h in part]


def _hex(hashes: np.ndarray) -> list[str]:
    """16-byte hashes (numpy ``S16``, which would drop trailing NUL bytes as items) as hex."""
    text = np.ascontiguousarray(hashes).view(np.uint8).tobytes().hex()
    return [text[i : i + 32] for i in range(0, len(text), 32)]

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
        _fsync(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync(path.parent)
    return path.stat().st_size


def read_vectors(paths: Sequence[Path], keep: set[str] | None = None) -> tuple[PageVectors, list[str]]:
    """The pages of the segments ``paths`` (in order) and their hashes; with ``keep``,
    only pages whose hash is in it, each once (from the last segment holding it)."""
    parts, hashes = [], []
    for path in paths:
        with pa.memory_map(str(path), "r") as source:
            table = pa.ipc.open_file(source).read_all()
        if table.num_rows == 0:
            continue
        page_hashes = [h.hex() for h in table.column("hash").to_pylist()]
        category = table.column("category").combine_chunks()
        features = table.column("features").combine_chunks()
        counts = table.column("counts").combine_chunks()
        offsets = features.offsets.to_numpy()
        parts.append(PageVectors(offsets - offsets[0], features.values.to_numpy()[offsets[0]:offsets[-1]],
                                 counts.values.to_numpy()[offsets[0]:offsets[-1]],
                                 category.indices.to_numpy().astype(np.int32),
                                 table.column("n_tokens").to_numpy(), category.dictionary.to_pylist()))
        hashes.extend(page_hashes)
    vectors = PageVectors.concat(parts)
    if keep is None:
        return vectors, hashes
    last = {h: i for i, h in enumerate(hashes) if h in keep}
    pages = np.array(sorted(last.values()), np.int64)
    return vectors.subset(pages), [hashes[i] for i in pages]


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

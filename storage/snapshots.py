"""Accumulator snapshots on disk: a directory of Arrow IPC files, written atomically.

Layout of ``<store>/snapshots/<name>/``:

- ``rows.arrow``: ``key``, ``prefix``, ``last``, ``order`` (uint64), one row per feature;
- ``counts.arrow``: the non-zero counts as ``row`` (int64), ``category`` (int32),
  ``count`` (int64) and ``weight`` (int64, fixed-point document weight): sparse, since
  most n-grams occur in one category;
- ``lexicon.arrow``: ``key`` (uint64), ``text`` (utf8): the first spelling of each token;
- schema metadata of ``rows.arrow`` holds ``accum`` JSON: format, settings, categories,
  documents and tokens per category.

Arrow IPC files are uncompressed so that readers memory-map them. A snapshot is
written into ``<name>.tmp``, fsynced and renamed into place, so a reader never sees a
partial one; the catalog registers it only after the rename.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa

from accum.accumulator import Accumulator

FORMAT = 2  # 2: document weights beside the counts
#: Columns of ``rows.arrow``: feature id, prefix id (0 for unigrams), last token id, order.
ROW_COLUMNS = ("key", "prefix", "last", "order")


def write_snapshot(acc: Accumulator, directory: Path, name: str) -> Path:
    """Write ``acc`` to ``directory/name`` atomically and return that path."""
    state = acc.to_arrays()
    final = Path(directory) / name
    tmp = final.with_name(final.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    meta = {
        "format": FORMAT,
        "settings": state["settings"],
        "categories": state["categories"],
        "doc_counts": state["doc_counts"].tolist(),
        "token_counts": state["token_counts"].tolist(),
    }
    rows = pa.table(
        {name: state["row_info"][:, j] for j, name in enumerate(ROW_COLUMNS)}
    ).replace_schema_metadata({"accum": json.dumps(meta)})
    counts = pa.table({
        "row": state["count_row"].astype(np.int64),
        "category": state["count_category"].astype(np.int32),
        "count": state["count_value"],
        "weight": state["count_weight"],
    })
    lexicon = pa.table({
        "key": pa.array(state["lexicon_keys"], pa.uint64()),
        "text": pa.array(state["lexicon_text"], pa.string()),
    })
    for file_name, table in (("rows.arrow", rows), ("counts.arrow", counts), ("lexicon.arrow", lexicon)):
        _write_ipc(table, tmp / file_name)
    _fsync_dir(tmp)
    os.replace(tmp, final)
    _fsync_dir(final.parent)
    return final


def read_snapshot(path: Path) -> Accumulator:
    """Load a snapshot written by :func:`write_snapshot` (memory-mapped reads)."""
    path = Path(path)
    rows = _read_ipc(path / "rows.arrow")
    meta = json.loads(rows.schema.metadata[b"accum"])
    if meta.get("format") != FORMAT:
        raise ValueError(
            f"{path}: snapshot format {meta.get('format')!r}, this accum reads format {FORMAT}; "
            "re-ingest the sources into a new --store"
        )
    counts = _read_ipc(path / "counts.arrow")
    lexicon = _read_ipc(path / "lexicon.arrow")
    return Accumulator.from_arrays({
        "settings": meta["settings"],
        "categories": meta["categories"],
        "doc_counts": np.array(meta["doc_counts"], np.int64),
        "token_counts": np.array(meta["token_counts"], np.int64),
        "row_info": np.stack([_column(rows, name) for name in ROW_COLUMNS], axis=1),
        "count_row": _column(counts, "row"),
        "count_category": _column(counts, "category"),
        "count_value": _column(counts, "count"),
        "count_weight": _column(counts, "weight"),
        "lexicon_keys": _column(lexicon, "key"),
        "lexicon_text": lexicon.column("text").to_pylist(),
    })


def snapshot_bytes(path: Path) -> int:
    """Bytes on disk of a snapshot directory."""
    return sum(f.stat().st_size for f in Path(path).iterdir())


def _column(table: pa.Table, name: str) -> np.ndarray:
    return table.column(name).combine_chunks().to_numpy(zero_copy_only=False)


def _write_ipc(table: pa.Table, path: Path) -> None:
    with pa.OSFile(str(path), "wb") as sink:
        with pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _read_ipc(path: Path) -> pa.Table:
    with pa.memory_map(str(path), "r") as source:
        return pa.ipc.open_file(source).read_all()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

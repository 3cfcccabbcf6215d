"""Accumulator snapshots on disk: a directory of Arrow IPC files, written atomically.

A model's state (``to_arrays()`` of :class:`~accum.accumulator.Accumulator` or
:class:`~accum.markov.MarkovAccumulator`) is stored as four tables by key prefix:
``row_*`` arrays in ``<model>-row.arrow`` (one row per feature or n-gram; 2-D arrays as
one column per field), ``count_*`` in ``<model>-count.arrow`` (the non-zero counts,
sparse, since most n-grams occur in one category), ``lexicon_*`` in
``<model>-lexicon.arrow``, ``gram_*`` (the classifier's Gram) in ``<model>-gram.arrow``
(absent from snapshots made before it); every other entry (settings, categories, documents and tokens
per category) goes to JSON in the schema metadata of the row table. The classifier's
model is ``classifier``, the generator's ``markov``.

Arrow IPC files written whole are uncompressed so that readers memory-map them, except
the Gram's, which the accumulator copies whole anyway and LZ4 makes about 30 % smaller
(20 Newsgroups: 67 -> 48 MB, written in 0.2 s and read in 0.03 s; zstd made it 41 MB but
took 0.43 s and 0.16 s); the classifier's segments that an ingest with a memory budget
writes shard by shard are read a shard at a time and LZ4-compressed (see
:mod:`accum.storage.runs`). A snapshot is
written into ``<name>.tmp``, fsynced and renamed into place, so a reader never sees a
partial one; the catalog registers it only after the rename. A write that fails (full
disk, read-only directory) removes its ``.tmp`` directory before the error propagates.

A snapshot directory may also hold classifiers built from it (:func:`write_model`):
``model-<name>-<parameters digest>/``, one Arrow IPC file per array plus ``model.json``,
written the same way, so that classifying memory-maps a model instead of loading the
counts and deriving it again; and the generator's chain of all categories
(``markov-chain/``, see :mod:`accum.storage.generators`). They are a cache: deleting them
loses nothing.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa

from accum.accumulator import Accumulator
from accum.counts import Counts
from accum.settings import Settings

FORMAT = 3  # 3: generic state tables per model (classifier, markov)
#: Version of the saved classifiers' layout (:func:`write_model`); others are rebuilt.
MODEL_FORMAT = 1
#: The tables, in the order :func:`write_state` writes them: the counts' columns (no copy)
#: before the row table's strided columns are copied, the Gram's compression last.
TABLES = ("count", "lexicon", "row", "gram")
OPTIONAL_TABLES = ("gram",)
COMPRESSED_TABLES = {"gram": "lz4"}
#: The classifier's tables that an ingest with a memory budget writes as segments: its
#: snapshots may name several (see :mod:`accum.storage.runs`), read as their sum.
SEGMENT_TABLES = ("row", "count", "lexicon")
#: The list of a snapshot's segments, oldest first (absent: one segment, named "").
SEGMENTS_FILE = "classifier-segments.json"


def segment_names(path: Path) -> list[str]:
    """The classifier segments of the snapshot ``path``, oldest first."""
    manifest = Path(path) / SEGMENTS_FILE
    if not manifest.exists():
        return [""]
    return json.loads(manifest.read_text(encoding="utf-8"))["segments"]


def segment_file(path: Path, table: str, segment: str, model: str = "classifier") -> Path:
    """The file of ``model``'s ``table`` in ``segment`` of the snapshot ``path``."""
    return Path(path) / (f"{model}-{table}.arrow" if not segment else f"{model}-{table}.{segment}.arrow")


def write_snapshot(models: dict, directory: Path, name: str) -> Path:
    """Write ``models`` (model name -> object with ``to_arrays()``) to ``directory/name``
    atomically and return that path."""
    final = Path(directory) / name
    tmp = final.with_name(final.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    try:
        tmp.mkdir(parents=True)
        for model, obj in models.items():
            write_state(obj.to_arrays(), tmp, model)
        fsync(tmp)
        os.replace(tmp, final)
    except BaseException:
        # a full disk, a read-only or vanished directory, ^C: leave no partial snapshot behind
        # (it would hold the space the catalog needs to record the failure)
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    fsync(final.parent)
    return final


def read_snapshot(path: Path) -> Accumulator:
    """The classifier's accumulator of a snapshot."""
    return Accumulator.from_arrays(read_state(Path(path), "classifier"))


def read_counts(path: Path) -> Counts:
    """The classifier's counts of a snapshot, without its lexicon and Gram (see :class:`Counts`)."""
    return Counts.from_arrays(read_state(Path(path), "classifier", ("row", "count")))


def read_markov(path: Path):
    """The generator of a snapshot, or None when the store keeps none."""
    from accum.markov import MarkovAccumulator

    if not (Path(path) / "markov-row.arrow").exists():
        return None
    return MarkovAccumulator.from_arrays(read_state(Path(path), "markov"))


def feature_orders(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Every feature id of a snapshot's classifier counts, sorted (uint64), and each one's
    n-gram order (uint8), read from two columns of its segments' row tables."""
    ids, orders = [], []
    for segment in segment_names(path):
        _, rows = read_columns(segment_file(path, "row", segment), ("row_info.0", "row_info.3"))
        ids.append(rows["row_info.0"])
        orders.append(rows["row_info.3"])
    ids, orders = np.concatenate(ids), np.concatenate(orders)
    ids, first = np.unique(ids, return_index=True)
    return ids, orders[first].astype(np.uint8)


def write_state(state: dict, directory: Path, model: str, tables: tuple[str, ...] = TABLES) -> None:
    """Write one model's ``to_arrays()`` state as ``<model>-{row,count,lexicon,gram}.arrow``
    (only ``tables`` of them).

    Empties ``state`` and lets go of each table's arrays once it is written, so that
    converting one table (copying the row table's strided columns, compressing the Gram)
    does not come on top of every other table's arrays (20 Newsgroups: about 50 MB less
    at the peak of a snapshot).
    """
    meta, columns = _split_tables(state)
    for table in tables:
        cols = columns.pop(table)
        arrow = pa.table({k: pa.array(v) for k, v in cols.items()}) if cols else pa.table({})
        del cols
        if table == "row":
            arrow = arrow.replace_schema_metadata({"accum": json.dumps(meta)})
        _write_ipc(arrow, directory / f"{model}-{table}.arrow", COMPRESSED_TABLES.get(table))
        del arrow


def _split_tables(state: dict) -> tuple[dict, dict[str, dict]]:
    """Take ``state`` apart (emptying it): JSON metadata, and per table its columns by
    key prefix (a 2-D array as one column per field, ``key.j``)."""
    meta = {"format": FORMAT}
    columns: dict[str, dict] = {t: {} for t in TABLES}
    for key in list(state):
        value = state.pop(key)
        table = key.split("_", 1)[0]
        if table in columns and key != "row":
            array = np.asarray(value) if not isinstance(value, list) else value
            if isinstance(array, np.ndarray) and array.ndim == 2:
                for j in range(array.shape[1]):
                    columns[table][f"{key}.{j}"] = array[:, j]
            else:
                columns[table][key] = array
        else:
            meta[key] = value.tolist() if isinstance(value, np.ndarray) else value
    return meta, columns


def read_state(directory: Path, model: str, tables: tuple[str, ...] = TABLES) -> dict:
    """The state written by :func:`write_state` (arrays memory-mapped where possible), its
    metadata and the columns of ``tables``."""
    if (directory / "rows.arrow").exists():  # formats 1 and 2 had one model, no prefix
        raise ValueError(
            f"{directory}: snapshot of an older format; this accum reads format {FORMAT}: "
            "re-ingest the sources into a new --store"
        )
    segments = segment_names(directory) if model == "classifier" else [""]
    meta = json.loads(read_columns(segment_file(directory, "row", segments[-1], model), ())[0].metadata[b"accum"])
    if meta.pop("format", None) != FORMAT:
        raise ValueError(
            f"{directory}: snapshot of another format; this accum reads format {FORMAT}: "
            "re-ingest the sources into a new --store"
        )
    state = dict(meta)
    if len(segments) > 1 and set(tables) & set(SEGMENT_TABLES):
        from .runs import merged_counts_state  # here, not at the top: storage.runs imports this module

        state.update(merged_counts_state(directory, Settings.from_dict(meta["settings"]), len(meta["categories"])))
        tables = tuple(t for t in tables if t not in SEGMENT_TABLES)
    for table in tables:
        path = segment_file(directory, table, "", model)
        if table in OPTIONAL_TABLES and not path.exists():
            continue
        stacked: dict[str, list] = {}
        for name, values in read_columns(path)[1].items():
            if "." in name:
                stacked.setdefault(name.split(".")[0], []).append(values)
            else:
                state[name] = values
        for key, parts in stacked.items():
            state[key] = np.stack(parts, axis=1)
    return state


def write_model(state: dict, path: Path) -> None:
    """Write a classifier's ``to_arrays()`` state to the directory ``path`` atomically:
    its arrays as single-column Arrow IPC files, everything else in ``model.json``."""
    path = Path(path)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir(parents=True)
        meta = {"format": MODEL_FORMAT, "arrays": []}
        for key, value in state.items():
            if isinstance(value, np.ndarray):
                flat = value.ravel()
                # Arrow packs booleans in bits, which numpy cannot map: kept as bytes
                _write_ipc(pa.table({key: pa.array(flat.view(np.uint8) if flat.dtype == bool else flat)}),
                           tmp / f"{key}.arrow")
                meta["arrays"].append([key, list(value.shape)] + (["bool"] if value.dtype == bool else []))
            else:
                meta[key] = value
        (tmp / "model.json").write_text(json.dumps(meta), encoding="utf-8")
        fsync(tmp)
        shutil.rmtree(path, ignore_errors=True)  # one of another format (a reader that has it mapped keeps it)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def read_model(path: Path) -> dict:
    """The state :func:`write_model` wrote (arrays memory-mapped, read-only); raises
    FileNotFoundError when there is none and ValueError when it has another format."""
    path = Path(path)
    meta = json.loads((path / "model.json").read_text(encoding="utf-8"))
    if meta.pop("format", None) != MODEL_FORMAT:
        raise ValueError(f"{path}: a saved model of another format")
    for key, shape, *kind in meta.pop("arrays"):
        array = column_array(read_ipc(path / f"{key}.arrow"), key).to_numpy(zero_copy_only=True)
        meta[key] = (array.view(bool) if kind == ["bool"] else array).reshape(shape)
    return meta


def snapshot_bytes(path: Path) -> int:
    """Bytes on disk of a snapshot directory (its saved classifiers not included)."""
    return sum(f.stat().st_size for f in Path(path).iterdir() if f.is_file())


def _write_ipc(table: pa.Table, path: Path, compression: str | None = None) -> None:
    with pa.OSFile(str(path), "wb") as sink:
        with pa.ipc.new_file(sink, table.schema, options=pa.ipc.IpcWriteOptions(compression=compression)) as writer:
            writer.write_table(table)
    fsync(path)


def column_array(table: pa.Table, name: str) -> pa.Array:
    """Column ``name`` of ``table`` as one array: its chunk when it has one (pyarrow's
    ``combine_chunks`` copies even then, which reads a memory-mapped file whole)."""
    column = table.column(name)
    return column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()


def read_columns(path: Path, names: tuple[str, ...] | None = None) -> tuple[pa.Schema, dict]:
    """The columns ``names`` (None: all) of an Arrow IPC file as numpy arrays (lists for
    strings), and its schema. A file of one record batch is memory-mapped (no copy); one
    of many (a snapshot written shard by shard, see :mod:`accum.storage.runs`) is read a
    batch at a time into arrays made for the whole column, so that reading it takes the
    memory of the columns once, not of the file and the columns."""
    if not Path(path).exists():
        raise FileNotFoundError(path)
    with pa.memory_map(str(path), "r") as source:
        reader = pa.ipc.open_file(source)
        schema = reader.schema
        names = schema.names if names is None else list(names)
        if reader.num_record_batches <= 1:
            table = reader.read_all()
            return schema, {n: column_values(column_array(table, n)) for n in names}
        if not names:
            return schema, {}
        lengths = [reader.get_batch(i).num_rows for i in range(reader.num_record_batches)]  # no data read
    fields = {n: schema.field(n) for n in names}
    out = {n: [] if pa.types.is_string(f.type) else np.empty(sum(lengths), f.type.to_pandas_dtype())
           for n, f in fields.items()}
    at = 0
    with pa.OSFile(str(path), "rb") as source:
        reader = pa.ipc.open_file(source)
        for i, length in enumerate(lengths):
            batch = reader.get_batch(i)
            for n in names:
                if isinstance(out[n], list):
                    out[n].extend(column_values(batch.column(n)))
                else:
                    out[n][at : at + length] = column_values(batch.column(n))
            at += length
    return schema, out


def column_values(column: pa.Array):
    """An Arrow column as numpy (a list of str for strings)."""
    return column.to_pylist() if pa.types.is_string(column.type) else column.to_numpy(zero_copy_only=False)


def read_ipc(path: Path) -> pa.Table:
    """The Arrow IPC file at ``path``, memory-mapped (its arrays are views of the file)."""
    if not path.exists():
        raise FileNotFoundError(path)
    with pa.memory_map(str(path), "r") as source:
        return pa.ipc.open_file(source).read_all()


def write_small_file(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (see :func:`replaced_atomically`)."""
    with replaced_atomically(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


@contextlib.contextmanager
def replaced_atomically(path: Path):
    """A temporary file beside ``path`` to write (the ``with`` body); once written, it
    replaces ``path`` (fsync, rename, fsync of the directory), so that a reader sees the
    old file or the new one, never a part. A body that fails leaves no temporary file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        yield tmp
        fsync(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync(path.parent)


def fsync(path: Path) -> None:
    """Flush a file or directory to the disk (a directory: the names in it)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

"""Count runs on disk and the checkpoint that merges them into a snapshot, shard by shard.

An ingest with a memory budget (``accum ingest --memory``) spills its counts as runs
(:class:`accum.runs.CountRun`): one directory per spill with an Arrow IPC file per table
(counts, rows, crossings, spellings), each written as :data:`~accum.runs.N_SHARDS`
record batches, batch ``s`` holding shard ``s``. A checkpoint merges the store's
snapshot, the spilled runs and the counts still in memory shard by shard
(:func:`write_merged_snapshot`): it reads one batch of each source at a time (plain file
reads, not memory maps, so the pages read are not held by the process), so its memory
is a shard of every source rather than the store.

A snapshot's classifier counts are *segments* (:func:`~accum.storage.snapshots.segment_names`):
a checkpoint writes only the delta of its runs as a new segment, in shards, and takes
the earlier segments by hard link; once the deltas outweigh the first segment, it writes
the merged counts as one segment again (:func:`_compacts`). Readers add the segments up
(:func:`merged_counts_state`). A segment keeps the layout
:mod:`accum.storage.snapshots` reads (rows sorted by feature id), plus ``"shards"`` in
its metadata.

Runs live in ``<store>/runs/`` until the checkpoint that merges them is committed; a
run that stops first leaves them for the next writer to remove (nothing in them is
committed: the pages are counted again when the ingest runs again).
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa

from accum._kernels import P_COUNT, P_KEY, P_WEIGHT
from accum.runs import N_SHARDS, SHARD_BITS, CountRun, Growth, give_back_memory, merge_shard

from accum.settings import Settings

from .snapshots import (FORMAT, SEGMENT_TABLES, SEGMENTS_FILE, column_values, fsync, read_state, segment_file,
                        segment_names, write_state)

RUN_DIR = "runs"
#: Runs and snapshot segments are read a shard at a time, never memory-mapped, so they
#: are compressed: LZ4 makes posts-a's runs about 3x smaller and its ingest under a
#: budget no slower (less to write and read back); zstd, 5x, made it slower.
SHARD_OPTIONS = pa.ipc.IpcWriteOptions(compression="lz4")
#: A checkpoint writes only a delta segment beside its base's segments until the deltas
#: hold as many bytes as the first segment, or there are this many segments: then it
#: merges them into one (size-tiered compaction: every count is rewritten O(log) times).
MAX_SEGMENTS = 8
#: Shards a checkpoint (or a reader of several segments) merges at once, beside reading
#: the next: the merge kernel releases the GIL.
MERGE_THREADS = 2


def write_run(run: CountRun, path: Path) -> None:
    """Write ``run`` to the directory ``path`` (one file per table, a batch per shard)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir(parents=True)
        bounds = run.bounds()
        for table, names in CountRun.TABLES.items():
            columns = {name: getattr(run, name) for name in names}
            _write_shards(tmp / f"{table}.arrow", columns, bounds[table])
        fsync(tmp)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _write_shards(path: Path, columns: dict, bounds: np.ndarray) -> None:
    """Write ``columns`` as one record batch per shard (rows ``bounds[s]`` to ``bounds[s + 1]``)."""
    arrays = {k: (pa.array(v, pa.string()) if isinstance(v, list) else pa.array(v)) for k, v in columns.items()}
    schema = pa.schema([(k, a.type) for k, a in arrays.items()])
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, schema, options=SHARD_OPTIONS) as writer:
        for s in range(N_SHARDS):
            a, b = int(bounds[s]), int(bounds[s + 1])
            writer.write_batch(pa.record_batch([arr.slice(a, b - a) for arr in arrays.values()], schema=schema))
    fsync(path)


class _ShardFile:
    """An Arrow IPC file of :data:`N_SHARDS` batches, read a batch at a time."""

    def __init__(self, path: Path):
        self._file = pa.OSFile(str(path), "rb")
        self.reader = pa.ipc.open_file(self._file)
        self.schema = self.reader.schema

    def batch(self, s: int) -> dict:
        batch = self.reader.get_batch(s)
        return {name: column_values(column) for name, column in zip(batch.schema.names, batch.columns)}

    def close(self) -> None:
        self._file.close()


class _Source:
    """A merge source, read shard by shard: its counts (:meth:`shard`) or only its rows'
    ids and orders (:meth:`rows`); :meth:`close` closes its files."""

    files: dict

    def shard(self, s: int) -> CountRun:
        raise NotImplementedError

    def rows(self, s: int) -> tuple[np.ndarray, np.ndarray]:
        run = self.shard(s)
        return run.row_fid, run.row_order

    def close(self) -> None:
        for f in self.files.values():
            f.close()


class RunFiles(_Source):
    """A spilled run on disk."""

    def __init__(self, path: Path):
        self.files = {table: _ShardFile(Path(path) / f"{table}.arrow") for table in CountRun.TABLES}

    def shard(self, s: int) -> CountRun:
        out = {}
        for table in CountRun.TABLES:
            out.update(self.files[table].batch(s))
        out["cat"], out["row_order"] = out["cat"].astype(np.int64), out["row_order"].astype(np.int64)
        return CountRun(**out)

    def rows(self, s: int) -> tuple[np.ndarray, np.ndarray]:
        batch = self.files["row"].batch(s)
        return batch["row_fid"], batch["row_order"].astype(np.int64)


class SnapshotShards(_Source):
    """The classifier counts of one segment of a snapshot (see
    :func:`~accum.storage.snapshots.segment_names`) as a merge source, shard by shard: a
    segment written in shards is read a batch at a time; an older snapshot, written
    whole, is read whole once and sorted."""

    def __init__(self, path: Path, segment: str = ""):
        path = Path(path)
        rows = _ShardFile(segment_file(path, "row", segment))
        meta = json.loads(rows.schema.metadata[b"accum"])
        if meta.get("shards") == N_SHARDS:
            self.files = {"row": rows, "count": _ShardFile(segment_file(path, "count", segment)),
                          "lexicon": _ShardFile(segment_file(path, "lexicon", segment))}
            self.whole = None
            self._row_offset = 0
        else:
            rows.close()
            self.files = {}
            self.whole = CountRun.of_state(read_state(path, "classifier", ("row", "count", "lexicon")))
            self._bounds = self.whole.bounds()

    def shard(self, s: int) -> CountRun:
        if self.whole is not None:
            return self.whole.shard(s, self._bounds)
        rows, counts, lexicon = (self.files[t].batch(s) for t in ("row", "count", "lexicon"))
        n_rows = len(rows["row_info.0"])
        state = {"row_info": np.stack([rows[f"row_info.{j}"] for j in range(4)], axis=1),
                 "count_row": counts["count_row"] - self._row_offset, **{
                     k: counts[k] for k in ("count_category", "count_value", "count_weight")}, **lexicon}
        self._row_offset += n_rows
        return CountRun.of_state(state)

    def rows(self, s: int) -> tuple[np.ndarray, np.ndarray]:
        if self.whole is not None:
            return super().rows(s)
        batch = self.files["row"].batch(s)
        return batch["row_info.0"], batch["row_info.3"].astype(np.int64)


def snapshot_sources(path: Path) -> list[SnapshotShards]:
    """A snapshot's segments as merge sources, oldest first."""
    return [SnapshotShards(path, segment) for segment in segment_names(path)]


def _merged_snapshot(path: Path, settings: Settings, n_categories: int):
    """Every shard of a snapshot's segments merged (see :func:`_merged_shards`), in shard order."""
    give_back_memory()  # else the shards' freed arrays stay in the C heap: ~1 GB more on posts-a
    sources = snapshot_sources(path)
    growth = Growth.for_sources(len(sources), n_categories, settings.max_order, 1)  # not read
    occurrences = np.zeros((n_categories, settings.max_order), np.int64)
    try:
        for merged, _ in _merged_shards(sources, growth, occurrences, settings.prune_k):
            yield merged
    finally:
        for src in sources:
            src.close()


def merged_counts_state(path: Path, settings: Settings, n_categories: int) -> dict:
    """The classifier's row, count and lexicon tables of a snapshot of several segments,
    merged (as :func:`~accum.storage.snapshots.read_state` returns them)."""
    parts: dict[str, list] = {}
    n_rows = 0
    for merged in _merged_snapshot(path, settings, n_categories):
        for table, columns in _state_columns(merged, n_rows).items():
            for name, values in columns.items():
                # copied: a merged shard's arrays are views of buffers sized for every source
                parts.setdefault(name, []).append(values.copy() if isinstance(values, np.ndarray) else values)
        n_rows += len(merged.row_fid)
    state = {}
    for name in list(parts):  # one column's parts at a time: the peak is the state and one column
        values = parts.pop(name)
        state[name] = [t for p in values for t in p] if name == "lexicon_text" else np.concatenate(values)
        del values
    state["row_info"] = np.stack([state.pop(f"row_info.{j}") for j in range(4)], axis=1)
    return state


def shard_pairs(path: Path, settings: Settings, n_categories: int):
    """A snapshot's counts a shard at a time, as a count model is built from them
    (:meth:`accum.classify.LinearCountModel._build`): ``(pairs, n_pairs, rows)`` in the
    accumulator's layouts, the shard's rows numbered from 0 (a merged shard holds no
    totals and no zero counts, as a whole snapshot read by
    :func:`~accum.counts.nonzero_counts`)."""
    for merged in _merged_snapshot(path, settings, n_categories):
        rows = merged.count_rows()
        pairs = np.zeros((len(rows), 4), np.int64)
        pairs[:, P_KEY] = (rows << 32) | merged.cat
        pairs[:, P_COUNT] = merged.count
        pairs[:, P_WEIGHT] = merged.weight
        info = np.stack([merged.row_fid, merged.row_prefix, merged.row_last, merged.row_order.astype(np.uint64)],
                        axis=1)
        yield pairs, len(rows), info


def count_shards(path: Path, settings: Settings, n_categories: int):
    """A snapshot's counts a shard at a time, as :func:`accum.capacity.count_accounting`
    measures them: ``(counts, each count's n-gram order, the shard's distinct features)``."""
    for merged in _merged_snapshot(path, settings, n_categories):
        yield merged.count, merged.row_order[merged.count_rows()], len(merged.row_fid)


class _InMemory(_Source):
    """A run still in memory."""

    def __init__(self, run: CountRun):
        self.run, self._bounds = run, run.bounds()
        self.files = {}

    def shard(self, s: int) -> CountRun:
        return self.run.shard(s, self._bounds)


def orders_of(sources: list, fids: np.ndarray) -> np.ndarray:
    """The n-gram order of each of ``fids`` (0 where no source has it), from the rows of
    ``sources`` (snapshot directories, run directories or :class:`CountRun` objects),
    reading only the shards the features fall in."""
    out = np.zeros(len(fids), np.int64)
    shards = np.unique(np.asarray(fids, np.uint64) >> np.uint64(64 - SHARD_BITS)).tolist()
    for source in sources:
        for reader in _sources(source):
            try:
                for s in shards:
                    row_fid, row_order = reader.rows(s)
                    if len(row_fid):
                        at = np.minimum(np.searchsorted(row_fid, fids), len(row_fid) - 1)
                        found = (out == 0) & (row_fid[at] == fids)
                        out[found] = row_order[at[found]]
            finally:
                reader.close()
    return out


def _sources(source) -> list[_Source]:
    """The merge sources of a snapshot directory (one per segment), a run directory or a
    :class:`CountRun`."""
    if isinstance(source, CountRun):
        return [_InMemory(source)]
    if (Path(source) / "classifier-row.arrow").exists():
        return snapshot_sources(source)
    return [RunFiles(source)]


def _compacts(base: Path, sources: list[SnapshotShards]) -> bool:
    """Whether the checkpoint after ``base`` (its segments opened as ``sources``) merges
    them into one (see :data:`MAX_SEGMENTS`)."""
    segments = segment_names(base)
    if len(segments) >= MAX_SEGMENTS or sources[0].whole is not None:
        return True  # a snapshot written whole (before any budget, or by a forget) is rewritten in shards
    sizes = [sum(segment_file(base, t, seg).stat().st_size for t in SEGMENT_TABLES) for seg in segments]
    return sum(sizes[1:]) >= sizes[0]


def write_merged_snapshot(directory: Path, name: str, acc, base: Path | None, runs: list,
                          markov=None, compact: bool = False) -> tuple[Path, Growth, dict]:
    """Merge the snapshot ``base`` (None: an empty store), then ``runs`` (spilled run
    directories or :class:`CountRun` objects, in the order their pages were counted),
    into the snapshot ``directory/name``, written atomically, with ``acc``'s categories,
    pages, tokens and Gram and the generator ``markov``.

    The new snapshot keeps the segments of ``base`` (hard links: no byte rewritten) and
    adds one, the delta of ``runs``, named ``name``; or, when ``base`` has segments
    enough (:data:`MAX_SEGMENTS`) or with ``compact``, it is written whole, one segment.

    Returns the snapshot's path, the merge's :class:`~accum.runs.Growth` (source 0 the
    base) and ``{"rows", "pairs", "occurrences"}`` of the merged counts.
    """
    settings = acc.settings
    base_sources = snapshot_sources(base) if base is not None else [_InMemory(CountRun.empty())]
    sources = base_sources + [src for run in runs for src in _sources(run)]
    n_base = len(base_sources)
    delta = base is not None and not compact and not _compacts(base, base_sources)
    segments = (segment_names(base) + [name]) if delta else [""]
    n_cats = acc.n_categories
    growth = Growth.for_sources(len(sources), n_cats, settings.max_order, acc.n_documents + 1)
    occurrences = np.zeros((n_cats, settings.max_order), np.int64)
    final = Path(directory) / name
    tmp = final.with_name(final.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    meta = {"format": FORMAT, "shards": N_SHARDS, "settings": settings.to_dict(), "categories": list(acc.categories),
            "doc_counts": acc.doc_counts.tolist(), "token_counts": acc.token_counts.tolist()}
    n_rows = n_pairs = n_written = 0
    try:
        tmp.mkdir(parents=True)
        if delta:
            for segment in segments[:-1]:
                for table in SEGMENT_TABLES:
                    _link(segment_file(base, table, segment), segment_file(tmp, table, segment))
            (tmp / SEGMENTS_FILE).write_text(json.dumps({"segments": segments}), encoding="utf-8")
        out = _SnapshotWriter(tmp, meta, segments[-1])
        for merged, changed in _merged_shards(sources, growth, occurrences, settings.prune_k,
                                              n_base if delta else None):
            written = changed if delta else merged
            out.write(written, n_written)
            n_written += len(written.row_fid)
            n_rows += len(merged.row_fid)
            n_pairs += len(merged.fid)
        out.close()
        gram = acc._gram_arrays()
        write_state({"settings": settings.to_dict(), **gram}, tmp, "classifier", tables=("gram",))
        if markov is not None:
            write_state(markov.to_arrays(), tmp, "markov")
        fsync(tmp)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        for src in sources:
            src.close()
    fsync(final.parent)
    if n_base > 1:  # the base's segments as one source: none of them logged growth rows
        growth.hist = np.concatenate([growth.hist[:n_base].sum(axis=0, keepdims=True), growth.hist[n_base:]])
    return final, growth, {"rows": n_rows, "pairs": n_pairs, "occurrences": occurrences}


def _merged_shards(sources: list[_Source], growth: Growth, occurrences: np.ndarray, prune_k: int,
                   n_base: int | None = None):
    """:func:`~accum.runs.merge_shard` of every shard of ``sources``, in shard order. The
    sources are read here, in order; up to :data:`MERGE_THREADS` shards are merged at once
    (the kernel releases the GIL), each thread adding growth and occurrences to arrays of
    its own, summed into ``growth.hist`` and ``occurrences`` once every shard is merged."""
    local, tallies, lock = threading.local(), [], threading.Lock()

    def merge(inputs: list[CountRun]):
        if not hasattr(local, "hist"):
            local.hist, local.occurrences = np.zeros_like(growth.hist), np.zeros_like(occurrences)
            with lock:
                tallies.append((local.hist, local.occurrences))
        return merge_shard(inputs, growth.marks, prune_k, local.hist, local.occurrences, n_base)

    with ThreadPoolExecutor(MERGE_THREADS) as pool:
        running: deque = deque()
        for s in range(N_SHARDS):
            running.append(pool.submit(merge, [src.shard(s) for src in sources]))
            if len(running) > MERGE_THREADS:
                yield running.popleft().result()
        while running:
            yield running.popleft().result()
    for hist, counts in tallies:
        growth.hist += hist
        occurrences += counts


def _link(source: Path, target: Path) -> None:
    """Hard-link ``source`` as ``target`` (a copy where the file system has no links)."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)
        fsync(target)


def _state_columns(merged: CountRun, row_offset: int) -> dict[str, dict]:
    """A merged shard's columns in the snapshot's row, count and lexicon tables (its
    counts' rows numbered from ``row_offset``)."""
    local = merged.count_rows()
    return {
        "row": {"row_info.0": merged.row_fid, "row_info.1": merged.row_prefix, "row_info.2": merged.row_last,
                "row_info.3": merged.row_order.astype(np.uint64)},
        "count": {"count_row": local + row_offset, "count_category": merged.cat, "count_value": merged.count,
                  "count_weight": merged.weight},
        "lexicon": {"lexicon_keys": merged.lex_key, "lexicon_text": merged.lex_text},
    }


class _SnapshotWriter:
    """The classifier's row, count and lexicon tables of a snapshot's segment, written a
    shard at a time."""

    SCHEMAS = {
        "row": [(f"row_info.{j}", pa.uint64()) for j in range(4)],
        "count": [("count_row", pa.int64()), ("count_category", pa.int64()), ("count_value", pa.int64()),
                  ("count_weight", pa.int64())],
        "lexicon": [("lexicon_keys", pa.uint64()), ("lexicon_text", pa.string())],
    }

    def __init__(self, directory: Path, meta: dict, segment: str):
        self.sinks, self.writers, self.schemas = [], {}, {}
        for table, fields in self.SCHEMAS.items():
            schema = pa.schema(fields, metadata={"accum": json.dumps(meta)} if table == "row" else None)
            path = segment_file(directory, table, segment)
            sink = pa.OSFile(str(path), "wb")
            self.sinks.append((sink, path))
            self.writers[table] = pa.ipc.new_file(sink, schema, options=SHARD_OPTIONS)
            self.schemas[table] = schema

    def write(self, merged: CountRun, row_offset: int) -> None:
        for table, columns in _state_columns(merged, row_offset).items():
            schema = self.schemas[table]
            self.writers[table].write_batch(pa.record_batch(
                [pa.array(columns[f.name], f.type) for f in schema], schema=schema))

    def close(self) -> None:
        for writer in self.writers.values():
            writer.close()
        for sink, path in self.sinks:
            sink.close()
            fsync(path)

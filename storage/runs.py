"""Count runs on disk and the checkpoint that merges them into a snapshot, shard by shard.

An ingest with a memory budget (``accum ingest --memory``) spills its counts as runs
(:class:`accum.runs.CountRun`): one directory per spill with an Arrow IPC file per table
(counts, rows, crossings, spellings), each written as :data:`~accum.runs.N_SHARDS`
record batches, batch ``s`` holding shard ``s``. A checkpoint merges the store's
snapshot, the spilled runs and the counts still in memory shard by shard
(:func:`write_merged_snapshot`): it reads one batch of each source at a time (plain file
reads, not memory maps, so the pages read are not held by the process) and writes the
new snapshot as shards too, so its memory is a shard of every source rather than the
store. A snapshot written so keeps the layout :mod:`accum.storage.snapshots` reads
(its tables in shards, rows sorted by feature id), plus ``"shards"`` in its metadata.

Runs live in ``<store>/runs/`` until the checkpoint that merges them is committed; a
run that stops first leaves them for the next writer to remove (nothing in them is
committed: the pages are counted again when the ingest runs again).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa

from accum.runs import N_SHARDS, SHARD_BITS, CountRun, Growth, merge_shard

from .snapshots import FORMAT, column_values, fsync, read_state, write_state

RUN_DIR = "runs"


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
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, schema) as writer:
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
    """The classifier counts of a snapshot as a merge source, shard by shard: a snapshot
    written in shards is read a batch at a time; an older one, written whole, is read
    whole once and sorted."""

    def __init__(self, path: Path):
        path = Path(path)
        rows = _ShardFile(path / "classifier-row.arrow")
        meta = json.loads(rows.schema.metadata[b"accum"])
        if meta.get("shards") == N_SHARDS:
            self.files = {"row": rows, "count": _ShardFile(path / "classifier-count.arrow"),
                          "lexicon": _ShardFile(path / "classifier-lexicon.arrow")}
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
        reader = _source(source)
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


def _source(source) -> _Source:
    """A merge source: a snapshot directory, a run directory or a :class:`CountRun`."""
    if isinstance(source, CountRun):
        return _InMemory(source)
    return SnapshotShards(source) if (Path(source) / "classifier-row.arrow").exists() else RunFiles(source)


def write_merged_snapshot(directory: Path, name: str, acc, base: Path | None, runs: list,
                          markov=None) -> tuple[Path, Growth, dict]:
    """Merge the snapshot ``base`` (None: an empty store), then ``runs`` (spilled run
    directories or :class:`CountRun` objects, in the order their pages were counted),
    into the snapshot ``directory/name``, written atomically, with ``acc``'s categories,
    pages, tokens and Gram and the generator ``markov``.

    Returns the snapshot's path, the merge's :class:`~accum.runs.Growth` (source 0 the base) and
    ``{"rows", "pairs", "occurrences"}``.
    """
    settings = acc.settings
    sources = [_source(s) for s in ([base] if base is not None else [CountRun.empty()]) + list(runs)]
    n_cats = acc.n_categories
    growth = Growth.for_sources(len(sources), n_cats, settings.max_order, acc.n_documents + 1)
    occurrences = np.zeros((n_cats, settings.max_order), np.int64)
    final = Path(directory) / name
    tmp = final.with_name(final.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    meta = {"format": FORMAT, "shards": N_SHARDS, "settings": settings.to_dict(), "categories": list(acc.categories),
            "doc_counts": acc.doc_counts.tolist(), "token_counts": acc.token_counts.tolist()}
    n_rows = n_pairs = 0
    try:
        tmp.mkdir(parents=True)
        out = _SnapshotWriter(tmp, meta)
        for s in range(N_SHARDS):
            merged = merge_shard([src.shard(s) for src in sources], growth.marks, settings.prune_k, growth.hist,
                                 occurrences)
            out.write(merged, n_rows)
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
    return final, growth, {"rows": n_rows, "pairs": n_pairs, "occurrences": occurrences}


class _SnapshotWriter:
    """The classifier's row, count and lexicon tables of a snapshot, written a shard at a time."""

    def __init__(self, directory: Path, meta: dict):
        self.sinks, self.writers, self.schemas = [], {}, {}
        specs = {
            "row": [(f"row_info.{j}", pa.uint64()) for j in range(4)],
            "count": [("count_row", pa.int64()), ("count_category", pa.int64()), ("count_value", pa.int64()),
                      ("count_weight", pa.int64())],
            "lexicon": [("lexicon_keys", pa.uint64()), ("lexicon_text", pa.string())],
        }
        for table, fields in specs.items():
            schema = pa.schema(fields, metadata={"accum": json.dumps(meta)} if table == "row" else None)
            sink = pa.OSFile(str(directory / f"classifier-{table}.arrow"), "wb")
            self.sinks.append((sink, directory / f"classifier-{table}.arrow"))
            self.writers[table] = pa.ipc.new_file(sink, schema)
            self.schemas[table] = schema

    def write(self, merged: CountRun, row_offset: int) -> None:
        local = np.searchsorted(merged.row_fid, merged.fid)
        columns = {
            "row": [merged.row_fid, merged.row_prefix, merged.row_last, merged.row_order.astype(np.uint64)],
            "count": [local + row_offset, merged.cat, merged.count, merged.weight],
            "lexicon": [merged.lex_key, pa.array(merged.lex_text, pa.string())],
        }
        for table, arrays in columns.items():
            schema = self.schemas[table]
            self.writers[table].write_batch(pa.record_batch(
                [a if isinstance(a, pa.Array) else pa.array(a, f.type) for a, f in zip(arrays, schema)],
                schema=schema))

    def close(self) -> None:
        for writer in self.writers.values():
            writer.close()
        for sink, path in self.sinks:
            sink.close()
            fsync(path)

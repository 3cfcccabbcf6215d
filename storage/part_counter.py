"""Counting a Dask part on a worker within a memory budget, into the store's files.

A :class:`PartCounter` is what a budgeted :class:`~accum.storage.writer.StoreWriter`
hands to :func:`accum.distributed.ingest_parts`: pickled to the workers, it counts a
part with :func:`accum.partials.count_part_spilling`, writing the part's counts as runs
(:mod:`accum.storage.runs`) and its page vectors as segments
(:mod:`accum.storage.segments`) straight into the store's directories, which the
workers must share with the client (a local cluster, or a shared file system). Names
carry the run and the part, so no two writers collide; a run that stops before its
checkpoint leaves files the next writer removes, as it removes its own spills.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from accum.partials import ScreenedPart, SpilledPart, count_part_spilling

from .runs import RUN_DIR, write_run
from .segments import SEGMENT_DIR, write_vectors


@dataclass(frozen=True)
class PartCounter:
    """Counts parts of run ``run_id`` of the store at ``store`` (a directory), spilling
    counts past ``spill_bytes``; ``markov``: the generator's settings, or None."""

    store: str
    run_id: int
    spill_bytes: int
    batch_pages: int
    markov: dict | None

    def __call__(self, part: ScreenedPart, skip: set[int], base: dict, index: int) -> SpilledPart:
        """Count ``part`` (the ``index``-th of the run) but the pages ``skip``, on top of
        ``base`` (see :func:`~accum.partials.count_part_spilling`)."""
        root, name = Path(self.store), f"r{self.run_id:06d}-p{index:06d}"
        written = {"runs": 0, "segments": 0}

        def spill_counts(run) -> str:
            path = root / RUN_DIR / f"{name}-{written['runs']:04d}"
            path.parent.mkdir(exist_ok=True)
            write_run(run, path)
            written["runs"] += 1
            return str(path)

        def spill_vectors(vectors, hashes) -> tuple[str, int, int]:
            path = root / SEGMENT_DIR / f"v-{name}-{written['segments']:04d}.arrow"
            path.parent.mkdir(exist_ok=True)
            written["segments"] += 1
            return str(path), vectors.n_pages, write_vectors(vectors, hashes, path)

        return count_part_spilling(part, skip, base, self.spill_bytes, spill_counts, spill_vectors, self.markov,
                                   self.batch_pages)

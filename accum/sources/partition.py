"""Split the record stream of several sources into parts that can be read apart.

Reading the parts one after the other yields exactly the records of
:func:`accum.sources.iter_sources` over the same sources, in the same order; so the
parts can be read (and counted) on different machines and the results put back in
order (see :mod:`accum.distributed`). A directory splits between its files into parts
of about ``part_bytes``; any other source is one part.

Examples
--------
>>> parts = plan_parts(["webkb"], label="dir", part_bytes=8 << 20)  # doctest: +SKIP
>>> records = [r for part in parts for r in part.read()]  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from accum.pages import Record, Skipped
from accum.sources.directory import DEFAULT_EXCLUDE, read_directory_file, walk_files
from accum.sources.labels import LabelSpec, parse_label_spec
from accum.pages import DEFAULT_MAX_PAGE_BYTES


@dataclass(frozen=True)
class SourcePart:
    """A slice of the record stream: some files of a directory, or one whole source.

    Attributes
    ----------
    source : str
        The directory or file it comes from.
    files : tuple
        Directory parts: the files in walk order, each ``(path, dirs)`` (see
        :func:`accum.sources.directory.walk_files`) or a ``Skipped`` record; empty for a
        whole-source part.
    n_bytes : int
        Size on disk (for planning and progress).
    """

    source: str
    files: tuple
    n_bytes: int
    fmt: str
    spec: LabelSpec
    options: tuple

    @property
    def n_inputs(self) -> int:
        """Files of a directory part, or 1 for a whole source (the unit of progress)."""
        return len(self.files) or 1

    def read(self) -> Iterator[Record]:
        """The part's records, in stream order."""
        from accum.sources import open_source

        options = dict(self.options)
        if not self.files:
            yield from open_source(self.source, self.fmt, self.spec, **options)
            return
        max_page_bytes = options.get("max_page_bytes", DEFAULT_MAX_PAGE_BYTES)
        fields = options.get("text_field", "text"), options.get("url_field", "url")
        for item in self.files:
            if isinstance(item, Skipped):
                yield item
            else:
                yield from read_directory_file(item[0], item[1], self.spec, max_page_bytes, *fields)


def plan_parts(paths: Sequence[str], fmt: str = "auto", label: str | LabelSpec | None = None,
               part_bytes: int = 64 << 20, min_parts: int = 1, **options) -> list[SourcePart]:
    """Parts of about ``part_bytes`` that together read like ``iter_sources(paths, ...)``.

    Parameters
    ----------
    paths : sequence of str
        The sources.
    fmt, label, **options
        As for :func:`accum.sources.open_source` (validated here, before any reading).
    part_bytes : int
        Target size of a directory part; a part holds at least one file.
    min_parts : int
        Make directory parts smaller than ``part_bytes`` where that gives this many parts
        in all (so that each worker of a cluster has one).

    Returns
    -------
    list of SourcePart
    """
    from accum.sources import open_source

    if isinstance(part_bytes, bool) or not isinstance(part_bytes, int) or part_bytes < 1:
        raise ValueError(f"part_bytes must be a positive integer, got {part_bytes!r}")
    spec = parse_label_spec(label)
    frozen = tuple(sorted(options.items()))
    listed = []  # (path, files of a directory or None, bytes)
    for path in paths:
        path = os.fspath(path)
        open_source(path, fmt, spec, **options)  # raises on a bad source or option, reads nothing
        if os.path.isdir(path):
            root = os.path.abspath(path)
            files = list(walk_files(root, tuple(options.get("exclude", DEFAULT_EXCLUDE)),
                                    options.get("follow_links", False)))
            sizes = [0 if isinstance(f, Skipped) else _size(f[0]) for f in files]
            listed.append((root, files, sizes))
        else:
            listed.append((path, None, [os.path.getsize(path)]))
    total = sum(sum(sizes) for _, _, sizes in listed)
    part_bytes = max(1, min(part_bytes, -(-total // max(1, min_parts))))
    parts = []
    for path, files, sizes in listed:
        if files is None:
            parts.append(SourcePart(path, (), sizes[0], fmt, spec, frozen))
            continue
        start, size = 0, 0
        for i, n in enumerate(sizes):
            size += n
            if size >= part_bytes or i == len(sizes) - 1:
                parts.append(SourcePart(path, tuple(files[start : i + 1]), size, "dir", spec, frozen))
                start, size = i + 1, 0
    return parts


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0  # the read reports it

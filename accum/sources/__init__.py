"""Readers of crawled pages: directories, WARC/WET/WAT, JSON Lines, Parquet, text files.

Every reader streams: it yields one :class:`~accum.pages.Page` or
:class:`~accum.pages.Skipped` at a time and never holds the corpus in memory. Bad records
become ``Skipped`` items; only usage problems (a missing path, an unknown format, a label
spec that does not fit the format, a missing Parquet column) raise ``ValueError``, and
they do so when the source is opened, before anything is read.

Examples
--------
>>> from accum.sources import open_source
>>> for item in open_source("webkb", label="dir"):  # doctest: +SKIP
...     print(item.url, item.label)
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence

from accum.pages import DEFAULT_MAX_PAGE_BYTES, Page, Skipped
from accum.sources.directory import DEFAULT_EXCLUDE, read_directory
from accum.sources.formats import CONTAINER_FORMATS, SNIFF_BYTES, read_container, sniff_format
from accum.sources.labels import LabelSpec, parse_label_spec
from accum.sources.parquet import check_parquet_columns
from accum.sources.text import read_lines_file, read_text_file

__all__ = [
    "DEFAULT_EXCLUDE",
    "DEFAULT_MAX_PAGE_BYTES",
    "FORMATS",
    "LabelSpec",
    "Page",
    "Skipped",
    "detect_format",
    "iter_sources",
    "open_source",
    "parse_label_spec",
]

#: Accepted ``fmt`` values.
FORMATS = ("auto", "dir", "warc", "jsonl", "parquet", "text", "lines")


def detect_format(path: str | os.PathLike) -> str:
    """The reader format for ``path``.

    A directory is ``"dir"``. A file starting with ``WARC/1.`` (plain or gzipped) is
    ``"warc"`` and one starting with ``PAR1`` is ``"parquet"``, whatever their names.
    Otherwise the name decides: ``.warc``, ``.wet``, ``.wat`` (each optionally ``.gz``)
    -> ``"warc"``; ``.jsonl``, ``.ndjson`` (optionally ``.gz``) -> ``"jsonl"``;
    ``.parquet`` -> ``"parquet"``; anything else -> ``"text"``. Files inside a directory
    are sniffed the same way (:func:`accum.sources.formats.sniff_format`).
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        return "dir"
    try:
        with open(path, "rb") as fh:
            head = fh.read(SNIFF_BYTES)
    except OSError:
        head = b""  # the reader reports it
    return sniff_format(os.path.basename(path), head)


def open_source(
    path: str | os.PathLike,
    fmt: str = "auto",
    label: str | LabelSpec | None = None,
    *,
    max_page_bytes: int = DEFAULT_MAX_PAGE_BYTES,
    text_field: str = "text",
    url_field: str = "url",
    exclude: Sequence[str] = DEFAULT_EXCLUDE,
    follow_links: bool = False,
) -> Iterator[Page | Skipped]:
    """Open a corpus file or directory and stream its pages.

    Parameters
    ----------
    path : str or path-like
        A directory, or a WARC/WET/WAT, JSONL, Parquet or text/HTML file.
    fmt : str
        One of :data:`FORMATS`; ``"auto"`` uses :func:`detect_format`.
    label : str, LabelSpec or None
        Label spec (see :mod:`accum.sources.labels`): ``dir``/``dir:N`` for directories,
        ``field:NAME`` for JSONL and Parquet, ``rules:FILE`` for any, ``none``/None.
    max_page_bytes : int
        Pages over this raw size are skipped as "too-large" (5 MiB by default).
    text_field, url_field : str
        JSONL/Parquet field names of the text and of the (optional) URL (also for such
        files inside a directory).
    exclude : sequence of str
        Directories only: file and directory name globs to leave out (by default
        ``MANIFEST.tsv``, ``README*`` and hidden names).
    follow_links : bool
        Directories only: also read files that symbolic links inside the directory lead
        to outside it. By default such files are skipped as "outside-root" (a crawl
        unpacked from elsewhere may link to any file the user can read). Links to
        directories are never followed.

    Returns
    -------
    iterator of Page or Skipped
        Every page's meta has ``source``, ``content_type``, ``charset`` and ``bytes``.

    Raises
    ------
    ValueError
        Right away, for a path that does not exist, an unknown ``fmt``, a format that
        does not fit the path, a bad or incompatible label spec, bad options, or a
        Parquet file without the text or label column.
    """
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    path = os.fspath(path)
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)} ('auto' detects it)")
    if not os.path.exists(path):
        raise ValueError(f"no such file or directory: {path!r}; give an existing corpus file or directory")
    spec = parse_label_spec(label)
    is_dir = os.path.isdir(path)
    if not is_dir and not os.path.isfile(path):
        raise ValueError(f"{path!r} is neither a regular file nor a directory")
    if fmt == "auto":
        fmt = detect_format(path)
    elif is_dir and fmt != "dir":
        raise ValueError(
            f"{path!r} is a directory but fmt={fmt!r} reads one file; use fmt='dir' (or 'auto'), "
            "or pass its files to iter_sources()"
        )
    elif not is_dir and fmt == "dir":
        raise ValueError(f"fmt='dir' needs a directory, but {path!r} is a file; use fmt='auto'")
    spec.check_format(fmt)
    if isinstance(max_page_bytes, bool) or not isinstance(max_page_bytes, int) or max_page_bytes < 1:
        raise ValueError(f"max_page_bytes must be a positive integer, got {max_page_bytes!r}")
    for name, value in (("text_field", text_field), ("url_field", url_field)):
        if not isinstance(value, str) or not value:
            raise ValueError(f"{name} must be a non-empty field name, got {value!r}")
    if isinstance(exclude, str):
        exclude = (exclude,)
    if not isinstance(follow_links, bool):
        raise ValueError(f"follow_links must be True or False, got {follow_links!r}")

    if fmt == "dir":
        return read_directory(path, spec, max_page_bytes, tuple(exclude), follow_links, text_field, url_field)
    if fmt == "parquet":
        check_parquet_columns(path, text_field, spec)
    if fmt in CONTAINER_FORMATS:
        return read_container(path, fmt, spec, max_page_bytes, text_field, url_field)
    if fmt == "lines":
        return read_lines_file(path, spec, max_page_bytes)
    return read_text_file(path, spec, max_page_bytes)


def iter_sources(
    paths: Iterable[str | os.PathLike] | str | os.PathLike,
    fmt: str = "auto",
    label: str | LabelSpec | None = None,
    **options,
) -> Iterator[Page | Skipped]:
    """Stream the pages of several sources, one after the other.

    Parameters
    ----------
    paths : iterable of str or path-like
        The sources (a single path is accepted too).
    fmt, label, **options
        As for :func:`open_source`, applied to every path.

    Returns
    -------
    iterator of Page or Skipped

    Raises
    ------
    ValueError
        Right away, when any of the sources cannot be opened (see :func:`open_source`).
    """
    if isinstance(paths, (str, bytes, os.PathLike)):
        paths = [paths]
    spec = parse_label_spec(label)  # read a rules file once
    readers = [open_source(path, fmt, spec, **options) for path in paths]
    return _chain(readers)


def _chain(readers: list[Iterator[Page | Skipped]]) -> Iterator[Page | Skipped]:
    for reader in readers:
        yield from reader

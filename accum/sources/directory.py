"""Directory trees: every regular file is one page (see :mod:`accum.sources.files`), or,
for a WARC, JSON Lines or Parquet file, one page per record (see
:mod:`accum.sources.formats`)."""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Iterator, Sequence

from accum.pages import Page, Skipped
from accum.sources.files import file_page, read_file_start
from accum.sources.formats import read_container, sniff_format
from accum.sources.labels import LabelSpec, Rule
from accum.sources.parquet import check_parquet_columns
from accum.sources.records import Skip, display_path

#: File and directory names skipped by default (glob patterns, case-sensitive).
DEFAULT_EXCLUDE = ("MANIFEST.tsv", "README*", ".*")


def walk_files(
    root: str, exclude: Sequence[str] = DEFAULT_EXCLUDE, follow_links: bool = False
) -> Iterator[tuple[str, tuple[str, ...]] | Skipped]:
    """Walk ``root`` depth first: each directory's files in name order, then its
    subdirectories in name order.

    Parameters
    ----------
    root : str
        The directory.
    exclude : sequence of str
        Glob patterns; files and directories whose name matches one are skipped.
    follow_links : bool
        Also read files that symbolic links under ``root`` point to outside it.

    Yields
    ------
    (path, dirs) or Skipped
        Each regular file's path (under ``root``) and its directory names relative to
        ``root``; a ``Skipped`` "unreadable" for a directory that cannot be listed, and
        "outside-root" for a link to a file outside ``root`` (unless ``follow_links``).
        Symbolic links to directories are never followed (no cycles); links to files are.
    """
    real_root = None if follow_links else os.path.realpath(root)
    stack = [(root, ())]
    while stack:
        directory, dirs = stack.pop()
        try:
            with os.scandir(directory) as scan:
                entries = sorted(scan, key=lambda entry: entry.name)
        except OSError as exc:
            yield Skipped(
                source=display_path(directory),
                reason="unreadable",
                detail=f"cannot list directory: {exc.strerror or exc}",
            )
            continue
        subdirs = []
        for entry in entries:
            if any(fnmatch.fnmatchcase(entry.name, pattern) for pattern in exclude):
                continue
            try:
                if entry.is_dir(follow_symlinks=False):
                    subdirs.append((entry.path, (*dirs, entry.name)))
                    continue
                is_file = entry.is_file()
                is_link = entry.is_symlink()
            except OSError:
                is_file, is_link = True, False  # let the read report the error
            if not is_file:
                continue
            if is_link and real_root is not None:
                outside = _outside(real_root, entry.path)
                if outside is not None:
                    yield outside
                    continue
            yield entry.path, dirs
        stack.extend(reversed(subdirs))


def _outside(real_root: str, path: str) -> Skipped | None:
    """The "outside-root" skip of a link ``path`` whose target is not under ``real_root``.

    A crawl or an archive unpacked by someone else may hold links to any file the user
    can read (``/etc/passwd``, keys); only an explicit ``follow_links`` reads those.
    """
    target = os.path.realpath(path)
    if target == real_root or target.startswith(real_root.rstrip(os.sep) + os.sep):
        return None
    return Skipped(
        source=display_path(path),
        reason="outside-root",
        detail=f"a symbolic link to {display_path(target)}, outside {display_path(real_root)}; "
        "follow_links reads files that links lead to",
    )


def read_directory(
    root: str,
    label_spec: LabelSpec,
    max_page_bytes: int,
    exclude: Sequence[str] = DEFAULT_EXCLUDE,
    follow_links: bool = False,
    text_field: str = "text",
    url_field: str = "url",
) -> Iterator[Page | Skipped]:
    """Read every file under ``root``, streaming, in sorted order: a page per file, or
    per record of a container file (see :func:`read_directory_file`).

    Parameters
    ----------
    root : str
        The directory (made absolute).
    label_spec : LabelSpec
        ``dir``/``dir:N`` (N-th directory under ``root``), ``rules:FILE`` or none.
    max_page_bytes : int
        Files larger than this are skipped as "too-large" without being read (container
        files are read whatever their size; the cap applies to each record).
    exclude : sequence of str
        File/directory name globs to leave out.
    follow_links : bool
        Read files that symbolic links lead to outside ``root`` (else "outside-root").
    text_field, url_field : str
        Field names of JSON Lines and Parquet files in the tree.

    Yields
    ------
    Page or Skipped
    """
    root = os.path.abspath(root)
    for item in walk_files(root, exclude, follow_links):
        if isinstance(item, Skipped):
            yield item
            continue
        path, dirs = item
        yield from read_directory_file(path, dirs, label_spec, max_page_bytes, text_field, url_field)


def read_directory_file(
    path: str,
    dirs: tuple[str, ...],
    label_spec: LabelSpec,
    max_page_bytes: int,
    text_field: str = "text",
    url_field: str = "url",
) -> Iterator[Page | Skipped]:
    """The records of one file of a directory tree.

    The file is sniffed from the bytes read for its page anyway (or from its first bytes
    when it is over the cap) and from its name, as a source given on its own would be
    (:func:`accum.sources.formats.sniff_format`): a WARC, JSON Lines or Parquet file
    yields one page per record, any other file one page.

    Parameters
    ----------
    path : str
        The file (absolute path).
    dirs : tuple of str
        Its directories relative to the walked root.
    label_spec : LabelSpec
        ``dir``/``dir:N``: every record of the file gets the file's directory label;
        ``rules:FILE``: each record's URL is matched; none.
    max_page_bytes : int
        Cap on a page (a whole file, or a record of a container file).
    text_field, url_field : str
        Field names of a JSON Lines or Parquet file.

    Yields
    ------
    Page or Skipped
    """
    try:
        data, size = read_file_start(path, max_page_bytes)
    except Skip as skip:
        yield skip.to_skipped(display_path(path))
        return
    fmt = sniff_format(os.path.basename(path), data)
    if fmt == "text":
        yield file_page(path, data, size, label_spec, max_page_bytes, dirs)
        return
    if label_spec.kind == "dir":
        label_spec = _every_record(label_spec.label_for_dirs(dirs))
    if fmt == "parquet":
        try:
            check_parquet_columns(path, text_field, label_spec)
        except ValueError as exc:  # a usage error for a file given alone; here one bad file of many
            yield Skipped(display_path(path), "malformed", str(exc))
            return
    yield from read_container(path, fmt, label_spec, max_page_bytes, text_field, url_field)


_ANY_URL = re.compile(r"(?s).*")


def _every_record(label: str | None) -> LabelSpec:
    """A spec that gives every record ``label``: a directory label passed to the reader of
    a container file, which applies (and checks) it as it does any label of a rule."""
    if label is None:
        return LabelSpec()
    return LabelSpec(kind="rules", rules=(Rule(pattern="*", label=label, regex=_ANY_URL, is_glob=True),))

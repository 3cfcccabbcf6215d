"""Directory trees: every regular file is one page (see :mod:`accum.sources.files`)."""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterator, Sequence

from accum.pages import Page, Skipped
from accum.sources.files import read_file_record
from accum.sources.labels import LabelSpec
from accum.sources.records import display_path

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
        "pass --follow-links (follow_links=True) to read files that links lead to",
    )


def read_directory(
    root: str,
    label_spec: LabelSpec,
    max_page_bytes: int,
    exclude: Sequence[str] = DEFAULT_EXCLUDE,
    follow_links: bool = False,
) -> Iterator[Page | Skipped]:
    """Read every file under ``root`` as one page, streaming, in sorted order.

    Parameters
    ----------
    root : str
        The directory (made absolute).
    label_spec : LabelSpec
        ``dir``/``dir:N`` (N-th directory under ``root``), ``rules:FILE`` or none.
    max_page_bytes : int
        Files larger than this are skipped as "too-large" without being read.
    exclude : sequence of str
        File/directory name globs to leave out.
    follow_links : bool
        Read files that symbolic links lead to outside ``root`` (else "outside-root").

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
        yield read_file_record(path, label_spec, max_page_bytes, dirs)

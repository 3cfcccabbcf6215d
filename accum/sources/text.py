"""A single file read as one page (plain text, HTML, or a saved HTTP response/message)."""

from __future__ import annotations

import os
from collections.abc import Iterator

from accum.pages import Page, Skipped
from accum.sources.files import read_file_record
from accum.sources.labels import LabelSpec


def read_text_file(path: str, label_spec: LabelSpec, max_page_bytes: int) -> Iterator[Page | Skipped]:
    """Read one file as one page, sniffed like a file of a directory.

    Parameters
    ----------
    path : str
        The file.
    label_spec : LabelSpec
        ``rules:FILE`` (by URL) or none.
    max_page_bytes : int
        Size cap ("too-large" above it).

    Yields
    ------
    Page or Skipped
        Exactly one item.
    """
    yield read_file_record(os.path.abspath(path), label_spec, max_page_bytes)

"""Plain files: one file as one page (text, HTML, or a saved HTTP response/message), or
one page per line (format "lines": a verse per line, a sentence per line)."""

from __future__ import annotations

import os
from collections.abc import Iterator

from accum.pages import Page, Skipped
from accum.sources.charsets import fallback_decode
from accum.sources.files import read_file_record
from accum.sources.labels import LabelSpec
from accum.sources.lines import LineCount, iter_lines
from accum.sources.records import Skip, file_url, make_page


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


def read_lines_file(path: str, label_spec: LabelSpec, max_page_bytes: int) -> Iterator[Page | Skipped]:
    """Read each non-blank line of a file as one page (streaming), decoded as UTF-8, else
    windows-1252; the URL is the file's with ``#L<line number>``.

    Yields
    ------
    Page or Skipped
        One item per non-blank line; lines over ``max_page_bytes`` are "too-large". Blank
        lines (whitespace alone) are passed over in bulk and reported once, as one
        "empty" record at the end that says how many there were.
    """
    path = os.path.abspath(path)
    base = file_url(path)
    count = LineCount()
    try:
        with open(path, "rb") as fh:
            for number, raw, size in iter_lines(fh, max_page_bytes, count):
                source = f"{path}#L{number}"
                if raw is None:
                    yield Skip("too-large", f"line of {size} bytes > cap of {max_page_bytes}").to_skipped(source, size)
                    continue
                text, charset = fallback_decode(raw)
                text = text.strip()
                if not text:
                    count.mark_blank(number, size)
                    continue
                url = f"{base}#L{number}"
                yield make_page(url, label_spec.label_for_url(url), text, source=source,
                                content_type="text/plain", charset=charset, n_bytes=size)
    except OSError as exc:
        yield Skip("unreadable", f"{type(exc).__name__}: {exc.strerror or exc}").to_skipped(path)
    if count.blank:
        yield Skipped(f"{path}#L{count.first_blank}", "empty", count.blank_detail(), count.blank_bytes)

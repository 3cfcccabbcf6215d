"""JSON Lines files (``.jsonl``, ``.ndjson``, optionally gzipped): one object per line."""

from __future__ import annotations

import gzip
import json
import os
import zlib
from collections.abc import Iterator

from accum.pages import Page, Skipped
from accum.sources.gzipped import GZIP_MAGIC, GzipMembers
from accum.sources.labels import LabelSpec
from accum.sources.lines import LineCount, iter_lines
from accum.sources.records import Skip, display_path
from accum.sources.structured import record_to_page


def read_jsonl(
    path: str,
    label_spec: LabelSpec,
    max_page_bytes: int,
    text_field: str = "text",
    url_field: str = "url",
) -> Iterator[Page | Skipped]:
    """Read a JSON Lines file, one page per object, streaming.

    Parameters
    ----------
    path : str
        The file; gzip is detected from its first bytes (members are read one by one, so
        a cut member loses no line before it).
    label_spec : LabelSpec
        ``field:NAME``, ``rules:FILE`` (by URL) or none.
    max_page_bytes : int
        Lines longer than this are skipped as "too-large" (without being kept).
    text_field, url_field : str
        Field names of the text (required, a string) and of the URL (optional; default
        ``file://path#LINE``).

    Yields
    ------
    Page or Skipped
        A line that is not a JSON object, or lacks a string text field, is skipped as
        "malformed"; blank text as "empty". Blank lines are passed over in bulk and
        reported once, as one "empty" record at the end of the file that says how many
        there were. Page meta adds ``line``.
    """
    path = os.path.abspath(path)
    source = display_path(path)
    count = LineCount()
    problem = None
    try:
        with open(path, "rb") as raw:
            magic = raw.read(2)
            raw.seek(0)
            if not magic:
                yield Skipped(source=source, reason="empty", detail="empty file")
                return
            stream = GzipMembers(raw) if magic == GZIP_MAGIC else raw
            for number, line, size in iter_lines(stream, max_page_bytes, count):
                where = f"{source}#{number}"
                if line is None:
                    yield Skipped(where, "too-large", f"line {number}: over {max_page_bytes} bytes", size)
                    continue
                try:
                    yield _line_to_page(
                        line, number, path, label_spec, text_field, url_field, max_page_bytes, size
                    )
                except Skip as skip:
                    yield skip.to_skipped(where, size)
    except (EOFError, zlib.error, OSError) as exc:  # a cut-off or corrupt gzip, a read error
        if isinstance(exc, (EOFError, zlib.error)):
            reason = "truncated"
        elif isinstance(exc, gzip.BadGzipFile):
            reason = "malformed"
        else:
            reason = "unreadable"
        where = count.lines + 1
        problem = Skipped(f"{source}#{where}", reason, f"line {where}: {type(exc).__name__}: {exc}")
    if count.blank:
        yield Skipped(f"{source}#{count.first_blank}", "empty", count.blank_detail(), count.blank_bytes)
    if problem is not None:
        yield problem


def _line_to_page(line, number, path, label_spec, text_field, url_field, max_page_bytes, size) -> Page:
    try:
        record = json.loads(line)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError
        message = str(exc)
        if len(message) > 200:
            message = message[:200] + "..."
        raise Skip("malformed", f"line {number}: invalid JSON: {message}") from None
    if not isinstance(record, dict):
        raise Skip("malformed", f"line {number}: expected a JSON object, got {type(record).__name__}")
    return record_to_page(
        record,
        number=number,
        path=path,
        label_spec=label_spec,
        text_field=text_field,
        url_field=url_field,
        max_page_bytes=max_page_bytes,
        position="line",
        n_bytes=size,
    )

"""WARC files (``.warc``, ``.warc.gz``, WET and WAT) read with warcio, streaming.

Records become pages as follows:

``response``
    The HTTP payload (chunked transfer encoding and gzip/deflate content encoding
    removed by warcio), read by its HTTP ``Content-Type`` (charset from the header, then
    the HTML ``<meta>``). A non-2xx status is skipped as "empty".
``resource``
    The record block, read by the WARC ``Content-Type`` (HTML or text; others are
    "not-text").
``conversion`` (WET)
    UTF-8 plain text.
``warcinfo``, ``request``, ``metadata`` (all of WAT), ``revisit``, ``continuation``
    Nothing is yielded.

A truncated file (cut-off gzip or record) or a record the parser rejects yields one
``Skipped`` ("truncated" or "malformed") and ends the file; every record before it is
yielded (gzip members are decompressed one by one, see :mod:`accum.sources.gzipped`).
"""

from __future__ import annotations

import gzip
import os
import zlib
from collections.abc import Iterator

from warcio.archiveiterator import ArchiveIterator
from warcio.exceptions import ArchiveLoadFailed

from accum.pages import Page, Skipped
from accum.sources.extract import body_to_text
from accum.sources.gzipped import GZIP_MAGIC, GzipMembers
from accum.sources.headers import parse_header_block
from accum.sources.labels import LabelSpec
from accum.sources.records import Skip, display_path, file_url, make_page

#: Record types that never hold a page.
IGNORED_TYPES = frozenset(
    {"warcinfo", "request", "metadata", "revisit", "continuation", "arc_header"}
)
_CHUNK = 1 << 16


class _ErrorRecordingReader:
    """File wrapper noting the first read error and whether the end was reached.

    warcio ends quietly on some read errors and on input that stops inside a record
    header; the reader uses these notes to report such files as truncated.
    """

    def __init__(self, fh):
        self._fh = fh
        self.error: BaseException | None = None
        self.bytes_read = 0
        self.at_end = False

    def _call(self, method, *args):
        try:
            data = method(*args)
        except (OSError, EOFError, zlib.error) as exc:
            if self.error is None:
                self.error = exc
            raise
        if data:
            self.bytes_read += len(data)
        else:
            self.at_end = True
        return data

    def read(self, *args):
        return self._call(self._fh.read, *args)

    def readline(self, *args):
        return self._call(self._fh.readline, *args)

    def tell(self):
        return self._fh.tell()

    def close(self):
        self._fh.close()


class _CutOff(Exception):
    """The input ends inside a record header."""


class _CheckedArchiveIterator(ArchiveIterator):
    """An ArchiveIterator that reports input ending inside a record header.

    warcio treats any EOFError while parsing a record as the end of the archive; here it
    only is when nothing of a next record was read.
    """

    _parsed_any = False

    def _next_record(self, next_line):
        try:
            record = super()._next_record(next_line)
        except EOFError:
            if next_line or (not self._parsed_any and getattr(self.fh, "bytes_read", 1) > 0):
                raise _CutOff("input ends inside a record header") from None
            raise
        self._parsed_any = True
        return record


def _stream_problem(exc: BaseException, number: int, at_end: bool = False) -> Skip:
    """The Skip for an error raised while reading record ``number``.

    ``at_end`` tells that the input was read to its end: a parse error there is
    (most likely) a cut-off record.
    """
    text = f"{type(exc).__name__}: {exc}".strip()
    if len(text) > 300:
        text = text[:300] + "..."
    lowered = text.lower()
    cut_short = "ended before" in lowered or "unexpected end" in lowered
    if isinstance(exc, (EOFError, zlib.error, _CutOff)) or cut_short:
        return Skip("truncated", f"record {number}: {text}")
    if at_end:
        first_line = str(exc).partition("first line: ")[2]
        # "Invalid WARC record, first line: WA" at the end: a cut-off version line
        cut_version_line = bool(first_line) and "WARC/1.0".startswith(first_line)
        if not isinstance(exc, ArchiveLoadFailed) or cut_version_line:
            return Skip("truncated", f"record {number}: input ends early ({text})")
    if isinstance(exc, OSError) and not isinstance(exc, gzip.BadGzipFile):
        return Skip("unreadable", f"record {number}: {text}")
    return Skip("malformed", f"record {number}: {text}")


def _read_up_to(stream, size: int) -> bytes:
    """Read until ``size`` bytes or the end of ``stream``."""
    parts, total = [], 0
    while total < size:
        chunk = stream.read(min(_CHUNK, size - total))
        if not chunk:
            break
        parts.append(chunk)
        total += len(chunk)
    return b"".join(parts)


def _finish_record(record, number: int, at_end: bool) -> None:
    """Read the rest of the record's block; raise Skip "truncated" if it is cut short."""
    if record.length is None:
        reason = "truncated" if at_end else "malformed"
        raise Skip(reason, f"record {number}: no Content-Length in the record header")
    raw = record.raw_stream
    while raw.read(_CHUNK):
        pass
    missing = getattr(raw, "limit", 0)
    if missing > 0:
        raise Skip("truncated", f"record {number}: input ends {missing} bytes before the record does")


def _record_length(record) -> int:
    try:
        return int(record.rec_headers.get_header("Content-Length") or 0)
    except ValueError:
        return 0


def read_warc(path: str, label_spec: LabelSpec, max_page_bytes: int) -> Iterator[Page | Skipped]:
    """Read the pages of a WARC/WET/WAT file, plain or gzipped (see the module docstring).

    Parameters
    ----------
    path : str
        The file; gzip is detected from its first bytes, not its name.
    label_spec : LabelSpec
        ``rules:FILE`` (matched against WARC-Target-URI) or none.
    max_page_bytes : int
        Payloads over this size are skipped as "too-large" (and not kept in memory).

    Yields
    ------
    Page or Skipped
        Page URLs are the records' ``WARC-Target-URI``; meta adds ``record`` (1-based
        position in the file), ``warc_type``, ``warc_record_id`` and ``http_status``.
    """
    path = os.path.abspath(path)
    source = display_path(path)
    try:
        raw_fh = open(path, "rb")
    except OSError as exc:
        yield Skipped(source, "unreadable", f"{type(exc).__name__}: {exc.strerror or exc}")
        return
    with raw_fh:
        try:
            magic = raw_fh.read(2)
            raw_fh.seek(0)
        except OSError as exc:
            yield Skipped(source, "unreadable", f"{type(exc).__name__}: {exc.strerror or exc}")
            return
        if not magic:
            yield Skipped(source=source, reason="empty", detail="empty file")
            return
        # per-record members and whole-file gzip alike; a cut-off member is an EOFError
        # raised after every byte before it
        inner = GzipMembers(raw_fh) if magic == GZIP_MAGIC else raw_fh
        reader = _ErrorRecordingReader(inner)
        yield from _read_records(reader, source, label_spec, max_page_bytes)


def _read_records(reader, source, label_spec, max_page_bytes):
    archive = _CheckedArchiveIterator(reader)
    number = 0
    while True:
        try:
            record = next(archive)
        except StopIteration:
            if reader.error is not None:  # warcio ended quietly on a read error
                yield _stream_problem(reader.error, number + 1).to_skipped(f"{source}#{number + 1}")
            return
        except Exception as exc:  # any parser failure ends this file, not the run
            # a read error (a cut gzip member) is the cause of what the parser then saw
            cause = reader.error or exc
            yield _stream_problem(cause, number + 1, reader.at_end).to_skipped(f"{source}#{number + 1}")
            return
        number += 1
        where = f"{source}#{number}"
        n_bytes = _record_length(record)
        payload = None
        try:
            if record.rec_type not in IGNORED_TYPES:
                payload = _read_up_to(record.content_stream(), max_page_bytes + 1)
            _finish_record(record, number, reader.at_end)
        except Skip as skip:
            yield skip.to_skipped(where, n_bytes)
            return
        except Exception as exc:
            yield _stream_problem(exc, number, reader.at_end).to_skipped(where, n_bytes)
            return
        if payload is None:
            continue
        try:
            yield _record_to_page(record, payload, number, source, label_spec, max_page_bytes, n_bytes)
        except Skip as skip:
            yield skip.to_skipped(where, n_bytes)


def _record_to_page(record, payload, number, source, label_spec, max_page_bytes, n_bytes) -> Page:
    """Turn one record's payload into a page, or raise Skip."""
    if len(payload) > max_page_bytes:
        raise Skip("too-large", f"payload over the cap of {max_page_bytes} bytes")
    headers = record.rec_headers
    url = headers.get_header("WARC-Target-URI") or f"{file_url(source)}#{number}"
    extra = {
        "record": number,
        "warc_type": record.rec_type,
        "warc_record_id": headers.get_header("WARC-Record-ID"),
    }
    if record.rec_type == "conversion":
        text, mime, charset, found = body_to_text(payload, "text/plain; charset=utf-8", kind="text")
    elif record.http_headers is not None and record.rec_type == "response":
        status = record.http_headers.get_statuscode()
        try:
            extra["http_status"] = int(status)
        except (TypeError, ValueError):
            raise Skip("malformed", f"bad HTTP status {status!r}") from None
        if not 200 <= extra["http_status"] < 300:
            raise Skip("empty", f"HTTP status {status}")
        text, mime, charset, found = body_to_text(payload, record.http_headers.get_header("Content-Type"))
    elif (headers.get_header("Content-Type") or "").lower().startswith("application/http"):
        # An HTTP message warcio left unparsed (its URI is not http:/https:).
        block = parse_header_block(payload)
        if block is None or block.status is None:
            raise Skip("malformed", "application/http record without an HTTP status line")
        extra["http_status"] = block.status
        if not 200 <= block.status < 300:
            raise Skip("empty", f"HTTP status {block.status}")
        text, mime, charset, found = body_to_text(payload[block.body_offset :], block.get("Content-Type"))
    else:
        text, mime, charset, found = body_to_text(payload, headers.get_header("Content-Type"))
    return make_page(
        url,
        label_spec.label_for_url(url),
        text,
        source=source,
        content_type=mime,
        charset=charset,
        n_bytes=n_bytes,
        **extra,
        **found,
    )

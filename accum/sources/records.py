"""Shared helpers for readers: the internal :class:`Skip` signal, page building, URLs.

Readers turn every per-record problem into a :class:`~accum.pages.Skipped` record. Inside
a reader, helpers signal such a problem by raising :class:`Skip`; the reader catches it
and yields the ``Skipped`` with its own idea of the record's position.
"""

from __future__ import annotations

import os
import re
import urllib.parse
from typing import Any

from accum.pages import MAX_LABEL_BYTES  # noqa: F401 (it lived here: keep old imports working)
from accum.pages import SKIP_REASONS, Page, Skipped, check_label

_SURROGATES = re.compile("[\ud800-\udfff]")
#: File names of the WebKB layout: the crawled URL with ``/`` written as ``^``.
_CARET_URL = re.compile(r"^(?:https?|ftp|file):\^\^")


class Skip(Exception):
    """Raised by helpers when a record cannot become a page.

    Parameters
    ----------
    reason : str
        One of :data:`accum.pages.SKIP_REASONS`.
    detail : str
        A human-readable explanation.
    """

    def __init__(self, reason: str, detail: str = ""):
        if reason not in SKIP_REASONS:
            raise ValueError(f"unknown skip reason {reason!r}; expected one of {SKIP_REASONS}")
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail

    def to_skipped(self, source: str, n_bytes: int = 0) -> Skipped:
        """The :class:`Skipped` record for this problem at ``source``."""
        return Skipped(source=source, reason=self.reason, detail=self.detail, n_bytes=n_bytes)


def safe_str(value: str) -> str:
    """Replace lone surrogates (undecodable file-name bytes, JSON ``"\\ud800"``) with U+FFFD.

    Such strings cannot be encoded to UTF-8, so they would break any store downstream.
    """
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATES.sub("\ufffd", value)
    return value


def display_path(path: str) -> str:
    """``path`` as valid Unicode text: undecodable bytes become ``\\xNN`` escapes."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return path


def file_url(path: str) -> str:
    """The ``file://`` URL of an absolute path.

    The path is kept as is (spaces and non-ASCII included); only bytes that are not valid
    UTF-8 in the file name are percent-encoded.
    """
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return "file://" + urllib.parse.quote(os.fsencode(path), safe="/")
    return "file://" + path


def url_for_file(path: str) -> str:
    """The URL of a file: the crawled URL for WebKB-style names, else its ``file://`` URL.

    A file name that starts with ``http:^^``, ``https:^^``, ``ftp:^^`` or ``file:^^`` is
    a crawled URL with ``/`` written as ``^``; it is decoded (``^`` -> ``/``).
    """
    name = os.path.basename(path)
    if _CARET_URL.match(name):
        return safe_str(name.replace("^", "/"))
    return file_url(path)


def clean_text(text: str) -> str:
    """Remove NUL characters and replace lone surrogates (neither can be stored)."""
    if "\x00" in text:
        text = text.replace("\x00", "")
    return safe_str(text)


def make_page(
    url: str,
    label: str | None,
    text: str,
    *,
    source: str,
    content_type: str,
    charset: str | None,
    n_bytes: int,
    **extra: Any,
) -> Page:
    """Build a :class:`Page` with the standard meta keys.

    Parameters
    ----------
    url, text
        The page's URL and text, each cleaned with :func:`clean_text` (no NUL characters,
        no lone surrogates: a catalog could not store them).
    label
        Its label, or None. Lone surrogates (undecodable bytes of a file name or a Parquet
        string) become U+FFFD, as in URLs; a blank label is no label; otherwise it must
        pass :func:`accum.pages.check_label`.
    source : str
        The file the page was read from.
    content_type : str
        The MIME type the text was extracted as (``text/html``, ``text/plain``, ...).
    charset : str or None
        The character encoding used to decode it.
    n_bytes : int
        Raw bytes consumed for the page.
    **extra
        Format-specific meta fields.

    Raises
    ------
    Skip
        ``"empty"`` when the text is blank, ``"malformed"`` for a label that
        :func:`accum.pages.check_label` refuses (with its reason).
    """
    text = clean_text(text)
    if not text.strip():
        raise Skip("empty", "no text after extraction")
    if label is not None:
        label = safe_str(label)
        if not label.strip():
            label = None  # a blank field or rule is no label: --default-label applies, or "no-label"
        else:
            try:
                check_label(label)
            except ValueError as exc:
                raise Skip("malformed", str(exc)) from None
    meta = {"source": source, "content_type": content_type, "charset": charset, "bytes": n_bytes}
    meta.update(extra)
    return Page(url=clean_text(url), label=label, text=text, meta=meta)

"""Header blocks at the start of a file (HTTP responses, mail and news messages).

A header block is a run of ``Name: value`` lines (continuation lines start with a space
or tab), optionally preceded by an ``HTTP/1.x NNN`` status line, ended by a blank line.
LF and CRLF line ends are both accepted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

#: Header names of mail and news messages (a message's headers are content).
MAIL_FIELDS = frozenset({"from", "subject", "newsgroups", "message-id", "path"})
#: Header names only HTTP responses have: they win over mail fields (some 1996 web
#: servers sent a Message-ID).
HTTP_ONLY_FIELDS = frozenset(
    {
        "server",
        "last-modified",
        "etag",
        "accept-ranges",
        "set-cookie",
        "www alert",
        "location",
        "cache-control",
        "connection",
        "transfer-encoding",
        "pragma",
    }
)
#: Header names HTTP responses share with other headers.
HTTP_FIELDS = frozenset(
    {"content-type", "content-length", "content-encoding", "date", "mime-version", "expires"}
)
#: Header blocks longer than this are not looked for.
MAX_HEADER_BYTES = 64 * 1024

_STATUS_LINE = re.compile(rb"^HTTP/\d(?:\.\d)?[ \t]+(\d{3})\b")
# A name of printable ASCII without ':' (WebKB has 'WWW Alert', and a damaged line
# ': text/html' without a name), then ':' and the value.
_FIELD_LINE = re.compile(rb"^((?:[!-9;-~][ !-9;-~]{0,63}?)?)[ \t]*:[ \t]*(.*)$")


@dataclass
class HeaderBlock:
    """A parsed header block.

    Attributes
    ----------
    status : int or None
        The HTTP status code when the block starts with a status line.
    fields : list of (str, str)
        ``(name, value)`` pairs in order (bytes decoded as latin-1); a continuation line
        before the first field (seen in 20 Newsgroups) is kept under the name ``""``.
    body_offset : int
        Where the body starts in the data.
    """

    status: int | None
    fields: list[tuple[str, str]] = field(default_factory=list)
    body_offset: int = 0

    def get(self, name: str) -> str | None:
        """The value of the first field called ``name`` (case-insensitive), or None."""
        name = name.lower()
        for key, value in self.fields:
            if key.lower() == name:
                return value
        return None

    def _names(self) -> set[str]:
        return {name.lower() for name, _ in self.fields}

    @property
    def is_http(self) -> bool:
        """Whether the block is an HTTP response header.

        True with a status line or an HTTP-only field (``Server``, ``Last-Modified``,
        ...), or with a generic field (``Content-Type``, ``Date``, ...) and no mail field.
        """
        names = self._names()
        if self.status is not None or names & HTTP_ONLY_FIELDS:
            return True
        return not names & MAIL_FIELDS and bool(names & HTTP_FIELDS)

    @property
    def is_mail(self) -> bool:
        """Whether the block is a mail/news header (From, Subject, Newsgroups, Message-ID
        or Path, and not an HTTP response header)."""
        return not self.is_http and bool(self._names() & MAIL_FIELDS)


def parse_header_block(data: bytes, start: int = 0) -> HeaderBlock | None:
    """Parse the header block at the start of ``data``, if there is one.

    Parameters
    ----------
    data : bytes
        The file's content.
    start : int
        Where to start (after a byte-order mark, say).

    Returns
    -------
    HeaderBlock or None
        None when ``data`` does not start with a header block ended by a blank line (or
        by the end of the data) within :data:`MAX_HEADER_BYTES`.
    """
    limit = min(len(data), start + MAX_HEADER_BYTES)
    pos = start
    block = HeaderBlock(status=None)
    first = True
    while pos < limit:
        end = data.find(b"\n", pos, limit)
        if end < 0:
            if limit < len(data):
                return None  # no end of header within the limit
            end = len(data)
        line = data[pos:end].rstrip(b"\r")
        pos = end + 1
        if not line.strip():
            if first:
                return None
            block.body_offset = min(pos, len(data))
            return block
        if first:
            status = _STATUS_LINE.match(line)
            if status:
                block.status = int(status.group(1))
                first = False
                continue
        if line[:1] in (b" ", b"\t"):
            if block.fields:
                name, value = block.fields[-1]
                block.fields[-1] = (name, f"{value} {line.strip().decode('latin-1')}")
            elif first:
                block.fields.append(("", line.strip().decode("latin-1")))
            else:
                return None
            first = False
            continue
        match = _FIELD_LINE.match(line)
        if not match:
            return None
        block.fields.append((match.group(1).decode("latin-1"), match.group(2).decode("latin-1")))
        first = False
    if first:
        return None
    block.body_offset = len(data)  # headers only, up to the end of the data
    return block if pos >= len(data) else None


def parse_content_type(value: str | None) -> tuple[str | None, dict[str, str]]:
    """Split a ``Content-Type`` value into its MIME type and parameters.

    Parameters
    ----------
    value : str or None
        E.g. ``'text/html; charset="UTF-8"'``.

    Returns
    -------
    mime : str or None
        The lower-cased type (``'text/html'``), None when absent or not ``type/subtype``.
    params : dict
        Parameters with lower-cased names and unquoted values (``{'charset': 'UTF-8'}``).
    """
    if not value:
        return None, {}
    parts = value.split(";")
    mime = parts[0].strip().lower() or None
    if mime is not None and "/" not in mime:
        mime = None
    params = {}
    for part in parts[1:]:
        name, sep, val = part.partition("=")
        if sep:
            params[name.strip().lower()] = val.strip().strip("\"'").strip()
    return mime, params

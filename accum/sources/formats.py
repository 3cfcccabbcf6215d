"""Which reader a file needs: sniffed from its first bytes and its name, the same way for a
source given on the command line and for a file met inside a directory.

A file starting with ``WARC/1.`` or ``WARC/0.`` (plain, or as the first bytes of a gzip
member) is WARC whatever its name, and one starting with ``PAR1`` is Parquet. Otherwise
the name decides: ``.warc``, ``.wet``, ``.wat`` (each optionally ``.gz``) -> WARC;
``.jsonl``, ``.ndjson`` (optionally ``.gz``) -> JSON Lines; ``.parquet`` -> Parquet;
anything else is ``"text"``: one file, one page.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterator

from accum.pages import Page, Skipped
from accum.sources.gzipped import GZIP_MAGIC
from accum.sources.jsonl import read_jsonl
from accum.sources.labels import LabelSpec
from accum.sources.parquet import read_parquet
from accum.sources.warc import read_warc

#: Formats whose files hold many records.
CONTAINER_FORMATS = ("warc", "jsonl", "parquet")
#: Bytes at the start of a file that sniffing looks at (enough for a gzip header with a
#: file name, as ``gzip`` writes it, and the first bytes of the member's data).
SNIFF_BYTES = 1024

_WARC_VERSIONS = (b"WARC/1.", b"WARC/0.")
_PARQUET_MAGIC = b"PAR1"
_NAME_FORMATS = (
    (re.compile(r"\.(?:warc|wet|wat)(?:\.gz)?$"), "warc"),
    (re.compile(r"\.(?:jsonl|ndjson)(?:\.gz)?$"), "jsonl"),
    (re.compile(r"\.parquet$"), "parquet"),
)


def sniff_format(name: str, head: bytes) -> str:
    """The reader a file needs (see the module docstring).

    Parameters
    ----------
    name : str
        The file's name (its extension counts when the content does not decide).
    head : bytes
        Its first bytes (:data:`SNIFF_BYTES` are enough; fewer for a short file).

    Returns
    -------
    str
        ``"warc"``, ``"jsonl"``, ``"parquet"`` or ``"text"``.
    """
    start = head[:SNIFF_BYTES]
    if start.startswith(GZIP_MAGIC):
        try:  # only the first bytes of the first member: cheap whatever the file's size
            start = zlib.decompressobj(31).decompress(start, 8)
        except zlib.error:
            start = b""
    if start.startswith(_WARC_VERSIONS):
        return "warc"
    if head.startswith(_PARQUET_MAGIC):
        return "parquet"
    name = name.lower()
    for pattern, fmt in _NAME_FORMATS:
        if pattern.search(name):
            return fmt
    return "text"


def read_container(
    path: str,
    fmt: str,
    label_spec: LabelSpec,
    max_page_bytes: int,
    text_field: str = "text",
    url_field: str = "url",
) -> Iterator[Page | Skipped]:
    """The records of a WARC, JSON Lines or Parquet file (``fmt`` one of
    :data:`CONTAINER_FORMATS`), with the reader of that format."""
    if fmt == "warc":
        return read_warc(path, label_spec, max_page_bytes)
    if fmt == "jsonl":
        return read_jsonl(path, label_spec, max_page_bytes, text_field, url_field)
    if fmt == "parquet":
        return read_parquet(path, label_spec, max_page_bytes, text_field, url_field)
    raise ValueError(f"{fmt!r} is not a container format; expected one of {', '.join(CONTAINER_FORMATS)}")

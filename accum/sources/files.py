"""One file, one page: content sniffing shared by the directory and plain-text readers.

What a file holds is sniffed from its start:

* an HTTP response header block (a status line or fields like ``Server``,
  ``Last-Modified``, ``Content-Type``, as in WebKB; see
  :attr:`~accum.sources.headers.HeaderBlock.is_http`): the header is stripped and the
  body read by its content type (HTML, text, or skipped as "not-text"); a non-2xx
  status is skipped as "empty";
* a mail or news header block (``From``, ``Subject``, ``Newsgroups``, ``Message-ID`` or
  ``Path`` fields, as in 20 Newsgroups): the whole file is the text, headers included,
  decoded with the charset of its ``Content-Type`` header if any, else UTF-8, else
  windows-1252 (latin-1 for the bytes windows-1252 lacks);
* anything else (including a header block that is neither): HTML when it starts like
  HTML, else plain text.
"""

from __future__ import annotations

import os

from accum.pages import Page, Skipped
from accum.sources.charsets import bom_codec, decode_bytes
from accum.sources.extract import body_to_text
from accum.sources.formats import SNIFF_BYTES
from accum.sources.headers import parse_content_type, parse_header_block
from accum.sources.labels import LabelSpec
from accum.sources.records import Skip, display_path, make_page, url_for_file


def read_file_start(path: str, max_page_bytes: int) -> tuple[bytes, int]:
    """Read a whole file, or only its start when it is over the cap.

    The start (:data:`~accum.sources.formats.SNIFF_BYTES`) is enough to tell a container
    file (a WARC of any size) from a page that is too large, without reading the page.

    Returns
    -------
    data : bytes
        The file's bytes, or its first bytes when ``size`` is over ``max_page_bytes``.
    size : int
        Its size (what was read, when the file grew while it was read).

    Raises
    ------
    Skip
        ``"unreadable"`` on an OS error.
    """
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size > max_page_bytes:
                return fh.read(SNIFF_BYTES), size
            data = fh.read(max_page_bytes + 1)
    except OSError as exc:
        raise Skip("unreadable", f"{type(exc).__name__}: {exc.strerror or exc}") from None
    return data, max(size, len(data))


def file_to_text(data: bytes) -> tuple[str, str, str, dict]:
    """Sniff and extract the text of one file's bytes (see the module docstring).

    Returns
    -------
    text, mime, charset : str
    extra : dict
        Extra meta fields (``http_status`` when the file has an HTTP status line, and
        those of :func:`~accum.sources.extract.body_to_text`).

    Raises
    ------
    Skip
        When the file holds no usable text.
    """
    if not data:
        raise Skip("empty", "empty file")
    start = 3 if bom_codec(data) == "utf-8-sig" else 0
    block = parse_header_block(data, start)
    if block is not None and block.is_http:
        extra = {}
        if block.status is not None:
            extra["http_status"] = block.status
            if not 200 <= block.status < 300:
                raise Skip("empty", f"HTTP status {block.status}")
        body = data[block.body_offset :]
        text, mime, charset, found = body_to_text(body, block.get("Content-Type"))
        return text, mime, charset, extra | found
    if block is not None and block.is_mail:
        _, params = parse_content_type(block.get("Content-Type"))
        text, charset = decode_bytes(data, params.get("charset"))
        return text, "message/rfc822", charset, {}
    return body_to_text(data)


def read_file_record(
    path: str, label_spec: LabelSpec, max_page_bytes: int, dirs: tuple[str, ...] = ()
) -> Page | Skipped:
    """Read one file as one page.

    Parameters
    ----------
    path : str
        The file (absolute path).
    label_spec : LabelSpec
        ``dir`` specs use ``dirs``; ``rules`` specs the page's URL.
    max_page_bytes : int
        Size cap.
    dirs : tuple of str
        The file's directories relative to the walked root, for ``dir`` labels.

    Returns
    -------
    Page or Skipped
        The page's URL is the decoded crawl URL for WebKB-style names
        (``http:^^host^path``), else ``file://`` + path.
    """
    try:
        data, size = read_file_start(path, max_page_bytes)
    except Skip as skip:
        return skip.to_skipped(display_path(path))
    return file_page(path, data, size, label_spec, max_page_bytes, dirs)


def file_page(
    path: str, data: bytes, size: int, label_spec: LabelSpec, max_page_bytes: int, dirs: tuple[str, ...] = ()
) -> Page | Skipped:
    """The page of a file read by :func:`read_file_start` (arguments as for
    :func:`read_file_record`); "too-large" when ``size`` is over ``max_page_bytes``."""
    source = display_path(path)
    if size > max_page_bytes:
        return Skipped(source, "too-large", f"{size} bytes > cap of {max_page_bytes}")
    try:
        text, mime, charset, extra = file_to_text(data)
        url = url_for_file(path)
        if label_spec.kind == "dir":
            label = label_spec.label_for_dirs(dirs)
        else:
            label = label_spec.label_for_url(url)
        return make_page(
            url, label, text, source=source, content_type=mime, charset=charset, n_bytes=len(data), **extra
        )
    except Skip as skip:
        return skip.to_skipped(source, len(data))

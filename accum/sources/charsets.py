"""Byte decoding: charset resolution, fallbacks and binary detection.

Resolution order for a page: a byte-order mark, then the charset of the HTTP/MIME
``Content-Type`` header, then (HTML only) a ``<meta charset=...>`` or ``<meta
http-equiv="Content-Type" content="...; charset=...">`` in the first 4 KB, then the
fallback: UTF-8 if the bytes are valid UTF-8, else windows-1252 (latin-1 when one of the
five bytes windows-1252 leaves undefined occurs). A declared charset decodes with replacement
characters; an unknown charset name is ignored. Like browsers, some labels decode with a
superset codec: ``iso-8859-1`` and ``us-ascii`` as windows-1252, ``gb2312`` and ``gbk``
as GB18030, ``shift_jis`` as cp932, ``euc-kr`` as cp949, and so on.
"""

from __future__ import annotations

import codecs
import re

from accum.sources.records import Skip

#: Bytes of HTML searched for a ``<meta>`` charset.
META_SCAN_BYTES = 4096
#: Decoded text with a larger share of U+FFFD is "bad-encoding".
MAX_REPLACEMENT_SHARE = 0.30
#: Data with a larger share of NUL bytes is binary.
MAX_NUL_SHARE = 0.01
#: Data with a larger share of other control bytes is binary.
MAX_CONTROL_SHARE = 0.30
#: Data with a larger share of control bytes than this *and* a larger share of invalid
#: UTF-8 sequences than :data:`MAX_INVALID_UTF8_SHARE` is binary. Compressed or random
#: bytes have about 9 % and 41 %; the real pages with most control bytes (20 Newsgroups
#: posts quoting terminal output, 3.5 and 7.4 %) are ASCII, and the least UTF-8-like
#: pages of WebKB (Japanese, Korean, Chinese: up to 5.8 % invalid sequences) have none.
MIN_CONTROL_SHARE = 0.01
#: See :data:`MIN_CONTROL_SHARE`.
MAX_INVALID_UTF8_SHARE = 0.10
#: Starts of binary formats (magic numbers): a body that begins so is not text, whatever
#: it is called or served as.
BINARY_MAGIC = (
    (b"\x1f\x8b", "gzip data"),
    (b"PK\x03\x04", "a ZIP archive"),
    (b"PK\x05\x06", "a ZIP archive"),
    (b"%PDF-", "a PDF document"),
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"\xfd7zXZ\x00", "xz data"),
    (b"(\xb5/\xfd", "zstd data"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"\x7fELF", "an ELF executable"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an OLE2 document (old Microsoft Office)"),
    (b"PAR1", "a Parquet file"),
)

_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
# C0 controls that never appear in text: not \t \n \v \f \r, and not ESC (ISO-2022-JP).
_CONTROL_BYTES = bytes([*range(0x01, 0x09), *range(0x0E, 0x1B), *range(0x1C, 0x20)])
_META_CHARSET = re.compile(
    rb"<meta\b[^>]*?\bcharset\s*=\s*[\"']?\s*([A-Za-z0-9_.:()+-]{1,40})", re.IGNORECASE
)
# How browsers read some labels (WHATWG Encoding Standard): the superset codec.
_BROWSER_CODECS = {
    "iso8859-1": "cp1252",
    "ascii": "cp1252",
    "iso8859-9": "cp1254",
    "tis-620": "cp874",
    "iso8859-11": "cp874",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "shift_jis": "cp932",
    "euc_kr": "cp949",
    "big5": "big5hkscs",
}
# Labels browsers know and Python does not.
_EXTRA_LABELS = {"x-sjis": "cp932", "windows-31j": "cp932", "x-gbk": "gb18030", "x-euc-jp": "euc_jp"}
# Codecs that are not page encodings (and may raise whatever the error handler).
_NOT_PAGE_CODECS = frozenset(
    {"idna", "punycode", "undefined", "unicode-escape", "raw-unicode-escape", "mbcs", "oem"}
)


def lookup_charset(name: str | None, *, from_meta: bool = False) -> str | None:
    """The Python codec name for a charset label, or None when unknown.

    Parameters
    ----------
    name : str or None
        A charset label such as ``'ISO-8859-1'`` or ``'utf8'``.
    from_meta : bool
        The label comes from a ``<meta>`` tag (a UTF-16 label there means UTF-8, since
        the tag could be read as ASCII).
    """
    if not name:
        return None
    label = name.strip().strip("\"'").strip().lower()
    try:
        info = codecs.lookup(_EXTRA_LABELS.get(label, label))
    except (LookupError, ValueError, TypeError):
        return None
    if not getattr(info, "_is_text_encoding", True):
        return None  # rot13, base64, ... are not character encodings
    codec = info.name
    if codec.replace("_", "-") in _NOT_PAGE_CODECS:
        return None
    if from_meta and codec.startswith("utf-16"):
        return "utf-8"
    return _BROWSER_CODECS.get(codec, codec)


def meta_charset(data: bytes) -> str | None:
    """The charset label of the first ``<meta>`` tag that declares one in the first 4 KB."""
    match = _META_CHARSET.search(data, 0, META_SCAN_BYTES)
    return match.group(1).decode("ascii") if match else None


def bom_codec(data: bytes) -> str | None:
    """The codec named by a byte-order mark at the start of ``data``, or None."""
    for bom, codec in _BOMS:
        if data.startswith(bom):
            return codec
    return None


def binary_reason(data: bytes) -> str | None:
    """Why ``data`` is binary rather than text, or None when it may be text.

    Binary is data that starts with the magic number of a binary format
    (:data:`BINARY_MAGIC`: gzip, ZIP, PDF, PNG, ...), holds more than
    :data:`MAX_NUL_SHARE` NUL bytes or :data:`MAX_CONTROL_SHARE` other control bytes, or
    more than :data:`MIN_CONTROL_SHARE` control bytes together with more than
    :data:`MAX_INVALID_UTF8_SHARE` invalid UTF-8 sequences (compressed or random bytes).
    Control bytes are the C0 controls but tab, line feed, vertical tab, form feed,
    carriage return and escape. Text in a legacy encoding (latin-1, Shift-JIS, ...) is
    not valid UTF-8 but holds hardly any control bytes, so it is never taken for binary.
    """
    size = len(data)
    if not size:
        return None
    for magic, what in BINARY_MAGIC:
        if data.startswith(magic):
            return f"binary data: {what}"
    nuls = data.count(0)
    if nuls > MAX_NUL_SHARE * size:
        return f"binary data: {nuls} NUL bytes in {size}"
    controls = size - nuls - len(data.translate(None, _CONTROL_BYTES))
    if controls > MAX_CONTROL_SHARE * size:
        return f"binary data: {controls} control bytes in {size}"
    if controls > MIN_CONTROL_SHARE * size:  # decoding is spent only on such rare data
        invalid = data.decode("utf-8", "replace").count("\ufffd")
        if invalid > MAX_INVALID_UTF8_SHARE * size:
            return f"binary data: {controls} control bytes and {invalid} invalid UTF-8 sequences in {size}"
    return None


def fallback_decode(data: bytes) -> tuple[str, str]:
    """Decode undeclared bytes: UTF-8, else windows-1252, else latin-1 (never fails).

    Returns
    -------
    text : str
    charset : str
        The Python codec name: ``'utf-8'``, ``'cp1252'`` or ``'iso8859-1'``.
    """
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252"), "cp1252"
    except UnicodeDecodeError:
        return data.decode("latin-1"), "iso8859-1"


def decode_bytes(data: bytes, declared: str | None = None, *, html: bool = False) -> tuple[str, str]:
    """Decode the bytes of a page or message.

    Parameters
    ----------
    data : bytes
        The raw body.
    declared : str or None
        The charset label from the HTTP/MIME ``Content-Type`` header, if any.
    html : bool
        Also look for a ``<meta>`` charset declaration.

    Returns
    -------
    text : str
    charset : str
        The Python name of the codec used (``'utf-8'``, ``'cp1252'``, ``'koi8-r'``, ...).

    Raises
    ------
    Skip
        ``"not-text"`` for binary data (see :func:`binary_reason`), ``"bad-encoding"``
        when more than 30% of the decoded characters are U+FFFD.
    """
    codec = bom_codec(data)
    if codec is None:
        reason = binary_reason(data)
        if reason:
            raise Skip("not-text", reason)
        codec = lookup_charset(declared)
        if codec is None and html:
            codec = lookup_charset(meta_charset(data), from_meta=True)
    text = None
    if codec is not None:
        try:
            text = data.decode(codec, errors="replace")
            charset = "utf-8" if codec == "utf-8-sig" else codec
        except (UnicodeError, ValueError, LookupError, TypeError):
            text = None  # a codec that fails whatever the error handler: use the fallback
    if text is None:
        text, charset = fallback_decode(data)
    bad = text.count("\ufffd")
    if text and bad > MAX_REPLACEMENT_SHARE * len(text):
        raise Skip("bad-encoding", f"{bad} of {len(text)} characters undecodable as {charset}")
    return text, charset

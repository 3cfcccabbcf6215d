"""From a response body to text: content-type dispatch, HTML sniffing and HTML to text."""

from __future__ import annotations

import re

from selectolax.lexbor import LexborHTMLParser

from accum.sources.charsets import decode_bytes
from accum.sources.headers import parse_content_type
from accum.sources.records import Skip

#: Elements whose content is not page text.
DROPPED_TAGS = ["script", "style", "noscript", "template", "iframe"]
#: MIME types read as HTML.
HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
#: ``text/*`` types that are code, not page text (skipped as "not-text").
CODE_TYPES = frozenset(
    {"text/css", "text/javascript", "text/ecmascript", "text/x-javascript", "text/jscript"}
)
#: Bytes at the start of a file searched for HTML tags.
HTML_SNIFF_BYTES = 1024

_HTML_TAG = re.compile(rb"<(?:!doctype\s+html|html|head|body|title)[\s>/]", re.IGNORECASE)


def looks_like_html(data: bytes) -> bool:
    """Whether ``data`` starts like an HTML document.

    True when ``<html``, ``<!doctype html``, ``<head``, ``<body`` or ``<title`` occurs in
    the first 1 KB (case-insensitive, so also after leading comments or whitespace).
    """
    return _HTML_TAG.search(data, 0, HTML_SNIFF_BYTES) is not None


def _starts_like_html(data: bytes) -> bool:
    """Whether ``data`` begins (after whitespace) with a tag and looks like HTML."""
    return data[:HTML_SNIFF_BYTES].lstrip().startswith(b"<") and looks_like_html(data)


def collapse_whitespace(text: str) -> str:
    """Collapse runs of whitespace (any Unicode space, NBSP included) to one space; drop U+FEFF."""
    return " ".join(text.replace("\ufeff", "").split())


def html_to_text(html: str) -> str:
    """The visible text of an HTML document.

    Drops ``script``, ``style``, ``noscript``, ``template`` and ``iframe`` elements, joins
    the ``<title>`` and the body text with spaces (between text nodes too), and collapses
    whitespace. The content of ``<noframes>`` (raw markup to the HTML parser) is parsed
    in turn and appended, so frameset pages keep their fallback text.
    """
    return collapse_whitespace(_html_text(html, nested=False))


def _title_text(title) -> str:
    """A title's text; markup inside it (seen on old pages) is read as HTML too."""
    if title is None:
        return ""
    text = title.text(separator=" ")
    if "<" in text:
        body = LexborHTMLParser(text).body
        text = body.text(separator=" ") if body is not None else text
    return text


def _html_text(html: str, nested: bool) -> str:
    tree = LexborHTMLParser(html)
    tree.strip_tags(DROPPED_TAGS)
    fallbacks = []
    for node in tree.css("noframes"):
        if not nested:
            fallbacks.append(_html_text(node.text(), nested=True))
        node.decompose()
    body = tree.body
    if body is None:  # a frameset document
        root = tree.root
        parts = [root.text(separator=" ") if root is not None else ""]
    else:
        head = tree.head
        title = head.css_first("title") if head is not None else None
        parts = [_title_text(title), body.text(separator=" ")]
    return " ".join(parts + fallbacks)


def body_to_text(
    body: bytes, content_type: str | None = None, *, kind: str | None = None
) -> tuple[str, str, str]:
    """Extract the text of a response body according to its content type.

    Parameters
    ----------
    body : bytes
        The payload (transfer and content encodings already removed).
    content_type : str or None
        The ``Content-Type`` header value; its charset parameter is used for decoding.
        Without a type, the body is sniffed (HTML or plain text); a ``text/plain`` body
        that starts with HTML markup is read as HTML.
    kind : str or None
        Force ``"html"`` or ``"text"`` whatever the header says.

    Returns
    -------
    text : str
        Whitespace-collapsed text for HTML; plain text is returned as decoded.
    mime : str
        The MIME type the body was read as.
    charset : str
        The codec used.

    Raises
    ------
    Skip
        ``"empty"`` for an empty body, ``"not-text"`` for a type that is neither text
        nor HTML, ``"bad-encoding"`` for binary or undecodable data.
    """
    mime, params = parse_content_type(content_type)
    if not body:
        raise Skip("empty", "empty body")
    if kind is None:
        if mime is None:
            kind = "html" if looks_like_html(body) else "text"
        elif mime in HTML_TYPES:
            kind = "html"
        elif mime == "text/plain" and _starts_like_html(body):
            kind = "html"  # a server that sent HTML as text/plain (common in WebKB)
        elif mime.startswith("text/") and mime not in CODE_TYPES:
            kind = "text"
        else:
            raise Skip("not-text", f"content type {mime}")
    if mime is None or (kind == "html") != (mime in HTML_TYPES):
        mime = "text/html" if kind == "html" else "text/plain"
    text, charset = decode_bytes(body, params.get("charset"), html=kind == "html")
    if kind == "html":
        text = html_to_text(text)
    return text, mime, charset

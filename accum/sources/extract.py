"""From a response body to text: content-type dispatch, HTML sniffing and HTML to text."""

from __future__ import annotations

import html as html_lib
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

#: Estimated depth of open elements (see :func:`nesting_depth`) above which a page is
#: read by :func:`strip_tags` instead of the HTML parser. Building the tree costs the
#: parser time in proportion to the depth for each new block element (it searches the
#: open elements for a ``<p>`` to close), so the time of a page grows with the square of
#: its depth or faster: 200,000 nested ``<div>`` took minutes. Browsers do not render
#: such depths either (Blink nests at most 512 elements while parsing and attaches
#: deeper ones as siblings); at this depth the parser still takes a fraction of a second.
MAX_HTML_DEPTH = 4096
#: The note in a page's meta (``extract``) when it was read by :func:`strip_tags`.
DEEP_NESTING_NOTE = "fallback-deep-nesting"

_TAG_NAME = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9]*)")
# Element kinds of the HTML standard's tree construction, which the depth estimate follows.
_VOID = frozenset(
    "area base basefont bgsound br col embed frame hr image img input isindex keygen link meta param "
    "source spacer track wbr".split()
)
_FORMATTING = frozenset("a b big code em font i nobr s small strike strong tt u".split())
_SPECIAL = frozenset(
    "address applet area article aside base basefont bgsound blockquote body br button caption center col "
    "colgroup dd details dir div dl dt embed fieldset figcaption figure footer form frame frameset h1 h2 h3 "
    "h4 h5 h6 head header hgroup hr html iframe img input keygen li link listing main marquee menu meta nav "
    "noembed noframes noscript object ol p param plaintext pre script search section select source style "
    "summary table tbody td template textarea tfoot th thead title tr track ul wbr xmp".split()
)
# Elements that bound the search for an element "in scope" (and a button, for a <p>).
_SCOPE = frozenset("applet button caption html marquee object table td template th".split())
# Start tags that close an open <p> first.
_CLOSES_P = frozenset(
    "address article aside blockquote center dd details dialog dir div dl dt fieldset figcaption figure "
    "footer form h1 h2 h3 h4 h5 h6 header hgroup li listing main menu nav ol p pre search section summary "
    "ul xmp".split()
)


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
    """The visible text of an HTML document (see :func:`extract_html`)."""
    return extract_html(html)[0]


def extract_html(html: str) -> tuple[str, str | None]:
    """The visible text of an HTML document, and how it was extracted.

    Drops ``script``, ``style``, ``noscript``, ``template`` and ``iframe`` elements, joins
    the ``<title>`` and the body text with spaces (between text nodes too), and collapses
    whitespace. The content of ``<noframes>`` (raw markup to the HTML parser) is parsed
    in turn and appended, so frameset pages keep their fallback text.

    A document nested deeper than :data:`MAX_HTML_DEPTH` would cost the HTML parser
    minutes; it is read by :func:`strip_tags` instead, in time linear in its length.

    Returns
    -------
    text : str
    note : str or None
        None when the HTML parser read it, :data:`DEEP_NESTING_NOTE` for the fallback.
    """
    # fewer tags than the limit cannot nest deeper: one count spares the scan of most pages
    if html.count("<") > MAX_HTML_DEPTH and nesting_depth(html, MAX_HTML_DEPTH) > MAX_HTML_DEPTH:
        return collapse_whitespace(strip_tags(html)), DEEP_NESTING_NOTE
    return collapse_whitespace(_html_text(html, nested=False)), None


def nesting_depth(html: str, stop_above: int | None = None) -> int:
    """An estimate of the deepest nesting of elements in ``html``.

    A linear scan of the tags that keeps the stack of open elements as the HTML
    standard's tree construction does, in the main and erring high: void elements
    (``<br>``, ``<img>``) open nothing; a block start tag closes an open ``<p>``; a list
    item, table row or cell closes an open one of its kind (a row or cell outside a
    table is ignored), an ``<a>`` or ``<nobr>`` an open one; an end tag closes its
    element and those inside it, unless a scope boundary (a table, a cell, a button)
    stands between, or, for a name outside the "special" category, a special element
    does; an end tag of a formatting element (``</b>``, ``</font>``) with a block inside
    it closes it alone, the block staying open (the adoption agency); stray end tags are
    ignored. Tags inside comments and scripts count too. Each tag costs constant time,
    whatever the depth.

    Parameters
    ----------
    html : str
    stop_above : int, optional
        End the scan as soon as the depth is over this (``stop_above + 1`` is returned).

    Examples
    --------
    >>> nesting_depth("<html><body><div><p>a<p>b<br><ul><li>c<li>d</ul></div>")
    5
    >>> nesting_depth("<body>" + "<b><div>x</b>" * 100)  # each </b> leaves its <div> open
    102
    """
    stack: list[str | None] = []  # open elements; None where a formatting element was taken out
    where: dict[str, list[int]] = {}  # name -> its positions in the stack, innermost last
    scopes: list[int] = []  # positions of scope boundaries
    specials: list[int] = []  # positions of special elements
    li_stops: list[int] = []  # special elements but address, div and p (they end the search for a <li>)
    depth = deepest = 0

    def innermost(name: str) -> int:
        positions = where.get(name)
        return positions[-1] if positions else -1

    def above(marks: list[int], i: int) -> bool:
        return bool(marks) and marks[-1] > i

    def pop_to(i: int) -> None:  # close the element at i and all inside it
        nonlocal depth
        while len(stack) > i:
            name = stack.pop()
            if name is None:
                continue
            where[name].pop()
            depth -= 1
            at = len(stack)
            for marks in (scopes, specials, li_stops):
                if marks and marks[-1] == at:
                    marks.pop()

    def take_out(i: int) -> None:  # a formatting element leaves, the blocks inside it stay
        nonlocal depth
        where[stack[i]].pop()
        stack[i] = None
        depth -= 1
        while stack and stack[-1] is None:
            stack.pop()

    def close_formatting(name: str) -> None:
        i = innermost(name)
        if i >= 0 and not above(scopes, i):
            if above(specials, i):
                take_out(i)
            else:
                pop_to(i)

    for match in _TAG_NAME.finditer(html):
        name = match.group(2).lower()
        if name in _VOID:
            continue
        if match.group(1):  # an end tag
            i = innermost(name)
            if i < 0 or name in ("body", "html"):
                continue
            if name in _FORMATTING:
                close_formatting(name)
            elif not above(scopes, i) and (name in _SPECIAL or not above(specials, i)):
                pop_to(i)
            continue
        if name in _CLOSES_P:
            i = innermost("p")
            if i >= 0 and not above(scopes, i):
                pop_to(i)
        if name == "li" or name in ("dd", "dt"):
            i = innermost("li") if name == "li" else max(innermost("dd"), innermost("dt"))
            if i >= 0 and not above(li_stops, i):
                pop_to(i)
        elif name in ("td", "th", "tr"):
            table = innermost("table")
            if table < 0:
                continue  # outside a table the parser ignores them
            i = max(innermost(kind) for kind in (("td", "th") if name != "tr" else ("tr",)))
            if i > table:
                pop_to(i)
        elif name == "option":
            if stack and stack[-1] == "option":
                pop_to(len(stack) - 1)
        elif name in ("a", "nobr"):
            close_formatting(name)
        at = len(stack)
        stack.append(name)
        where.setdefault(name, []).append(at)
        if name in _SCOPE:
            scopes.append(at)
        if name in _SPECIAL:
            specials.append(at)
            if name not in ("address", "div", "p"):
                li_stops.append(at)
        depth += 1
        if depth > deepest:
            deepest = depth
            if stop_above is not None and deepest > stop_above:
                break
    return deepest


def strip_tags(html: str) -> str:
    """The text of ``html`` without its tags, comments, scripts and styles, in one pass
    (time linear in its length whatever the nesting; entities decoded).

    The fallback of :func:`extract_html` for documents the HTML parser would take too
    long on: no tree is built, so text is joined as it stands in the source (a space for
    each tag) and the content of ``script``, ``style``, ``noscript``, ``template`` and
    ``iframe`` elements is dropped.
    """
    lowered = html.lower()
    parts = []
    pos, end = 0, len(html)
    while pos < end:
        lt = html.find("<", pos)
        if lt < 0:
            parts.append(html[pos:])
            break
        parts.append(html[pos:lt])
        if html.startswith("<!--", lt):
            close = html.find("-->", lt + 4)
            pos = end if close < 0 else close + 3
        elif html.startswith(("<!", "<?"), lt):  # a doctype or processing instruction
            close = html.find(">", lt + 2)
            pos = end if close < 0 else close + 1
        else:
            match = _TAG_NAME.match(html, lt)
            if match is None:  # a "<" that starts no tag is text
                parts.append("<")
                pos = lt + 1
                continue
            gt = html.find(">", match.end())
            if gt < 0:
                break  # an unterminated tag runs to the end
            pos = gt + 1
            name = match.group(2).lower()
            if not match.group(1) and name in DROPPED_TAGS:
                close = lowered.find("</" + name, pos)
                pos = end if close < 0 else (html.find(">", close) + 1 or end)
        parts.append(" ")
    return html_lib.unescape("".join(parts))


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
) -> tuple[str, str, str, dict]:
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
    extra : dict
        Meta fields for the page: ``extract`` (:data:`DEEP_NESTING_NOTE`) when the HTML
        was too deeply nested for the parser and its tags were stripped instead.

    Raises
    ------
    Skip
        ``"empty"`` for an empty body, ``"not-text"`` for a type that is neither text
        nor HTML or for binary data, ``"bad-encoding"`` for undecodable data.
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
    extra = {}
    if kind == "html":
        text, note = extract_html(text)
        if note is not None:
            extra["extract"] = note
    return text, mime, charset, extra

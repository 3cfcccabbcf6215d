"""What readers yield: a readable :class:`Page`, or a :class:`Skipped` record with its reason.

Readers never raise on a bad record: they yield ``Skipped`` so that the ingest can count
every record it did not use, by reason, and report it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Union

#: Reasons a record can be skipped (the keys of an ingest summary's ``skipped``).
SKIP_REASONS = (
    "empty",  # no text after extraction
    "too-large",  # over the page size cap
    "bad-encoding",  # undecodable bytes, mostly replacement characters
    "not-text",  # a content type that is not text or HTML, or binary data (images, archives, ...)
    "malformed",  # a record the format's parser rejected (bad WARC, bad JSON line, ...)
    "truncated",  # input that ends early (truncated gzip, cut-off WARC)
    "unreadable",  # an OS error while reading the file
    "outside-root",  # a file reached through a symbolic link that leaves the directory given
    "no-label",  # the label spec gave no label for this page
    "unknown-label",  # evaluation only: a label the store has never seen
    "in-training",  # calibration only: a page the model was trained on
)


#: Default cap on the raw size of one page (5 MiB): larger ones are skipped as "too-large".
#: Here, with the other limits of a page, so that the command line's options and the
#: store's record of old runs share it without importing the readers.
DEFAULT_MAX_PAGE_BYTES = 5 * 2**20

#: Longest label, in UTF-8 bytes: a catalog indexes category names, and PostgreSQL cannot
#: index much longer values (a directory name has at most 255 bytes).
MAX_LABEL_BYTES = 1000

#: Characters a terminal or a table cannot show as themselves: C0 controls (newline, tab,
#: NUL, ESC, which starts terminal escape sequences), DEL, C1 controls (U+009B is a
#: one-character CSI on some terminals) and the Unicode line and paragraph separators
#: (``str.splitlines`` breaks lines there). Labels may not contain them, and the CLI
#: escapes them wherever it prints stored text for a human.
CONTROL_CHARACTERS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")

_NOT_IN_A_LABEL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
_CHARACTER_NAMES = {"\n": "a newline", "\r": "a carriage return", "\t": "a tab", "\x00": "a NUL",
                    "\x1b": "an escape character", "\u2028": "a line separator",
                    "\u2029": "a paragraph separator"}


def check_label(label: str) -> str:
    """Return ``label`` when it can name a category; raise saying why it cannot.

    This is the one rule for labels, whatever brings them: the readers (a page with a
    bad label is skipped as "malformed" with this message), the ingest loop (for pages
    built elsewhere and for ``--default-label``) and the HTTP service (``POST /documents``
    answers 422 with this message). A label is kept exactly as given when it

    - is not blank (a reader treats a blank label as no label at all),
    - has no control character or line break (see :data:`CONTROL_CHARACTERS`): labels
      are printed one a line in tables and terminals,
    - is valid Unicode (no lone surrogate), and
    - has at most :data:`MAX_LABEL_BYTES` bytes in UTF-8.

    Parameters
    ----------
    label : str
        The candidate label.

    Returns
    -------
    str
        ``label``, unchanged.

    Raises
    ------
    TypeError
        When ``label`` is not a string.
    ValueError
        When it breaks the rule; the message names the rule and the offending character.

    Examples
    --------
    >>> check_label("rec.sport.hockey")
    'rec.sport.hockey'
    >>> check_label("a\\nb")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: label 'a\\nb' contains a newline (U+000A) at character 2: labels are printed one a line ...
    """
    if not isinstance(label, str):
        raise TypeError(f"a label must be a string, got {type(label).__name__} {label!r:.60}; convert it with str()")
    if not label.strip():
        raise ValueError(f"label {label!r} is blank: a category needs a name with at least one visible character")
    bad = _NOT_IN_A_LABEL.search(label)
    if bad is not None:
        char = bad.group()
        where = f"(U+{ord(char):04X}) at character {bad.start() + 1}"
        if "\ud800" <= char <= "\udfff":
            raise ValueError(f"label {_shown(label)} contains a lone surrogate {where}, which is not valid "
                             "Unicode text; send the label as valid UTF-8")
        name = _CHARACTER_NAMES.get(char, "a control character")
        raise ValueError(f"label {_shown(label)} contains {name} {where}: labels are printed one a line in tables "
                         "and terminals, so they may not contain control characters or line breaks; remove it or "
                         "replace it with a space")
    size = len(label.encode("utf-8"))
    if size > MAX_LABEL_BYTES:
        raise ValueError(f"label {_shown(label)} has {size:,} bytes in UTF-8, more than the {MAX_LABEL_BYTES:,} a "
                         "catalog can index; shorten it")
    return label


def _shown(label: str) -> str:
    """``label`` quoted for a message: escaped by ``repr``, cut after 60 characters."""
    return repr(label[:60]) + ("..." if len(label) > 60 else "")


@dataclass(frozen=True)
class Page:
    """One crawled page, ready to tokenize.

    Attributes
    ----------
    url : str
        Where the page came from: its URL, or ``file://`` path (plus ``#n`` for the n-th
        record of a multi-record file).
    label : str or None
        Its category, from the label spec; ``None`` when the spec gave none.
    text : str
        The extracted text (HTML already reduced to text).
    meta : dict
        Reader details: ``source`` (file path), ``content_type``, ``charset``, ``bytes``
        (raw size read), and format-specific fields.
    """

    url: str
    label: str | None
    text: str
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def n_bytes(self) -> int:
        """Raw bytes read for this page (for MB/s figures)."""
        return int(self.meta.get("bytes", len(self.text)))


@dataclass(frozen=True)
class Skipped:
    """A record a reader could not use.

    Attributes
    ----------
    source : str
        The file (and record position) it came from.
    reason : str
        One of :data:`SKIP_REASONS`.
    detail : str
        A human-readable explanation (the parser's message, the size, ...).
    n_bytes : int
        Raw bytes consumed by the record, when known.
    """

    source: str
    reason: str
    detail: str = ""
    n_bytes: int = 0

    def __post_init__(self):
        if self.reason not in SKIP_REASONS:
            raise ValueError(f"unknown skip reason {self.reason!r}; expected one of {SKIP_REASONS}")


Record = Union[Page, Skipped]

"""What readers yield: a readable :class:`Page`, or a :class:`Skipped` record with its reason.

Readers never raise on a bad record: they yield ``Skipped`` so that the ingest can count
every record it did not use, by reason, and report it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Union

#: Reasons a record can be skipped (the keys of an ingest summary's ``skipped``).
SKIP_REASONS = (
    "empty",  # no text after extraction
    "too-large",  # over the page size cap
    "bad-encoding",  # undecodable bytes, mostly replacement characters
    "not-text",  # a content type that is not text or HTML (images, PDFs, ...)
    "malformed",  # a record the format's parser rejected (bad WARC, bad JSON line, ...)
    "truncated",  # input that ends early (truncated gzip, cut-off WARC)
    "unreadable",  # an OS error while reading the file
    "outside-root",  # a file reached through a symbolic link that leaves the directory given
    "no-label",  # the label spec gave no label for this page
    "unknown-label",  # evaluation only: a label the store has never seen
    "in-training",  # calibration only: a page the model was trained on
)


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

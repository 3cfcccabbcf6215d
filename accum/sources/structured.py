"""Records with named fields (JSONL objects, Parquet rows) to pages."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from accum.pages import Page
from accum.sources.labels import LabelSpec
from accum.sources.records import Skip, display_path, file_url, make_page


def record_to_page(
    record: Mapping[str, Any],
    *,
    number: int,
    path: str,
    label_spec: LabelSpec,
    text_field: str,
    url_field: str,
    max_page_bytes: int,
    position: str,
    n_bytes: int | None = None,
) -> Page:
    """Build the page of one record.

    Parameters
    ----------
    record : mapping
        The record's fields.
    number : int
        Its 1-based position (line or row), used in the default URL ``file://path#number``.
    path : str
        The absolute path of the file.
    label_spec : LabelSpec
        ``field:NAME``, ``rules:FILE`` or none.
    text_field, url_field : str
        Field names of the text and of the URL (the URL is optional).
    max_page_bytes : int
        Cap on the UTF-8 size of the text.
    position : str
        Name of the position meta field (``"line"`` or ``"row"``).
    n_bytes : int or None
        Raw bytes of the record; the UTF-8 size of the text when None.

    Raises
    ------
    Skip
        ``"malformed"`` for a missing or non-string text, or a label that is not a
        string or an integer (see :meth:`LabelSpec.label_for_record`) or that
        :func:`accum.pages.check_label` refuses; ``"empty"`` for blank text,
        ``"too-large"`` over the cap.
    """
    if text_field not in record:
        raise Skip("malformed", f"{position} {number}: no {text_field!r} field (choose it with text_field=)")
    text = record[text_field]
    if not isinstance(text, str):
        kind = type(text).__name__
        raise Skip("malformed", f"{position} {number}: field {text_field!r} is {kind}, not a string")
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > max_page_bytes:
        raise Skip("too-large", f"{position} {number}: text of {size} bytes > cap of {max_page_bytes}")
    url = record.get(url_field)
    if not isinstance(url, str) or not url:
        url = f"{file_url(path)}#{number}"
    if label_spec.kind == "field":
        try:
            label = label_spec.label_for_record(record)
        except TypeError as exc:
            raise Skip("malformed", f"{position} {number}: {exc}") from None
    else:
        label = label_spec.label_for_url(url)
    return make_page(
        url,
        label,
        text,
        source=display_path(path),
        content_type="text/plain",
        charset="utf-8",
        n_bytes=size if n_bytes is None else n_bytes,
        **{position: number},
    )

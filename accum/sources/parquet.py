"""Parquet files: one page per row, read in record batches (streaming)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from accum.pages import Page, Skipped
from accum.sources.charsets import decode_bytes
from accum.sources.labels import LabelSpec
from accum.sources.records import Skip, display_path
from accum.sources.structured import record_to_page

#: Rows per record batch (bounds memory together with the row-group size).
BATCH_ROWS = 256


def _is_text_type(dtype: pa.DataType) -> bool:
    return (
        pa.types.is_string(dtype)
        or pa.types.is_large_string(dtype)
        or pa.types.is_binary(dtype)
        or pa.types.is_large_binary(dtype)
        or pa.types.is_null(dtype)
        or getattr(pa.types, "is_string_view", lambda _: False)(dtype)
        or getattr(pa.types, "is_binary_view", lambda _: False)(dtype)
    )


def check_parquet_columns(path: str, text_field: str, label_spec: LabelSpec) -> None:
    """Check that the text (and label) columns exist, before any reading.

    A file whose schema cannot be read is not an error here: reading it yields a
    ``Skipped`` "malformed" record instead.

    Raises
    ------
    ValueError
        When the text column or a ``field:NAME`` label column is missing, or the text
        column is not a string or binary column.
    """
    try:
        schema = pq.read_schema(path)
    except (pa.ArrowException, OSError):
        return
    names = schema.names
    wanted = [("text", text_field)]
    if label_spec.kind == "field":
        wanted.append(("label", label_spec.field))
    for role, name in wanted:
        if name not in names:
            option = "text_field=" if role == "text" else "the label spec 'field:NAME'"
            raise ValueError(
                f"{path}: no {role} column {name!r}; the columns are {names}; "
                f"choose the column with {option}"
            )
    dtype = schema.field(text_field).type
    if not _is_text_type(dtype):
        raise ValueError(
            f"{path}: text column {text_field!r} holds {dtype}, not strings; "
            "choose a string column with text_field="
        )


def read_parquet(
    path: str,
    label_spec: LabelSpec,
    max_page_bytes: int,
    text_field: str = "text",
    url_field: str = "url",
) -> Iterator[Page | Skipped]:
    """Read a Parquet file, one page per row.

    Parameters
    ----------
    path : str
        The file.
    label_spec : LabelSpec
        ``field:NAME`` (a column), ``rules:FILE`` (by URL) or none.
    max_page_bytes : int
        Texts over this UTF-8 size are skipped as "too-large".
    text_field, url_field : str
        Column names of the text (required; string or binary) and of the URL (optional;
        default ``file://path#ROW``).

    Yields
    ------
    Page or Skipped
        A null text is skipped as "empty". Page meta adds ``row`` (1-based).
    """
    path = os.path.abspath(path)
    source = display_path(path)
    number = 0
    try:
        parquet = pq.ParquetFile(path)
    except OSError as exc:
        yield Skipped(source, "unreadable", f"{type(exc).__name__}: {exc}")
        return
    except (pa.ArrowException, ValueError) as exc:
        yield Skipped(source, "malformed", f"not a readable Parquet file: {exc}")
        return
    with parquet:
        names = parquet.schema_arrow.names
        columns = [text_field]
        for extra in (url_field, label_spec.field if label_spec.kind == "field" else None):
            if extra and extra in names and extra not in columns:
                columns.append(extra)
        try:
            for batch in parquet.iter_batches(batch_size=BATCH_ROWS, columns=columns):
                for record in batch.to_pylist():
                    number += 1
                    try:
                        yield _row_to_page(
                            record, number, path, label_spec, text_field, url_field, max_page_bytes
                        )
                    except Skip as skip:
                        yield skip.to_skipped(f"{source}#{number}")
        except (pa.ArrowException, OSError, ValueError, KeyError) as exc:
            unreadable = isinstance(exc, OSError) and not isinstance(exc, pa.ArrowException)
            reason = "unreadable" if unreadable else "malformed"
            yield Skipped(f"{source}#{number + 1}", reason, f"row {number + 1}: {type(exc).__name__}: {exc}")


def _row_to_page(record, number, path, label_spec, text_field, url_field, max_page_bytes) -> Page:
    text = record.get(text_field)
    if text is None:
        raise Skip("empty", f"row {number}: null {text_field!r}")
    if isinstance(text, bytes):
        if len(text) > max_page_bytes:
            raise Skip("too-large", f"row {number}: text of {len(text)} bytes > cap of {max_page_bytes}")
        record = dict(record)
        record[text_field], _ = decode_bytes(text)
    return record_to_page(
        record,
        number=number,
        path=path,
        label_spec=label_spec,
        text_field=text_field,
        url_field=url_field,
        max_page_bytes=max_page_bytes,
        position="row",
    )

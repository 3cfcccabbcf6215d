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
    except (pa.ArrowException, OSError, ValueError) as exc:
        if _is_os_error(exc):
            yield Skipped(source, "unreadable", f"{type(exc).__name__}: {exc}")
        else:
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
                batch, strings = _strings_as_bytes(batch)
                names = batch.schema.names
                for values in zip(*(_to_python(column) for column in batch.columns)):
                    record = dict(zip(names, values))
                    number += 1
                    if strings:
                        record = _decode_strings(record, strings, text_field)
                    try:
                        yield _row_to_page(
                            record, number, path, label_spec, text_field, url_field, max_page_bytes
                        )
                    except Skip as skip:
                        yield skip.to_skipped(f"{source}#{number}")
        except (pa.ArrowException, OSError, ValueError, KeyError) as exc:
            reason = "unreadable" if _is_os_error(exc) else "malformed"
            yield Skipped(f"{source}#{number + 1}", reason, f"row {number + 1}: {type(exc).__name__}: {exc}")


def _strings_as_bytes(batch: pa.RecordBatch) -> tuple[pa.RecordBatch, list[str]]:
    """``batch`` with its string columns viewed as binary (no copy), and their names.

    Parquet writers do not all check UTF-8, and Arrow does not check it when reading: one
    invalid string would make ``to_pylist`` raise for its whole batch (and end the file).
    As bytes, each value is decoded on its own (see :func:`_decode_strings`).
    """
    strings = []
    arrays = []
    for name, column in zip(batch.schema.names, batch.columns):
        dtype = column.type
        if pa.types.is_string(dtype) or pa.types.is_large_string(dtype) or _is_string_view(dtype):
            target = pa.large_binary() if pa.types.is_large_string(dtype) else pa.binary()
            column = column.cast(target)
            strings.append(name)
        arrays.append(column)
    if not strings:
        return batch, strings
    return pa.RecordBatch.from_arrays(arrays, names=batch.schema.names), strings


class UnconvertibleValue:
    """Stands for a value Python cannot hold (a timestamp or date outside its years)."""

    def __repr__(self) -> str:
        return "<unconvertible value>"


def _to_python(column: pa.Array) -> list:
    """The values of ``column`` as Python objects; one that does not convert (an
    out-of-range timestamp in a URL or label column) becomes an :class:`UnconvertibleValue`
    instead of failing its whole batch."""
    try:
        return column.to_pylist()
    except (ArithmeticError, ValueError, pa.ArrowException):
        values = []
        for i in range(len(column)):
            try:
                values.append(column[i].as_py())
            except (ArithmeticError, ValueError, pa.ArrowException):
                values.append(UnconvertibleValue())
        return values


def _is_string_view(dtype: pa.DataType) -> bool:
    return getattr(pa.types, "is_string_view", lambda _: False)(dtype)


def _decode_strings(record: dict, strings: list[str], text_field: str) -> dict:
    """Decode the string columns of one row (bytes, see :func:`_strings_as_bytes`): UTF-8;
    an invalid text stays bytes (decoded like a binary text column), an invalid URL or
    label gets U+FFFD for its bad bytes."""
    record = dict(record)
    for name in strings:
        value = record.get(name)
        if isinstance(value, bytes):
            try:
                record[name] = value.decode("utf-8")
            except UnicodeDecodeError:
                if name != text_field:
                    record[name] = value.decode("utf-8", "replace")
    return record


def _is_os_error(exc: Exception) -> bool:
    """Whether ``exc`` is an error of the operating system (it has an errno), not Arrow's
    complaint about the bytes (a corrupt footer raises a plain OSError without one)."""
    return isinstance(exc, OSError) and exc.errno is not None


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

"""WARC files built for tests, from WebKB's pages (each an HTTP response already)."""

from __future__ import annotations

import io
import zlib
from pathlib import Path

from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter


def split_http_file(data: bytes):
    """A WebKB file's header lines and body (the tests' own, simple split)."""
    cut = min(i for i in (data.find(b"\n\n"), data.find(b"\r\n\r\n")) if i >= 0)
    head, body = data[:cut], data[cut:].lstrip(b"\r\n")
    headers = []
    for line in head.decode("latin-1").splitlines():
        name, sep, value = line.partition(":")
        if sep and name.strip() and name.strip().lower() != "content-length":
            headers.append((name.strip(), value.strip()))
    return headers, body


def write_warc(path: Path, records, gzip_it=True):
    """Write ``records`` = [(kind, url, payload, headers or content type, status)]."""
    with open(path, "wb") as fh:
        writer = WARCWriter(fh, gzip=gzip_it)
        for kind, url, payload, headers, status in records:
            if kind == "response":
                http = StatusAndHeaders(status, headers, protocol="HTTP/1.0")
                record = writer.create_warc_record(url, "response", payload=io.BytesIO(payload), http_headers=http)
            elif kind == "request":
                http = StatusAndHeaders("GET / HTTP/1.0", [("Host", "x")], is_http_request=True)
                record = writer.create_warc_record(url, "request", payload=io.BytesIO(b""), http_headers=http)
            else:
                record = writer.create_warc_record(url, kind, payload=io.BytesIO(payload), warc_content_type=headers)
            writer.write_record(record)


def webkb_warc(path: Path, files, gzip_it=True) -> list[str]:
    """Write the WebKB pages ``files`` to ``path`` as a WARC of responses (one gzip member a
    record when gzipped); return their URLs in order."""
    records = []
    for f in files:
        headers, body = split_http_file(f.read_bytes())
        records.append(("response", f.name.replace("^", "/"), body, headers, "200 OK"))
    write_warc(path, records, gzip_it)
    return [url for _, url, _, _, _ in records]


def gzip_member_ends(data: bytes) -> list[int]:
    """The offset where each gzip member of ``data`` ends (zlib's own reading of them)."""
    ends, start = [], 0
    while start < len(data):
        inflate = zlib.decompressobj(31)
        inflate.decompress(data[start:])
        assert inflate.eof, f"the member at byte {start} is not complete"
        start = len(data) - len(inflate.unused_data)
        ends.append(start)
    return ends

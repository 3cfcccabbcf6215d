"""Property tests: no input makes a reader raise; every item is a storable Page or Skipped.

Each of the four tests draws 200 inputs, 2,500 under CI (10,000 in all), or
``ACCUM_FUZZ_EXAMPLES`` each.
"""

from __future__ import annotations

import gzip
import io
import json
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from accum.pages import SKIP_REASONS, Page, Skipped
from accum.sources import open_source

EXAMPLES = int(os.environ.get("ACCUM_FUZZ_EXAMPLES") or (2500 if os.environ.get("CI") else 200))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _sample_warc() -> bytes:
    out = io.BytesIO()
    writer = WARCWriter(out, gzip=False)
    for n, (ctype, body) in enumerate(
        [
            ("text/html; charset=utf-8", "<html><title>t</title><body>caf\u00e9 page</body></html>".encode()),
            ("text/plain", b"plain words"),
        ]
    ):
        http = StatusAndHeaders("200 OK", [("Content-Type", ctype)], protocol="HTTP/1.1")
        record = writer.create_warc_record(f"http://x/{n}", "response", payload=io.BytesIO(body), http_headers=http)
        writer.write_record(record)
    return out.getvalue()


SAMPLE_WARC = _sample_warc()


def _mutate(data: bytes, edits) -> bytes:
    for position, replacement, cut in edits:
        position %= len(data) + 1
        data = data[:position] + replacement + data[position + cut :]
    return data


edits = st.lists(st.tuples(st.integers(0, 10**6), st.binary(max_size=12), st.integers(0, 40)), max_size=4)
warc_bytes = st.one_of(
    st.binary(max_size=3000),
    st.binary(max_size=500).map(lambda b: b"WARC/1.0\r\n" + b),
    edits.map(lambda e: _mutate(SAMPLE_WARC, e)),
    edits.map(lambda e: gzip.compress(_mutate(SAMPLE_WARC, e))),
    st.tuples(edits, st.integers(0, 10**6)).map(
        lambda t: (lambda z: z[: t[1] % (len(z) + 1)])(gzip.compress(_mutate(SAMPLE_WARC, t[0])))
    ),
)
json_value = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)
jsonl_bytes = st.one_of(
    st.binary(max_size=2000),
    st.lists(
        st.one_of(
            st.dictionaries(st.sampled_from(["text", "url", "label", "x"]), json_value, max_size=4).map(json.dumps),
            json_value.map(json.dumps),
            st.text(max_size=40),
        ),
        max_size=8,
    ).map(lambda lines: "\n".join(lines).encode("utf-8", "surrogatepass")),
)
text_bytes = st.one_of(
    st.binary(max_size=3000),
    st.text(max_size=500).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.tuples(st.sampled_from([b"", b"HTTP/1.0 200 OK\r\n", b"Server: x\n", b"From: a\nSubject: b\n"]),
              st.sampled_from([b"", b"Content-Type: text/html; charset=koi8-r\n", b"Content-type: image/gif\n"]),
              st.binary(max_size=300),
              st.sampled_from([b"\n", b"\r\n\r\n", b"\n\n<html><meta charset=utf-16><body>"]),
              st.binary(max_size=500))
    .map(b"".join),
)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


def _read_all(path, **options):
    items = list(open_source(path, **options))
    for item in items:
        assert isinstance(item, (Page, Skipped))
        if isinstance(item, Skipped):
            assert item.reason in SKIP_REASONS
            continue
        assert item.text.strip() and "\x00" not in item.text
        for value in (item.text, item.url, item.label or ""):
            value.encode("utf-8")  # storable: no lone surrogates
        assert set(item.meta) >= {"source", "content_type", "charset", "bytes"}
    return items


@FUZZ
@given(data=warc_bytes)
def test_any_bytes_as_warc(workdir, data):
    path = workdir / "fuzz.warc"
    path.write_bytes(data)
    items = _read_all(path, max_page_bytes=200)
    # a cut-off stream ends the file: at most one "truncated", and it comes last
    truncated = [i for i in items if isinstance(i, Skipped) and i.reason == "truncated"]
    assert len(truncated) <= 1 and (not truncated or items[-1] is truncated[0])


@FUZZ
@given(data=jsonl_bytes)
def test_any_bytes_as_jsonl(workdir, data):
    path = workdir / "fuzz.jsonl"
    path.write_bytes(data)
    _read_all(path, fmt="jsonl", label="field:label", max_page_bytes=100)


@FUZZ
@given(data=text_bytes)
def test_any_bytes_as_html(workdir, data):
    path = workdir / "fuzz.html"
    path.write_bytes(data)
    items = _read_all(path)
    assert len(items) == 1 or data.startswith(b"WARC/")  # a WARC is detected by its content


@FUZZ
@given(data=text_bytes)
def test_any_bytes_as_plain_file(workdir, data):
    path = workdir / "fuzz"
    path.write_bytes(data)
    items = _read_all(path, max_page_bytes=1000)
    assert len(items) == 1 or data.startswith(b"WARC/")

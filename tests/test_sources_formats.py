"""accum.sources formats and hostile input: built WARCs, JSONL, Parquet, odd files."""

from __future__ import annotations

import gzip
import json
import os
import random
import re

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from accum.pages import SKIP_REASONS, Page, Skipped
from accum.sources import detect_format, iter_sources, open_source
from accum.sources.files import read_file_record
from accum.sources.labels import parse_label_spec
from corpora import corpus_path
from warcs import split_http_file, write_warc

UNIVERSITY_HOSTS = {
    "cornell": "cornell.edu",
    "texas": "utexas.edu",
    "washington": "washington.edu",
    "wisconsin": "wisc.edu",
}


def _check_items(items):
    for item in items:
        assert isinstance(item, (Page, Skipped))
        if isinstance(item, Skipped):
            assert item.reason in SKIP_REASONS
        else:
            assert set(item.meta) >= {"source", "content_type", "charset", "bytes"}
    return items


# ---------------------------------------------------------------- a WARC built from WebKB


@pytest.fixture(scope="module")
def webkb_warc(tmp_path_factory):
    """A gzipped WARC of 50 WebKB course pages: 12 per university, 2 from misc."""
    root = corpus_path("webkb/course")
    chosen = []
    for university, host in UNIVERSITY_HOSTS.items():
        files = [
            f
            for f in sorted((root / university).iterdir())
            if re.match(rf"http:\^\^[^\^]*{re.escape(host)}\^", f.name)
        ]
        chosen += [(f, university) for f in files[:12]]
    chosen += [(f, None) for f in sorted((root / "misc").glob("http:*")) if "wisc" not in f.name][:2]
    assert len(chosen) == 50
    records = []
    for f, _ in chosen:
        headers, body = split_http_file(f.read_bytes())
        records.append(("response", f.name.replace("^", "/"), body, headers, "200 OK"))
    path = tmp_path_factory.mktemp("warc") / "webkb-sample.warc.gz"
    write_warc(path, records)
    rules = path.parent / "universities.rules"
    rules.write_text(
        "# host-based rules; the first match wins\n"
        "re:^https?://[^/]*cornell\\.edu/   cornell\n"
        "re:^https?://[^/]*utexas\\.edu/    texas\n"
        "*://*.washington.edu/*            washington\n"
        "http://*.wisc.edu/*                wisconsin\n",
        encoding="utf-8",
    )
    return path, rules, chosen


def test_webkb_warc_with_rules_labels(webkb_warc):
    path, rules, chosen = webkb_warc
    items = _check_items(list(open_source(path, label=f"rules:{rules}")))
    assert all(isinstance(item, Page) for item in items)
    assert [item.url for item in items] == [f.name.replace("^", "/") for f, _ in chosen]
    assert [item.label for item in items] == [university for _, university in chosen]
    spec = parse_label_spec("none")
    for item, (f, _) in zip(items, chosen):
        # same body, same content type: the same text as the file read from the directory
        assert item.text == read_file_record(str(f), spec, 2**20).text
        assert item.meta["http_status"] == 200 and item.meta["warc_type"] == "response"


def test_webkb_warc_plain_and_detected_by_content(webkb_warc, tmp_path):
    path, _, chosen = webkb_warc
    plain = tmp_path / "sample.dat"  # no WARC name: detected from the content
    with gzip.open(path, "rb") as fh:
        plain.write_bytes(fh.read())
    assert detect_format(plain) == "warc"
    assert detect_format(path) == "warc"
    renamed = tmp_path / "sample.bin"
    renamed.write_bytes(path.read_bytes())
    assert detect_format(renamed) == "warc"
    assert len([i for i in open_source(plain) if isinstance(i, Page)]) == 50
    # A whole-file gzip (not one member per record) reads too.
    whole = tmp_path / "whole.warc.gz"
    whole.write_bytes(gzip.compress(plain.read_bytes()))
    assert len([i for i in open_source(whole) if isinstance(i, Page)]) == 50


@pytest.mark.parametrize("compressed", [True, False])
def test_truncated_warc_keeps_earlier_pages(webkb_warc, tmp_path, compressed):
    path, _, _ = webkb_warc
    data = path.read_bytes()
    if not compressed:
        data = gzip.decompress(data)
    full = [item.url for item in open_source(path)]
    cut = tmp_path / ("cut.warc.gz" if compressed else "cut.warc")
    cut.write_bytes(data[: len(data) // 2])
    items = _check_items(list(open_source(cut)))
    pages = [item for item in items if isinstance(item, Page)]
    assert 10 < len(pages) < 50
    assert [p.url for p in pages] == full[: len(pages)]
    assert isinstance(items[-1], Skipped) and items[-1].reason in ("truncated", "malformed")
    assert sum(isinstance(item, Skipped) for item in items) == 1


def test_warc_cut_anywhere_never_raises(webkb_warc, tmp_path, capfd):
    path, _, _ = webkb_warc
    data = path.read_bytes()
    plain = gzip.decompress(data)
    full = [item.url for item in open_source(path)]
    rng = random.Random(7)
    for blob, name in ((data, "c.warc.gz"), (plain, "c.warc")):
        for size in sorted(rng.sample(range(1, len(blob)), 25)):
            cut = tmp_path / name
            cut.write_bytes(blob[:size])
            items = _check_items(list(open_source(cut)))
            pages = [item.url for item in items if isinstance(item, Page)]
            assert pages == full[: len(pages)]
            skipped = [item for item in items if isinstance(item, Skipped)]
            assert len(skipped) <= 1 and (not skipped or items[-1] is skipped[0])
    capfd.readouterr()  # warcio warns on stderr about cut records


def test_random_bytes_named_warc(tmp_path):
    path = tmp_path / "random.warc"
    path.write_bytes(random.Random(1).randbytes(5000))
    items = _check_items(list(open_source(path)))
    assert len(items) == 1 and items[0].reason == "malformed"
    gz = tmp_path / "random.warc.gz"
    gz.write_bytes(b"\x1f\x8b" + random.Random(2).randbytes(3000))
    items = _check_items(list(open_source(gz)))
    assert len(items) == 1 and items[0].reason in ("malformed", "truncated")


def test_warc_record_kinds(tmp_path):
    path = tmp_path / "kinds.warc.gz"
    html = b"<html><head><title>T</title></head><body><p>Hello page</p></body></html>"
    write_warc(
        path,
        [
            ("warcinfo", None, b"software: test\r\n", "application/warc-fields", None),
            ("request", "http://a.example/", None, None, None),
            ("response", "http://a.example/", html, [("Content-Type", "text/html")], "200 OK"),
            ("response", "http://a.example/missing", b"<html>gone</html>", [("Content-Type", "text/html")], "404 Not Found"),
            ("response", "http://a.example/logo.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 50, [("Content-Type", "image/png")], "200 OK"),
            ("response", "http://a.example/big", b"<html>" + b"word " * 400 + b"</html>", [("Content-Type", "text/html")], "200 OK"),
            ("resource", "http://a.example/notes.txt", b"resource text\n", "text/plain", None),
            ("resource", "http://a.example/img", b"GIF89a\0\0\0", "image/gif", None),
            ("metadata", "http://a.example/", b"fetchTimeMs: 1\r\n", "application/warc-fields", None),
            ("response", "ftp://a.example/f.txt", b"ftp text", [("Content-Type", "text/plain")], "200 OK"),
            ("response", "http://a.example/last", b"last page", [("Content-Type", "text/plain; charset=utf-8")], "200 OK"),
        ],
    )
    items = _check_items(list(open_source(path, max_page_bytes=1000)))
    summary = [(i.url, i.text) if isinstance(i, Page) else (i.source.rsplit("#", 1)[1], i.reason, i.detail) for i in items]
    assert summary == [
        ("http://a.example/", "T Hello page"),
        ("4", "empty", "HTTP status 404"),
        ("5", "not-text", "content type image/png"),
        ("6", "too-large", "payload over the cap of 1000 bytes"),
        ("http://a.example/notes.txt", "resource text\n"),
        ("8", "not-text", "content type image/gif"),
        ("ftp://a.example/f.txt", "ftp text"),  # HTTP header parsed by the reader itself
        ("http://a.example/last", "last page"),
    ]
    assert items[0].meta["record"] == 3 and items[0].meta["warc_record_id"].startswith("<urn:uuid:")


# ---------------------------------------------------------------- files and directories


def test_hostile_files_in_a_directory(tmp_path):
    root = tmp_path / "corpus"
    (root / "a").mkdir(parents=True)
    (root / "a" / "empty.txt").write_bytes(b"")
    (root / "a" / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 200 + b"IHDR" * 10)
    (root / "a" / "big.txt").write_bytes(b"x" * 2000)
    (root / "a" / "latin.html").write_bytes(b"<html><body>caf\xe9 na\xefve \x93quoted\x94</body></html>")
    (root / "a" / "gif.http").write_bytes(b"Date: x\r\nServer: y\r\nContent-type: image/gif\r\n\r\nGIF89a...")
    (root / "a" / "notfound.http").write_bytes(b"HTTP/1.0 404 Not Found\r\nServer: y\r\n\r\n<html>gone</html>")
    (root / "a" / "blank.html").write_bytes(b"<html><head><script>x()</script></head><body> \n </body></html>")
    items = _check_items(list(open_source(root, label="dir", max_page_bytes=1000)))
    by_name = {os.path.basename(i.meta["source"] if isinstance(i, Page) else i.source): i for i in items}
    assert by_name["empty.txt"].reason == "empty"
    assert by_name["image.png"].reason == "not-text"
    assert by_name["big.txt"].reason == "too-large" and by_name["big.txt"].n_bytes == 0
    assert by_name["gif.http"].reason == "not-text"
    assert (by_name["notfound.http"].reason, by_name["notfound.http"].detail) == ("empty", "HTTP status 404")
    assert by_name["blank.html"].reason == "empty"
    latin = by_name["latin.html"]
    assert latin.text == "café naïve \u201cquoted\u201d" and latin.meta["charset"] == "cp1252"
    assert latin.label == "a"


def test_unreadable_file(tmp_path):
    # An OS error while reading (here: a directory where a file was expected).
    item = read_file_record(str(tmp_path), parse_label_spec(None), 1000)
    assert item.reason == "unreadable" and "IsADirectoryError" in item.detail
    if os.geteuid() != 0:  # root reads anything
        path = tmp_path / "secret.txt"
        path.write_text("text")
        path.chmod(0)
        (item,) = open_source(path)
        assert item.reason == "unreadable"


def test_odd_file_names_and_order(tmp_path):
    root = tmp_path / "odd"
    (root / "b dir").mkdir(parents=True)
    (root / "ünï").mkdir()
    (root / "b dir" / "a b.txt").write_text("spaces in the name", encoding="utf-8")
    (root / "ünï" / "cödé.html").write_text("<title>Ü</title><body>ünïcödé</body>", encoding="utf-8")
    (root / "ünï" / "http:^^ex.com^a b^ü.html").write_text("<body>webkb style</body>", encoding="utf-8")
    (root / "ünï" / "x^y.txt").write_text("caret", encoding="utf-8")
    (root / "top.txt").write_text("top level", encoding="utf-8")
    (root / ".hidden").write_text("hidden", encoding="utf-8")
    (root / "README.md").write_text("readme", encoding="utf-8")
    (root / "MANIFEST.tsv").write_text("manifest", encoding="utf-8")
    (root / ".git").mkdir()
    (root / ".git" / "config").write_text("hidden dir", encoding="utf-8")
    with open(os.fsencode(root / "ünï") + b"/bad\xffname.txt", "wb") as fh:
        fh.write(b"undecodable name")
    items = _check_items(list(open_source(root, label="dir")))
    assert all(isinstance(i, Page) for i in items)
    got = [(i.url, i.label, i.text) for i in items]
    odd = str(root)
    assert got == [
        (f"file://{odd}/top.txt", None, "top level"),
        (f"file://{odd}/b dir/a b.txt", "b dir", "spaces in the name"),
        # a file name that is not UTF-8: its URL is percent-encoded
        (f"file://{odd}/%C3%BCn%C3%AF/bad%FFname.txt", "ünï", "undecodable name"),
        (f"file://{odd}/ünï/cödé.html", "ünï", "Ü ünïcödé"),
        ("http://ex.com/a b/ü.html", "ünï", "webkb style"),
        (f"file://{odd}/ünï/x^y.txt", "ünï", "caret"),
    ]
    bad = items[2]
    assert bad.meta["source"] == f"{odd}/ünï/bad\\xffname.txt"  # printable, storable
    assert items[4].meta["source"] == f"{odd}/ünï/http:^^ex.com^a b^ü.html"
    # the same order every time, and the exclude list can be changed
    assert [i.url for i in open_source(root, label="dir")] == [u for u, _, _ in got]
    everything = list(open_source(root, exclude=()))
    assert len(everything) == len(items) + 4


def test_mail_file_charset_from_its_header(tmp_path):
    post = tmp_path / "post"
    post.write_bytes(
        b"From: a@b.c\nSubject: caf\xe9\nContent-Type: text/plain; charset=iso-8859-1\n\nna\xefve \x93q\x94\n"
    )
    (page,) = open_source(post)
    assert page.text == "From: a@b.c\nSubject: café\nContent-Type: text/plain; charset=iso-8859-1\n\nnaïve \u201cq\u201d\n"
    assert page.meta["content_type"] == "message/rfc822"
    koi = tmp_path / "koi"
    koi.write_bytes("Subject: привет\nContent-Type: text/plain; charset=koi8-r\n\nмир\n".encode("koi8-r"))
    (page,) = open_source(koi)
    assert "привет" in page.text and "мир" in page.text and page.meta["charset"] == "koi8-r"


# ---------------------------------------------------------------- JSON Lines


def test_jsonl_broken_line_in_the_middle(tmp_path):
    path = tmp_path / "pages.jsonl"
    lines = [
        json.dumps({"url": "http://a/1", "text": "first page", "cat": "A"}),
        '{"url": "http://a/2", "text": "broken',
        "",
        json.dumps([1, 2]),
        json.dumps({"url": "http://a/4"}),
        json.dumps({"text": 42}),
        json.dumps({"text": "   "}),
        json.dumps({"text": "no url", "cat": None}),
        json.dumps({"url": 'http://a/"q"\n', "text": "odd \u00fc\u4e2d \U0001f600", "cat": 'lab "el" \\ line2 \u00e9'}),
        json.dumps({"text": "list label", "cat": ["x"]}),
        json.dumps({"url": "http://a/last", "text": "last", "cat": 7}),
    ]
    path.write_text("\n".join(lines), encoding="utf-8")  # no final newline
    items = _check_items(list(open_source(path, label="field:cat")))
    summary = [
        (i.url, i.label, i.text) if isinstance(i, Page) else (i.source.rsplit("#", 1)[1], i.reason) for i in items
    ]
    assert summary == [
        ("http://a/1", "A", "first page"),
        ("2", "malformed"),
        ("4", "malformed"),
        ("5", "malformed"),
        ("6", "malformed"),
        ("7", "empty"),
        (f"file://{path}#8", None, "no url"),
        ('http://a/"q"\n', 'lab "el" \\ line2 é', "odd ü中 😀"),  # a newline in a label: test_labels_hostile
        ("10", "malformed"),
        ("http://a/last", "7", "last"),
        ("3", "empty"),  # the blank lines, counted once at the end
    ]
    assert items[-1].detail == "1 blank line (line 3)"
    assert "line 2" in items[1].detail and "invalid JSON" in items[1].detail
    assert items[0].meta["line"] == 1 and items[0].meta["bytes"] == len(lines[0]) + 1


def test_jsonl_gz_custom_fields_caps_and_truncation(tmp_path):
    rows = [{"body": f"text number {n}", "link": f"http://x/{n}"} for n in range(200)]
    rows[5]["body"] = "y" * 5000
    data = "\n".join(json.dumps(r) for r in rows).encode("utf-8") + b"\n"
    path = tmp_path / "pages.jsonl.gz"
    path.write_bytes(gzip.compress(data))
    items = _check_items(list(open_source(path, text_field="body", url_field="link", max_page_bytes=1000)))
    assert len(items) == 200
    assert items[5].reason == "too-large" and items[5].n_bytes == 5000 + len('{"body": "", "link": "http://x/5"}\n')
    assert items[6].url == "http://x/6" and items[6].text == "text number 6"
    cut = tmp_path / "cut.ndjson"  # gzip detected from the bytes, not the name
    cut.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    items = _check_items(list(open_source(cut, text_field="body", url_field="link")))
    assert isinstance(items[-1], Skipped) and items[-1].reason == "truncated"
    assert all(isinstance(i, Page) for i in items[:-1]) and len(items) > 2


def test_jsonl_lone_surrogates_and_nul_are_made_storable(tmp_path):
    path = tmp_path / "s.jsonl"
    path.write_text('{"text": "a\\ud800b\\u0000c", "url": "http://x/\\udfff"}\n', encoding="utf-8")
    (page,) = open_source(path)
    assert page.text == "a\ufffdbc" and page.url == "http://x/\ufffd"


# ---------------------------------------------------------------- Parquet


def test_parquet_round_trip_with_custom_fields(tmp_path):
    path = tmp_path / "pages.parquet"
    bodies = [f"body {n} \u00e9\u4e2d" for n in range(1000)] + [None, "", 'quote " and\nnewline']
    table = pa.table(
        {
            "body": bodies,
            "link": [f"http://p/{n}" for n in range(len(bodies))],
            "category": [f'c"{n % 3} \\ \u00fc' for n in range(len(bodies))],
            "extra": list(range(len(bodies))),
        }
    )
    pq.write_table(table, path, row_group_size=300)
    items = _check_items(
        list(open_source(path, label="field:category", text_field="body", url_field="link"))
    )
    assert len(items) == len(bodies)
    pages = [i for i in items if isinstance(i, Page)]
    assert [(p.url, p.label, p.text) for p in pages[:2]] == [
        ("http://p/0", 'c"0 \\ \u00fc', "body 0 \u00e9\u4e2d"),
        ("http://p/1", 'c"1 \\ \u00fc', "body 1 \u00e9\u4e2d"),
    ]
    assert pages[-1].text == 'quote " and\nnewline' and pages[-1].meta["row"] == len(bodies)
    assert [(i.reason, i.source.rsplit("#", 1)[1]) for i in items if isinstance(i, Skipped)] == [
        ("empty", "1001"),
        ("empty", "1002"),
    ]


def test_parquet_missing_columns_raise_at_open(tmp_path):
    path = tmp_path / "p.parquet"
    pq.write_table(pa.table({"text": ["a"], "n": [1]}), path)
    with pytest.raises(ValueError, match=r"no text column 'body'.*text_field="):
        open_source(path, text_field="body")
    with pytest.raises(ValueError, match="no label column 'cat'"):
        open_source(path, label="field:cat")
    with pytest.raises(ValueError, match="holds int64"):
        open_source(path, text_field="n")
    (page,) = open_source(path)  # url column optional
    assert page.url == f"file://{path}#1"


def test_corrupt_parquet_is_skipped_not_raised(tmp_path):
    path = tmp_path / "bad.parquet"
    path.write_bytes(b"PAR1" + random.Random(3).randbytes(500))
    items = _check_items(list(open_source(path)))
    assert len(items) == 1 and items[0].reason == "malformed"


# ---------------------------------------------------------------- open_source


def test_open_source_usage_errors(tmp_path):
    text = tmp_path / "a.txt"
    text.write_text("hello")
    warc = tmp_path / "a.warc"
    warc.write_bytes(b"")
    with pytest.raises(ValueError, match="no such file or directory"):
        open_source(tmp_path / "missing")
    with pytest.raises(ValueError, match="unknown format 'html'"):
        open_source(text, fmt="html")
    with pytest.raises(ValueError, match="needs a directory"):
        open_source(text, fmt="dir")
    with pytest.raises(ValueError, match="is a directory"):
        open_source(tmp_path, fmt="warc")
    with pytest.raises(ValueError, match="does not apply to 'dir'"):
        open_source(tmp_path, label="field:x")
    with pytest.raises(ValueError, match="does not apply to 'warc'"):
        open_source(warc, label="dir")
    with pytest.raises(ValueError, match="does not apply to 'text'"):
        open_source(text, label="dir:2")
    with pytest.raises(ValueError, match="max_page_bytes"):
        open_source(text, max_page_bytes=0)
    with pytest.raises(ValueError, match="unknown label spec"):
        open_source(text, label="bogus")
    # iter_sources checks every source before reading any
    with pytest.raises(ValueError, match="no such file"):
        iter_sources([text, tmp_path / "missing"])


def test_open_source_is_lazy_and_formats_are_detected(tmp_path):
    (tmp_path / "d").mkdir()
    files = {
        "d": "dir",
        "a.warc": "warc",
        "a.WARC.GZ": "warc",
        "a.wet": "warc",
        "a.warc.wat.gz": "warc",
        "a.jsonl": "jsonl",
        "a.ndjson": "jsonl",
        "a.jsonl.gz": "jsonl",
        "a.parquet": "parquet",
        "a.html": "text",
        "a": "text",
    }
    for name in files:
        if name != "d":
            (tmp_path / name).write_bytes(b"")
    assert {name: detect_format(tmp_path / name) for name in files} == files
    reader = open_source(tmp_path / "a.html")
    assert iter(reader) is reader
    (item,) = reader
    assert item.reason == "empty"
    for name in ("a.warc", "a.jsonl"):
        assert [i.reason for i in open_source(tmp_path / name)] == ["empty"]
    both = list(iter_sources([tmp_path / "a.html", tmp_path / "a.warc"]))
    assert [i.reason for i in both] == ["empty", "empty"]

"""Pure helpers of accum.sources: label specs, rules, headers, charsets, HTML to text."""

from __future__ import annotations

import pytest

from accum.sources import LabelSpec, parse_label_spec
from accum.sources.charsets import binary_reason, decode_bytes, lookup_charset, meta_charset
from accum.sources.extract import body_to_text, html_to_text, looks_like_html
from accum.sources.headers import parse_content_type, parse_header_block
from accum.sources.labels import parse_rules
from accum.sources.records import Skip, url_for_file

# ---------------------------------------------------------------- label specs


@pytest.mark.parametrize(
    "spec, kind, level, field",
    [
        (None, "none", 1, None),
        ("none", "none", 1, None),
        ("dir", "dir", 1, None),
        ("dir:1", "dir", 1, None),
        ("dir:3", "dir", 3, None),
        (" dir:2 ", "dir", 2, None),
        ("field:category", "field", 1, "category"),
        ("field:a:b", "field", 1, "a:b"),
    ],
)
def test_parse_label_spec(spec, kind, level, field):
    parsed = parse_label_spec(spec)
    assert (parsed.kind, parsed.level, parsed.field) == (kind, level, field)
    assert parse_label_spec(parsed) is parsed
    assert parse_label_spec(str(parsed)) == parsed


@pytest.mark.parametrize(
    "spec, fragment",
    [
        ("dir:0", "dir:N"),
        ("dir:x", "whole number"),
        ("dir:-1", "whole number"),
        ("field:", "field name"),
        ("rules:", "needs a file"),
        ("category", "expected one of"),
        ("", "expected one of"),
        ("none:x", "expected one of"),
    ],
)
def test_bad_label_specs_say_what_was_expected(spec, fragment):
    with pytest.raises(ValueError) as info:
        parse_label_spec(spec)
    assert repr(spec) in str(info.value)
    assert fragment in str(info.value)


def test_label_spec_of_wrong_type():
    with pytest.raises(ValueError, match="string or None"):
        parse_label_spec(3)


def test_dir_labels_by_level():
    spec = parse_label_spec("dir:2")
    assert spec.label_for_dirs(("course", "cornell")) == "cornell"
    assert spec.label_for_dirs(("course",)) is None
    assert parse_label_spec("dir").label_for_dirs(()) is None
    assert parse_label_spec("none").label_for_dirs(("a",)) is None


def test_field_labels():
    spec = parse_label_spec("field:cat")
    assert spec.label_for_record({"cat": "sport"}) == "sport"
    assert spec.label_for_record({"cat": 3}) == "3"
    assert spec.label_for_record({"cat": None}) is None
    assert spec.label_for_record({}) is None
    with pytest.raises(TypeError, match="list"):
        spec.label_for_record({"cat": ["a"]})


def test_check_format():
    parse_label_spec("dir").check_format("dir")
    parse_label_spec("field:x").check_format("jsonl")
    parse_label_spec("field:x").check_format("parquet")
    with pytest.raises(ValueError, match="does not apply to 'warc'"):
        parse_label_spec("dir").check_format("warc")
    with pytest.raises(ValueError, match="does not apply to 'dir'"):
        parse_label_spec("field:x").check_format("dir")
    with pytest.raises(ValueError, match="does not apply to 'text'"):
        parse_label_spec("dir:2").check_format("text")


# ---------------------------------------------------------------- rules


def test_rules_globs_regexes_and_first_match_wins():
    rules = parse_rules(
        "# courses first\n"
        "\n"
        "*://*.cornell.edu/*/CS4*   cornell course\n"
        "re:^https?://[^/]*cornell\\.edu   cornell\n"
        "  *wisc.edu*\twisconsin  \n"
        "re:\\.PDF$ pdf\n"
    )
    spec = LabelSpec(kind="rules", rules_file="x", rules=rules)
    assert [r.label for r in rules] == ["cornell course", "cornell", "wisconsin", "pdf"]
    assert spec.label_for_url("http://www.cs.cornell.edu/Info/CS414.html") == "cornell course"
    assert spec.label_for_url("https://cs.cornell.edu/people/") == "cornell"
    assert spec.label_for_url("http://www.cs.wisc.edu/~user/") == "wisconsin"
    assert spec.label_for_url("http://example.com/a.PDF") == "pdf"
    assert spec.label_for_url("http://example.com/a.pdf") is None  # case-sensitive
    assert spec.label_for_url("http://example.com/cornell.edu") is None  # host part only
    assert spec.label_for_url("ftp://elsewhere/") is None


def test_glob_is_matched_against_the_whole_url():
    (rule,) = parse_rules("http://a.com/* a")
    assert rule.matches("http://a.com/x/y")
    assert not rule.matches("xhttp://a.com/x")
    (rule,) = parse_rules("re:a\\.com a")
    assert rule.matches("xhttp://a.com/x")  # re.search: anywhere


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("*.com\n", "has no label"),
        ("re:([a-z]  label\n", "bad regular expression"),
        ("# only comments\n\n", "has no rules"),
    ],
)
def test_bad_rules(text, fragment):
    with pytest.raises(ValueError, match=fragment):
        parse_rules(text, source="my.rules")


def test_rules_file_errors(tmp_path):
    with pytest.raises(ValueError, match="cannot read label rules file"):
        parse_label_spec(f"rules:{tmp_path / 'missing.rules'}")
    bad = tmp_path / "latin1.rules"
    bad.write_bytes("*caf\xe9* caf\xe9\n".encode("latin-1"))
    with pytest.raises(ValueError, match="not UTF-8"):
        parse_label_spec(f"rules:{bad}")
    broken = tmp_path / "broken.rules"
    broken.write_text("ok  fine\nre:(  oops\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"broken.rules:2: bad regular expression"):
        parse_label_spec(f"rules:{broken}")


def test_rules_file_with_non_ascii_labels(tmp_path):
    path = tmp_path / "r.rules"
    path.write_text('*/café/*  Café "quoted" label\n*  other\n', encoding="utf-8")
    spec = parse_label_spec(f"rules:{path}")
    assert spec.kind == "rules" and str(spec) == f"rules:{path}"
    assert spec.label_for_url("http://x/café/y") == 'Café "quoted" label'
    assert spec.label_for_url("http://x/") == "other"


# ---------------------------------------------------------------- headers


def test_http_header_block_crlf_and_continuation():
    data = b"HTTP/1.0 200 OK\r\nServer: NCSA/1.5\r\nX-Long: a\r\n  b\r\nContent-type: text/html\r\n\r\n<p>x"
    block = parse_header_block(data)
    assert block.status == 200
    assert block.get("content-type") == "text/html"
    assert block.get("X-Long") == "a b"
    assert block.is_http and not block.is_mail
    assert data[block.body_offset :] == b"<p>x"


def test_webkb_style_header_with_space_in_name():
    data = b"WWW Alert:  Redirection\nDate: x\nContent-type: text/html\n\n<h1>moved</h1>"
    block = parse_header_block(data)
    assert block.get("WWW Alert") == "Redirection"
    assert block.is_http


def test_mail_header_and_leading_continuation_line():
    data = b" host!user\nSubject: Re: hi\nFrom: a@b.c\nLines: 2\n\nbody\n"
    block = parse_header_block(data)
    assert block.fields[0] == ("", "host!user")
    assert block.is_mail and not block.is_http


def test_http_only_fields_win_over_message_id():
    # Some 1996 servers (WebSTAR) sent a Message-ID with the HTTP response.
    data = b"MIME-Version: 1.0\nServer: WebSTAR\nMessage-ID: <x@y>\nContent-type: text/html\n\n<p>x"
    block = parse_header_block(data)
    assert block.is_http and not block.is_mail


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\nDate: x\n\n",  # starts with a blank line
        b"Just some text: with a colon\nand a second line\n",  # second line is no field
        b"<html><head></head></html>",
        b"Date: x\nServer: y",  # no blank line, but the data ends: headers only
    ],
)
def test_header_block_detection(data):
    block = parse_header_block(data)
    if data == b"Date: x\nServer: y":
        assert block is not None and block.body_offset == len(data)
    else:
        assert block is None


def test_header_block_that_is_neither_mail_nor_http():
    block = parse_header_block(b"Title: Pride and Prejudice\n\nIt is a truth...")
    assert block is not None and not block.is_http and not block.is_mail


def test_parse_content_type():
    assert parse_content_type('text/HTML; Charset="UTF-8"; x=1') == ("text/html", {"charset": "UTF-8", "x": "1"})
    assert parse_content_type("text/plain") == ("text/plain", {})
    assert parse_content_type(None) == (None, {})
    assert parse_content_type("garbage") == (None, {})


# ---------------------------------------------------------------- charsets


def test_lookup_charset():
    assert lookup_charset("UTF-8") == "utf-8"
    assert lookup_charset('"iso-8859-1"') == "cp1252"  # as browsers do
    assert lookup_charset("us-ascii") == "cp1252"
    assert lookup_charset("gb2312") == "gb18030"
    assert lookup_charset("windows-1251") == "cp1251"
    assert lookup_charset("x-sjis") == "cp932"
    assert lookup_charset("no-such-charset") is None
    assert lookup_charset("base64") is None  # a codec, but not a character encoding
    assert lookup_charset("idna") is None
    assert lookup_charset("utf-16", from_meta=True) == "utf-8"


def test_meta_charset_forms():
    assert meta_charset(b'<html><head><meta charset="windows-1252">') == "windows-1252"
    assert meta_charset(b"<META HTTP-EQUIV='Content-Type' CONTENT='text/html; charset=koi8-r'>") == "koi8-r"
    assert meta_charset(b"<meta name=x content=y>") is None
    assert meta_charset(b" " * 5000 + b'<meta charset="koi8-r">') is None  # past the first 4 KB


def test_header_charset_beats_meta_and_meta_beats_default():
    body = '<html><head><meta charset="koi8-r"></head><body>привет</body></html>'
    as_utf8 = body.encode("utf-8")
    text, mime, charset, _ = body_to_text(as_utf8, "text/html; charset=utf-8")
    assert (text, mime, charset) == ("привет", "text/html", "utf-8")
    as_koi8 = body.encode("koi8-r")
    text, _, charset, _ = body_to_text(as_koi8, "text/html")
    assert (text, charset) == ("привет", "koi8-r")


def test_meta_windows_1252_curly_quotes():
    body = b'<html><head><meta charset="windows-1252"></head><body>\x93Hi\x94 \x96 caf\xe9</body></html>'
    text, _, charset, _ = body_to_text(body, "text/html")
    assert text == "\u201cHi\u201d \u2013 caf\u00e9"
    assert charset == "cp1252"


def test_undeclared_invalid_utf8_falls_back_to_windows_1252():
    text, charset = decode_bytes(b"caf\xe9 \x93ok\x94")
    assert (text, charset) == ("caf\u00e9 \u201cok\u201d", "cp1252")
    text, charset = decode_bytes("naïve".encode("utf-8"))
    assert (text, charset) == ("naïve", "utf-8")
    # 0x81 is undefined in windows-1252: latin-1 then
    assert decode_bytes(b"a\x81b")[1] == "iso8859-1"


def test_unknown_declared_charset_is_ignored():
    assert decode_bytes("é".encode("utf-8"), "ascii_827") == ("é", "utf-8")


def test_bom_wins():
    assert decode_bytes("\ufeffhé".encode("utf-8"), "koi8-r") == ("hé", "utf-8")
    assert decode_bytes("hé".encode("utf-16"), None) == ("hé", "utf-16")


def test_binary_data_is_not_text_and_undecodable_data_is_bad_encoding():
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 100
    assert binary_reason(png) == "binary data: a PNG image"
    with pytest.raises(Skip) as info:
        decode_bytes(png)
    assert info.value.reason == "not-text"
    assert binary_reason(b"plain text\twith tabs\r\n") is None
    with pytest.raises(Skip) as info:
        decode_bytes(bytes(range(0x80, 0x100)) * 3, "utf-8")  # declared utf-8, none of it is
    assert info.value.reason == "bad-encoding"


# ---------------------------------------------------------------- HTML


def test_html_to_text_drops_code_and_keeps_title():
    html = (
        "<!DOCTYPE html><html><head><title>The  Title</title><style>p{}</style>"
        "<script>var x = 1;</script></head><body><p>Hello&nbsp;<b>world</b></p>"
        "<noscript>enable js</noscript><template><p>tpl</p></template>\n\n<div>bye</div></body></html>"
    )
    assert html_to_text(html) == "The Title Hello world bye"


def test_html_to_text_frameset_and_fragments():
    assert html_to_text("<frameset><noframes>no frames here</noframes></frameset>") == "no frames here"
    # <noframes> content is raw markup to the parser: it is parsed in turn (WebKB has such pages)
    framed = "<html><head><title>T</title></head><frameset><noframes><BODY><p>fall</p> back</BODY></noframes></frameset>"
    assert html_to_text(framed) == "T fall back"
    assert html_to_text("<title><img src=x>Name, <BR>Director</title><body>b</body>") == "Name, Director b"
    assert html_to_text("<body>a<iframe>fallback <b>x</b></iframe> b</body>") == "a b"
    assert html_to_text("just text") == "just text"
    assert html_to_text("<p>a\ufeffb</p>") == "ab"
    assert html_to_text("") == ""


@pytest.mark.parametrize(
    "data, expected",
    [
        (b"<html><body>x</body></html>", True),
        (b"  \n<!-- a comment -->\n<!DOCTYPE HTML PUBLIC '-//W3C//DTD HTML 3.2//EN'>", True),
        (b"<TITLE>Old page</TITLE>", True),
        (b"<?xml version='1.0'?>\n<html xmlns='http://www.w3.org/1999/xhtml'>", True),
        (b"Dear reader, a <b>bold</b> plain text note", False),
        (b"x" * 2000 + b"<html>", False),
    ],
)
def test_looks_like_html(data, expected):
    assert looks_like_html(data) is expected


def test_body_to_text_dispatch():
    assert body_to_text(b"<body><p>hi  there</p>")[:2] == ("hi there", "text/html")  # sniffed
    assert body_to_text(b"<p>hi</p>")[:2] == ("<p>hi</p>", "text/plain")  # no document tag
    assert body_to_text(b"plain  text\n", None)[:2] == ("plain  text\n", "text/plain")
    assert body_to_text(b"<p>x</p>", "text/plain")[:2] == ("<p>x</p>", "text/plain")
    # HTML sent as text/plain (a 1996 server habit) is read as HTML
    assert body_to_text(b"\n<HTML><TITLE>t</TITLE>x</HTML>", "text/plain")[:2] == ("t x", "text/html")
    assert body_to_text(b"See <html> tags", "text/plain")[:2] == ("See <html> tags", "text/plain")
    for mime in ("image/gif", "application/pdf", "text/css", "application/octet-stream"):
        with pytest.raises(Skip) as info:
            body_to_text(b"GIF89a....", mime)
        assert info.value.reason == "not-text"
    with pytest.raises(Skip) as info:
        body_to_text(b"", "text/html")
    assert info.value.reason == "empty"


def test_url_for_webkb_names():
    assert url_for_file("/d/http:^^cs.cornell.edu^Info^CS414.html") == "http://cs.cornell.edu/Info/CS414.html"
    assert url_for_file("/d/https:^^a.org^") == "https://a.org/"
    assert url_for_file("/d/ftp:^^ftp.cs.wisc.edu^pub") == "ftp://ftp.cs.wisc.edu/pub"
    assert url_for_file("/d/x^y.html") == "file:///d/x^y.html"
    assert url_for_file("/d/a b/ü.txt") == "file:///d/a b/ü.txt"

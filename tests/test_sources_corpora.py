"""accum.sources on the real corpora, read in place (see tests/corpora.py)."""

from __future__ import annotations

import csv
import os
import re
from collections import Counter

import pytest
from warcio.archiveiterator import ArchiveIterator

from accum.pages import Page, Skipped
from accum.sources import iter_sources, open_source
from corpora import corpus_path

WEBKB_CLASSES = {"course", "department", "faculty", "other", "project", "staff", "student"}
WEBKB_UNIVERSITIES = {"cornell", "misc", "texas", "washington", "wisconsin"}
# Markup that must not survive text extraction (tutorial pages quoting HTML do exist).
TAG = re.compile(r"</?(?:html|head|body|title|p|a|br|hr|img|table|td|tr|li|ul|h[1-6])\b[^>]*>", re.I)


# ---------------------------------------------------------------- WebKB


@pytest.fixture(scope="module")
def webkb_manifest():
    """MANIFEST.tsv rows of the files that exist (one page of 8,282 is absent)."""
    with open(corpus_path("webkb/MANIFEST.tsv"), encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    return [row for row in rows if row["path"] != "(absent)"]


@pytest.fixture(scope="module")
def webkb_dir_items():
    return list(open_source(corpus_path("webkb"), label="dir"))


def test_webkb_dir_labels_are_the_7_classes(webkb_dir_items, webkb_manifest):
    assert len(webkb_manifest) == 8281
    assert len(webkb_dir_items) == 8281  # MANIFEST.tsv itself is excluded
    pages = [item for item in webkb_dir_items if isinstance(item, Page)]
    skipped = [item for item in webkb_dir_items if isinstance(item, Skipped)]
    assert {page.label for page in pages} == WEBKB_CLASSES
    # Skips are rare and explained: pages without text and one binary (mostly NUL) file;
    # the binary check takes no other page for binary (latin-1, CJK pages included)
    assert Counter(s.reason for s in skipped) == {"empty": 5, "not-text": 1}
    (binary,) = [s for s in skipped if s.reason == "not-text"]
    assert binary.source.endswith("^~scoffey^") and "NUL bytes" in binary.detail
    # Every file is accounted for under its class, as in the manifest.
    counted = Counter(page.label for page in pages)
    for s in skipped:
        counted[s.source.split("/webkb/")[1].split("/")[0]] += 1
    assert counted == Counter(row["class"] for row in webkb_manifest)


def test_webkb_urls_are_the_decoded_crawl_urls(webkb_dir_items, webkb_manifest):
    pages = [item for item in webkb_dir_items if isinstance(item, Page)]
    # Two crawled URLs end with a carriage return, "\\r" in the manifest and U+F00D (the
    # Services-for-Mac stand-in for CR) in the file name; the URL keeps what is on disk.
    expected = {row["original_name"].replace("\\r", "\uf00d").replace("^", "/") for row in webkb_manifest}
    assert {page.url for page in pages} <= expected
    schemes = Counter(page.url.split("://")[0] for page in pages)
    assert schemes["http"] > 8000 and set(schemes) <= {"http", "ftp", "file"}
    for page in pages:
        assert os.path.basename(page.meta["source"]).replace("^", "/") == page.url


def test_webkb_text_has_no_markup_and_no_http_header(webkb_dir_items):
    pages = [item for item in webkb_dir_items if isinstance(item, Page)]
    with_tags = [page.url for page in pages if TAG.search(page.text)]
    assert len(with_tags) < 25  # only pages that quote HTML in their text
    header_lines = 0
    for page in pages:
        assert set(page.meta) >= {"source", "content_type", "charset", "bytes"}
        assert page.meta["content_type"] in ("text/html", "text/plain")
        with open(page.meta["source"], "rb") as fh:
            head = fh.read(4096).decode("latin-1")
        for line in head.replace("\r", "").split("\n\n", 1)[0].split("\n")[:3]:
            if re.match(r"(Date|Server|Content-type|MIME-Version): .{6}", line, re.I):
                header_lines += 1
                assert line.strip() not in page.text, page.url
    assert header_lines > 20000
    cs414 = next(p for p in pages if p.url == "http://cs.cornell.edu/Info/Courses/Current/CS415/CS414.html")
    assert cs414.label == "course"
    assert cs414.text.startswith(
        "CS414 Home Page CS414: Systems Programming and Operating Systems "
        "CS415 Practicum in Operating System Kenneth P. Birman"
    )
    assert cs414.meta["bytes"] == 2138  # the MANIFEST size
    assert "Server" not in cs414.text and "MIME-Version" not in cs414.text


def test_webkb_dir2_gives_universities(webkb_manifest):
    root = corpus_path("webkb")
    items = list(open_source(root, label="dir:2"))
    labels = Counter(item.label for item in items if isinstance(item, Page))
    assert set(labels) == WEBKB_UNIVERSITIES
    skipped = [item for item in items if isinstance(item, Skipped)]
    for s in skipped:
        labels[s.source.split("/webkb/")[1].split("/")[1]] += 1
    assert labels == Counter(row["university"] for row in webkb_manifest)
    assert labels["cornell"] == 867


def test_webkb_one_university_subset_vs_manifest(webkb_manifest):
    # dir:1 under webkb/<class> is the university: read cornell's seven folders only.
    root = corpus_path("webkb")
    paths = sorted(p / "cornell" for p in root.iterdir() if (p / "cornell").is_dir())
    assert len(paths) == 7
    items = list(iter_sources(paths, label="dir"))
    assert len(items) == sum(row["university"] == "cornell" for row in webkb_manifest) == 867
    assert all(isinstance(i, Skipped) or i.label is None for i in items)  # files at level 0
    sources = sorted(i.meta["source"] if isinstance(i, Page) else i.source for i in items)
    expected = sorted(str(root / row["path"]) for row in webkb_manifest if row["university"] == "cornell")
    assert sources == expected


# ---------------------------------------------------------------- 20 Newsgroups


@pytest.fixture(scope="module")
def news_train():
    root = corpus_path("20news-bydate/20news-bydate-train")
    return root, list(open_source(root, label="dir"))


def test_20news_train_all_posts_20_labels(news_train):
    root, items = news_train
    assert len(items) == 11314
    assert all(isinstance(item, Page) for item in items)
    counts = Counter(item.label for item in items)
    assert len(counts) == 20
    assert counts == {group.name: len(list(group.iterdir())) for group in root.iterdir()}
    assert {item.meta["content_type"] for item in items} == {"message/rfc822"}


def test_20news_headers_are_kept_as_text(news_train):
    root, items = news_train
    assert all("Subject:" in item.text and "From:" in item.text for item in items)
    by_source = {item.meta["source"]: item for item in items}
    faq = by_source[str(root / "alt.atheism" / "49960")]
    assert faq.text.startswith("From: mathew <mathew@mantis.co.uk>\nSubject: Alt.Atheism FAQ: Atheist Resources\n")
    assert faq.url == f"file://{root / 'alt.atheism' / '49960'}"
    assert faq.label == "alt.atheism"


def test_20news_latin1_posts_decode_without_replacement_characters(news_train):
    _, items = news_train
    latin1 = 0
    for item in items:
        raw = open(item.meta["source"], "rb").read()
        assert item.meta["bytes"] == len(raw)
        try:
            raw.decode("utf-8")
            continue
        except UnicodeDecodeError:
            latin1 += 1
        assert "\ufffd" not in item.text
        assert item.meta["charset"] in ("cp1252", "iso8859-1")
        # every accented latin-1 letter of the file is in the text
        accented = {ch for ch in raw.decode("latin-1") if "\xc0" <= ch <= "\xff"}
        assert accented <= set(item.text)
    assert latin1 >= 40  # 44 posts of the train split are not UTF-8


# ---------------------------------------------------------------- WARC samples

WARC_SAMPLES = {
    # file: pages (2xx responses, or WET conversions), verified by hand with warcio
    "cc-2020/warcfile.warc.gz": 16,
    "cc-2024/whirlwind.warc": 1,
    "cc-2024/whirlwind.warc.gz": 1,
    "cc-2024/whirlwind.warc.wet": 1,
    "cc-2024/whirlwind.warc.wet.gz": 1,
    "cc-2024/whirlwind.warc.wat": 0,
    "cc-2024/whirlwind.warc.wat.gz": 0,
    "small/example-iana.org-chunked.warc": 1,
    "small/example.warc.gz": 1,
}


def _expected_urls(path):
    """Target URIs of the 2xx responses and conversions, counted with warcio directly."""
    urls = []
    with open(path, "rb") as fh:
        for record in ArchiveIterator(fh):
            if record.rec_type == "response" and record.http_headers is not None:
                if record.http_headers.get_statuscode().startswith("2"):
                    urls.append(record.rec_headers.get_header("WARC-Target-URI"))
            elif record.rec_type == "conversion":
                urls.append(record.rec_headers.get_header("WARC-Target-URI"))
    return urls


def test_every_warc_sample_is_listed():
    root = corpus_path("warc-samples")
    found = {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}
    assert found == set(WARC_SAMPLES)


@pytest.mark.parametrize("name", sorted(WARC_SAMPLES))
def test_warc_samples(name):
    path = corpus_path("warc-samples") / name
    items = list(open_source(path))
    assert all(isinstance(item, Page) for item in items), [i for i in items if isinstance(i, Skipped)]
    urls = _expected_urls(path)
    assert len(urls) == WARC_SAMPLES[name]
    assert [item.url for item in items] == urls
    for page in items:
        assert page.url.startswith(("http://", "https://"))
        assert len(page.text) > 100
        assert page.text.count("\ufffd") <= len(page.text) // 100
        assert page.meta["source"] == str(path)
        assert page.meta["bytes"] > 0 and page.meta["charset"]
        assert page.label is None


def test_warc_chunked_transfer_encoding_is_decoded():
    path = corpus_path("warc-samples/small/example-iana.org-chunked.warc")
    assert b"Transfer-Encoding: chunked\r\n" in path.read_bytes()
    assert b"\r\n001c37\r\n<!doctype html>" in path.read_bytes()  # the chunk size line
    (page,) = open_source(path)
    assert page.text.startswith("Internet Assigned Numbers Authority")
    assert "001c37" not in page.text
    assert page.meta["http_status"] == 200 and page.meta["content_type"] == "text/html"


def test_warc_gzip_content_encoding_is_decoded():
    (page,) = open_source(corpus_path("warc-samples/small/example.warc.gz"))
    assert page.text.startswith("Example Domain Example Domain This domain is")


def test_warc_wet_and_warc_agree():
    base = corpus_path("warc-samples/cc-2024")
    (html_page,) = open_source(base / "whirlwind.warc.gz")
    (wet_page,) = open_source(base / "whirlwind.warc.wet.gz")
    assert wet_page.meta["content_type"] == "text/plain" and wet_page.meta["warc_type"] == "conversion"
    assert "\n" in wet_page.text  # WET text is kept as is
    html_words, wet_words = set(html_page.text.split()), set(wet_page.text.split())
    assert len(html_words & wet_words) > 0.8 * len(wet_words)
    assert list(open_source(base / "whirlwind.warc.wat")) == []


def test_warc_declared_charsets():
    pages = {p.url: p for p in open_source(corpus_path("warc-samples/cc-2020/warcfile.warc.gz"))}
    russian = pages["http://01spb.ru/company/"]
    assert russian.meta["charset"] == "cp1251"
    assert "О компании" in russian.text
    chinese = pages["http://037426.cn/"]
    assert chinese.meta["charset"] == "gb18030"  # declared gb2312, read as its superset
    assert "\ufffd" not in chinese.text


def test_warc_rules_labels(tmp_path):
    rules = tmp_path / "cc.rules"
    rules.write_text("re:\\.cn/  china\n*://*.ru/*  russia\n*  other\n", encoding="utf-8")
    items = list(open_source(corpus_path("warc-samples/cc-2020/warcfile.warc.gz"), label=f"rules:{rules}"))
    labels = {item.url: item.label for item in items}
    assert labels["http://01spb.ru/company/"] == "russia"
    assert labels["http://037426.cn/"] == "china"
    assert labels["http://0900-hovenier.nl/gelderland/oosterbeek/"] == "other"


# ---------------------------------------------------------------- plain text


def test_kjv_is_one_page_kept_verbatim():
    path = corpus_path("kjv-bible/kjv.txt")
    (page,) = open_source(path)
    # Not quite ASCII: one windows-1252 em dash (0x97) in Exodus 32:32 ("their sin--;").
    raw = path.read_bytes()
    assert [b for b in raw if b > 127] == [0x97]
    assert page.meta["charset"] == "cp1252"
    assert page.text == raw.decode("cp1252")
    assert "forgive their sin\u2014; and if not" in page.text
    assert page.text.count("\n") == 31102
    assert page.meta["content_type"] == "text/plain" and page.meta["bytes"] == path.stat().st_size


def test_gutenberg_dir_labels():
    items = list(open_source(corpus_path("gutenberg"), label="dir"))
    assert all(isinstance(item, Page) for item in items)
    assert Counter(item.label for item in items) == {"body-only": 10, "with-header": 6}
    header = next(i for i in items if i.url.endswith("with-header/pg1342.txt"))
    assert header.text.lstrip("\ufeff").startswith("The Project Gutenberg eBook of Pride and Prejudice")

"""Hostile input to the readers (issue #17): links out of a corpus, container files inside
directories, cut gzip members, deeply nested HTML, binary data named ``.html``, files of
blank lines and giant tokens. Real files, real symbolic links, real gzip members."""

import gzip
import json
import os
import random
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from accum.pages import Page, Skipped
from accum.sources import detect_format, open_source
from accum.sources.partition import plan_parts
from corpora import corpus_path
from warcs import gzip_member_ends, split_http_file, webkb_warc, write_warc

ACCUM = [sys.executable, "-m", "accum.cli"]


def accum_json(*args):
    """Run ``accum ARGS --json`` in a real process; return its JSON document."""
    proc = subprocess.run([*ACCUM, *map(str, args), "--json"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def kinds(items):
    """``(name, label or skip reason)`` of each record, for compact comparisons."""
    out = []
    for item in items:
        if isinstance(item, Page):
            out.append((os.path.basename(item.meta["source"]), item.label))
        else:
            out.append((os.path.basename(item.source), item.reason))
    return out


# ---------------------------------------------------------------- links out of the root


@pytest.fixture
def linked_corpus(tmp_path):
    """A corpus with links inside it and links to files outside it (one of them /etc/passwd)."""
    root = tmp_path / "corpus"
    (root / "a").mkdir(parents=True)
    (root / "b").mkdir()
    (tmp_path / "secret.txt").write_text("a private note beside the corpus\n")
    (root / "a" / "page.txt").write_text("a page of the corpus\n")
    (root / "b" / "alias.txt").symlink_to("../a/page.txt")  # inside the root: read
    (root / "b" / "inside-abs.txt").symlink_to(root / "a" / "page.txt")
    (root / "a" / "secret.txt").symlink_to("../../secret.txt")  # leaves the root
    (root / "b" / "passwd").symlink_to("/etc/passwd")
    return root


def test_links_out_of_the_root_are_skipped_unless_followed(linked_corpus):
    items = list(open_source(linked_corpus, label="dir"))
    assert kinds(items) == [("page.txt", "a"), ("secret.txt", "outside-root"), ("alias.txt", "b"),
                            ("inside-abs.txt", "b"), ("passwd", "outside-root")]
    skip = items[1]
    assert "follow_links" in skip.detail and str(linked_corpus.parent / "secret.txt") in skip.detail
    assert not any("root:" in item.text for item in items if isinstance(item, Page))

    followed = list(open_source(linked_corpus, label="dir", follow_links=True))
    assert kinds(followed) == [("page.txt", "a"), ("secret.txt", "a"), ("alias.txt", "b"),
                               ("inside-abs.txt", "b"), ("passwd", "b")]
    assert followed[1].text == "a private note beside the corpus\n"

    # the parts of a Dask ingest read the same records, either way
    for follow in (False, True):
        parts = plan_parts([linked_corpus], label="dir", part_bytes=1, follow_links=follow)
        assert len(parts) > 1
        assert kinds(r for part in parts for r in part.read()) == kinds(followed if follow else items)

    with pytest.raises(ValueError, match="follow_links must be True or False"):
        open_source(linked_corpus, follow_links="yes")


def test_ingest_reports_outside_root_and_follow_links_is_recorded(linked_corpus, tmp_path):
    from accum.storage.recorded import recorded_pages
    from accum.storage import Store

    plain = accum_json("ingest", linked_corpus, "--label", "dir", "--store", tmp_path / "plain")
    assert plain["skipped"] == {"outside-root": 2} and plain["pages_added"] == 1
    assert "secret.txt" in plain["skip_examples"]["outside-root"]
    shown = subprocess.run([*ACCUM, "ingest", str(linked_corpus), "--label", "dir", "--store", str(tmp_path / "shown")],
                           capture_output=True, text=True, timeout=600)
    assert "e.g. outside-root:" in shown.stdout and "--follow-links reads files" in shown.stdout  # the CLI's hint

    store = tmp_path / "followed"
    followed = accum_json("ingest", linked_corpus, "--label", "dir", "--follow-links", "--store", store)
    assert followed["skipped"] == {} and followed["pages_added"] == 3
    st = Store(store)
    try:
        assert st.info()["runs"][-1]["command"]["follow_links"] is True
        texts, cats = recorded_pages(st)  # re-reads the sources as the run did: through the links
        assert len(texts) == 3 and sorted(cats) == ["a", "a", "b"]
    finally:
        st.engine.dispose()


# ---------------------------------------------------------------- container files in directories


@pytest.fixture
def crawl_tree(tmp_path):
    """A directory of crawl files: a gzipped WARC, a plain WARC without a WARC name and over
    the page cap, JSON Lines, Parquet (one without a text column) and a plain page."""
    pages = sorted(corpus_path("webkb/course/cornell").iterdir())
    root = tmp_path / "crawls"
    for sub in ("site", "feeds", "pages"):
        (root / sub).mkdir(parents=True)
    warc_urls = webkb_warc(root / "site" / "cornell.warc.gz", pages[:5])
    dump_urls = webkb_warc(root / "feeds" / "dump.dat", pages[5:15], gzip_it=False)
    (root / "feeds" / "news.jsonl").write_text(
        "".join(json.dumps({"url": f"http://news.example/{n}", "text": f"news item {n}"}) + "\n" for n in (1, 2)))
    pq.write_table(pa.table({"text": ["a row of text"], "url": ["http://rows.example/1"]}), root / "feeds" / "rows.pq")
    pq.write_table(pa.table({"body": ["no text column"]}), root / "feeds" / "wrong.parquet")
    (root / "pages" / "note.html").write_text("<html><body>a plain page</body></html>")
    cap = max(len(split_http_file(f.read_bytes())[1]) for f in pages[:15]) + 1000
    assert (root / "feeds" / "dump.dat").stat().st_size > cap  # read as records, not refused whole
    return root, warc_urls, dump_urls, cap


def test_container_files_in_a_directory_give_a_page_per_record(crawl_tree, tmp_path):
    root, warc_urls, dump_urls, cap = crawl_tree
    items = list(open_source(root, label="dir", max_page_bytes=cap))
    pages = [item for item in items if isinstance(item, Page)]
    assert [p.url for p in pages] == [*dump_urls, "http://news.example/1", "http://news.example/2",
                                      "http://rows.example/1", f"file://{root}/pages/note.html", *warc_urls]
    # with --label dir, every record of a file gets the file's directory
    assert [p.label for p in pages] == ["feeds"] * 13 + ["pages"] + ["site"] * 5
    assert all(p.meta["content_type"] == "text/html" for p in pages if p.meta["source"].endswith(".warc.gz"))
    assert not any("\x1f\x8b" in p.text or "WARC/1.0" in p.text for p in pages)
    (wrong,) = [item for item in items if isinstance(item, Skipped)]
    assert wrong.reason == "malformed" and "no text column 'text'" in wrong.detail
    assert detect_format(root / "feeds" / "rows.pq") == "parquet"  # by its magic number, as in a directory

    # with rules, each record's own URL decides
    rules = tmp_path / "labels.txt"
    rules.write_text("*cornell*  cornell\nhttp://news.example/*  news\n")
    labelled = [i for i in open_source(root, label=f"rules:{rules}", max_page_bytes=cap) if isinstance(i, Page)]
    assert [p.label for p in labelled] == ["cornell"] * 10 + ["news", "news", None, None] + ["cornell"] * 5

    # the parts of a Dask ingest read the same records
    parts = plan_parts([root], label="dir", part_bytes=1, max_page_bytes=cap)
    assert kinds(r for part in parts for r in part.read()) == kinds(items)

    # what the issue saw: `accum ingest crawls/ --label rules:...` made one page per WARC file
    done = accum_json("ingest", root, "--label", f"rules:{rules}", "--store", tmp_path / "crawl",
                      "--max-page-bytes", cap)
    assert done["pages_added"] == 17 and done["skipped"] == {"malformed": 1, "no-label": 2}


# ---------------------------------------------------------------- damaged gzip members


@pytest.mark.parametrize("complete", [200, 5])
def test_every_complete_member_before_a_cut_one_is_kept(tmp_path, complete):
    """Complete records followed by one cut member: all of them are pages, and the skip
    names the cut record (GzipFile's read-ahead lost 11 of 200, and all of 5)."""
    files = sorted(corpus_path("webkb/student/misc").iterdir())[: complete + 1]
    whole = tmp_path / "whole.warc.gz"
    urls = webkb_warc(whole, files)
    data = whole.read_bytes()
    ends = gzip_member_ends(data)
    assert len(ends) == complete + 1
    for keep in (0.1, 0.5, 0.9):  # cut inside the WARC header, the HTTP header, the body
        cut = tmp_path / "cut.warc.gz"
        cut.write_bytes(data[: ends[-2] + int(keep * (ends[-1] - ends[-2]))])
        items = list(open_source(cut))
        assert [i.url for i in items[:-1]] == urls[:complete]
        assert all(isinstance(i, Page) for i in items[:-1])
        skip = items[-1]
        assert (skip.reason, skip.source) == ("truncated", f"{cut}#{complete + 1}"), skip
        assert skip.detail.startswith(f"record {complete + 1}: ")


def test_a_corrupt_member_keeps_the_members_before_it(tmp_path):
    files = sorted(corpus_path("webkb/student/misc").iterdir())[:6]
    path = tmp_path / "bad.warc.gz"
    urls = webkb_warc(path, files)
    data = bytearray(path.read_bytes())
    ends = gzip_member_ends(bytes(data))
    middle = (ends[2] + ends[3]) // 2  # inside the 4th member's deflate data
    data[middle : middle + 40] = bytes(40)
    path.write_bytes(bytes(data))
    items = list(open_source(path))
    assert [i.url for i in items[:3]] == urls[:3] and all(isinstance(i, Page) for i in items[:3])
    assert items[3].reason in ("truncated", "malformed") and items[3].source.endswith("#4")
    assert len(items) == 4


# ---------------------------------------------------------------- blank lines


def test_blank_lines_are_passed_over_in_bulk_and_counted_once(tmp_path):
    """2 M blank lines between three records (the issue's file had 200 M: 220 s of CPU)."""
    record = [json.dumps({"url": f"http://x/{n}", "text": f"page {n}"}).encode() + b"\n" for n in range(3)]
    data = record[0] + b"\n" * 1_000_000 + record[1] + b" \r\n" * 1_000_000 + b"  " + record[2] + b"\t\n \n"
    path = tmp_path / "blank.jsonl.gz"
    path.write_bytes(gzip.compress(data))
    items = list(open_source(path))
    assert [(i.url, i.meta["line"]) for i in items[:3]] == [
        ("http://x/0", 1), ("http://x/1", 1_000_002), ("http://x/2", 2_000_003)]
    (skip,) = items[3:]
    assert (skip.reason, skip.source, skip.n_bytes) == ("empty", f"{path}#2", 4_000_004)
    assert skip.detail == "2,000,002 blank lines, the first at line 2 (4,000,004 bytes)"

    # the one-page-per-line format counts them the same way
    lines = tmp_path / "verses.txt"
    lines.write_bytes(b"In the beginning\n\n\n\xc2\xa0\nand the earth\n" + b"\n" * 100_000)
    items = list(open_source(lines, "lines"))
    assert [i.text for i in items[:2]] == ["In the beginning", "and the earth"]
    assert items[1].url.endswith("#L5") and items[2].reason == "empty"
    assert items[2].detail.startswith("100,003 blank lines, the first at line 2")


def test_a_cut_jsonl_member_keeps_every_line_before_it(tmp_path):
    members = [gzip.compress(json.dumps({"text": f"line {n}"}).encode() + b"\n") for n in range(1, 41)]
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(b"".join(members) + members[0][: len(members[0]) // 2])
    items = list(open_source(path))
    assert [i.text for i in items[:40]] == [f"line {n}" for n in range(1, 41)]
    assert (items[40].reason, items[40].source) == ("truncated", f"{path}#41") and len(items) == 41


# ---------------------------------------------------------------- deeply nested HTML


def test_deeply_nested_html_is_read_in_linear_time_and_noted(tmp_path):
    """200,000 nested <div> (2.6 MB): 298 s in the HTML parser before, under a second now."""
    import time

    from accum.accumulator import Accumulator
    from accum.ingest import MemorySink, ingest
    from accum.sources.extract import DEEP_NESTING_NOTE, extract_html

    n = 200_000
    deep = "<html><head><title>Deep</title></head><body>" + "<div>x " * n + "</div>" * n + "</body></html>"
    started = time.perf_counter()
    text, note = extract_html(deep)
    assert time.perf_counter() - started < 20  # loose: a quadratic parse takes minutes
    assert note == DEEP_NESTING_NOTE and text == "Deep " + " ".join(["x"] * n)

    # what the HTML parser cannot see: a </b> with a block inside leaves the block open
    sneaky = "<body>" + "<b><div>y</b>" * 50_000
    assert extract_html(sneaky) == (" ".join(["y"] * 50_000), DEEP_NESTING_NOTE)
    assert extract_html("<body>" + "<li>z<p>w" * 50_000)[1] is None  # siblings, not nesting

    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "deep.html").write_text(deep)
    (tmp_path / "a" / "fine.html").write_text("<html><body><p>a fine page</p></body></html>")
    (page, fine) = open_source(tmp_path, label="dir")
    assert page.meta["extract"] == DEEP_NESTING_NOTE and "extract" not in fine.meta
    summary = ingest(open_source(tmp_path, label="dir"), Accumulator(), MemorySink())
    assert summary.pages_added == 2 and summary.notes == {DEEP_NESTING_NOTE: 1}
    assert summary.to_dict()["note_examples"] == {DEEP_NESTING_NOTE: page.url}


def test_ordinary_pages_read_as_before():
    """WebKB's pages nest 157 elements deep at most, far from the limit, and 307 of them
    (every 27th) give the text they gave before the depth check existed."""
    import hashlib

    from accum.sources.extract import MAX_HTML_DEPTH, nesting_depth
    from accum.sources.files import read_file_record
    from accum.sources.labels import parse_label_spec

    root = corpus_path("webkb")
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.name != "MANIFEST.tsv")
    assert len(files) == 8281
    deepest = max(nesting_depth(p.read_bytes().decode("latin-1")) for p in files)
    assert deepest < MAX_HTML_DEPTH // 20, deepest
    digest = hashlib.sha256()
    pages = [read_file_record(str(p), parse_label_spec(None), 5 << 20) for p in files[::27]]
    for page in pages:
        digest.update(page.text.encode("utf-8", "surrogatepass") + b"\0")
        assert "extract" not in page.meta
    assert len(pages) == 307
    assert digest.hexdigest() == "1dd54e2750c9d3201a8f49db07cd93287429757aaf1aee49381d88cc34f1efaf"


# ---------------------------------------------------------------- binary data named .html


def test_binary_data_named_html_is_not_text(tmp_path):
    """Random bytes and gzip data named .html were read as latin-1 text (the old check
    wanted over 1 % NUL bytes; these have almost none)."""
    rng = random.Random(17)
    noise = bytes(rng.getrandbits(8) for _ in range(50_000)).replace(b"\0", b"\1")
    page = corpus_path("webkb/course/cornell").iterdir().__next__().read_bytes()
    files = {
        "noise.html": noise,
        "page.html.gz.html": gzip.compress(page),
        "archive.html": zipped(page),
        "doc.html": b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n" + noise[:2000],
        "image.html": b"\x89PNG\r\n\x1a\n" + noise[:2000],
        "latin1.html": "<html><body>caf\u00e9 na\u00efve \u00e0 la cr\u00e8me</body></html>".encode("latin-1"),
        "controls.txt": b"terminal output \x1b[1m\x07\x08\x08 and ^H^H: " * 5 + b"plain ASCII text\n" * 5,
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    items = {os.path.basename(i.meta["source"] if isinstance(i, Page) else i.source): i
             for i in open_source(tmp_path)}
    for name in ("noise.html", "page.html.gz.html", "archive.html", "doc.html", "image.html"):
        assert items[name].reason == "not-text", (name, items[name])
    assert "control bytes and" in items["noise.html"].detail
    assert items["page.html.gz.html"].detail == "binary data: gzip data"
    assert items["latin1.html"].text == "caf\u00e9 na\u00efve \u00e0 la cr\u00e8me"
    assert isinstance(items["controls.txt"], Page)  # control bytes alone, in ASCII text, are text

    # the same bytes served as text/html in a WARC record
    warc = tmp_path / "crawl" / "noise.warc.gz"
    warc.parent.mkdir()
    write_warc(warc, [("response", "http://x/noise.html", noise, [("Content-Type", "text/html")], "200 OK")])
    (record,) = open_source(warc)
    assert record.reason == "not-text"


def zipped(data: bytes) -> bytes:
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("page.html", data)
    return buf.getvalue()

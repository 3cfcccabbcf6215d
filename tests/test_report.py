"""``accum report`` on small stores of real pages: every section and figure is there and
embedded, every number in a table carries its kind, HTML and Markdown say the same, the
page fetches nothing (also in a real headless Chromium), and the command's errors are
clear."""

import base64
import json
import re
import struct
from html.parser import HTMLParser
from pathlib import Path

import pytest

from corpora import corpus_path
from test_cli import accum, accum_json

SECTIONS = [
    "The answer in short",
    "Growth curves and their validated forecasts",
    "Where growth levels off, and at what features per page",
    "Parameters the accumulator needs at 10⁶ … 4·10¹⁰ pages",
    "Recall per stored parameter: the counts and a neural model",
    "LLMs and the pages they could hold",
    "Would a 400B-parameter model recall 40B documents?",
    "Sources",
]
FIGURES = ["growth-order-1", "growth-order-2", "capacity"]
#: A number as the report writes it: 12,559 / 0.190 / -48.3% / 1.44·10¹² / 10⁶.
NUMBER = r"(?:[-+]?\d[\d,.]*·)?10[⁰¹²³⁴⁵⁶⁷⁸⁹⁻]+|[-+]?\d[\d,.]*%?"
#: Columns whose text may hold digits of its own: citations, and how a value is derived.
TEXT_COLUMNS = {"source", "from"}
MARKS = {"ᴹ": "measured", "ᶠ": "fitted", "ᴱ": "extrapolated", "ᶜ": "cited"}
BADGE = "\x00"  # where a number's badge stood, in the text of an HTML cell


@pytest.fixture(scope="module")
def kjv_store(tmp_path_factory):
    """The first 3,000 KJV verses as 300 pages of 10 (long enough for a prompt and its
    continuation), with a generator of order 6 and the neural capacity of one small
    transformer recorded (accum capacity --neural)."""
    root = tmp_path_factory.mktemp("report-kjv")
    pages = root / "corpus" / "kjv"
    pages.mkdir(parents=True)
    verses = corpus_path("kjv-bible/kjv.txt").read_bytes().splitlines(keepends=True)[:3000]
    for i in range(0, len(verses), 10):
        (pages / f"{i // 10:04d}.txt").write_bytes(b"".join(verses[i:i + 10]))
    store = root / "store"
    accum("ingest", pages.parent, "--label", "dir", "--markov-order", "6", "--no-fit", "--store", store)
    accum("capacity", "--store", store, "--neural", "--neural-sizes", "300k", "--neural-tokens", "8192",
          "--neural-sample", "40")
    return store


@pytest.fixture(scope="module")
def kjv_html(kjv_store, tmp_path_factory):
    out = tmp_path_factory.mktemp("report-html") / "report.html"
    proc = accum("report", "--store", kjv_store, "--out", out, "--shuffles", "1")
    assert proc.stdout == "" and f"wrote {out}" in proc.stderr
    assert "checking forecasts" in proc.stderr  # the long step's progress, on stderr
    return out


class Page(HTMLParser):
    """A report page's headings, figures, images and tables (each: its columns and its
    body rows of ``(tag, text)`` cells, :data:`BADGE` after each labelled number)."""

    def __init__(self, path: Path):
        super().__init__()
        self.headings, self.figures, self.images, self.tables = [], [], [], []
        self._text = self._row = None
        self._badge = self._head = False
        self.feed(path.read_text(encoding="utf-8"))

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table":
            self.tables.append({"columns": [], "rows": []})
        elif tag == "thead":
            self._head = True
        elif tag == "tr":
            self._row = []
        elif tag in ("h2", "th", "td"):
            self._text = []
        elif tag == "figure":
            self.figures.append(a["id"])
        elif tag == "img":
            self.images.append(a)
        elif tag == "span" and "k" in a.get("class", "").split() and self._text is not None:
            self._text.append(BADGE)
            self._badge = True

    def handle_endtag(self, tag):
        if tag == "span":
            self._badge = False
        elif tag == "thead":
            self._head = False
        elif tag == "h2":
            self.headings.append("".join(self._text))
            self._text = None
        elif tag in ("th", "td") and self._text is not None:
            self._row.append((tag, "".join(self._text)))
            self._text = None
        elif tag == "tr":
            table = self.tables[-1]
            if self._head:
                table["columns"] = [text for _, text in self._row]
            else:
                table["rows"].append(self._row)

    def handle_data(self, data):
        if self._text is not None and not self._badge:
            self._text.append(data)


def unlabelled(cells: list[tuple[str, str]], marks: str) -> list[str]:
    """``(column, text)`` cells that hold a digit outside a labelled number (a number
    followed by one of ``marks``), outside the columns of :data:`TEXT_COLUMNS`."""
    return [f"{column}: {text!r}" for column, text in cells
            if column not in TEXT_COLUMNS and re.search(r"\d", re.sub(f"(?:{NUMBER})[{marks}]", "", text))]


def html_cells(page: Page) -> list[tuple[str, str]]:
    """Every body cell but the row's name (a ``th``), with its column."""
    return [(t["columns"][i], text) for t in page.tables for row in t["rows"]
            for i, (tag, text) in enumerate(row) if tag == "td"]


def markdown_tables(text: str) -> list[dict]:
    """Each Markdown table's columns and rows of cells (the separator row left out)."""
    tables, block = [], []
    for line in text.splitlines() + [""]:
        if line.startswith("|"):
            block.append([c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]])
        elif block:
            tables.append({"columns": block[0], "rows": block[2:]})
            block = []
    return tables


def labelled_numbers(text: str, html: bool) -> list[tuple[str, str]]:
    """Every labelled number of a page, in order, with its kind."""
    if html:
        return re.findall(f'({NUMBER})<span class="k k-(\\w+)"', text)
    return [(n, MARKS[m]) for n, m in re.findall(f"({NUMBER})([{''.join(MARKS)}])", text)]


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_html_report_has_every_section_figure_and_label(kjv_html):
    page = Page(kjv_html)
    assert page.headings == SECTIONS
    assert page.figures == [f"figure-{name}" for name in FIGURES]
    assert len(page.images) == len(FIGURES)
    for image in page.images:  # embedded, and each a real PNG
        prefix, _, data = image["src"].partition(",")
        assert prefix == "data:image/png;base64"
        width, height = png_size(base64.b64decode(data, validate=True))
        assert width > 600 and height > 400
    assert not unlabelled(html_cells(page), BADGE), unlabelled(html_cells(page), BADGE)
    text = kjv_html.read_text(encoding="utf-8")
    assert {kind for _, kind in labelled_numbers(text, html=True)} == {"measured", "fitted", "extrapolated", "cited"}
    # nothing to fetch: no remote or local resource, and a policy that forbids any
    assert not re.search(r"<(script|link|iframe|object)\b|url\(|@import", text)
    assert all(src.startswith("data:") for src in re.findall(r'src="([^"]*)"', text))
    assert "default-src 'none'; img-src data:" in text


def test_html_report_measures_the_counts_and_the_neural_model(kjv_store, kjv_html):
    page = Page(kjv_html)
    text = kjv_html.read_text(encoding="utf-8")
    counts = next(t for t in page.tables if "stored bits per parameter" in t["columns"])
    rows = {row[0][1]: row for row in counts["rows"]}
    assert rows["classifier counts (unigrams and bigrams)"][3][1] == "gives no text back"
    generator = rows["text generator (order 6)"]
    assert generator[3][1].count(BADGE) == 3 and int(generator[4][1].rstrip(BADGE)) > 100  # rate (interval), prompts
    neural = json.loads((kjv_store / "capacity-neural.json").read_text())
    table = next(t for t in page.tables if "training tokens" in t["columns"])
    assert [row[0][1].split(":")[0] for row in table["rows"]] == ["300k", "n-gram generator (order 6)"]
    assert table["rows"][0][1][1] == f"{neural['sizes'][0]['parameters']:,}{BADGE}"
    assert all(row[-2][1].count(BADGE) == 3 for row in table["rows"])  # extractable (95 % interval)
    assert "not measured yet — run `accum capacity --neural`" not in text
    answer = next(t for t in page.tables if t["columns"] == ["step", "value", "from"])
    assert any(row[0][1] == "bits per parameter of the neural model 300k" for row in answer["rows"])


def test_html_report_measures_where_growth_levels_off(kjv_store, kjv_html):
    page = Page(kjv_html)
    info = accum_json("info", "--store", kjv_store)
    growing = next(t for t in page.tables if t["columns"][0] == "first pages")  # accum asymptote's scales
    assert [row[0][1] for row in growing["rows"]] == ["10", "100", f"{info['documents']:,}"]
    per_page = [float(row[1][1].rstrip(BADGE)) for row in growing["rows"]]  # held by >= 1 page
    assert per_page == sorted(per_page, reverse=True)  # fewer and fewer new features per page
    levelling = next(t for t in page.tables if t["columns"][0] == "category" and "pages" in t["columns"]
                     and "new as many pages again would bring (95 %)" in t["columns"])
    assert [row[0][1] for row in levelling["rows"]] == ["all pages", "kjv"]


def test_markdown_says_what_the_html_says(kjv_store, kjv_html, tmp_path):
    forecast = tmp_path / "forecast.json"
    forecast.write_text(accum("forecast", "--store", kjv_store, "--shuffles", "1", "--json").stdout)
    out = tmp_path / "report.md"
    proc = accum("report", "--store", kjv_store, "--out", out, "--forecast", forecast)
    assert "checking forecasts" not in proc.stderr  # taken from the recorded forecast
    text = out.read_text(encoding="utf-8")
    assert [line[3:] for line in text.splitlines() if line.startswith("## ")] == SECTIONS
    for name in FIGURES:  # beside it, referred to by a relative name
        assert f"](report.{name}.png)" in text
        width, _ = png_size((tmp_path / f"report.{name}.png").read_bytes())
        assert width > 600
    tables = markdown_tables(text)
    assert len(tables) == len(Page(kjv_html).tables)
    cells = [(t["columns"][i], c) for t in tables for row in t["rows"] for i, c in enumerate(row) if i > 0]
    assert not unlabelled(cells, "".join(MARKS)), unlabelled(cells, "".join(MARKS))
    numbers = labelled_numbers(text, html=False)
    assert len(numbers) > 200 and numbers == labelled_numbers(kjv_html.read_text(encoding="utf-8"), html=True)


def test_a_store_without_a_generator_says_what_is_not_measured(small_store, tmp_path):
    store, _, _ = small_store
    out = tmp_path / "report.html"
    accum("report", "--store", store, "--out", out, "--shuffles", "0")
    page = Page(out)
    assert page.headings == SECTIONS and page.figures == [f"figure-{name}" for name in FIGURES]
    text = out.read_text(encoding="utf-8")
    assert "This store keeps no text generator" in text
    assert "not measured — `accum capacity --neural` trains on the generator" in text
    assert "No category has 1,000 pages or more" in text
    assert not unlabelled(html_cells(page), BADGE)
    levelling = next(t for t in page.tables if t["columns"][0] == "category")
    assert [row[0][1] for row in levelling["rows"]][0] == "all pages" and len(levelling["rows"]) == 4


def test_errors(small_store, kjv_store, tmp_path):
    store, _, _ = small_store
    proc = accum("report", "--store", store, "--out", tmp_path / "r.pdf", check=False)
    assert proc.returncode == 2 and "takes a .html or .md file name" in proc.stderr
    proc = accum("report", "--store", tmp_path / "nowhere", "--out", tmp_path / "r.html", check=False)
    assert proc.returncode == 1 and "no accum store" in proc.stderr
    forecast = accum_json("forecast", "--store", kjv_store, "--shuffles", "0")
    (tmp_path / "other.json").write_text(json.dumps(forecast))
    proc = accum("report", "--store", store, "--out", tmp_path / "r.html", "--forecast", tmp_path / "other.json",
                 check=False)
    assert proc.returncode == 2 and "was made on another store or snapshot" in proc.stderr
    (tmp_path / "not.json").write_text("forecast\n")
    proc = accum("report", "--store", store, "--out", tmp_path / "r.html", "--forecast", tmp_path / "not.json",
                 check=False)
    assert proc.returncode == 2 and "is not JSON" in proc.stderr
    assert not (tmp_path / "r.html").exists()


def test_an_empty_store_is_a_clear_error(tmp_path):
    (tmp_path / "corpus" / "sci.space").mkdir(parents=True)
    (tmp_path / "corpus" / "sci.space" / "empty.txt").write_text("")
    accum("ingest", tmp_path / "corpus", "--label", "dir", "--no-fit", "--store", tmp_path / "store")
    proc = accum("report", "--store", tmp_path / "store", "--out", tmp_path / "r.html", check=False)
    assert proc.returncode == 1 and "is empty: run accum ingest first" in proc.stderr


def test_a_store_too_small_to_fit_is_a_clear_error(tmp_path):
    corpus = tmp_path / "corpus" / "sci.space"
    corpus.mkdir(parents=True)
    posts = sorted(corpus_path("20news-bydate/20news-bydate-train/sci.space").iterdir())[:2]
    for post in posts:
        (corpus / post.name).write_bytes(post.read_bytes())
    accum("ingest", corpus.parent, "--label", "dir", "--no-fit", "--store", tmp_path / "store")
    proc = accum("report", "--store", tmp_path / "store", "--out", tmp_path / "r.html", check=False)
    assert proc.returncode == 1 and "too few growth-log points to fit Heaps' law: ingest more pages" in proc.stderr


def test_report_in_headless_chromium(kjv_html, tmp_path, chromium_page):
    page = chromium_page
    requests, errors = [], []
    page.on("request", lambda r: requests.append(r.url))
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda m: m.type in ("error", "warning") and errors.append(m.text))
    page.goto(kjv_html.as_uri())
    page.wait_for_load_state("load")
    assert [u for u in requests if not u.startswith(("file:", "data:"))] == []
    sizes = page.eval_on_selector_all("img", "imgs => imgs.map(i => [i.complete, i.naturalWidth])")
    assert len(sizes) == len(FIGURES) and all(done and width > 600 for done, width in sizes)
    widths = page.eval_on_selector_all("section", "s => s.map(e => e.getBoundingClientRect().width)")
    assert len(widths) == len(SECTIONS) and all(0 < w <= 1280 for w in widths)
    shot = tmp_path / "report.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 100_000 and not errors, errors
    print(f"screenshot: {shot}")

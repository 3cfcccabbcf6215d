"""Hostile labels (issue #17, items 9 and 10): rules that backtrack forever, labels that
drive the terminal, JSON values that are not labels, and one label rule for the CLI,
the ingest loop and the HTTP service."""

import json
import math
import pickle
import subprocess
import sys
import textwrap
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from accum.ingest import MemorySink, ingest
from accum.pages import MAX_LABEL_BYTES, Page, Skipped, check_label
from accum.sources import open_source, parse_label_spec
from accum.sources.labels import LabelSpec, parse_rules

ACCUM = [sys.executable, "-m", "accum.cli"]
#: The OSC sequence that retitles a terminal window, and a CSI that clears the screen.
OSC_TITLE = "\x1b]0;pwned\x07"
CSI_CLEAR = "\x1b[2J"


def accum(*args, check=True):
    proc = subprocess.run([*ACCUM, *map(str, args)], capture_output=True, text=True, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"accum {' '.join(map(str, args))} exited {proc.returncode}:\n{proc.stderr}")
    return proc


def by_line(items):
    """{line number: Page or Skipped} of a JSONL/Parquet reader's output."""
    return {(i.meta.get("line") or i.meta.get("row")) if isinstance(i, Page) else int(i.source.rsplit("#", 1)[1]): i
            for i in items}


# -- 9. rules without a bound ------------------------------------------------------------------


def test_a_catastrophic_regex_rule_matches_in_linear_time(tmp_path):
    """``re:(a+)+$`` against a 50-character URL: Python's backtracking engine needs about
    2**50 steps (it took 5 s at 26 characters, 4x more per 2); RE2 answers at once.
    Run in a child process, so that on a backtracking engine the test fails by its
    timeout instead of hanging the suite."""
    rules = tmp_path / "evil.rules"
    rules.write_text("re:(a+)+$  evil\n*  other\n", encoding="utf-8")
    pages = tmp_path / "pages.jsonl"
    url = "http://x/" + "a" * 40 + "!"  # 50 characters, no match: the worst case
    pages.write_text(json.dumps({"url": url, "text": "some words"}) + "\n", encoding="utf-8")
    code = textwrap.dedent(f"""
        import time
        from accum.sources import open_source
        started = time.perf_counter()
        (page,) = open_source({str(pages)!r}, label={f"rules:{rules}"!r})
        print(page.label, time.perf_counter() - started)
    """)
    try:
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail("matching re:(a+)+$ against a 50-character URL did not finish in 30 s")
    label, seconds = proc.stdout.split()
    assert label == "other" and float(seconds) < 1.0, proc.stderr
    (rule, _) = parse_rules("re:(a+)+$  evil\n*  other\n")
    started = time.perf_counter()
    assert rule.matches("http://x/" + "a" * 100_000)
    assert not rule.matches("http://x/" + "a" * 100_000 + "!")
    assert time.perf_counter() - started < 0.5


def test_globs_with_many_stars_do_not_backtrack():
    """fnmatch makes each ``*`` an atomic group: 40 stars fail on a long URL at once."""
    (rule,) = parse_rules("*a" * 40 + "b  many")
    started = time.perf_counter()
    assert not rule.matches("http://x/" + "a" * 20_000)
    assert rule.matches("http://x/" + "a" * 20_000 + "b")
    assert time.perf_counter() - started < 0.5


@pytest.mark.parametrize("pattern, feature", [
    (r"(a)\1", "a backreference"),
    (r"(?P<x>a)(?P=x)", "a named backreference"),
    (r"course(?=\.html)", "a lookahead"),
    (r"(?<!www\.)cornell", "a negative lookbehind"),
    (r"(?>a+)b", "an atomic group"),
    (r"a\Z", r"RE2 writes \z"),
])
def test_patterns_re2_cannot_run_are_refused_with_their_line(tmp_path, pattern, feature):
    rules = tmp_path / "r.rules"
    rules.write_text(f"*.edu/*  edu\n# a comment\nre:{pattern}  x\n", encoding="utf-8")
    with pytest.raises(ValueError) as info:
        parse_label_spec(f"rules:{rules}")
    message = str(info.value)
    assert message.startswith(f"{rules}:3: regular expression {pattern!r} uses ")
    assert feature in message and "linear" in message and "shell glob" in message


def test_re2_rules_keep_their_meaning_and_survive_pickling():
    """Unicode, case-insensitive flags and first-match-wins as before; rules travel to
    Dask workers by pickle."""
    rules = parse_rules("re:(?i)/COURSE[s]?/  course\nre:^https?://[^/]*\\.café\\.fr/  café\n*  other\n")
    spec = pickle.loads(pickle.dumps(LabelSpec(kind="rules", rules_file="r", rules=rules)))
    assert spec.label_for_url("http://cs.edu/Courses/cs1") == "course"
    assert spec.label_for_url("https://www.café.fr/x") == "café"
    assert spec.label_for_url("http://elsewhere/") == "other"


# -- 10. the label rule ------------------------------------------------------------------------


@pytest.mark.parametrize("label, fragment", [
    ("", "blank"),
    ("  \t ", "blank"),
    ("line\nbreak", "a newline (U+000A) at character 5"),
    ("nul\x00", "a NUL (U+0000)"),
    (f"title{OSC_TITLE}", "an escape character (U+001B)"),
    ("c1\x9bcsi", "a control character (U+009B)"),
    ("para\u2029graph", "a paragraph separator"),
    ("lone\ud800", "lone surrogate"),
    ("é" * (MAX_LABEL_BYTES // 2 + 1), f"1,002 bytes in UTF-8, more than the {MAX_LABEL_BYTES:,}"),
])
def test_check_label_refuses_with_the_reason(label, fragment):
    with pytest.raises(ValueError) as info:
        check_label(label)
    assert fragment in str(info.value)


@pytest.mark.parametrize("label", ["sport", " padded ", "é" * (MAX_LABEL_BYTES // 2), "\u202eRTL", "日本 語", "a/b\\c"])
def test_check_label_keeps_good_labels_exactly(label):
    assert check_label(label) == label


def test_jsonl_bad_labels_are_malformed_blank_ones_are_no_label(tmp_path):
    path = tmp_path / "p.jsonl"
    labels = ["fine", "two\nlines", f"red{CSI_CLEAR}", "nul\x00here", "   ", "", "x" * (MAX_LABEL_BYTES + 1)]
    path.write_text("".join(json.dumps({"text": f"page {i}", "cat": c}) + "\n" for i, c in enumerate(labels)),
                    encoding="utf-8")
    items = by_line(open_source(path, label="field:cat"))
    assert items[1].label == "fine"
    for line in (2, 3, 4, 7):
        assert isinstance(items[line], Skipped) and items[line].reason == "malformed", items[line]
    assert "a newline" in items[2].detail and "escape character" in items[3].detail and "NUL" in items[4].detail
    assert items[5].label is None and items[6].label is None  # blank: --default-label applies, else no-label


def test_directory_and_rules_labels_follow_the_rule(tmp_path):
    root = tmp_path / "corpus"
    for name in ("good", "bad\x1b[31m"):
        (root / name).mkdir(parents=True)
        (root / name / "page.txt").write_text(f"a page in {name!r}", encoding="utf-8")
    items = sorted(open_source(root, label="dir"), key=lambda i: isinstance(i, Skipped))
    assert items[0].label == "good"
    assert isinstance(items[1], Skipped) and items[1].reason == "malformed" and "escape character" in items[1].detail
    rules = tmp_path / "r.rules"
    rules.write_text(f"*good*  good\n*  title{OSC_TITLE}\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"r\.rules:2: label .* contains an escape character"):
        parse_label_spec(f"rules:{rules}")


def test_ingest_skips_pages_built_elsewhere_with_bad_labels():
    """Pages that no reader checked (POST /documents, library users): the ingest loop
    applies the same rule."""
    from accum.accumulator import Accumulator, Settings

    records = [Page("u1", "ok", "first page"), Page("u2", "a\nb", "second page"),
               Page("u3", None, "third page"), Page("u4", "  ", "fourth page")]
    acc = Accumulator(Settings(gram_bits=0))
    summary = ingest(records, acc, MemorySink(), default_label=f"x{OSC_TITLE}", read_ahead_thread=False)
    assert summary.pages_added == 1 and summary.skipped == {"malformed": 3}
    assert "a newline" in summary.skip_examples["malformed"] and list(acc.categories) == ["ok"]


# -- non-string field values -------------------------------------------------------------------

NOT_A_LABEL = "labels must be strings or integers"


def test_jsonl_field_values_strings_and_integers_only(tmp_path):
    path = tmp_path / "p.jsonl"
    values = ["7", "sport", 7, 7.0, -3, True, False, 2.5, "NaN", "Infinity", None, ["a"], {"a": 1}]
    lines = [json.dumps({"text": f"page {i}", "cat": v}) if v not in ("NaN", "Infinity")
             else f'{{"text": "page {i}", "cat": {v}}}' for i, v in enumerate(values)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    items = by_line(open_source(path, label="field:cat"))
    assert [items[n].label for n in (1, 2, 3, 4, 5, 11)] == ["7", "sport", "7", "7", "-3", None]
    details = {n: items[n].detail for n in (6, 7, 8, 9, 10, 12, 13)}
    assert all(items[n].reason == "malformed" and NOT_A_LABEL in d for n, d in details.items()), details
    assert "label of field 'cat' is a boolean (true)" in details[6] and "a boolean (false)" in details[7]
    assert "a number with a fraction (2.5)" in details[8] and "NaN" in details[9]
    assert "an infinite number (inf)" in details[10] and "a list" in details[12] and "an object" in details[13]


def test_parquet_field_values_strings_and_integers_only(tmp_path):
    path = tmp_path / "p.parquet"
    table = pa.table({
        "text": [f"row {i}" for i in range(4)],
        "flag": [True, False, None, True],
        "score": [1.0, 2.5, math.nan, None],  # pandas writes an integer column with nulls so
        "year": pa.array([1999, None, -1, 2024], pa.int64()),
        "name": ["ok", "two\nlines", " ", "\x1b[1mbold"],
    })
    pq.write_table(table, path)

    def read(field):
        items = open_source(path, label=f"field:{field}")
        return [i.label if isinstance(i, Page) else (i.reason, i.detail) for i in items]

    flags = read("flag")
    assert flags[2] is None and all(f[0] == "malformed" and "a boolean" in f[1] and NOT_A_LABEL in f[1]
                                    for f in (flags[0], flags[1], flags[3]))
    scores = read("score")
    assert scores[0] == "1" and scores[3] is None
    assert "a number with a fraction (2.5)" in scores[1][1] and "NaN" in scores[2][1]
    assert read("year") == ["1999", None, "-1", "2024"]
    names = read("name")
    assert names[0] == "ok" and names[2] is None
    assert names[1][0] == "malformed" and "a newline" in names[1][1]
    assert names[3][0] == "malformed" and "escape character" in names[3][1]


# -- the command line: --default-label, and printing for a human -------------------------------


def test_default_label_is_checked_before_reading(tmp_path):
    pages = tmp_path / "p.jsonl"
    pages.write_text(json.dumps({"text": "words"}) + "\n", encoding="utf-8")
    proc = accum("ingest", pages, "--default-label", "two\nlines", "--store", tmp_path / "s", check=False)
    assert proc.returncode == 2 and "contains a newline" in proc.stderr
    assert not (tmp_path / "s" / "snapshots").exists()


@pytest.fixture(scope="module")
def hostile_store(tmp_path_factory):
    """A store written before the label rule, whose categories carry terminal escapes."""
    from accum.accumulator import Settings
    from accum.ingest import IngestSummary, content_hash, count_pages
    from accum.storage import Store

    path = tmp_path_factory.mktemp("hostile") / "store"
    labels = [f"title{OSC_TITLE}", f"clear{CSI_CLEAR}", "forged\nrow"]
    texts = ["puck goalie hockey ice", "orbit rocket launch space", "engine wheel car road"]
    store = Store(path, create=True)
    with store.writer({"sources": [], "label": "old"}, Settings(gram_bits=0)) as writer:
        summary = IngestSummary()
        pages = [(Page(f"old:{i}", label, text), content_hash(text), label)
                 for i, (label, text) in enumerate(zip(labels, texts))]
        rows = count_pages(writer.acc, writer.markov, pages, summary)
        writer.checkpoint(writer.acc, rows, writer.acc.take_growth(), summary)
    return path


def assert_escaped(output: str):
    assert "\x1b" not in output and "forged\nrow" not in output
    assert "title\\x1b]0;pwned\\x07" in output or "clear\\x1b[2J" in output or "forged\\nrow" in output


@pytest.mark.parametrize("command", [["categories"], ["classify", "the goalie stopped the puck", "--top", "3",
                                                      "--explain", "--model", "complement"],
                                     ["saturation", "--order", "1"]])
def test_human_output_escapes_control_characters(hostile_store, command):
    proc = accum(*command, "--store", hostile_store)
    assert_escaped(proc.stdout)
    as_json = accum(*command, "--store", hostile_store, "--json").stdout
    assert "\x1b" not in as_json and ("\\u001b]0;pwned\\u0007" in as_json or "\\u001b[2J" in as_json)


def test_unknown_category_error_escapes_the_list(hostile_store):
    proc = accum("saturation", "--category", "nope", "--store", hostile_store, check=False)
    assert proc.returncode == 2 and "no category 'nope'" in proc.stderr
    assert_escaped(proc.stderr)


def test_ingest_summary_and_evaluate_table_escape_control_characters(tmp_path):
    from accum.cli.evaluate_cmd import echo_report

    pages = tmp_path / "p.jsonl"
    pages.write_text(json.dumps({"url": f"http://x/{OSC_TITLE}", "text": "no label here"}) + "\n"
                     + json.dumps({"url": "http://x/ok", "text": "words here", "cat": "ok"}) + "\n", encoding="utf-8")
    proc = accum("ingest", pages, "--label", "field:cat", "--store", tmp_path / "s", "--quiet")
    assert "e.g. no-label: http://x/\\x1b]0;pwned\\x07" in proc.stdout
    assert "\x1b" not in proc.stdout

    import click.testing

    report = {"accuracy": 1.0, "macro_f1": 1.0, "n": 1, "skipped": {},
              "calibration": {"ece": 0.0, "temperature": 1.0, "confidence_ece": 0.0, "calibrated_confidence": True},
              "abstention": {"min_confidence": 0.0},
              "per_category": {f"clear{CSI_CLEAR}": {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 1}}}
    runner = click.testing.CliRunner()
    result = runner.invoke(click.command()(lambda: echo_report(report)))
    assert result.exit_code == 0 and "clear\\x1b[2J" in result.output and "\x1b" not in result.output


# -- the service applies the same rule ---------------------------------------------------------


def test_service_refuses_the_labels_ingest_refuses_with_the_same_reason():
    pytest.importorskip("fastapi", reason="accum serve needs the serve extra: pip install -e '.[serve]'")
    from pydantic import ValidationError

    from accum.cli.service.schemas import DocumentIn

    for label in ["two\nlines", f"t{OSC_TITLE}", "   ", "x" * (MAX_LABEL_BYTES + 1), "nul\x00"]:
        with pytest.raises(ValueError) as engine:
            check_label(label)
        with pytest.raises(ValidationError) as api:
            DocumentIn(url="u", label=label, text="t")
        (error,) = api.value.errors()
        assert error["loc"] == ("label",) and error["msg"] == f"Value error, {engine.value}"
    long_but_fine = "é" * (MAX_LABEL_BYTES // 2)  # 500 characters: refused before (200), fine for accum ingest
    assert DocumentIn(url="u", label=long_but_fine, text="t").label == long_but_fine


def test_post_documents_answers_422_with_the_engine_reason(tmp_path):
    pytest.importorskip("fastapi", reason="accum serve needs the serve extra: pip install -e '.[serve]'")
    pytest.importorskip("httpx", reason="the service tests need the test extra: pip install -e '.[test]'")
    from fastapi.testclient import TestClient

    from accum.cli.service.app import ServeConfig, create_app
    from accum.storage import Store

    Store(tmp_path / "s", create=True)
    app = create_app(ServeConfig(store=str(tmp_path / "s"), token="secret"))
    with TestClient(app, base_url="http://127.0.0.1") as client:  # a Host the service answers to
        r = client.post("/documents", json=[{"url": "u", "label": "a\nb", "text": "words"}],
                        headers={"Authorization": "Bearer secret"})
    assert r.status_code == 422
    with pytest.raises(ValueError) as engine:
        check_label("a\nb")
    reason = str(engine.value)[:120]  # the service may shorten long messages
    assert r.json()["message"].startswith(f"0.label: Value error, {reason}")

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
from accum.pages import Page, Skipped
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

"""Property tests: no input makes a reader raise; every item is a storable Page or Skipped.

Every reader is fuzzed: WARC, JSONL, HTML and plain files (any bytes and mutated samples),
Parquet files (random schemas and column types, nulls, huge strings, invalid UTF-8,
corrupted and truncated bytes) and directory trees (odd names, symlink loops, empty and
unreadable files, FIFOs, deep nesting). Under CI the six tests draw 10,000 inputs in all
(see ``CI_EXAMPLES``); locally 150 each; ``ACCUM_FUZZ_EXAMPLES`` sets the number of each.
With ``ACCUM_FUZZ_REPORT=1`` each test prints the items it saw, by kind and skip reason.
"""

from __future__ import annotations

import atexit
import contextlib
import fnmatch
import gzip
import io
import json
import os
import random
import shutil
import signal
import tempfile
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from accum.pages import SKIP_REASONS, Page, Skipped
from accum.sources import DEFAULT_EXCLUDE, open_source
from accum.sources.formats import SNIFF_BYTES, sniff_format
from accum.sources.records import MAX_LABEL_BYTES, display_path
from accum.storage.catalog import MAX_URL_BYTES, catalog_url

#: Inputs per test under CI: 10,000 in all, more where an input is cheap to make.
CI_EXAMPLES = {"warc": 1800, "jsonl": 1000, "html": 1600, "plain": 1600, "parquet": 2200, "dir": 1800}


def fuzz(reader: str):
    """Hypothesis settings for the test of ``reader`` (see the module docstring)."""
    if os.environ.get("ACCUM_FUZZ_EXAMPLES"):
        n = int(os.environ["ACCUM_FUZZ_EXAMPLES"])
    else:
        n = CI_EXAMPLES[reader] if os.environ.get("CI") else 150
    return settings(max_examples=n, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.function_scoped_fixture])


#: Per reader: inputs tried, and the items they gave by kind and skip reason.
TALLY: dict[str, Counter] = {}


def _report():
    if os.environ.get("ACCUM_FUZZ_REPORT"):
        for reader, counts in TALLY.items():
            print(f"fuzz {reader}: " + ", ".join(f"{k} {v:,}" for k, v in sorted(counts.items())))


atexit.register(_report)


def tally(reader: str, items=(), **extra) -> None:
    counts = TALLY.setdefault(reader, Counter())
    counts["inputs"] += 1
    for item in items:
        counts["page" if isinstance(item, Page) else f"skipped:{item.reason}"] += 1
    counts.update(extra)


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
    max_leaves=6,
)
#: A record that is mostly right: a text, maybe a URL and a label (any characters: NUL,
#: lone surrogates, newlines, quotes), or other JSON values in their place.
jsonl_record = st.fixed_dictionaries(
    {"text": st.one_of(st.text(max_size=80), st.text(max_size=80), json_value)},
    optional={"url": st.one_of(st.text(max_size=40), json_value), "label": st.one_of(st.text(max_size=20), json_value),
              "x": json_value},
)
jsonl_bytes = st.one_of(
    st.binary(max_size=2000),
    st.lists(
        st.one_of(
            jsonl_record.map(json.dumps),
            jsonl_record.map(json.dumps),
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
    """Where the inputs are written: a memory file system when there is one (rewriting a
    file there costs no disk I/O), else a temporary directory."""
    if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK):
        path = Path(tempfile.mkdtemp(prefix="accum-fuzz-", dir="/dev/shm"))
        yield path
        shutil.rmtree(path, ignore_errors=True)
    else:
        yield tmp_path_factory.mktemp("fuzz")


def _check_items(items):
    for item in items:
        assert isinstance(item, (Page, Skipped))
        if isinstance(item, Skipped):
            assert item.reason in SKIP_REASONS
            item.source.encode("utf-8")
            continue
        assert item.text.strip()
        for value in (item.text, item.url, item.label or ""):
            value.encode("utf-8")  # storable: no lone surrogates
            assert "\x00" not in value  # nor NUL (PostgreSQL text cannot hold it)
        assert item.label is None or 0 < len(item.label.encode("utf-8")) <= MAX_LABEL_BYTES
        assert len(catalog_url(item.url).encode("utf-8")) <= MAX_URL_BYTES + 3
        assert set(item.meta) >= {"source", "content_type", "charset", "bytes"}
    return items


#: Seconds one input may take to read before the test calls it a hang.
HANG_SECONDS = 30


@contextlib.contextmanager
def no_hang():
    """Fail (instead of waiting forever) when the block takes over HANG_SECONDS."""
    def alarm(signum, frame):
        raise AssertionError(f"reading one input took over {HANG_SECONDS} s: a hang")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, HANG_SECONDS)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _read_all(path, **options):
    with no_hang():
        return _check_items(list(open_source(path, **options)))


@fuzz("warc")
@given(data=warc_bytes)
def test_any_bytes_as_warc(workdir, data):
    path = workdir / "fuzz.warc"
    path.write_bytes(data)
    items = _read_all(path, max_page_bytes=200)
    tally("warc", items)
    # a cut-off stream ends the file: at most one "truncated", and it comes last
    truncated = [i for i in items if isinstance(i, Skipped) and i.reason == "truncated"]
    assert len(truncated) <= 1 and (not truncated or items[-1] is truncated[0])


@fuzz("jsonl")
@given(data=jsonl_bytes)
def test_any_bytes_as_jsonl(workdir, data):
    path = workdir / "fuzz.jsonl"
    path.write_bytes(data)
    tally("jsonl", _read_all(path, fmt="jsonl", label="field:label", max_page_bytes=100))


@fuzz("html")
@given(data=text_bytes)
def test_any_bytes_as_html(workdir, data):
    path = workdir / "fuzz.html"
    path.write_bytes(data)
    items = _read_all(path)
    tally("html", items)
    assert len(items) == 1 or data.startswith(b"WARC/")  # a WARC is detected by its content


@fuzz("plain")
@given(data=text_bytes)
def test_any_bytes_as_plain_file(workdir, data):
    path = workdir / "fuzz"
    path.write_bytes(data)
    items = _read_all(path, max_page_bytes=1000)
    tally("plain", items)
    assert len(items) == 1 or data.startswith(b"WARC/")


# -- Parquet ------------------------------------------------------------------------------

#: Column names: the ones the reader is asked for, and others.
PARQUET_NAMES = ["text", "url", "label", "x", "Text", "", "t\u00e9xt", "a.b", "text "]
#: Column types by name; values are made from a seed (cheap), the shapes by hypothesis.
PARQUET_TYPES = ["string", "large_string", "binary", "large_binary", "bad_utf8", "huge_string", "int64", "float64",
                 "bool", "null", "list", "struct", "dictionary", "timestamp", "date", "decimal", "fixed_binary",
                 "map"]
_ALPHABET = "ab c\u00e9\u65e5\U0001f600\n\t\"'<>&\\\u202e\u0301\ufffd"


def _random_text(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(_ALPHABET) for _ in range(n))


def _parquet_column(kind: str, n: int, rng: random.Random, nulls: float) -> pa.Array:
    def maybe(make):
        return [None if rng.random() < nulls else make() for _ in range(n)]

    if kind in ("string", "large_string"):
        return pa.array(maybe(lambda: _random_text(rng, rng.randrange(0, 40))), pa.string() if kind == "string"
                        else pa.large_string())
    if kind == "huge_string":  # one row of 100 kB, or one over the default cap of 5 MiB
        size = 6 * 2**20 if rng.random() < 0.1 else 100_000
        return pa.array([("word " * (size // 5)) if i == 0 else "w x" for i in range(n)], pa.large_string())
    if kind in ("binary", "large_binary"):
        return pa.array(maybe(lambda: rng.randbytes(rng.randrange(0, 60))), pa.binary() if kind == "binary"
                        else pa.large_binary())
    if kind == "bad_utf8":  # a string column holding bytes that are not UTF-8 (no writer checks)
        data = maybe(lambda: rng.choice([b"\xff\xfe bad", b"ok \xc3", b"\xed\xa0\x80 surrogate", rng.randbytes(9)]))
        return pa.array(data, pa.binary()).view(pa.string())
    if kind == "int64":
        return pa.array(maybe(lambda: rng.randrange(-2**63, 2**63)), pa.int64())
    if kind == "float64":
        return pa.array(maybe(lambda: rng.choice([0.5, float("nan"), float("inf"), -0.0, 1e308])), pa.float64())
    if kind == "bool":
        return pa.array(maybe(lambda: rng.random() < 0.5), pa.bool_())
    if kind == "null":
        return pa.nulls(n)
    if kind == "list":
        return pa.array(maybe(lambda: [_random_text(rng, 3) for _ in range(rng.randrange(3))]), pa.list_(pa.string()))
    if kind == "struct":
        return pa.array(maybe(lambda: {"a": _random_text(rng, 4), "b": rng.randrange(9)}),
                        pa.struct([("a", pa.string()), ("b", pa.int64())]))
    if kind == "dictionary":
        return pa.array(maybe(lambda: rng.choice(["sci", "news", "\u00e9t\u00e9", ""])), pa.string()).dictionary_encode()
    if kind == "timestamp":  # also far outside the years Python's datetime can hold
        return pa.array(maybe(lambda: rng.choice([rng.randrange(0, 2**40), rng.randrange(-2**63, 2**63)])),
                        pa.timestamp("ms"))
    if kind == "date":
        return pa.array(maybe(lambda: rng.choice([rng.randrange(0, 40000), rng.randrange(-2**31, 2**31)])),
                        pa.date32())
    if kind == "decimal":
        import decimal

        return pa.array(maybe(lambda: decimal.Decimal(rng.randrange(-999, 999)) / 10), pa.decimal128(6, 1))
    if kind == "fixed_binary":
        return pa.array(maybe(lambda: rng.randbytes(4)), pa.binary(4))
    if kind == "map":
        return pa.array(maybe(lambda: [("k", _random_text(rng, 3))]), pa.map_(pa.string(), pa.string()))
    raise AssertionError(kind)


TEXT_TYPES = ["string", "large_string", "binary", "large_binary", "bad_utf8", "huge_string", "null", "dictionary"]
parquet_inputs = st.fixed_dictionaries({
    # mostly a text column of a string-like type (else the source is refused when opened)
    "text": st.sampled_from(TEXT_TYPES * 4 + PARQUET_TYPES + [None]),
    "label_column": st.sampled_from(["string", "dictionary", "int64", "bool", "float64", "bad_utf8"] * 2
                                    + PARQUET_TYPES + [None]),
    "columns": st.dictionaries(st.sampled_from(PARQUET_NAMES), st.sampled_from(PARQUET_TYPES), max_size=3),
    "rows": st.integers(0, 40),
    "nulls": st.sampled_from([0.0, 0.2, 1.0]),
    "seed": st.integers(0, 2**32),
    "row_group": st.sampled_from([1, 7, 64, 1000]),
    "compression": st.sampled_from(["none", "snappy", "gzip", "zstd"]),
    "corrupt": st.one_of(st.none(), edits, st.integers(0, 10**6)),  # byte edits, or a cut at a point
    "label": st.sampled_from([None, "field:label", "field:label", "field:x", "field:text"]),
    "max_page_bytes": st.sampled_from([20, 1000, 5 * 2**20]),
})


@fuzz("parquet")
@given(case=parquet_inputs)
def test_any_parquet_file(workdir, case):
    rng = random.Random(case["seed"])
    n = case["rows"]
    columns = dict(case["columns"])
    for name, kind in (("text", case["text"]), ("label", case["label_column"])):
        if kind is not None:
            columns[name] = kind
    arrays = {name: _parquet_column(kind, n, rng, case["nulls"]) for name, kind in columns.items()}
    table = pa.table(arrays) if arrays else pa.table({"x": pa.nulls(n)}).drop(["x"])
    buf = io.BytesIO()
    pq.write_table(table, buf, row_group_size=case["row_group"], compression=case["compression"])
    data = buf.getvalue()
    corrupt = case["corrupt"]
    if isinstance(corrupt, int):
        data = data[: corrupt % (len(data) + 1)]
    elif corrupt:
        data = _mutate(data, corrupt)
    path = workdir / "fuzz.parquet"
    path.write_bytes(data)
    options = dict(label=case["label"], max_page_bytes=case["max_page_bytes"])
    try:
        reader = open_source(path, **options)
    except ValueError as exc:  # a usage problem, said when the source is opened: a missing or non-text column
        assert "column" in str(exc), exc
        tally("parquet", usage_error=1)
        return
    with no_hang():
        items = _check_items(list(reader))
    tally("parquet", items)
    if corrupt is None:  # an intact file: one item per row
        assert len(items) == n, (len(items), n)


# -- directory trees ----------------------------------------------------------------------

ODD_NAMES = ["it's", 'say "hi"', "new\nline", "tab\tname", " lead", "trail ", "\u00fcn\u00efc\u00f6d\u00e9", "\u65e5\u672c\u8a9e",
             "emoji \U0001f600", "back\\slash", "-n", "*?[glob]", "%41%00", "$(echo x)", "a;b|c&d", "\u202eRTL",
             "e\u0301", "\ufeffbom", "x" * 255, "\u00e9" * 127, "README.txt", ".hidden", "MANIFEST.tsv", "CON",
             "http:^^example.com^a^b.html", "file:^^^etc^passwd", "\r", "~", " "]
_name_text = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="/\x00"), min_size=1, max_size=12)
dir_names = st.one_of(
    st.sampled_from(ODD_NAMES).map(os.fsencode),
    _name_text.map(lambda t: t.encode("utf-8")),
    st.binary(min_size=1, max_size=12).map(lambda b: b.replace(b"/", b"_").replace(b"\x00", b"_")),  # not UTF-8
).filter(lambda b: b not in (b".", b"..") and len(b) <= 255)
DIR_KINDS = ["file", "file", "file", "empty", "dir", "dir", "deep", "link_file", "link_dir", "loop", "dangling",
             "fifo", "proc_mem", "no_perm_file", "no_perm_dir"]
tree_entries = st.lists(
    st.tuples(st.integers(0, 20), dir_names, st.sampled_from(DIR_KINDS),
              st.one_of(st.binary(max_size=200), text_bytes)),
    max_size=14,
)
PATH_MAX = 4096  # Linux: a path of PATH_MAX bytes or more cannot be opened or listed


class Tree:
    """A directory tree built for one input, with the items the reader must give for it."""

    def __init__(self, root: bytes):
        self.root = root
        os.mkdir(root)
        self.dirs = [(root, ())]  # (path, relative components) of the directories to add to
        self.files: list[bytes] = []
        self.expected: dict[str, tuple | None] = {}  # reader source -> relative dirs of a file (None: a directory)
        self.paths: dict[str, bytes] = {}  # reader source -> the file's path
        self.restore: list[bytes] = []  # chmod 000 entries, to make removable again

    def visible(self, rel: tuple) -> bool:
        return not any(fnmatch.fnmatchcase(os.fsdecode(part), pattern) for part in rel for pattern in DEFAULT_EXCLUDE)

    def expect_file(self, path: bytes, rel: tuple) -> None:
        if self.visible(rel):
            self.expected[display_path(os.fsdecode(path))] = rel[:-1]
            self.paths[display_path(os.fsdecode(path))] = path

    def is_container(self, source: str) -> bool:
        """Whether the file is read as WARC, JSON Lines or Parquet (any number of items)."""
        path = self.paths.get(source)
        try:
            with open(path, "rb") as fh:
                head = fh.read(SNIFF_BYTES)
        except (OSError, TypeError):
            return False
        return sniff_format(os.fsdecode(os.path.basename(path)), head) != "text"

    def add(self, parent: int, name: bytes, kind: str, content: bytes, rng: random.Random) -> None:
        base, rel = self.dirs[parent % len(self.dirs)]
        path, rel = base + b"/" + name, rel + (name,)
        if os.path.lexists(path) or len(path) >= PATH_MAX:
            return
        if kind in ("file", "empty", "no_perm_file"):
            with open(path, "wb") as fh:
                fh.write(b"" if kind == "empty" else content)
            self.files.append(path)
            if kind == "no_perm_file":
                os.chmod(path, 0)
                self.restore.append(path)
            self.expect_file(path, rel)
        elif kind in ("dir", "no_perm_dir"):
            os.mkdir(path)
            if kind == "no_perm_dir":
                with open(path + b"/inside", "wb") as fh:
                    fh.write(content)
                os.chmod(path, 0)
                self.restore.append(path)
                try:
                    os.listdir(path)  # root reads it anyway
                except PermissionError:
                    if self.visible(rel):
                        self.expected[display_path(os.fsdecode(path))] = None
                    return
                self.expect_file(path + b"/inside", rel + (b"inside",))
            self.dirs.append((path, rel))
        elif kind == "deep":  # a chain of long names, past PATH_MAX; a file at its end
            self._deep(path, rel, rng.randrange(2, 40), rng.choice([8, 120, 250]), content)
        elif kind == "link_file" and self.files:
            os.symlink(rng.choice(self.files), path)
            self.expect_file(path, rel)
        elif kind == "link_dir":  # to an ancestor: a cycle if followed
            os.symlink(rng.choice([b"..", b".", self.root]), path)
        elif kind == "loop":  # two links to each other
            partner = name[:254] + b"~" if not name.endswith(b"~") else name[:254] + b"="
            os.symlink(partner, path)
            if not os.path.lexists(base + b"/" + partner) and len(base + b"/" + partner) < PATH_MAX:
                os.symlink(name, base + b"/" + partner)
                self.expect_file(base + b"/" + partner, rel[:-1] + (partner,))
            self.expect_file(path, rel)
        elif kind == "dangling":
            os.symlink(b"no such target", path)
        elif kind == "fifo":
            os.mkfifo(path)
        elif kind == "proc_mem" and os.path.exists("/proc/self/mem"):
            os.symlink(b"/proc/self/mem", path)  # a regular file that no one can read
            self.expect_file(path, rel)

    def _deep(self, path: bytes, rel: tuple, depth: int, width: int, content: bytes) -> None:
        fd = os.open(os.path.dirname(path), os.O_RDONLY | os.O_DIRECTORY)
        try:
            name = os.path.basename(path)
            for level in range(depth):
                os.mkdir(name, dir_fd=fd)
                if self.visible(rel) and len(path) >= PATH_MAX and all(
                        v is not None or not path.startswith(os.fsencode(k)) for k, v in self.expected.items()):
                    # the first directory the reader cannot list: one unreadable item, nothing below
                    self.expected[display_path(os.fsdecode(path))] = None
                    return
                inner = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
                os.close(fd)
                fd = inner
                name = (b"d%d-" % level).ljust(width, b"d")
                path, rel = path + b"/" + name, rel + (name,)
            with open(os.open(b"end", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd), "wb") as fh:
                fh.write(content)
            path, rel = path[: -len(name)] + b"end", rel[:-1] + (b"end",)
            self.expect_file(path, rel)  # over PATH_MAX it is one unreadable item
        finally:
            os.close(fd)

    def remove(self) -> None:
        for path in self.restore:
            os.chmod(path, 0o755)
        shutil.rmtree(self.root)


@fuzz("dir")
@given(entries=tree_entries, label=st.sampled_from(["dir", "dir:2", None]), seed=st.integers(0, 2**32),
       max_page_bytes=st.sampled_from([50, 5 * 2**20]))
def test_any_directory_tree(workdir, entries, label, seed, max_page_bytes):
    rng = random.Random(seed)
    tree = Tree(os.fsencode(workdir / "tree"))
    try:
        for parent, name, kind, content in entries:
            tree.add(parent, name, kind, content, rng)
        with no_hang():
            items = _check_items(list(open_source(os.fsdecode(tree.root), label=label,
                                                  max_page_bytes=max_page_bytes)))
        tally("dir", items, files=len(tree.expected))
        # one item per file the walk reaches (a Skipped for a directory it cannot list), none
        # twice; a container file (WARC, JSON Lines, Parquet) gives one per record instead
        sources = [item.meta["source"] if isinstance(item, Page) else item.source for item in items]
        per_file = Counter(s if s in tree.expected else s.rpartition("#")[0] for s in sources)
        assert set(per_file) <= set(tree.expected), (sorted(sources), sorted(tree.expected))
        for source in tree.expected:
            assert per_file[source] == 1 or tree.is_container(source), (source, sorted(sources))
        level = {"dir": 1, "dir:2": 2}.get(label)
        for item in items:
            if isinstance(item, Page):
                dirs = tree.expected[item.meta["source"]]
                want = os.fsdecode(dirs[level - 1]) if level and len(dirs) >= level else None
                if want is not None:  # each byte that is not UTF-8 becomes U+FFFD
                    want = "".join("\ufffd" if "\udc80" <= ch <= "\udcff" else ch for ch in want)
                if want is not None and not want.strip():
                    want = None  # a blank label is no label (accum.pages.check_label)
                assert item.label == want, (item.label, dirs)
    finally:
        tree.remove()

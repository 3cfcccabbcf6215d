"""Hostile input to the readers (issue #17): links out of a corpus, container files inside
directories, cut gzip members, deeply nested HTML, binary data named ``.html``, files of
blank lines and giant tokens. Real files, real symbolic links, real gzip members."""

import json
import os
import subprocess
import sys

import pytest

from accum.pages import Page, Skipped
from accum.sources import open_source
from accum.sources.partition import plan_parts

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
    assert "--follow-links" in skip.detail and str(linked_corpus.parent / "secret.txt") in skip.detail
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
    from accum.cli.common import store_pages
    from accum.storage import Store

    plain = accum_json("ingest", linked_corpus, "--label", "dir", "--store", tmp_path / "plain")
    assert plain["skipped"] == {"outside-root": 2} and plain["pages_added"] == 1
    assert "secret.txt" in plain["skip_examples"]["outside-root"]

    store = tmp_path / "followed"
    followed = accum_json("ingest", linked_corpus, "--label", "dir", "--follow-links", "--store", store)
    assert followed["skipped"] == {} and followed["pages_added"] == 3
    st = Store(store)
    try:
        assert st.info()["runs"][-1]["command"]["follow_links"] is True
        texts, cats = store_pages(st)  # re-reads the sources as the run did: through the links
        assert len(texts) == 3 and sorted(cats) == ["a", "a", "b"]
    finally:
        st.engine.dispose()

"""Writes that the disk refuses: a full file system, a read-only store, a file-size limit.

Every write command (``accum ingest``, ``accum calibrate``) run as a real subprocess must
exit with status 1 and a one-line message (no traceback), and leave the store exactly as
it was: the same documents, categories, growth log, snapshots, settings and model (the
failed run may be recorded as ``failed``); the store still opens for reading, and once
there is room the same ingest resumes to exactly the counts of an undisturbed one.

The full disk is a small tmpfs mounted for the test and filled to a chosen number of free
bytes; the read-only store is a read-only bind mount of a store directory (root ignores
file modes, so ``chmod`` alone would not stop a write). Both need ``mount``
(CAP_SYS_ADMIN, as root on the CI machine): without it the tests fail under CI and skip
elsewhere. The file-size limit (``RLIMIT_FSIZE``, EFBIG) needs no privilege.
"""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from accum.storage import Store
from accum.storage import catalog as cat

from corpora import corpus_path

TRAIN = "20news-bydate/20news-bydate-train"
FIRST = {"alt.atheism": slice(0, 20), "comp.graphics": slice(0, 20), "sci.space": slice(0, 20)}
SECOND = {"alt.atheism": slice(-40, None), "rec.autos": slice(-40, None), "talk.politics.misc": slice(-40, None)}
PAGE = 4096  # tmpfs allocates whole pages


def accum(*args, limit_file_size: int | None = None) -> subprocess.CompletedProcess:
    """Run the real CLI (``python -m accum.cli``)."""

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_file_size, limit_file_size))

    return subprocess.run([sys.executable, "-m", "accum.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=300, preexec_fn=limit if limit_file_size else None)


def ingest_args(corpus, store, db=None):
    """``accum ingest`` of a corpus, without the model fit that follows an ingest (its own
    writes are tested apart)."""
    return ["ingest", corpus, "--label", "dir", "--follow-links", "--store", store, "--quiet", "--json", "--no-fit",
            *(["--db", db] if db else [])]


def assert_clean_failure(proc, *phrases):
    """Exit 1, an ``Error:`` message naming one of ``phrases``, no traceback."""
    assert proc.returncode == 1, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.startswith("Error: "), proc.stderr
    assert any(p in proc.stderr for p in phrases), proc.stderr
    assert proc.stdout == ""


def _link_corpus(out: Path, groups: dict) -> Path:
    root = corpus_path(TRAIN)
    for group, part in groups.items():
        (out / group).mkdir(parents=True)
        for f in sorted((root / group).iterdir())[part]:
            (out / group / f.name).symlink_to(f)
    return out


def store_state(path, db=None) -> dict:
    """Everything a store holds, by value (catalog rows by name, not id; the model's counts)."""
    store = Store(path, db=db)
    d, c, g, s, r = cat.documents, cat.categories, cat.growth, cat.snapshots, cat.runs
    try:
        with store.engine.connect() as conn:
            names = dict(conn.execute(sa.select(c.c.id, c.c.name)).all())
            state = {
                "documents": sorted((row.content_hash, row.url, names[row.category_id], row.n_tokens, row.n_bytes)
                                    for row in conn.execute(sa.select(d))),
                "growth": sorted((names.get(row.category_id, ""), row.pages, row.tokens, row.order, row.distinct,
                                  row.singletons, row.doubletons, row.at_least_k) for row in conn.execute(sa.select(g))),
                "snapshots": [(row.name, row.n_documents, row.n_tokens, row.n_features, row.bytes)
                              for row in conn.execute(sa.select(s).order_by(s.c.id))],
                "meta": dict(conn.execute(sa.select(cat.meta.c.key, cat.meta.c.value)).all()),
                "runs": [(row.id, row.status, row.command, row.summary)
                         for row in conn.execute(sa.select(r).order_by(r.c.id))],
            }
        acc = store.load()
        state["model"] = (acc.categories, acc.doc_counts.tolist(), acc.token_counts.tolist(), acc.canonical())
        del acc
    finally:
        store.engine.dispose()
    snap_dir = Path(path) / "snapshots"
    state["files"] = sorted((str(f.relative_to(snap_dir)), f.stat().st_size) for f in snap_dir.rglob("*") if f.is_file())
    return state


def assert_unchanged(before: dict, after: dict) -> None:
    """``after`` holds what ``before`` held; the runs gained at most one ``failed`` run."""
    for key in before:
        if key != "runs":
            assert after[key] == before[key], f"the store's {key} changed"
    assert after["runs"][: len(before["runs"])] == before["runs"]
    assert [run[1] for run in after["runs"][len(before["runs"]):]] in ([], ["failed"])


def content(state: dict) -> dict:
    """The data of a state (no run ids, run log or snapshot names)."""
    return {"documents": state["documents"], "growth": state["growth"], "model": state["model"],
            "settings": state["meta"]["settings"]}


# -- mounts -----------------------------------------------------------------------------


def _mount_problem() -> str | None:
    probe = Path(os.environ.get("TMPDIR", "/tmp")) / f"accum-mount-probe-{uuid.uuid4().hex[:8]}"
    probe.mkdir()
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(probe)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            return f"mount is not permitted here ({done.stderr.strip() or done.returncode})"
        subprocess.run(["umount", str(probe)], check=True)
        return None
    except FileNotFoundError:
        return "no mount command"
    finally:
        probe.rmdir()


@pytest.fixture(scope="module")
def can_mount():
    problem = _mount_problem()
    if problem:
        message = f"a full disk and a read-only store need mount (CAP_SYS_ADMIN): {problem}"
        if os.environ.get("CI"):  # CI runs as root on this kind of machine: mount must work
            pytest.fail(message)
        pytest.skip(message)


@contextlib.contextmanager
def mounted(target: Path, *args: str):
    """``mount ARGS... target`` for the duration of the block."""
    target.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", *args, str(target)], check=True, capture_output=True)
    try:
        yield target
    finally:
        if subprocess.run(["umount", str(target)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(target)], check=True)  # an mmap not yet collected


@contextlib.contextmanager
def read_only_view(directory: Path, view: Path):
    """``view``: a read-only bind mount of ``directory``."""
    with mounted(view, "--bind", str(directory)):
        subprocess.run(["mount", "-o", "remount,bind,ro", str(view)], check=True, capture_output=True)
        yield view


def fill(directory: Path, leave: int) -> int:
    """Fill the file system of ``directory`` until ``leave`` bytes are free; return the free bytes."""
    def free():
        st = os.statvfs(directory)
        return st.f_bavail * st.f_frsize

    fd = os.open(directory / f"filler-{uuid.uuid4().hex[:6]}", os.O_WRONLY | os.O_CREAT)
    try:
        chunk = bytes(1 << 20)
        while (want := free() - leave) > 0:
            try:
                os.write(fd, chunk[:want])
            except OSError:
                break
    finally:
        os.close(fd)
    return free()


def unfill(directory: Path) -> None:
    for f in directory.glob("filler-*"):
        f.unlink()


# -- corpora and reference stores --------------------------------------------------------


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Two real 20 Newsgroups samples (60 and 120 posts), a store holding the first
    (``base``), and a store that ingested both undisturbed (``reference``)."""
    root = tmp_path_factory.mktemp("failures")
    first = _link_corpus(root / "first", FIRST)
    second = _link_corpus(root / "second", SECOND)
    base, reference = root / "base", root / "reference"
    for store, corpora in ((base, [first]), (reference, [first, second])):
        for corpus in corpora:
            assert accum(*ingest_args(corpus, store)).returncode == 0
    second_snapshot = max((reference / "snapshots").iterdir())
    second_segment = max((reference / "vectors").iterdir())  # written before the snapshot
    need = sum(-(-f.stat().st_size // PAGE) * PAGE for f in [*second_snapshot.iterdir(), second_segment])
    return {"first": first, "second": second, "base": base, "reference": store_state(reference),
            "snapshot_bytes": need, "root": root}


def resume(store: Path, corpus: Path, db=None) -> None:
    """The same ingest again, in process (what the user does once there is room)."""
    from accum.cli.common import read_sources

    st = Store(store, db=db, create=True)
    try:
        st.ingest(read_sources([str(corpus)], "auto", "dir", "text", "url", 5 * 2**20, follow_links=True),
                  {"sources": [str(corpus)], "label": "dir", "follow_links": True}, st.settings())
    finally:
        st.engine.dispose()


# -- the tests ---------------------------------------------------------------------------

#: Free bytes left on the full disk: absolute for the first two, else relative to the size of
#: the snapshot the ingest writes. They cover each write of an ingest: opening the catalog,
#: writing the snapshot, registering it in the catalog, recording the finished run.
LEVELS = [("free", 0), ("free", 16 << 10), ("snapshot", -(2 << 20)), ("snapshot", 0), ("snapshot", 48 << 10),
          ("snapshot", 96 << 10), ("snapshot", 128 << 10), ("snapshot", 160 << 10), ("snapshot", 4 << 20)]
STAGES = {
    "open": "its file system is full",
    "snapshot": "cannot write the snapshot",
    "register": "cannot register the snapshot",
    "record": "could not record the run as finished",
}


def test_ingest_into_a_full_disk_fails_cleanly_and_resumes(can_mount, world, tmp_path):
    """One tmpfs; for each free-space level: a fresh copy of the base store, the disk filled,
    ``accum ingest`` of 120 more posts. It fails with a message and leaves the store as
    it was (or, at the last levels, commits everything), the store still reads on the full
    disk, and once there is room the same ingest resumes to the undisturbed counts."""
    stages_seen = {}
    with mounted(tmp_path / "disk", "-t", "tmpfs", "-o", "size=128m,mode=0755", "tmpfs") as disk:
        for kind, amount in LEVELS:
            store = disk / "store"
            shutil.copytree(world["base"], store, symlinks=True)
            before = store_state(store)
            leave = amount if kind == "free" else world["snapshot_bytes"] + amount
            free = fill(disk, leave)
            proc = accum(*ingest_args(world["second"], store))
            label = f"{free:,} bytes free"
            if proc.returncode == 0:
                stage = "none"
            else:
                assert_clean_failure(proc, *STAGES.values())
                stage = next(s for s, phrase in STAGES.items() if phrase in proc.stderr)
            stages_seen.setdefault(stage, label)
            assert not list((store / "snapshots").glob("*.tmp")), f"{label}: a partial snapshot was left"
            after = store_state(store)  # reads on the full disk
            if stage in ("none", "record"):  # everything was committed
                assert content(after) == content(world["reference"]), label
            else:
                assert_unchanged(before, after)
            info = accum("info", "--store", store, "--json")
            assert info.returncode == 0 and '"documents": ' in info.stdout, (label, info.stderr)
            unfill(disk)
            resume(store, world["second"])
            assert content(store_state(store)) == content(world["reference"]), f"{label}: resumed counts differ"
            shutil.rmtree(store)
    print(f"\nfull disk: first level of each outcome: {stages_seen}")
    assert {"open", "snapshot", "register"} <= set(stages_seen), stages_seen


def test_calibrate_on_a_full_disk_fails_cleanly(can_mount, world, tmp_path):
    with mounted(tmp_path / "disk", "-t", "tmpfs", "-o", "size=64m,mode=0755", "tmpfs") as disk:
        store = disk / "store"
        shutil.copytree(world["base"], store, symlinks=True)
        before = store_state(store)
        fill(disk, 0)
        proc = accum("calibrate", world["second"], "--label", "dir", "--follow-links", "--store", store)
        assert_clean_failure(proc, "file system is full", "No space left on device")
        assert store_state(store) == before
        unfill(disk)
        assert accum("calibrate", world["second"], "--label", "dir", "--follow-links", "--store", store).returncode == 0
        assert "calibration" in store_state(store)["meta"]


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_full_disk_with_a_postgresql_catalog(can_mount, world, tmp_path, db_url):
    """The snapshots on a full disk, the catalog in PostgreSQL (it records the failed runs)."""
    with mounted(tmp_path / "disk", "-t", "tmpfs", "-o", "size=128m,mode=0755", "tmpfs") as disk:
        store = disk / "store"
        assert accum(*ingest_args(world["first"], store, db_url)).returncode == 0
        before = store_state(store, db_url)
        for leave in (0, 1 << 20):
            fill(disk, leave)
            proc = accum(*ingest_args(world["second"], store, db_url))
            assert_clean_failure(proc, "No space left on device", "file system is full")
            assert_unchanged(before, store_state(store, db_url))
            before = store_state(store, db_url)
            unfill(disk)
        assert accum(*ingest_args(world["second"], store, db_url)).returncode == 0
        assert content(store_state(store, db_url)) == content(world["reference"])


def test_read_only_store(can_mount, world, tmp_path, db_url):
    """A store seen through a read-only mount: ingest and calibrate fail with a message and
    change nothing; info and classify still work."""
    store = tmp_path / "store"
    if db_url is None:
        shutil.copytree(world["base"], store, symlinks=True)
    else:
        assert accum(*ingest_args(world["first"], store, db_url)).returncode == 0
    db = ["--db", db_url] if db_url else []
    before = store_state(store, db_url)
    with read_only_view(store, tmp_path / "view") as view:
        with pytest.raises(OSError):
            (view / "probe").write_text("x")  # really read-only, even for root
        proc = accum(*ingest_args(world["second"], view, db_url))
        assert_clean_failure(proc, "read-only")
        proc = accum("calibrate", world["second"], "--label", "dir", "--follow-links", "--store", view, *db)
        if db_url is None:
            assert_clean_failure(proc, "read-only")
        else:  # the calibration is kept in the catalog, which is writable
            assert proc.returncode == 0, proc.stderr
            calibrated = store_state(store, db_url)
            assert calibrated["meta"].pop("calibration")
            assert calibrated == before
            before = store_state(store, db_url)
        info = accum("info", "--store", view, "--json", *db)
        assert info.returncode == 0 and '"documents": 60' in info.stdout, info.stderr
        classify = accum("classify", "--store", view, *db, "the space shuttle reached orbit")
        assert classify.returncode == 0 and "sci.space" in classify.stdout.splitlines()[0], classify.stderr
    assert store_state(store, db_url) == before  # not even a failed run: nothing could be written
    assert accum(*ingest_args(world["second"], store, db_url)).returncode == 0
    assert content(store_state(store, db_url)) == content(world["reference"])


def test_file_size_limit(world, tmp_path):
    """RLIMIT_FSIZE (EFBIG past 1 MiB, the snapshot's files are larger): no privilege needed."""
    store = tmp_path / "store"
    shutil.copytree(world["base"], store, symlinks=True)
    before = store_state(store)
    proc = accum(*ingest_args(world["second"], store), limit_file_size=1 << 20)
    assert_clean_failure(proc, "File too large")
    assert_unchanged(before, store_state(store))
    assert accum(*ingest_args(world["second"], store)).returncode == 0
    assert content(store_state(store)) == content(world["reference"])

"""Crawl scale (issue #19): what ingesting and querying a large store costs, through the CLI.

Every number comes from running ``accum`` as a user runs it: one subprocess per command
(the ``accum`` entry point of this interpreter's environment), a fresh process each time,
so every call is a cold start of the interpreter (the operating system's page cache is
warm: the corpora and the store were just read or written). What is measured:

ingest
    ``accum ingest FILE --label field:industry --store S --no-fit --json`` on ``posts-a``
    (the blog corpus' first half), once with the default checkpoints (every 60 s) and once
    with ``--checkpoint-seconds 10``: wall seconds, text MB/s (the summary's ``bytes_read``
    over the command's wall time), peak RSS, bytes written and the final store size.
queries
    ``accum classify "one sentence"`` (the first call after the ingest, which builds and
    saves the count model, and later calls), ``accum categories``, ``accum info``,
    ``accum saturation`` (the table); then ``accum fit --model complement`` (its own time
    and memory) and ``accum classify`` again, first and later calls, with the fitted model.
generate
    ``accum generate --tokens 60`` on a KJV store made with ``accum ingest kjv.txt
    --format lines --default-label kjv --markov-order 8 --no-fit``: first and later calls.
serve
    ``accum serve`` on the ``posts-a`` store (after the fit): seconds until ``/healthz``
    answers (and the service's own ``ready_seconds``), resident memory after the start and
    after the requests, and the latency of 200 sequential ``POST /classify`` requests on
    one keep-alive connection from ``httpx`` (short texts, the first 200 chars of the
    first posts of the corpus; one request before them is reported apart).
dask
    ``accum ingest --dask local:1`` and ``local:2`` on a fifth of ``posts-a`` (its first
    records, written once to a temporary ``.jsonl.gz``, and split into 4 files), against
    the same ingest in one process, without and with the budget: wall seconds and each
    process's peak RSS (client, workers), and whether the stores hold the same
    documents, tokens and features.
WebKB, 20 Newsgroups
    The same ingest and query numbers on two small stores (``--label dir``).
floor
    What every command pays before it does anything: ``python -c pass``,
    ``python -c "import accum.storage, accum.classify"`` (the interpreter plus numba,
    pyarrow and SQLAlchemy) and ``accum --version``.

How
---
- **Wall**: ``time.perf_counter`` around the subprocess, from ``Popen`` to the moment
  ``os.wait4`` reaps it.
- **CPU** and **peak RSS**: the ``rusage`` that ``os.wait4`` returns for the child (user +
  system seconds; ``ru_maxrss``, the largest resident set of the child and of any
  process it waited for). A thread also samples every 0.1 s each process of the child's
  tree (``psutil``) and keeps its last ``VmHWM`` (its own peak RSS, from
  ``/proc/PID/status``): that gives per-process peaks for Dask's client and workers (a
  peak reached in a worker's last 0.1 s can be missed; the client's is exact when it is
  the tree's largest, since ``ru_maxrss`` covers it).
- **Bytes written**: ``ru_oublock`` × 512 from the same ``rusage``, i.e. the kernel's
  ``write_bytes`` I/O accounting of the command and its reaped children: bytes of page
  cache it dirtied on a disk file system, whether the file was kept, renamed or later
  deleted (a page rewritten while still dirty in the cache counts once; the catalog's
  SQLite/WAL writes count; writes outside the store, e.g. a numba cache, would count
  too, which is why ``accum warm-up`` runs first). As a cross-check, a thread lists the
  store every 0.25 s and sums the largest size seen of every file that appeared in it
  ("files seen": snapshots later deleted included, if they lived through one poll).
  The ratio is bytes written ÷ the store's size right after the ingest (apparent bytes,
  as ``du -sb``).
- **Environment**: the commands run with this process's environment as it was before
  ``benchmarks.common`` pinned numba, OpenMP and BLAS to one thread (a user's shell does
  not pin them), without ``ACCUM_STORE``/``ACCUM_DB``; ``accum warm-up`` runs once first,
  so no measured call waits for numba to compile.
- MB are 10⁶ bytes. Goals are those of issue #19 (stated for ``posts-a``; shown beside
  the WebKB and 20 Newsgroups numbers for reference).

Usage (from the repository root)::

    .venv/bin/python benchmarks/scale.py                    # everything; writes benchmarks/results/scale.md
    .venv/bin/python benchmarks/scale.py --quick            # a slice of each corpus; prints the report
    .venv/bin/python benchmarks/scale.py --skip-dask --json raw.json
    .venv/bin/python benchmarks/scale.py --render raw.json  # the report of that run again, measuring nothing

The stores are built in a temporary directory (``--workdir`` to choose it, ``--keep`` to
keep them). The full run needs about 6 GB of disk and 3-4 GB of memory (today).
"""

from __future__ import annotations

import os

#: The environment as a user's shell has it: captured before benchmarks.common pins threads.
ORIGINAL_ENV = dict(os.environ)

import argparse
import gzip
import json
import shlex
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import (
    CONTENTION_NOTE,
    REPO,
    RESULTS_DIR,
    command_line,
    contention_mark,
    corpus_path,
    machine_info,
    markdown_table,
    package_versions,
    report_header,
    write_report,
)

REPORT = RESULTS_DIR / "scale.md"
MB = 1e6
GIB = 1024**3

#: Issue #19's goals ("done when"), measured on posts-a.
BUDGET = 1 * GIB
GOAL_INGEST_RSS = BUDGET + 300 * MB
GOAL_MB_S = 7.0
GOAL_WRITE_RATIO = 2.0
GOAL_CLASSIFY_S, GOAL_CLASSIFY_RSS = 1.0, 300 * MB
GOAL_CATEGORIES_S = GOAL_INFO_S = 1.0
GOAL_SATURATION_S = 3.0
GOAL_GENERATE_S, GOAL_GENERATE_RSS = 1.0, 300 * MB
GOAL_SERVE_RSS, GOAL_SERVE_P50_MS = 500 * MB, 5.0
GOAL_DASK_SHARE = 0.60

#: Sentences for ``accum classify`` on each store.
SENTENCES = {
    "posts-a": "I spent the whole weekend fixing the database server at work and my boss still was not happy.",
    "webkb": "Office hours are Tuesday 2-4pm in room 3120; homework 3 is due Friday before the lecture.",
    "20ng": "the goalie stopped every shot in the third period",
}

QUICK_POSTS = 20_000  # --quick: the first records of posts-a
QUICK_KJV_LINES = 6_000
QUICK_DIR_EVERY = 5  # --quick: every 5th file of WebKB and 20 Newsgroups
DASK_FILES = 4  # the Dask slice is also run as this many files (a file is one part)
#: The Dask runs on the fifth of posts-a: key, its sources (the fifth as one file, or as
#: DASK_FILES files), its options, its tag; a key ending in "budget" also takes --memory,
#: and its largest process is set against the one process's with the same budget.
DASK_RUNS = (("one", "one", [], "fifth, one process"),
             ("local1", "one", ["--dask", "local:1"], "fifth, --dask local:1"),
             ("local2", "one", ["--dask", "local:2"], "fifth, --dask local:2"),
             ("local2_files", "files", ["--dask", "local:2"], f"fifth in {DASK_FILES} files, local:2"),
             ("one_budget", "one", [], "fifth, one process, with the budget"),
             ("local2_files_budget", "files", ["--dask", "local:2"],
              f"fifth in {DASK_FILES} files, local:2, with the budget"))
POLL_SECONDS = 0.1
STORE_POLL_SECONDS = 0.25


def accum_command() -> list[str]:
    """The ``accum`` entry point beside this interpreter (``python -m accum.cli`` without one)."""
    script = Path(sys.executable).with_name("accum")
    return [str(script)] if script.exists() else [sys.executable, "-m", "accum.cli"]


def child_env() -> dict:
    env = {k: v for k, v in ORIGINAL_ENV.items() if k not in ("ACCUM_STORE", "ACCUM_DB")}
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


# -- processes ------------------------------------------------------------------------------------


def _status_kb(pid: int) -> dict[str, int]:
    """A process's memory lines of ``/proc/PID/status``, in bytes."""
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(("VmHWM:", "VmRSS:", "RssAnon:", "RssFile:", "RssShmem:")):
                    key, value = line.split(":", 1)
                    out[key] = int(value.split()[0]) * 1024
    except OSError:
        pass
    return out


def _children(pid: int) -> list[int]:
    """Every descendant of ``pid`` (psutil; else /proc, every thread's children)."""
    try:
        import psutil
    except ImportError:
        found, todo = [], [pid]
        while todo:
            parent = todo.pop()
            for task in Path(f"/proc/{parent}/task").glob("*/children"):
                try:
                    kids = [int(c) for c in task.read_text().split()]
                except OSError:
                    continue
                found += kids
                todo += kids
        return found
    try:
        return [p.pid for p in psutil.Process(pid).children(recursive=True)]
    except psutil.Error:  # the process is gone
        return []


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def _role(cmd: str, root: bool) -> str:
    if root:
        return "client" if "ingest" in cmd else "main"
    if "resource_tracker" in cmd:
        return "resource tracker"
    if "forkserver" in cmd:
        return "forkserver"
    if "spawn_main" in cmd or "multiprocessing" in cmd:
        return "worker"
    return "child"


def dir_bytes(path: Path) -> int:
    """Apparent bytes of every file under ``path``, a file with several links once
    (``du -sb``: snapshots share their segments by hard links)."""
    total, seen = 0, set()
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                st = os.lstat(os.path.join(root, name))
            except OSError:
                continue
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_size
    return total


class TreeMonitor(threading.Thread):
    """Samples the peak RSS of every process of a tree and, optionally, a store's files."""

    def __init__(self, pid: int, store: Path | None = None):
        super().__init__(daemon=True)
        self.pid = pid
        self.store = store
        self.done = threading.Event()
        self.processes: dict[int, dict] = {}
        self.files: dict[tuple[int, int], int] = {}
        self._last_store_poll = 0.0

    def run(self) -> None:
        while not self.done.is_set():
            self.sample()
            self.done.wait(POLL_SECONDS)

    def sample(self) -> None:
        for pid in [self.pid, *_children(self.pid)]:
            status = _status_kb(pid)
            if not status:
                continue
            entry = self.processes.get(pid)
            if entry is None:
                cmd = _cmdline(pid)
                entry = self.processes[pid] = {"pid": pid, "role": _role(cmd, pid == self.pid), "cmd": cmd[:200],
                                               "peak_rss": 0, "rss_max": 0}
            entry["peak_rss"] = max(entry["peak_rss"], status.get("VmHWM", 0))
            entry["rss_max"] = max(entry["rss_max"], status.get("VmRSS", 0))
        now = time.monotonic()
        if self.store is not None and now - self._last_store_poll >= STORE_POLL_SECONDS:
            self._last_store_poll = now
            for root, _dirs, files in os.walk(self.store):
                for name in files:
                    try:
                        st = os.lstat(os.path.join(root, name))
                    except OSError:
                        continue
                    key = (st.st_dev, st.st_ino)  # a renamed file is the same file
                    if st.st_size > self.files.get(key, -1):
                        self.files[key] = st.st_size

    def stop(self) -> None:
        self.done.set()
        self.join()
        if self.store is not None:  # the files as they are at the end
            self._last_store_poll = 0.0
            self.sample()


class Bench:
    """Runs accum commands and keeps what each one cost."""

    def __init__(self, workdir: Path, timeout: float):
        self.workdir = workdir
        self.timeout = timeout
        self.accum = accum_command()
        self.env = child_env()
        self.log: list[dict] = []

    def display(self, argv: list[str]) -> str:
        """The command as a user would type it, with the work directory left out of paths."""
        out = []
        for part in argv:
            part = part.replace(str(self.workdir) + "/", "")
            part = part.replace(str(Path(sys.executable).parent) + "/", "")
            out.append(part)
        return shlex.join(out)

    def run(self, argv: list[str], *, store: Path | None = None, name: str = "", tag: str = "",
            parse_json: bool = False, raw_argv: bool = False) -> dict:
        """Run ``accum ARGV`` (or ``ARGV`` itself with ``raw_argv``) and measure it."""
        full = list(argv) if raw_argv else [*self.accum, *argv]
        shown = self.display(["accum", *argv] if not raw_argv else ["python", *argv[1:]])
        out_path = self.workdir / "last.stdout"
        err_path = self.workdir / "last.stderr"
        print(f"[scale] {shown}", file=sys.stderr, flush=True)
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            started = time.perf_counter()
            proc = subprocess.Popen(full, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=self.env,
                                    cwd=self.workdir)
            monitor = TreeMonitor(proc.pid, store)
            monitor.start()
            killer = threading.Timer(self.timeout, proc.kill)
            killer.start()
            _pid, status, usage = os.wait4(proc.pid, 0)
            wall = time.perf_counter() - started
            killer.cancel()
            proc.returncode = os.waitstatus_to_exitcode(status)
            monitor.stop()
        stdout = out_path.read_text(errors="replace")
        stderr = err_path.read_text(errors="replace")
        result = {
            "name": name or shown, "tag": tag, "command": shown, "returncode": proc.returncode,
            "wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "peak_rss": usage.ru_maxrss * 1024,
            "write_bytes": usage.ru_oublock * 512, "read_bytes": usage.ru_inblock * 512,
            "processes": sorted(monitor.processes.values(), key=lambda p: p["pid"]),
            "timed_out": wall >= self.timeout,
        }
        result["mark"] = contention_mark(wall, result["cpu"])
        if store is not None:
            result["files_seen_bytes"] = sum(monitor.files.values())
            result["files_seen"] = len(monitor.files)
        if proc.returncode != 0:
            result["stderr_tail"] = stderr[-2000:]
            print(f"[scale]   FAILED (exit {proc.returncode}): {stderr[-500:]}", file=sys.stderr, flush=True)
        elif parse_json:
            try:
                result["json"] = json.loads(stdout)
            except ValueError:
                result["stdout_tail"] = stdout[-2000:]
        else:
            result["stdout_head"] = stdout[:600]
        print(f"[scale]   {wall:.2f} s, CPU {result['cpu']:.2f} s, peak RSS {result['peak_rss'] / MB:,.0f} MB",
              file=sys.stderr, flush=True)
        self.log.append(result)
        return result

    def repeat(self, argv: list[str], times: int, **kwargs) -> list[dict]:
        return [self.run(argv, **kwargs) for _ in range(times)]


# -- corpora and slices ---------------------------------------------------------------------------


def slice_jsonl_gz(src: Path, dst: Path, lines: int) -> int:
    """Write the first ``lines`` lines of ``src`` to ``dst`` (gzip); return how many there were."""
    n = 0
    with gzip.open(src, "rb") as fin, gzip.open(dst, "wb", compresslevel=6) as fout:
        for line in fin:
            if n >= lines:
                break
            fout.write(line)
            n += 1
    return n


def split_jsonl_gz(src: Path, dst_dir: Path, n_files: int, lines: int) -> list[Path]:
    """``src``'s ``lines`` lines in ``n_files`` consecutive gzip files under ``dst_dir``, in order."""
    dst_dir.mkdir(parents=True, exist_ok=True)
    paths = [dst_dir / f"part{i}.jsonl.gz" for i in range(n_files)]
    per_file = -(-lines // n_files)
    with ExitStack() as stack:
        outs = [stack.enter_context(gzip.open(path, "wb", compresslevel=6)) for path in paths]
        fin = stack.enter_context(gzip.open(src, "rb"))
        for i, line in enumerate(fin):
            outs[min(i // per_file, n_files - 1)].write(line)
    return paths


def count_gz_lines(src: Path) -> int:
    out = subprocess.run(f"gzip -dc {shlex.quote(str(src))} | wc -l", shell=True, check=True,
                         capture_output=True, text=True).stdout
    return int(out.split()[0])


def slice_lines(src: Path, dst: Path, lines: int) -> None:
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        for i, line in enumerate(fin):
            if i >= lines:
                break
            fout.write(line)


def slice_tree(src: Path, dst: Path, every: int) -> int:
    """Copy every ``every``-th file of each first-level directory of ``src`` (sorted) to ``dst``."""
    copied = 0
    for top in sorted(p for p in src.iterdir() if p.is_dir()):
        files = sorted(p for p in top.rglob("*") if p.is_file())
        for path in files[::every]:
            target = dst / path.relative_to(src)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
            copied += 1
    return copied


def first_texts(src: Path, n: int, chars: int = 200) -> list[str]:
    """The first ``chars`` characters (cut at a space) of the first ``n`` non-empty posts."""
    texts = []
    with gzip.open(src, "rt", encoding="utf-8") as f:
        for line in f:
            text = " ".join(json.loads(line).get("text", "").split())
            if len(text) < 40:
                continue
            if len(text) > chars:
                text = text[:chars].rsplit(" ", 1)[0]
            texts.append(text)
            if len(texts) >= n:
                break
    return texts


# -- measurements ---------------------------------------------------------------------------------


#: The budget of the larger-than-memory run (a quarter of the default's).
SMALL_BUDGET = "256MiB"


def ingest_args_with_budget(bench: Bench, budget_arg: str | None) -> list[str]:
    """``--memory BUDGET`` when ``accum ingest`` has that option (issue #19), else nothing."""
    if not budget_arg:
        return []
    help_text = subprocess.run([*bench.accum, "ingest", "--help"], capture_output=True, text=True,
                               env=bench.env, check=False).stdout
    return ["--memory", budget_arg] if "--memory" in help_text else []


def measure_ingest(bench: Bench, sources: list[str], store: Path, options: list[str], tag: str) -> dict:
    run = bench.run(["ingest", *sources, "--store", str(store), "--no-fit", "--json", "--quiet", *options],
                    store=store, parse_json=True, tag=tag, name=f"ingest {tag}")
    summary = run.get("json") or {}
    run["store_bytes"] = dir_bytes(store) if store.exists() else None
    run["summary"] = summary
    if summary.get("bytes_read") and run["wall"] > 0:
        run["mb_s"] = summary["bytes_read"] / MB / run["wall"]
    if run["store_bytes"]:
        run["write_ratio"] = run["write_bytes"] / run["store_bytes"]
        run["files_seen_ratio"] = run["files_seen_bytes"] / run["store_bytes"]
    return run


def median_run(runs: list[dict]) -> dict:
    """The runs summarised: median wall, max peak RSS, every wall kept."""
    ok = [r for r in runs if r["returncode"] == 0]
    if not ok:
        return {"failed": True, "runs": runs, "command": runs[0]["command"],
                "error": runs[0].get("stderr_tail", "")[-400:]}
    walls = [r["wall"] for r in ok]
    med = statistics.median(walls)
    closest = min(ok, key=lambda r: abs(r["wall"] - med))
    return {"wall": med, "walls": walls, "cpu": statistics.median(r["cpu"] for r in ok),
            "peak_rss": max(r["peak_rss"] for r in ok), "mark": closest["mark"], "command": ok[0]["command"],
            "n": len(ok), "failed": len(ok) < len(runs), "runs": runs}


def query_suite(bench: Bench, store: Path, sentence: str, repeats: int) -> dict:
    s = ["--store", str(store)]
    out: dict = {"sentence": sentence}
    out["classify_first"] = median_run([bench.run(["classify", *s, "--json", sentence], parse_json=True)])
    out["classify_later"] = median_run(bench.repeat(["classify", *s, "--json", sentence], repeats, parse_json=True))
    out["categories"] = median_run(bench.repeat(["categories", *s], repeats + 1))
    out["info"] = median_run(bench.repeat(["info", *s, "--json"], repeats + 1, parse_json=True))
    out["saturation"] = median_run(bench.repeat(["saturation", *s], repeats + 1))
    # the whole search within the ingest's budget (issue #19: the models train "with the same bounds")
    out["fit_budget"] = median_run([bench.run(["fit", *s, "--memory", f"{BUDGET // GIB}GiB", "--json"],
                                              parse_json=True)])
    out["fit"] = median_run([bench.run(["fit", *s, "--model", "complement", "--json"], parse_json=True)])
    out["classify_fit_first"] = median_run([bench.run(["classify", *s, "--json", sentence], parse_json=True)])
    out["classify_fit_later"] = median_run(
        bench.repeat(["classify", *s, "--json", sentence], repeats, parse_json=True))
    for key in ("classify_first", "classify_fit_first"):
        runs = out[key]["runs"]
        if runs and runs[0].get("json"):
            out[key]["model"] = runs[0]["json"].get("model")
            out[key]["label"] = runs[0]["json"].get("label")
    info_runs = [r for r in out["info"]["runs"] if r.get("json")]
    if info_runs:
        info = info_runs[0]["json"]
        out["info_summary"] = {k: info.get(k) for k in ("documents", "categories", "tokens", "distinct_features",
                                                        "parameters", "bytes", "snapshot")}
    out["store_bytes_after_queries"] = dir_bytes(store)
    return out


def tree_rss(pid: int) -> tuple[int, int, int]:
    """(VmRSS of ``pid``, VmRSS summed over its tree, VmHWM of ``pid``)."""
    main = _status_kb(pid)
    total = main.get("VmRSS", 0) + sum(_status_kb(c).get("VmRSS", 0) for c in _children(pid))
    return main.get("VmRSS", 0), total, main.get("VmHWM", 0)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def measure_serve(bench: Bench, store: Path, texts: list[str], n: int) -> dict:
    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    argv = [*bench.accum, "serve", "--store", str(store), "--port", str(port), "--no-access-log"]
    shown = bench.display(["accum", *argv[len(bench.accum):]])
    print(f"[scale] {shown}", file=sys.stderr, flush=True)
    log_path = bench.workdir / "serve.log"
    result: dict = {"command": shown, "requests": n}
    with open(log_path, "wb") as log:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=log, stdin=subprocess.DEVNULL,
                                env=bench.env, cwd=bench.workdir)
        try:
            with httpx.Client(base_url=url, timeout=60) as client:
                deadline = time.monotonic() + bench.timeout
                while True:
                    if proc.poll() is not None:
                        raise RuntimeError(f"accum serve exited {proc.returncode}: "
                                           + log_path.read_text(errors="replace")[-800:])
                    if time.monotonic() > deadline:
                        raise RuntimeError("accum serve was not ready in time")
                    try:
                        if client.get("/healthz").status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    time.sleep(0.05)
                result["ready_wall"] = time.perf_counter() - started
                rss, rss_tree, _ = tree_rss(proc.pid)
                result["rss_after_start"], result["rss_tree_after_start"] = rss, rss_tree
                info = client.get("/info").json()
                result["ready_seconds"] = info.get("ready_seconds")
                result["model"] = info.get("model")
                t0 = time.perf_counter()
                first = client.post("/classify", json={"text": texts[0]})
                result["first_ms"] = (time.perf_counter() - t0) * 1e3
                result["first_status"] = first.status_code
                latencies, errors = [], 0
                for i in range(n):
                    text = texts[i % len(texts)]
                    t0 = time.perf_counter()
                    r = client.post("/classify", json={"text": text})
                    _ = r.content
                    latencies.append((time.perf_counter() - t0) * 1e3)
                    errors += r.status_code != 200
                result["errors"] = errors
                result["p50_ms"] = percentile(latencies, 0.50)
                result["p99_ms"] = percentile(latencies, 0.99)
                result["mean_ms"] = statistics.fmean(latencies)
                result["max_ms"] = max(latencies)
                rss, rss_tree, hwm = tree_rss(proc.pid)
                result["rss_after_requests"], result["rss_tree_after_requests"] = rss, rss_tree
                # the process's own memory, apart from the pages of memory-mapped files it
                # touched (the saved model's), which the kernel shares and can take back
                status = _status_kb(proc.pid)
                result["rss_anon_after_requests"] = status.get("RssAnon", 0)
                result["rss_file_after_requests"] = status.get("RssFile", 0) + status.get("RssShmem", 0)
                result["peak_rss_main"] = hwm
                result["processes"] = len(_children(proc.pid)) + 1
        except Exception as exc:  # noqa: BLE001 - record it and stop the server
            result["error"] = f"{type(exc).__name__}: {exc}"
            print(f"[scale]   serve FAILED: {result['error']}", file=sys.stderr, flush=True)
        finally:
            if proc.returncode is None:  # else poll() has reaped it already
                proc.terminate()
                killer = threading.Timer(30, proc.kill)
                killer.start()
                _pid, status, usage = os.wait4(proc.pid, 0)
                killer.cancel()
                proc.returncode = os.waitstatus_to_exitcode(status)
                result["peak_rss"] = usage.ru_maxrss * 1024
            result["returncode"] = proc.returncode
    if "p50_ms" in result:
        print(f"[scale]   ready {result['ready_wall']:.2f} s, RSS {result['rss_after_start'] / MB:,.0f} MB, "
              f"p50 {result['p50_ms']:.2f} ms, p99 {result['p99_ms']:.2f} ms", file=sys.stderr, flush=True)
    return result


def same_store(bench: Bench, stores: list[Path]) -> dict:
    """Documents, tokens, distinct features and parameters of each store (``accum info --json``)."""
    keys = ("documents", "categories", "tokens", "distinct_features", "parameters")
    seen = []
    for store in stores:
        out = subprocess.run([*bench.accum, "info", "--store", str(store), "--json"], capture_output=True,
                             text=True, env=bench.env, check=False)
        try:
            info = json.loads(out.stdout)
            seen.append({k: info.get(k) for k in keys})
        except ValueError:
            seen.append(None)
    return {"stores": seen, "identical": all(s is not None and s == seen[0] for s in seen)}


def process_peaks(run: dict) -> dict:
    """Peak RSS per role (client, each worker) of a run, from the sampled ``VmHWM``."""
    procs = run.get("processes") or []
    client = max((p["peak_rss"] for p in procs if p["role"] in ("client", "main")), default=0)
    workers = sorted((p["peak_rss"] for p in procs if p["role"] == "worker"), reverse=True)
    others = [p for p in procs if p["role"] not in ("client", "main", "worker")]
    # ru_maxrss covers the client and every process it reaped: when it is above every sampled
    # peak, the largest process peaked between two samples; the client is taken to be it only
    # when there are no workers.
    if not workers:
        client = max(client, run["peak_rss"])
    return {"client": client, "workers": workers, "others": [(p["role"], p["peak_rss"]) for p in others],
            "tree_max": run["peak_rss"], "largest": max([client, *workers, run["peak_rss"]])}


# -- the run --------------------------------------------------------------------------------------


def run_all(args, workdir: Path) -> dict:
    bench = Bench(workdir, args.timeout)
    data: dict = {"quick": args.quick, "workdir": str(workdir), "accum": bench.accum, "notes": args.note}
    budget = ingest_args_with_budget(bench, args.memory)
    data["budget_args"] = budget
    where = subprocess.run([sys.executable, "-c", "import accum, os; print(os.path.dirname(accum.__file__))"],
                           capture_output=True, text=True, env=bench.env, cwd=workdir, check=False).stdout.strip()
    data["accum_location"] = where
    data["pythonpath"] = bench.env.get("PYTHONPATH")

    # numba kernels compiled (or loaded) before anything is measured
    data["warm_up"] = bench.run(["warm-up", "--json"], parse_json=True, name="warm-up")

    # the floor every command pays
    py = sys.executable
    data["floor"] = {
        "python": median_run(bench.repeat([py, "-c", "pass"], 3, raw_argv=True)),
        "imports": median_run(bench.repeat([py, "-c", "import accum.storage, accum.classify"], 3, raw_argv=True)),
        "version": median_run(bench.repeat(["--version"], 3)),
    }

    # sources
    src = workdir / "sources"
    src.mkdir(exist_ok=True)
    posts = corpus_path("blogs/posts-a.jsonl.gz")
    kjv = corpus_path("kjv-bible/kjv.txt")
    webkb = corpus_path("webkb")
    news = corpus_path("20news-bydate/20news-bydate-train")
    if args.quick:
        posts_src = src / "posts-quick.jsonl.gz"
        data["posts_records"] = slice_jsonl_gz(posts, posts_src, QUICK_POSTS)
        kjv_src = src / "kjv-quick.txt"
        slice_lines(kjv, kjv_src, QUICK_KJV_LINES)
        webkb_src, news_src = src / "webkb", src / "20news"
        data["webkb_files"] = slice_tree(webkb, webkb_src, QUICK_DIR_EVERY)
        data["news_files"] = slice_tree(news, news_src, QUICK_DIR_EVERY)
    else:
        posts_src, kjv_src, webkb_src, news_src = posts, kjv, webkb, news
        data["posts_records"] = count_gz_lines(posts)
    data["sources"] = {"posts-a": str(posts_src), "kjv": str(kjv_src), "webkb": str(webkb_src),
                       "20ng": str(news_src)}
    texts = first_texts(posts_src, 200)

    stores = workdir / "stores"
    stores.mkdir(exist_ok=True)
    repeats = args.repeats

    # posts-a: ingest twice, queries, fit, serve
    posts_label = ["--label", "field:industry"]
    p = {}
    p["ingest"] = measure_ingest(bench, [str(posts_src), *posts_label], stores / "posts-a", budget, "posts-a")
    p["ingest_ckpt10"] = measure_ingest(bench, [str(posts_src), *posts_label], stores / "posts-a-ckpt10",
                                        [*budget, "--checkpoint-seconds", "10"], "posts-a --checkpoint-seconds 10")
    if not args.keep:
        shutil.rmtree(stores / "posts-a-ckpt10", ignore_errors=True)
    if budget:  # the same pages without a budget, and with a quarter of it: the same counts
        p["ingest_unbounded"] = measure_ingest(bench, [str(posts_src), *posts_label], stores / "posts-a-unbounded",
                                               [], "posts-a without --memory")
        p["ingest_small"] = measure_ingest(bench, [str(posts_src), *posts_label], stores / "posts-a-small",
                                           ["--memory", SMALL_BUDGET], f"posts-a --memory {SMALL_BUDGET}")
        p["same"] = same_store(bench, [stores / "posts-a", stores / "posts-a-unbounded", stores / "posts-a-small"])
        if not args.keep:
            for name in ("posts-a-unbounded", "posts-a-small"):
                shutil.rmtree(stores / name, ignore_errors=True)
    if p["ingest"]["returncode"] == 0:
        p["queries"] = query_suite(bench, stores / "posts-a", SENTENCES["posts-a"], repeats)
        p["serve"] = measure_serve(bench, stores / "posts-a", texts, args.requests)
    data["posts-a"] = p

    # KJV: the generator at order 8
    k = {}
    k["ingest"] = measure_ingest(bench, [str(kjv_src), "--format", "lines", "--default-label", "kjv"],
                                 stores / "kjv", [*budget, "--markov-order", "8"], "kjv")
    if k["ingest"]["returncode"] == 0:
        gen = ["generate", "--store", str(stores / "kjv"), "--tokens", "60", "--seed", "2026"]
        k["generate_first"] = median_run([bench.run(gen)])
        k["generate_later"] = median_run(bench.repeat(gen, repeats))
        if k["generate_later"].get("runs") and k["generate_later"]["runs"][0].get("stdout_head"):
            k["sample"] = k["generate_later"]["runs"][0]["stdout_head"][:300]
    data["kjv"] = k

    # Dask: a fifth of posts-a, one process against local:1 and local:2, unbounded and with the budget
    if not args.skip_dask:
        d = {}
        fifth = src / "posts-fifth.jsonl.gz"
        d["records"] = slice_jsonl_gz(posts_src, fifth, max(1, data["posts_records"] // 5))
        # a single file is a single part (one worker counts it): the same records as 4 files too
        files = [str(f) for f in split_jsonl_gz(fifth, src / "fifth-parts", DASK_FILES, d["records"])]
        one, split = [str(fifth), *posts_label], [*files, *posts_label]
        for key, sources, options, tag in DASK_RUNS:
            d[key] = measure_ingest(bench, one if sources == "one" else split, stores / f"fifth-{key}",
                                    (budget if key.endswith("budget") else []) + options, tag)
            d[key]["peaks"] = process_peaks(d[key])
        d["same"] = same_store(bench, [stores / f"fifth-{key}" for key, *_ in DASK_RUNS])
        if not args.keep:
            for key, *_ in DASK_RUNS:
                shutil.rmtree(stores / f"fifth-{key}", ignore_errors=True)
        data["dask"] = d

    # WebKB and 20 Newsgroups
    for key, source in (("webkb", webkb_src), ("20ng", news_src)):
        s = {}
        s["ingest"] = measure_ingest(bench, [str(source), "--label", "dir"], stores / key, budget, key)
        if s["ingest"]["returncode"] == 0:
            s["queries"] = query_suite(bench, stores / key, SENTENCES[key], repeats)
        data[key] = s

    data["failures"] = [{"command": r["command"], "returncode": r["returncode"],
                         "stderr_tail": r.get("stderr_tail", "")[-600:]} for r in bench.log if r["returncode"] != 0]
    if "posts-a" in data and "serve" in data["posts-a"] and "error" in data["posts-a"]["serve"]:
        data["failures"].append({"command": data["posts-a"]["serve"]["command"],
                                 "error": data["posts-a"]["serve"]["error"]})
    data["log"] = bench.log
    return data


# -- the report -----------------------------------------------------------------------------------


def mb(value) -> str:
    return "—" if value is None else f"{value / MB:,.0f}"


def secs(value, mark: str = "", digits: int = 2) -> str:
    return "—" if value is None else f"{value:,.{digits}f}{mark}"


def check(ok: bool | None) -> str:
    return "" if ok is None else (" ✓" if ok else " ✗")


def wall_cell(m: dict) -> str:
    if m.get("failed") and "wall" not in m:
        return "failed"
    text = secs(m["wall"], m.get("mark", ""))
    if len(m.get("walls", [])) > 1:
        text += f" ({min(m['walls']):.2f}–{max(m['walls']):.2f})"
    return text


def query_rows(q: dict, names: dict[str, tuple[str, float | None, float | None]]) -> list[list[str]]:
    rows = []
    sentence = q.get("sentence")
    for key, (label, goal_s, goal_rss) in names.items():
        m = q.get(key)
        if not m or not isinstance(m, dict) or "command" not in m:
            continue
        command = m["command"].replace(shlex.quote(sentence), '"…"') if sentence else m["command"]
        if m.get("failed") and "wall" not in m:
            rows.append([label, f"`{command}`", "failed", "—", "—", goal_text(goal_s, goal_rss)])
            continue
        ok_s = None if goal_s is None else m["wall"] <= goal_s
        ok_rss = None if goal_rss is None else m["peak_rss"] <= goal_rss
        rows.append([label, f"`{command}`", wall_cell(m) + check(ok_s), secs(m["cpu"]),
                     mb(m["peak_rss"]) + check(ok_rss), goal_text(goal_s, goal_rss)])
    return rows


def goal_text(goal_s, goal_rss) -> str:
    parts = []
    if goal_s is not None:
        parts.append(f"≤ {goal_s:g} s")
    if goal_rss is not None:
        parts.append(f"≤ {goal_rss / MB:,.0f} MB")
    return ", ".join(parts) or "—"


def ingest_rows(runs: list[tuple[str, dict]], with_goals: bool) -> list[list[str]]:
    rows = []
    for label, r in runs:
        if r["returncode"] != 0:
            rows.append([label, f"exit {r['returncode']}"] + ["—"] * 8)
            continue
        s = r["summary"]
        rows.append([
            label,
            f"{s.get('pages_added', 0):,}",
            secs(r["wall"], r["mark"], 1),
            secs(r.get("mb_s"), "", 1) + check(r.get("mb_s", 0) >= GOAL_MB_S if with_goals else None),
            mb(r["peak_rss"]) + check(r["peak_rss"] <= GOAL_INGEST_RSS if with_goals else None),
            mb(r["write_bytes"]),
            mb(r.get("files_seen_bytes")),
            mb(r["store_bytes"]),
            secs(r.get("write_ratio"), "", 2) + check(
                r.get("write_ratio", 99) <= GOAL_WRITE_RATIO if with_goals else None),
            f"{s.get('checkpoints', '—')}",
        ])
    return rows


INGEST_HEADERS = ["ingest", "pages added", "wall s", "text MB/s", "peak RSS MB", "written MB (I/O acct)",
                  "files seen MB", "store MB", "written ÷ store", "checkpoints"]
QUERY_HEADERS = ["step", "command", "wall s", "CPU s", "peak RSS MB", "goal"]


def query_names(q: dict) -> dict:
    first_model = q.get("classify_first", {}).get("model") or "?"
    fit_model = q.get("classify_fit_first", {}).get("model") or "?"
    n_later = q.get("classify_later", {}).get("n", 0)
    return {
        "classify_first": (f"classify, first call after the ingest ({first_model})", GOAL_CLASSIFY_S,
                           GOAL_CLASSIFY_RSS),
        "classify_later": (f"classify, later calls ({first_model}; median of {n_later})", GOAL_CLASSIFY_S,
                           GOAL_CLASSIFY_RSS),
        "categories": ("categories", GOAL_CATEGORIES_S, None),
        "info": ("info", GOAL_INFO_S, None),
        "saturation": ("saturation (table)", GOAL_SATURATION_S, None),
        "fit_budget": (f"fit (the whole search) --memory {BUDGET // GIB}GiB", None, GOAL_INGEST_RSS),
        "fit": ("fit --model complement", None, None),
        "classify_fit_first": (f"classify, first call after the fit ({fit_model})", GOAL_CLASSIFY_S,
                               GOAL_CLASSIFY_RSS),
        "classify_fit_later": (f"classify, later calls after the fit ({fit_model})", GOAL_CLASSIFY_S,
                               GOAL_CLASSIFY_RSS),
    }


def query_section(q: dict | None) -> list[str]:
    """The report's lines for a store's queries: their table and the store's line."""
    if not q:
        return []
    return [markdown_table(QUERY_HEADERS, query_rows(q, query_names(q)), "llrrrl"), "", store_line(q), ""]


def store_line(q: dict) -> str:
    info = q.get("info_summary") or {}
    if not info:
        return ""
    return (f"`\"…\"` is \"{q.get('sentence')}\". Store: {info.get('documents') or 0:,} documents, "
            f"{info.get('categories') or 0:,} categories, "
            f"{info.get('tokens') or 0:,} tokens, {info.get('distinct_features') or 0:,} distinct features, "
            f"{info.get('parameters') or 0:,} parameters; {dir_mb(q.get('store_bytes_after_queries'))} on disk "
            f"after the queries (model files included).")


def dir_mb(value) -> str:
    return "—" if value is None else f"{value / MB:,.0f} MB"


def report_title(quick: bool) -> str:
    title = "Crawl scale (issue #19): ingest, cold CLI, service and Dask through the CLI"
    return title + (" (--quick: slices)" if quick else "")


def render(data: dict) -> str:
    """The markdown report of a run (``data`` as :func:`run_all` made it, with its ``header``)."""
    out = [data["header"]]
    out.append("What the store costs today, as a user runs it: every number is one `accum` command in a fresh "
               "process (see `benchmarks/scale.py` for how each is measured). Goals are issue #19's, stated for "
               "`posts-a`; ✓/✗ compares against them. " + CONTENTION_NOTE)
    out.append("")
    out.append("- **Peak RSS**: the command's `ru_maxrss` (from `wait4`; for Dask, each process's `VmHWM` "
               "sampled every 0.1 s). **Bytes written**: the kernel's `write_bytes` I/O accounting of the command "
               "(`ru_oublock` × 512): page-cache pages dirtied on disk files, kept, renamed or deleted alike; "
               "**files seen**: the sum of the largest size of every file that appeared in the store (listed every "
               "0.25 s). Ratios are over the store's size right after the ingest (apparent bytes). "
               "**Text MB/s**: the summary's `bytes_read` (text after extraction) ÷ the command's wall time. "
               "MB = 10⁶ bytes.")
    where = data.get("accum_location") or "?"
    inside = where.startswith(str(REPO))
    out.append(f"- accum as the commands import it: `{where}`" + (
        " (this checkout)" if inside else
        f" (not this checkout: `PYTHONPATH={data.get('pythonpath')}`; the revision above is the checkout's)"))
    for note in data.get("notes") or []:
        out.append(f"- {note}")
    if data.get("budget_args"):
        out.append(f"- every ingest ran with `{' '.join(data['budget_args'])}` but those named otherwise (the Dask "
                   "runs without it are named so).")
    else:
        out.append("- `accum ingest` has no memory budget option yet (`--memory`): the ingests ran unbounded; "
                   "the RSS goal is the issue's 1 GiB budget + 300 MB "
                   f"({GOAL_INGEST_RSS / MB:,.0f} MB).")
    warm = data.get("warm_up")
    if warm:
        out.append(f"- `accum warm-up` ran first ({secs(warm['wall'], warm['mark'])} s, "
                   f"{mb(warm['peak_rss'])} MB): no measured call compiles numba kernels.")
    out.append("")

    floor = data.get("floor", {})
    if floor:
        parts = []
        for key, label in (("python", "`python -c pass`"),
                           ("imports", '`python -c "import accum.storage, accum.classify"`'),
                           ("version", "`accum --version`")):
            m = floor.get(key)
            if m and "wall" in m:
                parts.append(f"{label} {secs(m['wall'], m['mark'])} s and {mb(m['peak_rss'])} MB")
        out.append("**The floor every command pays** (median of 3, peak RSS): " + "; ".join(parts) + ". The "
                   "imports are the interpreter plus numba, pyarrow and SQLAlchemy; a query cannot be cheaper "
                   "than that without importing less.")
        out.append("")

    # posts-a
    p = data.get("posts-a", {})
    if p:
        records = data.get("posts_records")
        out.append(f"## posts-a (`{Path(data['sources']['posts-a']).name}`, {records:,} records, "
                   "`--label field:industry`)")
        out.append("")
        budget = " ".join(data.get("budget_args") or [])
        runs = [(f"`{budget}` (checkpoint every 60 s)" if budget else "default (checkpoint every 60 s)", p["ingest"]),
                (f"`{budget} --checkpoint-seconds 10`" if budget else "`--checkpoint-seconds 10`", p["ingest_ckpt10"])]
        runs += [(label, p[key]) for key, label in (("ingest_small", f"`--memory {SMALL_BUDGET}`"),
                                                     ("ingest_unbounded", "no budget (all counts in memory)"))
                 if key in p]
        out.append(markdown_table(INGEST_HEADERS, ingest_rows(runs, True)))
        out.append(f"| goal | | | ≥ {GOAL_MB_S:g} | ≤ {GOAL_INGEST_RSS / MB:,.0f} | | | | ≤ {GOAL_WRITE_RATIO:g} | |")
        out.append("")
        same = p.get("same")
        if same:
            out.append("Same counts with every budget and without: " + ("yes" if same["identical"] else "**no**")
                       + " (`accum info`: documents, categories, tokens, distinct features, parameters: "
                       + "; ".join(str(s) for s in same["stores"]) + "). `tests/test_runs.py` checks every array, "
                       "the growth log and the summary of a budgeted store against an unbounded one.")
            out.append("")
        one, ck = p["ingest"], p["ingest_ckpt10"]
        if one["returncode"] == 0 and ck["returncode"] == 0 and one.get("store_bytes") and ck.get("store_bytes"):
            out.append(f"With `--checkpoint-seconds 10` the store ends at {dir_mb(ck['store_bytes'])} against "
                       f"{dir_mb(one['store_bytes'])} for the same pages with {one['summary'].get('checkpoints')} "
                       f"checkpoint(s); over the latter size its writes are "
                       f"{ck['write_bytes'] / one['store_bytes']:.2f}×.")
            out.append("")
        out.extend(query_section(p.get("queries")))
        sv = p.get("serve")
        if sv:
            out.append("**accum serve** on this store (after the fit):")
            out.append("")
            if "error" in sv and "p50_ms" not in sv:
                out.append(f"failed: {sv['error']}")
            else:
                rows = [
                    ["time to ready (process start to `/healthz` 200)", secs(sv.get("ready_wall")) + " s",
                     f"(service's own ready_seconds {sv.get('ready_seconds')})"],
                    ["RSS after start", mb(sv.get("rss_after_start")) + " MB"
                     + check(sv.get("rss_after_start", 1e18) <= GOAL_SERVE_RSS),
                     f"≤ {GOAL_SERVE_RSS / MB:,.0f} MB"],
                    [f"RSS after {sv['requests']} requests (peak since start)",
                     f"{mb(sv.get('rss_after_requests'))} MB ({mb(sv.get('peak_rss'))} MB)"
                     + check(sv.get("peak_rss", 1e18) <= GOAL_SERVE_RSS), f"≤ {GOAL_SERVE_RSS / MB:,.0f} MB"],
                    ["of which its own memory / pages of mapped files (the saved model)",
                     f"{mb(sv.get('rss_anon_after_requests'))} / {mb(sv.get('rss_file_after_requests'))} MB", "—"],
                    [f"POST /classify p50 ({sv['requests']} sequential)",
                     secs(sv.get("p50_ms")) + " ms" + check(sv.get("p50_ms", 1e18) <= GOAL_SERVE_P50_MS),
                     f"≤ {GOAL_SERVE_P50_MS:g} ms"],
                    ["POST /classify p99 / mean / max",
                     f"{secs(sv.get('p99_ms'))} / {secs(sv.get('mean_ms'))} / {secs(sv.get('max_ms'))} ms", "—"],
                    ["first request (before the 200)", secs(sv.get("first_ms")) + " ms", "—"],
                    ["model served; errors", f"{sv.get('model')}; {sv.get('errors')}", "—"],
                ]
                out.append(markdown_table(["service", "measured", "goal"], rows, "lrl"))
            out.append("")

    # Dask
    d = data.get("dask")
    if d:
        def largest(key):
            run = d.get(key)
            return run["peaks"]["largest"] if run and run["returncode"] == 0 else None

        out.append(f"## Dask on a fifth of posts-a ({d['records']:,} records)")
        out.append("")
        rows = []
        memory = " ".join(data.get("budget_args") or [])
        variants = (("one", "one process"), ("local1", "`--dask local:1`"), ("local2", "`--dask local:2`"),
                    ("local2_files", f"`--dask local:2`, the fifth as {DASK_FILES} files"),
                    ("one_budget", f"one process, `{memory}`"),
                    ("local2_files_budget", f"`--dask local:2 {memory}`, the fifth as {DASK_FILES} files"))
        for key, label in variants:
            base = largest("one_budget" if key.endswith("budget") else "one")
            r = d.get(key)
            if r is None:
                continue
            if r["returncode"] != 0:
                rows.append([label, f"exit {r['returncode']}", "—", "—", "—", "—", "—"])
                continue
            pk = r["peaks"]
            share = pk["largest"] / base if base else None
            ok = (share <= GOAL_DASK_SHARE) if (key.startswith("local2") and share is not None) else None
            rows.append([label, secs(r["wall"], r["mark"], 1), secs(r.get("mb_s"), "", 1), mb(pk["client"]),
                         ", ".join(mb(w) for w in pk["workers"]) or "—",
                         (f"{share:.0%}" if share is not None else "—") + check(ok),
                         mb(r["write_bytes"])])
        out.append(markdown_table(["ingest", "wall s", "text MB/s", "client peak RSS MB", "worker peak RSS MB",
                                   "largest process ÷ one process", "written MB"], rows))
        out.append(f"| goal (local:2) | | | | | ≤ {GOAL_DASK_SHARE:.0%} | |")
        out.append("")
        same = d.get("same", {})
        out.append(f"`accum ingest` makes one Dask part of each file given (directories are split by `--part-mb`), "
                   f"so with the fifth as one `.jsonl.gz` one worker counts everything; the `{DASK_FILES} files` rows "
                   "give the same records as that many files. With the budget, each worker counts in its share of "
                   "it and writes its runs and page vectors into the store, and the client merges the runs at the "
                   "checkpoint; those rows are set against the one process with the same budget. Worker peaks are "
                   "sampled every 0.1 s.")
        out.append("")
        line = (f"Same documents, tokens, distinct features and parameters in the {len(DASK_RUNS)} stores: "
                + ("yes." if same.get("identical") else f"**no**: {same.get('stores')}."))
        others = {role for key, _ in variants[1:] if d.get(key) and d[key]["returncode"] == 0
                  for role, _ in d[key]["peaks"]["others"]}
        if others:
            line += f" Other processes of the tree, not counted as workers: {', '.join(sorted(others))}."
        out.append(line)
        out.append("")

    # KJV
    k = data.get("kjv")
    if k:
        out.append(f"## KJV generator (`{Path(data['sources']['kjv']).name}`, `--format lines --default-label kjv "
                   "--markov-order 8`)")
        out.append("")
        out.append(markdown_table(INGEST_HEADERS, ingest_rows([("`--markov-order 8`", k["ingest"])], False)))
        out.append("")
        n_gen = k.get("generate_later", {}).get("n", 0)
        names = {"generate_first": ("generate --tokens 60, first call", None, None),
                 "generate_later": (f"generate --tokens 60, later calls (median of {n_gen})", GOAL_GENERATE_S,
                                    GOAL_GENERATE_RSS)}
        out.append(markdown_table(QUERY_HEADERS, query_rows(k, names), "llrrrl"))
        out.append("")

    # WebKB, 20 Newsgroups
    for key, title, extra in (("webkb", "WebKB", data.get("webkb_files")),
                              ("20ng", "20 Newsgroups train", data.get("news_files"))):
        s = data.get(key)
        if not s:
            continue
        note = f", every {QUICK_DIR_EVERY}th file: {extra:,} files" if extra else ""
        out.append(f"## {title} (`--label dir`{note})")
        out.append("")
        out.append(markdown_table(INGEST_HEADERS, ingest_rows([("default", s["ingest"])], True)))
        out.append("")
        out.extend(query_section(s.get("queries")))

    failures = data.get("failures") or []
    out.append("## Failures")
    out.append("")
    if failures:
        for f in failures:
            detail = f.get("error") or f.get("stderr_tail", "").strip().splitlines()[-1:] or [""]
            detail = detail if isinstance(detail, str) else detail[0]
            out.append(f"- `{f['command']}`: exit {f.get('returncode', '—')}: {detail[:300]}")
    else:
        out.append("None: every command exited 0.")
    out.append("")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help=f"slices: the first {QUICK_POSTS:,} posts, {QUICK_KJV_LINES:,} KJV lines, every "
                             f"{QUICK_DIR_EVERY}th WebKB/20NG file; prints the report unless --output")
    parser.add_argument("--skip-dask", action="store_true", help="leave out the Dask runs")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH", help="also write every measurement here")
    parser.add_argument("--output", type=Path, default=None,
                        help=f"markdown report (default {REPORT.relative_to(REPO)}; none with --quick)")
    parser.add_argument("--workdir", type=Path, default=None, help="where the stores go (default: a temporary dir)")
    parser.add_argument("--keep", action="store_true", help="keep the stores and slices")
    parser.add_argument("--repeats", type=int, default=2, help="later calls of each query (default 2)")
    parser.add_argument("--requests", type=int, default=200, help="sequential POST /classify (default 200)")
    parser.add_argument("--memory", default="1GiB",
                        help="passed as `accum ingest --memory` when the CLI has that option (default 1GiB)")
    parser.add_argument("--note", action="append", default=[],
                        help="a line for the report's notes (repeatable), e.g. how the measured accum was installed")
    parser.add_argument("--timeout", type=float, default=3 * 3600, help="seconds any one command may take")
    parser.add_argument("--render", type=Path, default=None, metavar="RAW_JSON",
                        help="measure nothing: write the report of an earlier run's --json file")
    args = parser.parse_args()

    if args.render:
        data = json.loads(args.render.read_text())
        output = args.output or (None if data.get("quick") else REPORT)
        report = render(data)
        if output:
            write_report(output, report)
        else:
            print(report)
        return

    output = args.output or (None if args.quick else REPORT)
    machine = machine_info()
    versions = package_versions(["accum", "numpy", "numba", "pyarrow", "SQLAlchemy", "dask", "distributed",
                                 "fastapi", "uvicorn", "httpx", "psutil"])
    header = report_header(report_title(args.quick), versions, machine)  # the revision as the run starts
    if args.workdir:
        args.workdir.mkdir(parents=True, exist_ok=True)
        workdir = args.workdir.resolve()
        data = run_all(args, workdir)
    else:
        tmp = tempfile.mkdtemp(prefix="accum-scale-")
        workdir = Path(tmp)
        try:
            data = run_all(args, workdir)
        finally:
            if not args.keep:
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                print(f"[scale] kept {tmp}", file=sys.stderr)
    data["header"] = header
    report = render(data)
    if output:
        write_report(output, report)
    else:
        print(report)
    if args.json:
        args.json.write_text(json.dumps({"machine": machine, "versions": versions, "command": command_line(),
                                         **data}, indent=1, default=str))
        print(f"wrote {args.json}", file=sys.stderr)


if __name__ == "__main__":
    main()

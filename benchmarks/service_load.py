"""``accum serve`` under load on loopback, and while an ingest commits new snapshots.

What is measured (all on this machine, client and server sharing its cores):

in-process
    ``load_classifier(...).predict_one(text, top=3)`` called in a loop on one thread: the
    cost of the classification itself, with no HTTP around it.
load, C connections
    A bounded, self-stopping asyncio client (C keep-alive HTTP/1.1 connections on asyncio
    streams, each sending the next request as soon as the previous one is answered; see
    :func:`_load` for why not ``httpx.AsyncClient``) posts ``{"text": ..., "top": 3}``
    to ``/classify`` for ``--seconds``; texts are 20 Newsgroups test posts drawn at
    random (seeded). Reported: requests per second,
    latency percentiles, errors (transport errors and non-200 answers), and the server
    process's CPU time per request (from ``/proc``).
overhead
    The same with one connection: its median latency minus the in-process median is the
    price of HTTP, JSON and validation per request; server CPU per request divided by the
    in-process time says the same in CPU.
during ingest
    The C-connection runs again while ``accum ingest`` (the CLI, a separate process)
    adds batches of 20 Newsgroups test posts to the same store, committing a snapshot
    per batch; the service switches to each new snapshot while it answers. Reported: the
    snapshots committed during the run and the distinct snapshots seen in answers.

The store is 20 Newsgroups train (11,314 posts, unigrams and bigrams), built in a
temporary directory by ``accum ingest`` unless ``--store`` names one (which is copied
first, because the ingest phase writes to it).

Usage (from the repository root)::

    .venv/bin/python benchmarks/service_load.py               # 60 s per run
    .venv/bin/python benchmarks/service_load.py --seconds 20  # shorter
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import (  # noqa: E402  (pins threads before numpy is imported)
    RESULTS_DIR,
    corpus_path,
    fmt,
    machine_info,
    markdown_table,
    package_versions,
    report_header,
    write_report,
)

ACCUM = [sys.executable, "-m", "accum.cli"]
SEED = 0
TOKEN = "service-load-benchmark"


# -- the store and the texts --------------------------------------------------------------------


def build_store(path: Path) -> float:
    """Ingest 20 Newsgroups train into ``path`` with the CLI; return the seconds it took."""
    started = time.perf_counter()
    subprocess.run([*ACCUM, "ingest", str(corpus_path("20news-bydate/20news-bydate-train")), "--label", "dir",
                    "--store", str(path), "--quiet"], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def test_posts() -> list[Path]:
    root = corpus_path("20news-bydate/20news-bydate-test")
    return sorted(p for p in root.glob("*/*") if p.is_file())


def read_text(path: Path) -> str:
    return path.read_bytes().decode("latin-1")


def ingest_batches(posts: list[Path], dest: Path, size: int) -> list[Path]:
    """Directory trees (``<group>/<post>``) of ``size`` posts each, for ``accum ingest --label dir``."""
    batches = []
    for i in range(0, len(posts), size):
        tree = dest / f"batch{i // size:03d}"
        for post in posts[i : i + size]:
            (tree / post.parent.name).mkdir(parents=True, exist_ok=True)
            shutil.copy(post, tree / post.parent.name / post.name)
        batches.append(tree)
    return batches


# -- in-process baseline ------------------------------------------------------------------------


def in_process(store: Path, texts: list[str], seconds: float) -> dict:
    """``predict_one`` in a loop on one thread, as the service calls it."""
    from accum.cli.common import load_classifier

    clf = load_classifier(str(store), None, "complement", None)
    rng = random.Random(SEED)
    for text in texts[:50]:  # warm (kernels from the numba cache)
        clf.predict_one(text, top=3)
    latencies = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        text = texts[rng.randrange(len(texts))]
        t0 = time.perf_counter()
        clf.predict_one(text, top=3)
        latencies.append(time.perf_counter() - t0)
    return summarize(latencies, 0, sum(latencies))


# -- the server ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, store: Path, workers: int, log_path: Path):
        import httpx

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(log_path, "w")
        env = {**os.environ, "ACCUM_TOKEN": TOKEN}
        self.proc = subprocess.Popen(
            [*ACCUM, "serve", "--store", str(store), "--port", str(self.port), "--workers", str(workers),
             "--no-access-log"], stdout=subprocess.DEVNULL, stderr=self.log, env=env)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"accum serve exited {self.proc.returncode}; see {log_path}")
            try:
                if httpx.get(self.url + "/healthz", timeout=2).status_code == 200:
                    self.ready_seconds = httpx.get(self.url + "/info", timeout=30).json()["ready_seconds"]
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        self.stop()
        raise SystemExit(f"accum serve was not ready after 180 s; see {log_path}")

    def cpu_seconds(self) -> float:
        """CPU seconds (user + system) of the server and its worker processes so far."""
        total = 0.0
        for pid in [self.proc.pid, *_children(self.proc.pid)]:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
            except (OSError, IndexError, ValueError):
                pass
        return total

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


# -- the load -----------------------------------------------------------------------------------


def _request(body: bytes) -> bytes:
    return (b"POST /classify HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body)) + body


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """One HTTP/1.1 response: (status, body, whether the server closes the connection)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = b""
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            chunk = await reader.readexactly(size + 2)
            if size == 0:
                break
            body += chunk[:-2]
    else:
        body = await reader.readexactly(int(headers.get("content-length", "0")))
    return status, body, headers.get("connection", "").lower() == "close"


async def _load(port: int, bodies: list[bytes], connections: int, seconds: float, seed: int,
                timeout: float = 60.0) -> dict:
    """``connections`` keep-alive connections, each sending its next request when answered.

    A minimal HTTP/1.1 client on asyncio streams: httpx.AsyncClient itself tops out far
    below the server here (its pool slows down with many concurrent connections, see
    encode/httpx#3215; measured on /healthz at 64 connections: 87 req/s with one
    AsyncClient, 1,513 with this client, 3,563 with wrk), so it would measure itself.
    """
    rng = random.Random(seed)
    latencies: list[float] = []
    errors: dict[str, int] = {}
    snapshots: set[bytes] = set()
    warm = min(2.0, seconds / 10)  # open the connections and fill the pipes first
    start = time.perf_counter() + warm
    end = start + seconds

    async def connection():
        reader = writer = None
        while time.perf_counter() < end:
            request = _request(bodies[rng.randrange(len(bodies))])
            t0 = time.perf_counter()
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(request)
                status, body, close = await asyncio.wait_for(_read_response(reader), timeout)
                error = None if status == 200 else f"HTTP {status}"
                if close:
                    writer.close()
                    writer = None
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, asyncio.TimeoutError,
                    ValueError) as exc:
                error, body = type(exc).__name__, b""
                if writer is not None:
                    writer.close()
                writer = None
            if t0 >= start:
                latencies.append(time.perf_counter() - t0)
                if error is None:
                    at = body.rfind(b'"snapshot":"')
                    snapshots.add(body[at : body.find(b'"', at + 12)])
                else:
                    errors[error] = errors.get(error, 0) + 1
        if writer is not None:
            writer.close()

    await asyncio.gather(*(connection() for _ in range(connections)))
    out = summarize(latencies, sum(errors.values()), seconds)
    out["error_kinds"] = errors
    out["snapshots_seen"] = len(snapshots)
    return out


def run_load(server: Server, bodies: list[bytes], connections: int, seconds: float, seed: int) -> dict:
    cpu = server.cpu_seconds()
    result = asyncio.run(_load(server.port, bodies, connections, seconds, seed))
    result["server_cpu_ms_per_request"] = (server.cpu_seconds() - cpu) * 1e3 / max(1, result["requests"])
    return result


def summarize(latencies: list[float], errors: int, wall: float) -> dict:
    import numpy as np

    lat = np.array(latencies) * 1e3 if latencies else np.zeros(1)
    return {
        "requests": len(latencies), "errors": errors, "seconds": wall,
        "rps": len(latencies) / wall if wall else 0.0,
        "p50_ms": float(np.percentile(lat, 50)), "p90_ms": float(np.percentile(lat, 90)),
        "p99_ms": float(np.percentile(lat, 99)), "max_ms": float(lat.max()), "mean_ms": float(lat.mean()),
    }


class IngestLoop:
    """``accum ingest`` of one batch after another into the store until stopped."""

    def __init__(self, store: Path, batches: list[Path]):
        self.store, self.batches = store, list(batches)
        self.committed = 0
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set() and self.batches:
            batch = self.batches.pop(0)
            proc = subprocess.run([*ACCUM, "ingest", str(batch), "--label", "dir", "--store", str(self.store),
                                   "--quiet"], capture_output=True, text=True)
            if proc.returncode == 0:
                self.committed += 1
            else:
                self.failures.append(proc.stderr[-500:])

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


# -- the report ---------------------------------------------------------------------------------


def row(name: str, connections, r: dict, ingest: IngestLoop | None = None) -> list:
    return [
        name, connections, f"{r['requests']:,}", fmt(r["rps"], 0), fmt(r["p50_ms"], 1), fmt(r["p90_ms"], 1),
        fmt(r["p99_ms"], 1), fmt(r["max_ms"], 0),
        f"{r['errors']:,}" + (f" ({', '.join(f'{k}: {v}' for k, v in r.get('error_kinds', {}).items())})"
                              if r["errors"] else ""),
        fmt(r.get("server_cpu_ms_per_request"), 2),
        "—" if ingest is None else str(ingest.committed), str(r.get("snapshots_seen", "—")),
    ]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="Duration of each load run (default 60).")
    parser.add_argument("--connections", default="64,256", help="Concurrent connections, comma-separated.")
    parser.add_argument("--workers", type=int, default=1, help="accum serve --workers.")
    parser.add_argument("--store", type=Path, default=None,
                        help="An existing store to copy (default: ingest 20 Newsgroups train).")
    parser.add_argument("--batch-pages", type=int, default=250, help="Posts per ingest during the load.")
    parser.add_argument("--output", type=Path, default=RESULTS_DIR / "service_load.md")
    args = parser.parse_args(argv)
    import httpx

    connections = [int(c) for c in args.connections.split(",")]
    machine = machine_info()

    with tempfile.TemporaryDirectory(prefix="accum-service-load-") as tmp:
        tmp = Path(tmp)
        store = tmp / "store"
        if args.store is not None:
            shutil.copytree(args.store, store)
            build_seconds = None
        else:
            print("building the store (20 Newsgroups train) ...", file=sys.stderr)
            build_seconds = build_store(store)
        posts = test_posts()
        rng = random.Random(SEED)
        rng.shuffle(posts)
        request_texts = [read_text(p) for p in posts[:2000]]
        bodies = [json.dumps({"text": t, "top": 3}).encode() for t in request_texts]
        batches = ingest_batches(posts[2000:], tmp / "batches", args.batch_pages)

        print("in-process baseline ...", file=sys.stderr)
        base = in_process(store, request_texts, max(3.0, args.seconds / 6))
        server = Server(store, args.workers, tmp / "serve.log")
        results = []
        try:
            one = run_load(server, bodies, 1, max(3.0, args.seconds / 4), SEED)
            results.append(row("load", 1, one))
            for c in connections:
                print(f"load, {c} connections, {args.seconds:g} s ...", file=sys.stderr)
                results.append(row("load", c, run_load(server, bodies, c, args.seconds, SEED + c)))
            ingest_notes = []
            for c in connections:
                print(f"load during ingest, {c} connections, {args.seconds:g} s ...", file=sys.stderr)
                with IngestLoop(store, batches) as loop:
                    r = run_load(server, bodies, c, args.seconds, SEED + 1000 + c)
                batches = loop.batches
                results.append(row("during ingest", c, r, loop))
                ingest_notes += loop.failures
            info = httpx.get(server.url + "/info", timeout=30).json()
        finally:
            server.stop()
            log_text = (tmp / "serve.log").read_text()

    overhead_ms = one["p50_ms"] - base["p50_ms"]
    versions = package_versions(["accum", "numpy", "numba", "fastapi", "uvicorn", "httptools", "uvloop",
                                 "starlette", "pydantic"])
    text = report_header("accum serve under load (loopback)", versions, machine)
    text += f"""
Store: 20 Newsgroups train, 11,314 posts (unigrams + bigrams){
    f', built by accum ingest in {build_seconds:.1f} s' if build_seconds else ''}; after the runs
{info['documents']:,} documents, {info['distinct_features']:,} features, snapshot {info['served_snapshot']}.
Requests: `POST /classify` with `{{"text": <a 20 Newsgroups test post>, "top": 3}}` (posts drawn at random,
seeded), the store's default model ({info['model']}). Server: `accum serve --workers {args.workers} --no-access-log`, ready
(snapshot loaded, kernels warm) {server.ready_seconds:.2f} s after it started. Client: one Python process,
asyncio streams (keep-alive HTTP/1.1; httpx.AsyncClient collapses at these concurrencies, encode/httpx#3215),
on the same {machine['nproc']} cores as the server. Each run lasts {args.seconds:g} s after a
short warm-up that opens the connections; latency is measured by the client, from sending a request to
reading its whole answer.

## In process (no HTTP)

`predict_one(text, top=3)` on one thread: {base['requests']:,} calls, {fmt(base['rps'], 0)} per second,
p50 {fmt(base['p50_ms'], 2)} ms, p99 {fmt(base['p99_ms'], 2)} ms.

## Over HTTP

{markdown_table(["run", "connections", "requests", "req/s", "p50 ms", "p90 ms", "p99 ms", "max ms", "errors",
                 "server CPU ms/req", "snapshots committed", "snapshots seen"], results)}

**Overhead versus in-process.** With one connection the median request takes {fmt(one['p50_ms'], 2)} ms against
{fmt(base['p50_ms'], 2)} ms for the classification alone: {fmt(overhead_ms, 2)} ms of HTTP, JSON parsing,
validation and thread hand-off per request. In CPU the server spends {fmt(one['server_cpu_ms_per_request'], 2)} ms
per request, {fmt(one['server_cpu_ms_per_request'] / base['mean_ms'] if base['mean_ms'] else None, 1)}× the
{fmt(base['mean_ms'], 2)} ms mean of the classification itself. Under concurrency the latency is mostly queueing:
client and server share {machine['nproc']} cores, so requests per second are bounded by their CPU, not by
the network. The machine is shared with other work (see the load average above): read the rates as lower
bounds.

**During ingest**, `accum ingest` (another process) added batches of {args.batch_pages} test posts, each run
committing one snapshot; the service loaded each new snapshot in the background and switched to it between
requests. "snapshots seen" counts the distinct snapshots named in the answers of that run, the one in
place when it started included.
"""
    if ingest_notes:
        text += "\nIngest failures:\n\n" + "\n".join(f"    {n}" for n in ingest_notes) + "\n"
    if "Traceback" in log_text:
        text += "\nThe server logged errors:\n\n```\n" + log_text[-3000:] + "\n```\n"
    write_report(args.output, text)
    print(text)


if __name__ == "__main__":
    main()

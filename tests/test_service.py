"""``accum serve`` as a client sees it: a real server process on loopback over a store of
real 20 Newsgroups posts, checked against the ``accum`` CLI run as a subprocess on the
same store; the limits in-process; a snapshot switch under load; schemathesis over the
OpenAPI schema; the page at ``/`` in a real headless Chromium."""

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from accum.storage import Store
from corpora import corpus_path

httpx = pytest.importorskip("httpx", reason="the service tests need the test extra: pip install -e '.[test]'")
pytest.importorskip("fastapi", reason="accum serve needs the serve extra: pip install -e '.[serve]'")

ACCUM = [sys.executable, "-m", "accum.cli"]


def _keeps_generators() -> bool:
    """Whether this accum keeps a text generator in stores (ingest --markov-order, accum generate)."""
    import dataclasses
    import importlib.util

    from accum.accumulator import Settings

    return ("markov_order" in {f.name for f in dataclasses.fields(Settings)}
            and importlib.util.find_spec("accum.cli.generate_cmd") is not None)


GENERATORS = _keeps_generators()
TOKEN = "test-token-8f3a"
GROUPS_TRAIN, GROUPS_API, GROUPS_LATER = range(0, 10), range(10, 13), range(13, 17)


def accum(*args, check=True, env=None):
    proc = subprocess.run([*ACCUM, *map(str, args)], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})
    if check and proc.returncode != 0:
        raise AssertionError(f"accum {' '.join(map(str, args))} exited {proc.returncode}:\n{proc.stderr}")
    return proc


def accum_json(*args):
    return json.loads(accum(*args, "--json").stdout)


def copy_posts(root: Path, dest: Path, indices) -> Path:
    """A <group>/<post> tree of the posts at ``indices`` (sorted by name) of every group."""
    for group in sorted(p for p in root.iterdir() if p.is_dir()):
        files = sorted(group.iterdir())
        (dest / group.name).mkdir(parents=True, exist_ok=True)
        for i in indices:
            shutil.copy(files[i], dest / group.name / files[i].name)
    return dest


def read_posts(tree: Path) -> list[dict]:
    return [{"url": f"news:{p.parent.name}/{p.name}", "label": p.parent.name,
             "text": p.read_bytes().decode("latin-1")}
            for p in sorted(tree.glob("*/*"))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``accum serve`` in a subprocess on 127.0.0.1 and a free port."""

    def __init__(self, store: Path, log: Path, *args, token: str | None = TOKEN):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log
        env = {k: v for k, v in os.environ.items() if k != "ACCUM_TOKEN"}
        if token is not None:
            env["ACCUM_TOKEN"] = token
        self._log = open(log, "w")
        self.proc = subprocess.Popen(
            [*ACCUM, "serve", "--store", str(store), "--port", str(self.port), "--no-access-log", *args],
            stdout=subprocess.DEVNULL, stderr=self._log, env=env)
        deadline = time.monotonic() + 90
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"accum serve exited {self.proc.returncode}:\n{self.log()}")
            try:
                if httpx.get(self.url + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"accum serve did not get ready in 90 s:\n{self.log()}")
            time.sleep(0.1)
        self.client = httpx.Client(base_url=self.url, timeout=60)

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text()

    def stop(self) -> None:
        self.client.close()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self._log.close()


@pytest.fixture(scope="module")
def posts(tmp_path_factory):
    """Trees of real posts: the store's first pages, pages for the API, and a later batch."""
    root = corpus_path("20news-bydate/20news-bydate-train")
    base = tmp_path_factory.mktemp("posts")
    return {
        "train": copy_posts(root, base / "train", GROUPS_TRAIN),
        "api": copy_posts(root, base / "api", GROUPS_API),
        "later": copy_posts(root, base / "later", GROUPS_LATER),
    }


@pytest.fixture(scope="module")
def test_texts():
    """One real test-set post from each of a few groups."""
    root = corpus_path("20news-bydate/20news-bydate-test")
    out = []
    for group in ("rec.sport.hockey", "sci.space", "comp.graphics", "talk.politics.mideast"):
        out.append(sorted((root / group).iterdir())[0].read_bytes().decode("latin-1"))
    return out


@pytest.fixture(scope="module")
def store(posts, tmp_path_factory):
    path = tmp_path_factory.mktemp("store") / "store"
    markov = ["--markov-order", "3"] if GENERATORS else []
    summary = accum_json("ingest", posts["train"], "--label", "dir", "--store", path, "--quiet", *markov)
    assert summary["pages_added"] == 200 and summary["categories"] == 20
    return path


@pytest.fixture(scope="module")
def server(store, tmp_path_factory):
    srv = Server(store, tmp_path_factory.mktemp("serve") / "serve.log")
    yield srv
    srv.stop()


def classify(srv, headers=None, **body) -> dict:
    r = srv.client.post("/classify", json=body, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


def cli_classify(store, text, *args) -> dict:
    return accum_json("classify", text, "--store", store, *args)


def without_snapshot(d: dict) -> dict:
    return {k: v for k, v in d.items() if k != "snapshot"}


# -- the real server against the CLI ---------------------------------------------------------


def test_ready_and_warm(server):
    info = server.client.get("/info").json()
    assert 0 < info["ready_seconds"] < 90
    assert info["served_snapshot"] == info["snapshot"] and info["writes"] is True
    assert "ready in" in server.log()


def test_classify_equals_the_cli(server, store, test_texts):
    text = test_texts[0]
    served = classify(server, text=text, top=5, explain=True, terms=8)
    assert without_snapshot(served) == cli_classify(store, text, "--top", "5", "--explain", "--terms", "8")
    assert served["label"] == "rec.sport.hockey"
    dm = classify(server, text=test_texts[1], model="dm", alpha=0.05,  # a custom alpha takes the token
                  headers={"Authorization": f"Bearer {TOKEN}"})
    assert without_snapshot(dm) == cli_classify(store, test_texts[1], "--model", "dm", "--alpha", "0.05")
    batch = classify(server, texts=test_texts, top=5, explain=True, terms=8)
    chosen = Store(store).info()["model_choice"]  # the store chose its model after the ingest
    assert chosen["chosen_by"] == "cross-validation"
    assert batch["model"] == chosen["model"] and len(batch["results"]) == len(test_texts)
    assert batch["results"][0] == {k: v for k, v in served.items() if k not in ("model", "alpha", "snapshot")}
    # label sets: the fit's thresholds (from its held-out pages), as on the command line
    sets = classify(server, text=text, multi_label=True)
    assert without_snapshot(sets) == cli_classify(store, text, "--multi-label")
    r = server.client.post("/classify", json={"text": text, "model": "dm", "multi_label": True})
    assert r.status_code == 422 and "accum calibrate" in r.text  # a model named apart has none


def test_a_trained_model_takes_no_alpha(server):
    """alpha smooths the count models; asked of svm (by name, or as the store's choice) it is
    a 422 that says so, not a server error."""
    r = server.client.post("/classify", json={"text": "the goalie stopped it", "model": "svm", "alpha": 0.1})
    assert r.status_code == 422 and "takes no alpha" in r.text, r.text


def test_ingest_through_the_api_then_answers_equal_the_cli(server, store, posts, test_texts):
    pages = read_posts(posts["api"])
    before = server.client.get("/info").json()
    auth = {"Authorization": f"Bearer {TOKEN}"}
    r = server.client.post("/documents", json=pages, headers=auth)
    assert r.status_code == 200, r.text
    summary = r.json()
    assert summary["pages_added"] == len(pages) == 60 and summary["duplicates"] == 0
    assert summary["documents"] == 260 and summary["snapshot"] != before["served_snapshot"]
    # read your writes: the answer right after comes from the new snapshot
    assert server.client.get("/healthz").json()["snapshot"] == summary["snapshot"]
    again = server.client.post("/documents", json=pages[:7], headers=auth).json()
    assert again["pages_added"] == 0 and again["duplicates"] == 7  # same dedup as accum ingest

    text = test_texts[2]
    served = classify(server, text=text, explain=True)
    assert served["snapshot"] == accum_json("info", "--store", store)["snapshot"]
    assert without_snapshot(served) == cli_classify(store, text, "--explain")
    assert server.client.get("/categories").json() == accum_json("categories", "--store", store)
    info = server.client.get("/info").json()
    cli_info = accum_json("info", "--store", store)
    assert {k: info[k] for k in cli_info} == cli_info
    assert [r["command"].get("via") for r in info["runs"]] == [None, "POST /documents", "POST /documents"]
    sat = server.client.get("/saturation", params={"order": 2, "threshold": 0.5}).json()
    assert without_snapshot(sat) == accum_json("saturation", "--order", "2", "--threshold", "0.5", "--store", store)
    assert sat["overall"]["pages"] == 260  # the growth log went on through the API ingest
    # once accum forecast has checked this snapshot, both forecast by its pick
    assert accum_json("forecast", "--shuffles", "1", "--min-pages", "10", "--store", store)
    picked = server.client.get("/saturation", params={"order": 2, "threshold": 0.5}).json()
    assert without_snapshot(picked) == accum_json("saturation", "--order", "2", "--threshold", "0.5",
                                                  "--store", store)
    assert picked["overall"]["forecast_pick"] is not None and sat["overall"]["forecast_pick"] is None


def test_a_new_calibration_is_served_like_the_cli(server, store, tmp_path):
    held_out = copy_posts(corpus_path("20news-bydate/20news-bydate-test"), tmp_path / "held", range(0, 6))
    text = "the goalie stopped the puck, and the shuttle reached orbit"
    before = classify(server, text=text)
    accum_json("calibrate", held_out, "--label", "dir", "--store", store, "--pairs", "200")
    want = cli_classify(store, text, "--multi-label")
    deadline = time.monotonic() + 60
    while True:  # no new snapshot: the service notices the calibration itself
        r = server.client.post("/classify", json={"text": text, "multi_label": True})
        if (r.status_code == 200 and without_snapshot(r.json()) == want) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert r.status_code == 200, r.text
    served = r.json()
    assert without_snapshot(served) == want
    assert served["snapshot"] == before["snapshot"] and served["top"] != before["top"]  # the new temperature
    assert "new calibration" in server.log()


def test_generate_equals_the_cli(server, store):
    """After the API ingest above: the generator went along (as with accum ingest) and
    /generate answers as accum generate --json."""
    body = {"length": 25, "seed": 3, "category": "sci.space", "prompt": "The shuttle"}
    r = server.client.post("/generate", json=body)
    if not GENERATORS:
        assert r.status_code == 501 and "generat" in r.json()["detail"]
        return
    assert r.status_code == 200, r.text
    cli = accum_json("generate", "--tokens", "25", "--seed", "3", "--category", "sci.space",
                     "--prompt", "The shuttle", "--store", store)
    assert without_snapshot(r.json()) == cli and r.json()["text"].startswith("The shuttle")
    every = server.client.post("/generate", json={"length": 25, "seed": 4}).json()  # from all categories
    assert without_snapshot(every) == accum_json("generate", "--tokens", "25", "--seed", "4", "--store", store)
    assert server.client.get("/info").json()["generation"] is True
    r = server.client.post("/generate", json={"length": 5, "category": "nope"})
    assert r.status_code == 422 and "no category" in r.json()["message"]


def test_writes_need_the_token(server):
    page = [{"url": "x", "label": "sci.space", "text": "orbit"}]
    assert server.client.post("/documents", json=page).status_code == 401
    r = server.client.post("/documents", json=page, headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"


def test_figure_generation_and_openapi(server):
    svg = server.client.get("/saturation.svg", params={"category": "sci.space", "order": 2})
    assert svg.status_code == 200 and svg.headers["content-type"] == "image/svg+xml"
    assert b"<svg" in svg.content[:500]
    assert server.client.get("/saturation", params={"category": "nope"}).status_code == 404
    r = server.client.get("/saturation", params={"order": 3})
    assert r.status_code == 422 and "up to order 2" in r.json()["message"]

    from openapi_spec_validator import validate

    spec = server.client.get("/openapi.json").json()
    validate(spec)
    assert {"/classify", "/generate", "/categories", "/info", "/saturation", "/saturation.png",
            "/saturation.svg", "/healthz", "/documents"} <= set(spec["paths"])
    assert spec["paths"]["/documents"]["post"]["security"] == [{"HTTPBearer": []}]


# -- limits, and writes off without a token ---------------------------------------------------


def test_limits_timeout_and_writes_off(store, tmp_path):
    srv = Server(store, tmp_path / "serve.log", "--max-batch", "4", "--max-body-bytes", "4096",
                 "--max-generate-tokens", "50", "--timeout", "0.0001", token=None)
    try:
        client = srv.client
        r = client.post("/documents", json=[{"url": "u", "label": "sci.space", "text": "orbit"}])
        assert r.status_code == 403
        assert r.json()["detail"] == ("write endpoints are off: start accum serve with ACCUM_TOKEN "
                                      "or --token-file")
        r = client.post("/classify", json={"text": "x" * 5000})
        assert r.status_code == 413 and "4,096 bytes" in r.json()["detail"]
        r = client.post("/classify", content=iter([b'{"text": "', b"x" * 5000, b'"}']),
                        headers={"Content-Type": "application/json"})
        assert r.status_code == 413  # chunked, no Content-Length: counted as it streams in
        r = client.post("/classify", json={"texts": ["a"] * 5})
        assert r.status_code == 422 and "texts: List should have at most 4 items" in r.json()["message"]
        r = client.post("/classify", json={"text": "a", "texts": ["b"]})
        assert r.status_code == 422 and "exactly one of text" in r.json()["message"]
        r = client.post("/generate", json={"length": 51})
        assert r.status_code == 422 and "length" in r.json()["message"]
        r = client.post("/classify", json={"texts": ["the goalie stopped the puck " * 30] * 4, "explain": True})
        assert r.status_code == 503 and "--timeout" in r.json()["detail"]
        assert client.get("/healthz").status_code == 200
    finally:
        srv.stop()


# -- a snapshot switch while requests run ------------------------------------------------------


def test_an_empty_store_answers_409_until_its_first_pages(tmp_path):
    from accum.storage import Store

    Store(tmp_path / "empty", create=True)
    srv = Server(tmp_path / "empty", tmp_path / "serve.log")
    try:
        for path in ("/saturation", "/saturation.png"):
            r = srv.client.get(path)
            assert r.status_code == 409 and "empty" in r.json()["detail"], path
        r = srv.client.post("/documents", headers={"Authorization": f"Bearer {TOKEN}"},
                            json=[{"url": f"u{i}", "label": "sci.space" if i % 2 else "rec.autos",
                                   "text": f"orbit launch {i} engine wheel"} for i in range(20)])
        assert r.status_code == 200, r.text
        deadline = time.monotonic() + 30
        while (r := srv.client.get("/saturation")).status_code == 409 and time.monotonic() < deadline:
            time.sleep(0.2)  # the service switches to the new snapshot
        assert r.status_code == 200
        assert {c["category"] for c in r.json()["categories"]} == {"sci.space", "rec.autos"}
    finally:
        srv.stop()


def test_snapshot_switch_under_load(server, store, posts, test_texts):
    text = test_texts[3]
    first = server.client.get("/healthz").json()["snapshot"]
    stop = threading.Event()
    answers: list[list] = [[] for _ in range(2)]

    def loop(out):
        with httpx.Client(base_url=server.url, timeout=60) as client:
            while not stop.is_set():
                try:
                    r = client.post("/classify", json={"text": text, "explain": True})
                    out.append((r.status_code, r.json().get("snapshot") if r.status_code == 200 else r.text))
                except httpx.HTTPError as exc:  # a failed request is a failure of the test
                    out.append((None, repr(exc)))
                time.sleep(0.005)

    threads = [threading.Thread(target=loop, args=(out,)) for out in answers]
    for t in threads:
        t.start()
    try:
        time.sleep(0.5)
        accum("ingest", posts["later"], "--label", "dir", "--store", store, "--quiet")  # a new snapshot
        newest = accum_json("info", "--store", store)["snapshot"]
        deadline = time.monotonic() + 20
        while not all(out and out[-1][1] == newest for out in answers) and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
    failed = [a for out in answers for a in out if a[0] != 200]
    assert not failed, failed[:5]
    for out in answers:
        seen = [s for _, s in out]
        assert seen == sorted(seen), "a thread saw an older snapshot after a newer one"
        assert seen[-1] == newest, f"the service still answers from {seen[-1]}, not {newest}"
    assert first in {s for out in answers for _, s in out} and sum(map(len, answers)) > 10
    served = classify(server, text=text, explain=True)
    assert served["snapshot"] == newest
    assert without_snapshot(served) == cli_classify(store, text, "--explain")


# -- the page in a real browser ----------------------------------------------------------------


def test_page_in_headless_chromium(server, test_texts, tmp_path, chromium_page):
    page = chromium_page
    text = test_texts[1]
    expected = classify(server, text=text)["label"]
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda m: "Content Security Policy" in m.text and errors.append(m.text))
    page.goto(server.url + "/")
    page.wait_for_selector("#categories tbody tr >> nth=19")  # all 20 groups listed
    assert "pages in 20 categories" in page.inner_text("#summary")
    page.fill("#text", text)
    page.click("#classify")
    page.wait_for_selector("#result:not([hidden])")
    assert page.inner_text("#top-table tbody tr:first-child td:first-child") == expected
    assert page.locator("#explain-table tbody tr").count() >= 3
    assert page.inner_text("#winner") == expected
    page.wait_for_function(
        "() => { const i = document.querySelector('#figure'); return i.complete && i.naturalWidth > 0; }",
        timeout=60_000)
    assert page.is_hidden("#figure-status")
    if GENERATORS:  # the generate box shows when the store keeps a generator
        page.select_option("#gen-category", "sci.space")
        page.fill("#gen-prompt", "The shuttle")
        page.click("#generate")
        page.wait_for_function("() => document.querySelector('#gen-text').textContent.length > 20")
        assert page.inner_text("#gen-text").startswith("The shuttle")
    shot = tmp_path / "accum-page.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000 and not errors, errors
    print(f"screenshot: {shot}")


@pytest.mark.parametrize("stop", ["terminate", "kill"])
def test_the_report_process_ends_with_the_service(store, tmp_path, stop):
    """The process that fits and draws for /saturation goes when the service goes, even
    killed outright: it must not linger, holding the store, after its parent is gone."""
    import psutil

    srv = Server(store, tmp_path / "serve.log")
    try:
        assert srv.client.get("/saturation", params={"order": 1}).status_code == 200
        children = psutil.Process(srv.proc.pid).children(recursive=True)
        assert children  # the report process (and multiprocessing's resource tracker)
    finally:
        getattr(srv.proc, stop)()
        srv.stop()
    gone, alive = psutil.wait_procs(children, timeout=20)
    assert not [p for p in alive if p.status() != psutil.STATUS_ZOMBIE], [p.cmdline() for p in alive]


# -- schemathesis over /openapi.json (last: it writes random pages into the store) -------------


def test_schemathesis_finds_no_server_error(server, tmp_path):
    """Property-based requests from the schema (with the write token): no 5xx, answers conform.

    The figures take seconds each to draw, and ``POST /generate`` answers 501 by design
    where accum keeps no generator; those are checked above instead.
    """
    cli = [sys.executable, "-c", "import sys; from schemathesis.cli import schemathesis; sys.exit(schemathesis())"]
    excluded = r"^/saturation\.(png|svg)$" if GENERATORS else r"^(/saturation\.(png|svg)|/generate)$"
    proc = subprocess.run(
        [*cli, "run", server.url + "/openapi.json", "--checks", "not_a_server_error,response_schema_conformance",
         "--max-time", "15", "--seed", "7", "--generation-database", "none", "--request-timeout", "30",
         "-H", f"Authorization: Bearer {TOKEN}", "--exclude-path-regex", excluded, "--workers", "1"],
        capture_output=True, text=True, timeout=150, cwd=tmp_path,
        env={**os.environ, "PYTHONIOENCODING": "utf-8", "NO_COLOR": "1"},
    )
    tail = proc.stdout[-6000:]
    assert proc.returncode == 0, tail + proc.stderr[-2000:] + server.log()[-3000:]
    assert "Traceback" not in server.log(), server.log()[-3000:]
    assert server.client.get("/healthz").status_code == 200

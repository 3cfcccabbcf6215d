"""``accum serve`` against hostile clients (issue #17), on a real server process on loopback.

1. A read never writes to the store: a custom ``alpha`` needs the token (403 when the
   service has none, 401 without it) and, with it, builds a model in memory only.
2. Hostile bodies (half a million unknown keys, deep nesting, a huge array, a number of a
   million digits) are refused quickly with a small 422, and ``/healthz`` keeps
   answering meanwhile: no request holds the event loop.
3. A request head or body sent a byte at a time is cut off (408), a huge head is refused
   (431), other Host headers are refused (400), every answer carries the security
   headers, and uncached saturation figures are made one at a time with a short queue
   (429 beyond).

The store and the server process are those of ``test_service.py``.
"""

import json
import socket
import statistics
import threading
import time
from pathlib import Path

import pytest

from test_service import TOKEN, Server, posts, store  # noqa: F401 (fixtures)

httpx = pytest.importorskip("httpx")

AUTH = {"Authorization": f"Bearer {TOKEN}"}
HEAD_TIMEOUT = BODY_TIMEOUT = 2.0
#: The bound on /healthz under hostile requests. The event loop itself answers in about
#: a millisecond; the margin is for a machine shared with other work.
HEALTHZ_BOUND = 0.5
#: The bound on the size of a 422 answer, however many problems its request has.
SMALL_ANSWER = 4096


def store_files(path: Path) -> dict:
    """Every file under the store with its size."""
    return {str(p.relative_to(path)): p.stat().st_size for p in sorted(path.rglob("*")) if p.is_file()}


def start(path, tmp_path_factory, name, *args, token):
    """A server over the store at ``path``, which remembers the store's files before it started."""
    before = store_files(path)
    srv = Server(path, tmp_path_factory.mktemp(name) / "serve.log", "--head-timeout", str(HEAD_TIMEOUT),
                 "--body-timeout", str(BODY_TIMEOUT), *args, token=token)
    srv.files_before = before
    return srv


@pytest.fixture(scope="module")
def open_server(store, tmp_path_factory):  # noqa: F811
    """Without a token (writes off), answering the default Host names, with a count model
    (whose alpha a request may change; the store may have chosen a trained one)."""
    srv = start(store, tmp_path_factory, "open", "--model", "complement", token=None)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def token_server(store, tmp_path_factory):  # noqa: F811
    """With the token, answering only the Host names it was given."""
    srv = start(store, tmp_path_factory, "token", "--model", "complement", "--allowed-host", "127.0.0.1",
                "--allowed-host", "accum.example",
                "--allowed-host", "*.accum.test", token=TOKEN)
    yield srv
    srv.stop()


def new_files(srv, store) -> dict:  # noqa: F811
    """The files of the store new or changed since ``srv`` started (SQLite's WAL files
    aside: a reader's connection makes them)."""
    after = store_files(store)
    return {k: v for k, v in after.items() if srv.files_before.get(k) != v and not k.startswith("catalog.sqlite-")}


# -- 1. a read never writes ----------------------------------------------------------------------


def test_a_custom_alpha_needs_the_token_and_nothing_is_written(open_server, token_server, store):  # noqa: F811
    text = "the goalie stopped every shot in the third period"
    for alpha in (0.031, 0.032, 0.033, 0.034):
        r = open_server.client.post("/classify", json={"text": text, "alpha": alpha})
        assert r.status_code == 403, r.text
        detail = r.json()["detail"]
        assert f"alpha {alpha:g}" in detail and "bearer token" in detail and "ACCUM_TOKEN" in detail, detail
        r = token_server.client.post("/classify", json={"text": text, "alpha": alpha})
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer", r.text
        assert "bearer token" in r.json()["detail"]
    # the served model, and the other registered models at their default alpha, need no token
    default = open_server.client.post("/classify", json={"text": text}).json()
    assert open_server.client.post("/classify", json={"text": text, "alpha": default["alpha"]}).json() == default
    for model, alpha in (("dm", None), ("dm", 0.01), ("complement", 0.03), ("complement", None)):
        r = open_server.client.post("/classify", json={"text": text, "model": model, "alpha": alpha})
        assert r.status_code == 200 and r.json()["model"] == model, r.text
    # with the token a custom alpha is answered, from a model built in memory
    r = token_server.client.post("/classify", json={"text": text, "alpha": 0.031}, headers=AUTH)
    assert r.status_code == 200 and r.json()["alpha"] == 0.031, r.text
    assert set(r.json()) == set(default)  # the same fields as ever
    assert new_files(open_server, store) == {} and new_files(token_server, store) == {}
    assert not list(store.glob("snapshots/*/model-*")), "the service saved a model into the store"


def test_the_schema_says_alpha_needs_the_token(open_server):
    spec = open_server.client.get("/openapi.json").json()
    alpha = spec["components"]["schemas"]["ClassifyRequest"]["properties"]["alpha"]
    assert "bearer token" in alpha["description"]
    assert {} in spec["paths"]["/classify"]["post"]["security"]  # optional: only a custom alpha needs it
    assert spec["paths"]["/documents"]["post"]["security"] == [{"HTTPBearer": []}]


# -- 2. hostile bodies ------------------------------------------------------------------------------

def unknown_keys(n: int) -> bytes:
    return json.dumps({f"k{i}": 1 for i in range(n)}).encode()


#: Bodies under the default 8 MiB limit: (path, body maker).
HOSTILE = {
    "500,000 unknown keys": ("/classify", lambda: unknown_keys(500_000)),
    "nesting 3,000,000 deep": ("/classify", lambda: b'{"text": ' + b"[" * 3_000_000 + b"]" * 3_000_000 + b"}"),
    "1,600,000 texts": ("/classify", lambda: json.dumps({"texts": ["a"] * 1_600_000}).encode()),
    "a number of 1,000,000 digits": ("/classify", lambda: b'{"text": "a", "top": ' + b"7" * 1_000_000 + b"}"),
    "100,000 unknown keys to /generate": ("/generate", lambda: unknown_keys(100_000)),
}


def healthz_under(srv, path: str, body: bytes, seconds: float = 1.5, attackers: int = 2):
    """(latencies of /healthz, answers to the hostile requests) while ``attackers`` clients
    post ``body`` to ``path`` over and over."""
    stop = threading.Event()
    answers = []

    def attack():
        with httpx.Client(base_url=srv.url, timeout=120) as client:
            while not stop.is_set():
                answers.append(client.post(path, content=body, headers={"content-type": "application/json"}))

    threads = [threading.Thread(target=attack) for _ in range(attackers)]
    for t in threads:
        t.start()
    latencies = []
    try:
        with httpx.Client(base_url=srv.url, timeout=120) as client:
            time.sleep(0.05)
            end = time.monotonic() + seconds
            while time.monotonic() < end or not answers:  # at least one hostile request answered
                started = time.perf_counter()
                assert client.get("/healthz").status_code == 200
                latencies.append(time.perf_counter() - started)
                time.sleep(0.01)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=300)
    return latencies, answers


@pytest.mark.parametrize("name", list(HOSTILE))
def test_a_hostile_body_gets_a_small_422_and_healthz_keeps_answering(open_server, name):
    path, make = HOSTILE[name]
    body = make()
    latencies, answers = healthz_under(open_server, path, body)
    print(f"\n{name} ({len(body):,} B): {len(answers)} answers, /healthz over {len(latencies)} pokes: "
          f"max {max(latencies) * 1000:.1f} ms, median {statistics.median(latencies) * 1000:.1f} ms, "
          f"answer {max(len(a.content) for a in answers):,} B")
    assert {a.status_code for a in answers} == {422}, answers[0].text[:500]
    assert max(len(a.content) for a in answers) < SMALL_ANSWER
    assert max(latencies) < HEALTHZ_BOUND, f"/healthz took {max(latencies):.3f} s under {name}"


def test_validation_errors_are_capped(open_server, token_server):
    r = open_server.client.post("/classify", json={"text": "a"} | {f"unknown{i}": i for i in range(60)})
    assert r.status_code == 422 and len(r.content) < SMALL_ANSWER
    answer = r.json()
    assert len(answer["detail"]) == 20 and answer["detail"][0]["type"] == "extra_forbidden"
    assert answer["message"].endswith("and 55 more problems"), answer["message"]
    long_key = "k" * 100_000  # a key is echoed in the error's loc: cut short
    r = open_server.client.post("/classify", json={"text": "a", long_key: 1})
    assert r.status_code == 422 and len(r.content) < 1000
    # the schema's own messages still come through
    r = token_server.client.post("/documents", headers=AUTH, json=[{"url": "u", "label": "a", "text": "t"}] * 300)
    assert r.status_code == 422 and "List should have at most 256 items" in r.json()["message"]
    r = open_server.client.post("/classify", content=b'{"text": "a"', headers={"content-type": "application/json"})
    assert r.status_code == 422 and "not valid JSON" in r.json()["message"]
    r = open_server.client.post("/classify", content=b'{"text": "a"}', headers={"content-type": "text/plain"})
    assert r.status_code == 422 and "Content-Type: application/json" in r.json()["message"]


def test_writes_refuse_before_reading_the_body(open_server, token_server):
    body = unknown_keys(500_000)
    started = time.perf_counter()
    assert open_server.client.post("/documents", content=body, headers={"content-type": "application/json"}
                                   ).status_code == 403
    assert token_server.client.post("/documents", content=body, headers={"content-type": "application/json"}
                                    ).status_code == 401
    assert time.perf_counter() - started < 5


# -- 3. slow clients, Host names, headers, figures ----------------------------------------------


def trickle(port: int, first: bytes, then: bytes, delay: float, limit: float) -> tuple[float, bytes]:
    """Send ``first``, then ``then`` a byte every ``delay`` seconds, until the server answers
    or closes or ``limit`` seconds pass: (seconds until then, what the server sent)."""
    answer = b""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.settimeout(delay)
        started = time.monotonic()
        sock.sendall(first)
        for byte in then:
            try:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                answer += chunk
                sock.settimeout(1.0)  # the rest of the answer, then the close
                continue
            except TimeoutError:
                pass
            except OSError:
                break
            if time.monotonic() - started > limit:
                break
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                break
        return time.monotonic() - started, answer


def test_a_slow_head_is_cut_off(open_server):
    head = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"x" * 1000
    seconds, answer = trickle(open_server.port, head[:5], head[5:], delay=0.25, limit=HEAD_TIMEOUT + 8)
    print(f"\nslow head: closed after {seconds:.2f} s (--head-timeout {HEAD_TIMEOUT:g})")
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert seconds < HEAD_TIMEOUT + 1.5
    # a connection that sends nothing is closed too, without an answer
    seconds, answer = trickle(open_server.port, b"", b"\0" * 100, delay=HEAD_TIMEOUT + 8, limit=HEAD_TIMEOUT + 8)
    assert answer == b"" and seconds < HEAD_TIMEOUT + 1.5, (seconds, answer)
    # a head of 70 KB (a browser sends a few hundred bytes)
    with socket.create_connection(("127.0.0.1", open_server.port)) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"X-Big: " + b"y" * 70_000 + b"\r\n")
        sock.settimeout(5)
        assert sock.recv(100).startswith(b"HTTP/1.1 431")
    # and ordinary clients are not bothered: requests on one kept-alive connection
    with httpx.Client(base_url=open_server.url) as client:
        for _ in range(3):
            assert client.get("/healthz").status_code == 200
            time.sleep(HEAD_TIMEOUT / 3)


def test_a_slow_body_is_cut_off(open_server):
    head = (b"POST /classify HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000\r\n\r\n")
    seconds, answer = trickle(open_server.port, head, b'{"text": "' + b"x" * 990, delay=0.25,
                              limit=BODY_TIMEOUT + 8)
    print(f"\nslow body: answered after {seconds:.2f} s (--body-timeout {BODY_TIMEOUT:g})")
    assert answer.startswith(b"HTTP/1.1 408") and b"--body-timeout" in answer, answer[:300]
    assert seconds < BODY_TIMEOUT + 1.5


def test_only_the_allowed_host_names_are_answered(open_server, token_server):
    port = open_server.port
    for host in (f"localhost:{port}", f"127.0.0.1:{port}", f"[::1]:{port}", "LOCALHOST"):
        assert open_server.client.get("/healthz", headers={"Host": host}).status_code == 200, host
    for host in (f"evil.example:{port}", "127.0.0.1.evil.example", "localhost:x", ""):
        r = open_server.client.get("/info", headers={"Host": host})
        assert r.status_code == 400 and "--allowed-host" in r.json()["detail"], (host, r.text)
    for host in ("accum.example", "a.accum.test:80", "127.0.0.1"):
        assert token_server.client.get("/healthz", headers={"Host": host}).status_code == 200, host
    for host in ("localhost", "accum.test", "other.example"):
        assert token_server.client.get("/healthz", headers={"Host": host}).status_code == 400, host


def test_every_answer_has_the_security_headers(open_server):
    client = open_server.client
    with socket.create_connection(("127.0.0.1", open_server.port)) as sock:  # a body declared too large
        sock.sendall(b"POST /classify HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 99999999\r\n\r\n")
        sock.settimeout(5)
        head = sock.recv(65536).split(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")
    too_large = httpx.Response(int(head[0].split()[1]), headers=[line.split(": ", 1) for line in head[1:]])
    answers = {
        "/": client.get("/"), "/web/app.js": client.get("/web/app.js"), "/info": client.get("/info"),
        "404": client.get("/nope"), "422": client.post("/classify", json={}),
        "400 host": client.get("/", headers={"Host": "evil.example"}), "413": too_large,
    }
    for what, r in answers.items():
        assert r.status_code == int(what[:3]) if what[0].isdigit() else r.status_code == 200, (what, r.status_code)
        assert r.headers["x-content-type-options"] == "nosniff", what
        assert r.headers["x-frame-options"] == "DENY", what
        assert r.headers["referrer-policy"] == "no-referrer", what
        policy = dict(p.strip().split(" ", 1) for p in r.headers["content-security-policy"].split(";"))
        assert policy["frame-ancestors"] == "'none'" and policy["script-src"] == "'self'", what
    # the page needs nothing the policy forbids: no inline script, style or handler
    page = answers["/"].text
    assert "<script>" not in page and " style=" not in page and " onclick=" not in page
    docs = client.get("/docs")
    assert docs.status_code == 200 and "https://cdn.jsdelivr.net" in docs.headers["content-security-policy"]


def figures_at_once(srv, thresholds) -> dict:
    """The answers to ``/saturation.svg`` at each threshold, all asked at the same moment."""
    barrier = threading.Barrier(len(thresholds))
    answers = {}

    def figure(threshold):
        with httpx.Client(base_url=srv.url, timeout=120) as client:
            barrier.wait()
            answers[threshold] = client.get("/saturation.svg", params={"threshold": threshold})

    threads = [threading.Thread(target=figure, args=(t,)) for t in thresholds]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    return answers


def test_uncached_figures_are_made_one_at_a_time(open_server):
    answers = figures_at_once(open_server, [0.2 + 0.05 * i for i in range(10)])
    statuses = [a.status_code for a in answers.values()]
    print(f"\n10 figures at once: {statuses.count(200)} drawn, {statuses.count(429)} answered 429")
    assert set(statuses) == {200, 429} and statuses.count(200) >= 1 + 4, statuses  # one made, four waited
    busy = next(a for a in answers.values() if a.status_code == 429)
    assert busy.headers["retry-after"] and "retry" in busy.json()["detail"]
    # while another burst fills the queue, a figure drawn before comes from the cache at once
    drawn = next(t for t, a in answers.items() if a.status_code == 200)
    cached = {}

    def ask_cached():
        time.sleep(0.3)
        started = time.perf_counter()
        cached["answer"] = open_server.client.get("/saturation.svg", params={"threshold": drawn})
        cached["seconds"] = time.perf_counter() - started

    thread = threading.Thread(target=ask_cached)
    thread.start()
    again = figures_at_once(open_server, [0.7 + 0.05 * i for i in range(10)])
    thread.join()
    assert 429 in {a.status_code for a in again.values()}
    assert cached["answer"].status_code == 200 and cached["seconds"] < 1, cached


def test_healthz_keeps_answering_while_figures_are_drawn(open_server):
    """Curve fits and figures run in the service's report process: drawing them does not
    hold up the event loop."""
    stop = threading.Event()
    drawn = []

    def ask_figures(offset):
        with httpx.Client(base_url=open_server.url, timeout=120) as client:
            i = 0
            while not stop.is_set():
                r = client.get("/saturation.png", params={"threshold": 3.0 + offset + 0.01 * i, "order": 2})
                drawn.append(r.status_code)
                i += 1

    threads = [threading.Thread(target=ask_figures, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    latencies = []
    try:
        with httpx.Client(base_url=open_server.url, timeout=120) as client:
            end = time.monotonic() + 4
            while time.monotonic() < end or drawn.count(200) < 2:
                started = time.perf_counter()
                assert client.get("/healthz").status_code == 200
                latencies.append(time.perf_counter() - started)
                time.sleep(0.01)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=300)
    print(f"\n/healthz while {drawn.count(200)} figures were drawn: max {max(latencies) * 1000:.0f} ms, "
          f"median {sorted(latencies)[len(latencies) // 2] * 1000:.0f} ms over {len(latencies)} pokes")
    assert drawn.count(200) >= 2 and max(latencies) < HEALTHZ_BOUND

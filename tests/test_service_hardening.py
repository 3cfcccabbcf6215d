"""``accum serve`` against hostile clients (issue #17), on a real server process on loopback.

1. A read never writes to the store: a custom ``alpha`` needs the token (403 when the
   service has none, 401 without it) and, with it, builds a model in memory only.
2. Hostile bodies (half a million unknown keys, deep nesting, a huge array, a number of a
   million digits) are refused quickly with a small 422, and ``/healthz`` keeps
   answering meanwhile: no request holds the event loop.

The store and the server process are those of ``test_service.py``.
"""

import json
import statistics
import threading
import time
from pathlib import Path

import pytest

from test_service import TOKEN, Server, posts, store  # noqa: F401 (fixtures)

httpx = pytest.importorskip("httpx")

AUTH = {"Authorization": f"Bearer {TOKEN}"}
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
    srv = Server(path, tmp_path_factory.mktemp(name) / "serve.log", *args, token=token)
    srv.files_before = before
    return srv


@pytest.fixture(scope="module")
def open_server(store, tmp_path_factory):  # noqa: F811
    """Without a token (writes off)."""
    srv = start(store, tmp_path_factory, "open", token=None)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def token_server(store, tmp_path_factory):  # noqa: F811
    """With the token."""
    srv = start(store, tmp_path_factory, "token", token=TOKEN)
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
    for model, alpha in (("dm", None), ("dm", 0.01), ("complement", 0.03), ("ridge-complement", None)):
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

"""``accum serve`` against hostile clients (issue #17), on a real server process on loopback.

1. A read never writes to the store: a custom ``alpha`` needs the token (403 when the
   service has none, 401 without it) and, with it, builds a model in memory only.

The store and the server process are those of ``test_service.py``.
"""

from pathlib import Path

import pytest

from test_service import TOKEN, Server, posts, store  # noqa: F401 (fixtures)

httpx = pytest.importorskip("httpx")

AUTH = {"Authorization": f"Bearer {TOKEN}"}


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

"""The FastAPI application of ``accum serve``: routes, limits, token, warm start.

Every answer comes from the same calls as the CLI: ``Store.classifier`` (the store's
model with its calibration), ``predict_one`` and ``Prediction.to_dict``
for ``/classify`` (``accum classify --json``), ``Store.info`` and
``Store.categories``, the :mod:`accum.saturation` functions for ``/saturation`` (``accum
saturation --json``) and ``accum.plots.saturation_figure`` for its figure, and
``accum.ingest.ingest`` through a ``Store.writer`` for ``POST /documents`` (``accum
ingest``: same dedup by content hash, same growth log, same run rows).

Work runs on worker threads (the numba kernels release the GIL) under a per-request
timeout; the event loop only routes and answers. Request bodies are read, parsed and
validated on worker threads too, with a cost bounded whatever they hold
(:mod:`.bodies`); the HTTP limits (head and body deadlines, Host names, security
headers, one figure at a time) are in :mod:`.guard` and :mod:`.protocol`.

A read never writes to the store and never costs more than a bounded set of models per
snapshot: the default one and the other registered models at their default alpha,
built in memory (a model saved by ``accum classify`` is memory-mapped). A custom
``alpha`` builds a model for the request (seconds of CPU, memory as large as the
counts), so it needs the bearer token, as writes do.
"""


import functools
import hmac
import importlib.util
import logging
import os
import tempfile
import threading
import time
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path

import anyio
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from pydantic import TypeAdapter

from accum import __version__
from accum.names import COUNT_MODELS, TRAINED_MODELS

from . import bodies
from . import schemas as S
from .bodies import unprocessable
from .guard import DOCS_POLICY, FIGURE_POLICY, BodyLimit, Gate, HostCheck, SecurityHeaders, default_hosts
from .live import MISSING, LiveModel

log = logging.getLogger("accum.serve")

WRITES_OFF = "write endpoints are off: start accum serve with ACCUM_TOKEN or --token-file"
TOKEN_REQUIRED = "a valid bearer token is required (Authorization: Bearer TOKEN)"
GENERATION_OFF = (
    "generation is not available in this accum: it has no accum generate command to serve "
    "(classification, saturation and ingest work)"
)
WARM_TEXT = "The goalie stopped the puck and the disk drive spun up in orbit."
#: Threads that classify at once. The numba kernels release the GIL but the Python around
#: them does not: with anyio's 40 default threads, classifications queue on the GIL and
#: starve the event loop (measured here: 64 connections, 2 cores, 480 req/s with 40
#: threads against 740-860 with 2). Slow work (figures, ingest) keeps the default pool.
CLASSIFY_THREADS = max(2, min(4, os.cpu_count() or 2))
#: Threads that parse request bodies at once: each may hold the GIL for a regular
#: expression's window or a json.loads at a time, so few of them keep the event loop's
#: share of the GIL large.
PARSE_THREADS = 2
#: Uncached saturation answers and figures that may wait while one is made (:class:`.guard.Gate`).
FIGURE_QUEUE = 4


@dataclass
class ServeConfig:
    """What ``accum serve`` was told (JSON-able, so that worker processes can rebuild it)."""

    store: str
    db: str | None = None
    model: str | None = None  # None: the store's default (accum.classify.default_model)
    alpha: float | None = None
    token: str | None = None
    timeout: float = 30.0
    max_body_bytes: int = 8 * 2**20
    max_batch: int = 256
    max_generate_tokens: int = 1000
    check_seconds: float = 0.5
    started_at: float | None = None  # time.time() when the command started
    host: str = "127.0.0.1"  # the address accum serve binds to
    allowed_hosts: list[str] | None = None  # Host names answered (None: guard.default_hosts(host))
    head_timeout: float = 10.0  # seconds for a request head to arrive (protocol.GuardedHttpToolsProtocol)
    body_timeout: float = 30.0  # seconds for a request body to arrive after its head (guard.BodyLimit)

    def limits(self) -> dict:
        return {"max_body_bytes": self.max_body_bytes, "max_batch": self.max_batch,
                "max_generate_tokens": self.max_generate_tokens, "timeout_seconds": self.timeout}

    def public(self) -> dict:
        """The configuration without the token (for logs)."""
        return {k: v for k, v in asdict(self).items() if k != "token"}


def _web_dir() -> Path:
    return Path(str(resources.files("accum.cli").joinpath("web")))


#: Whether this accum has ``accum generate`` (whose ``load_generator`` the service calls).
GENERATE_COMMAND = importlib.util.find_spec("accum.cli.generate_cmd") is not None


@dataclass
class Generator:
    """The store's text generator as ``accum generate`` opens it, or why there is none."""

    markov: object | None
    why_not: str | None
    lock: threading.Lock  # generation builds chains lazily: one at a time per generator


def _generator(config: "ServeConfig") -> Generator:
    """Open the generator with the CLI's own ``load_generator`` (the seam: without that
    command, or for a store that keeps no generator, ``POST /generate`` answers 501 with
    the reason)."""
    import click

    try:
        from accum.cli.generate_cmd import load_generator
    except ImportError:
        return Generator(None, GENERATION_OFF, threading.Lock())
    try:
        return Generator(load_generator(config.store, config.db), None, threading.Lock())
    except click.ClickException as exc:
        return Generator(None, exc.message, threading.Lock())


def create_app(config: ServeConfig) -> FastAPI:
    """The service over the store of ``config`` (the model is loaded at startup)."""
    from accum.storage import Store, StoreError

    started_at = config.started_at or time.time()
    store = Store(config.store, db=config.db)

    def open_classifier(model: str, alpha: float | None):
        """The classifier exactly as ``accum classify`` opens it (None while the store is empty)."""
        return store.classifier(model, alpha, save=False)  # reads never write

    live = LiveModel(store, open_classifier, config.model, config.alpha, config.check_seconds)
    ClassifyRequest, DocumentsRequest, GenerateRequest = S.request_models(config.max_batch, config.max_generate_tokens)
    ingest_lock = threading.Lock()
    figures = Gate("saturation answers and figures", waiting=FIGURE_QUEUE)
    state = {"ready_seconds": None, "classify_limiter": None, "parse_limiter": None}

    @asynccontextmanager
    async def lifespan(app):
        state["classify_limiter"] = anyio.CapacityLimiter(CLASSIFY_THREADS)
        state["parse_limiter"] = anyio.CapacityLimiter(PARSE_THREADS)
        served = await anyio.to_thread.run_sync(functools.partial(_warm_start, live))
        state["ready_seconds"] = round(time.time() - started_at, 3)
        log.info("ready in %.2f s: snapshot %s, %d categories, model %s", state["ready_seconds"],
                 served.snapshot, served.n_categories, served.clf.name if served.clf else config.model)
        yield
        live.close()
        stop_report_process()

    async def poke():
        live.poke()

    app = FastAPI(
        title="accum", version=__version__, lifespan=lifespan, dependencies=[Depends(poke)],
        description="Dirichlet-accumulator classifier over a live store: classify, saturation, "
                    "online ingest. Answers equal the accum CLI's --json output for the same store.",
    )
    app.add_middleware(BodyLimit, max_bytes=config.max_body_bytes, timeout=config.body_timeout)
    app.add_middleware(HostCheck, allowed=config.allowed_hosts or default_hosts(config.host))
    app.add_middleware(SecurityHeaders, policies={  # the outermost: answers of the others get them too
        path: DOCS_POLICY for path in (app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url) if path})
    app.state.live = live
    app.state.config = config

    async def offload(fn, *args, limiter=None, timeout=(config.timeout, "--timeout"), **kwargs):
        """Run ``fn`` on a worker thread; 503 when it (with its wait for a thread) takes
        longer than ``timeout`` (seconds, and the option that sets them)."""
        with anyio.move_on_after(timeout[0]):
            return await anyio.to_thread.run_sync(functools.partial(fn, *args, **kwargs), abandon_on_cancel=True,
                                                  limiter=limiter)
        raise HTTPException(503, f"the request took longer than {timeout[0]:g} s (accum serve {timeout[1]})")

    @app.exception_handler(RequestValidationError)
    async def validation_error(request, exc: RequestValidationError):
        return JSONResponse(bodies.problems(exc), status_code=422)  # a few KB, however many errors

    @app.exception_handler(StoreError)
    async def store_error(request, exc: StoreError):
        return JSONResponse({"detail": str(exc)}, status_code=409)

    bearer = HTTPBearer(auto_error=False, description="The token accum serve read from ACCUM_TOKEN or --token-file.")

    def token_refusal(credentials: HTTPAuthorizationCredentials | None, off: str, required: str):
        """None when ``credentials`` hold the token; else the 403 (``off``: no token is
        configured) or the 401 (``required``) to raise."""
        if config.token is None:
            return HTTPException(403, off)
        if credentials is None or not hmac.compare_digest(
            credentials.credentials.encode("utf-8", "surrogatepass"), config.token.encode("utf-8")
        ):
            return HTTPException(401, required, headers={"WWW-Authenticate": "Bearer"})
        return None

    async def require_token(credentials: HTTPAuthorizationCredentials | None = Depends(bearer)):
        if (refusal := token_refusal(credentials, WRITES_OFF, TOKEN_REQUIRED)) is not None:
            raise refusal

    body_schemas = {}  # component schemas of the bodies json_body reads, for /openapi.json
    max_members = bodies.max_members(config.max_batch)

    def json_body(shape, name: str):
        """``(Depends, openapi_extra)`` of a route whose JSON body has ``shape``: read and
        validated off the event loop at a bounded cost (:func:`.bodies.parse`) instead of
        by FastAPI on the loop; documented in /openapi.json as FastAPI would."""
        adapter = TypeAdapter(shape)
        schema = adapter.json_schema(ref_template="#/components/schemas/{model}")
        body_schemas.update(schema.pop("$defs", {}))
        if schema.get("type") == "object":
            body_schemas[name] = schema
            schema = {"$ref": f"#/components/schemas/{name}"}

        async def read(request: Request):
            body = await request.body()  # BodyLimit bounds its size and time
            return await offload(bodies.parse, body, request.headers.get("content-type"), adapter, max_members,
                                 limiter=state["parse_limiter"], timeout=(config.body_timeout, "--body-timeout"))

        extra = {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}
        return Depends(read), extra

    fastapi_openapi = app.openapi

    def openapi():
        if app.openapi_schema is None:
            schema = fastapi_openapi()
            schema.setdefault("components", {}).setdefault("schemas", {}).update(body_schemas)
        return app.openapi_schema

    app.openapi = openapi

    errors = {code: {"model": S.ErrorMessage} for code in (409, 413, 503)} | {422: {"model": S.ValidationProblem}}
    classify_body, classify_doc = json_body(ClassifyRequest, "ClassifyRequest")
    documents_body, documents_doc = json_body(DocumentsRequest, "DocumentsRequest")
    generate_body, generate_doc = json_body(GenerateRequest, "GenerateRequest")

    # -- reading ------------------------------------------------------------------------

    @app.post("/classify", response_model=S.ClassifyResponse, response_model_exclude_unset=True,
              responses={401: {"model": S.ErrorMessage}, 403: {"model": S.ErrorMessage}, **errors},
              summary="Classify one text or a batch",
              openapi_extra=classify_doc | {"security": [{}]})  # the token is optional: see alpha
    async def classify(request=classify_body, credentials: HTTPAuthorizationCredentials | None = Depends(bearer)):
        """Top categories with probabilities (and the exact explanation): the same numbers as
        ``accum classify --json`` on the same store. A custom ``alpha`` needs the bearer token."""
        served = live.current
        if served.clf is None and served.n_categories == 0:
            raise HTTPException(409, "the store has no categories yet: POST /documents or accum ingest first")
        name, _ = served.resolve(request.model, None)
        if request.alpha is not None and name in TRAINED_MODELS:
            raise unprocessable(("body", "alpha"), f"{name} is trained over the page vectors and takes no alpha; "
                                f"alpha smooths the count models ({', '.join(COUNT_MODELS)})")
        if served.is_custom(request.model, request.alpha):
            why = (f"alpha {request.alpha:g} is not the one {name} is served with ({served.served_alpha(name):g}): "
                   "it needs a model built for this request, which takes the bearer token")
            refusal = token_refusal(credentials, f"{why}, and this accum serve has none (start it with ACCUM_TOKEN "
                                    "or --token-file); leave alpha out to use the served model",
                                    f"{why} (Authorization: Bearer TOKEN); leave alpha out to use the served model")
            if refusal is not None:
                raise refusal
        return await offload(_classify, served, request, limiter=state["classify_limiter"])

    @app.get("/categories", response_model=list[S.Category], summary="Categories with pages, tokens, features")
    async def categories():
        """``accum categories --json``."""
        served = live.current
        return await offload(served.cached, ("categories",), store.categories)

    @app.get("/info", response_model=S.InfoResponse, summary="The store and the service")
    async def info():
        """``accum info --json`` plus the snapshot served, the time to ready and the limits."""
        served = live.current
        out = await offload(store.info)
        return out | {
            "served_snapshot": served.snapshot, "ready_seconds": state["ready_seconds"],
            "model": served.clf.name if served.clf else config.model,
            "alpha": served.clf.alpha if served.clf else config.alpha,
            "writes": config.token is not None,
            "generation": GENERATE_COMMAND and bool((out["settings"] or {}).get("markov_order")),
            "limits": config.limits(),
        }

    @app.get("/healthz", response_model=S.Health, summary="Liveness")
    async def healthz():
        served = live.current
        return {"status": "ok", "snapshot": served.snapshot, "categories": served.n_categories}

    def saturation_params(
        order: int = Query(1, ge=1, le=8, description="n-gram order of the features."),
        category: str | None = Query(None, max_length=S.MAX_LABEL_CHARS,
                                     description="One category (default: all, plus all pages)."),
        threshold: float = Query(1.0, gt=0, le=1e9, allow_inf_nan=False,
                                 description="Saturated when fewer new features seen >= 2 times arrive per page."),
    ):
        return order, category, threshold

    async def saturation_work(served, key, fn, *args):
        """A saturation answer from the snapshot's cache, else made through the gate."""
        cached = served.peek(key)
        return cached if cached is not MISSING else await figures.run(offload, fn, *args)

    slow = {404: {"model": S.ErrorMessage}, 429: {"model": S.ErrorMessage}, **errors}

    @app.get("/saturation", response_model=S.SaturationResponse, responses=slow,
             summary="Growth, fits and saturation point per category")
    async def saturation(params=Depends(saturation_params)):
        """``accum saturation --json`` (without --shuffles and --plot). One uncached answer or
        figure is made at a time, a few more wait; beyond, 429."""
        served = live.current
        summaries = await saturation_work(served, ("saturation", *params), _saturation_summaries, store, served,
                                          *params)
        return _saturation_json(served, *params, summaries)

    def figure_route(fmt: str, media_type: str):
        async def figure(params=Depends(saturation_params)):
            served = live.current
            data = await saturation_work(served, ("figure", fmt, *params), _figure, store, served, fmt, *params)
            headers = {"Cache-Control": "no-cache"}
            if fmt == "svg":  # opened on its own, it is a document with an inline style sheet
                headers["Content-Security-Policy"] = FIGURE_POLICY
            return Response(data, media_type=media_type, headers=headers)

        figure.__name__ = f"saturation_{fmt}"
        figure.__doc__ = f"The figure of ``accum saturation --plot growth.{fmt}``."
        app.get(f"/saturation.{fmt}", response_class=Response, summary=f"The saturation figure ({fmt.upper()})",
                responses={200: {"content": {media_type: {}}}, **slow})(figure)

    figure_route("png", "image/png")
    figure_route("svg", "image/svg+xml")

    # -- writing ------------------------------------------------------------------------

    @app.post("/documents", response_model=S.IngestResponse, dependencies=[Depends(require_token)],
              responses={401: {"model": S.ErrorMessage}, 403: {"model": S.ErrorMessage}, **errors},
              summary="Ingest labelled pages", openapi_extra=documents_doc)
    async def documents(request=documents_body):
        """Add labelled pages as ``accum ingest`` does: pages whose text the store already has
        are counted as duplicates, the growth log continues, one run and one snapshot are
        committed. The service answers from the new snapshot before this returns."""
        return await offload(_ingest, live, ingest_lock, request)

    @app.post("/generate", response_model=S.GenerateResponse,
              responses={501: {"model": S.ErrorMessage}, **errors}, summary="Generate text",
              openapi_extra=generate_doc)
    async def generate(request=generate_body):
        """Generate text from the store's Markov counts (501 while the store keeps none)."""
        served = live.current
        generator = await offload(served.cached, ("generator",), functools.partial(_generator, config))
        if generator.markov is None:
            raise HTTPException(501, generator.why_not)
        return await offload(_generate, served, generator, request)

    # -- the page -----------------------------------------------------------------------

    web = _web_dir()

    @app.get("/", include_in_schema=False)
    async def index():
        return FileResponse(web / "index.html", media_type="text/html")

    app.mount("/web", StaticFiles(directory=web), name="web")
    return app


def create_app_from_environment() -> FastAPI:
    """The app of a worker process (``accum serve --workers N``): config from ``ACCUM_SERVE_CONFIG``."""
    import json
    import os

    from .protocol import configure

    config = ServeConfig(**json.loads(os.environ["ACCUM_SERVE_CONFIG"]))
    configure(config.head_timeout)  # this process's connections
    return create_app(config)


# -- the work (on worker threads) -------------------------------------------------------


def _warm_start(live: LiveModel):
    """Load the model and classify once, so the numba kernels are compiled or loaded from cache."""
    from accum.warmup import warm_up

    settings = live.store.settings()
    warm_up(settings, generator=bool(settings and settings.markov_order))
    served = live.load_now()
    if served.clf is not None:
        served.clf.predict_one(WARM_TEXT, explain=True)
    return served


def _classify(served, request) -> dict:
    try:
        clf = served.classifier(request.model, request.alpha)
    except ValueError as exc:
        raise unprocessable(("body",), str(exc)) from exc
    if clf is None:
        raise HTTPException(409, "the store has no categories yet: POST /documents or accum ingest first")
    options = {"top": request.top, "explain": request.explain, "n_terms": request.terms}
    if request.min_confidence is not None:
        options["min_confidence"] = request.min_confidence
    if request.multi_label:
        if clf.label_thresholds is None:
            raise unprocessable(("body", "multi_label"), f"multi_label needs per-category thresholds: run accum "
                                f"calibrate for model {clf.name} on held-out labelled pages first")
        options["multi_label"] = True
    texts = [request.text] if request.text is not None else request.texts
    results = [clf.predict_one(t, **options).to_dict() for t in texts]
    head = {"model": clf.name, "alpha": clf.alpha, "snapshot": served.snapshot}
    return results[0] | head if request.text is not None else {"results": results} | head


def _saturation_summaries(store, served, order: int, category: str | None, threshold: float):
    """Curves and summaries, computed as ``accum saturation`` does (cached per snapshot)."""

    acc = served.summary() if served.n_categories else None
    if acc is None:
        raise HTTPException(409, "the store is empty: POST /documents or accum ingest first")
    if order > acc.settings.max_order:
        raise unprocessable(("query", "order"), f"this store counts n-grams up to order {acc.settings.max_order}")
    if category is not None and category not in acc.categories:
        raise HTTPException(404, f"no category {category!r}; the store has {', '.join(acc.categories)}")

    def compute():
        names = [category] if category is not None else [None] + list(acc.categories)
        return (names, *in_report_process(_analyse, str(store.path), store.db_url, acc.to_dict(), order, names,
                                          threshold))

    return served.cached(("saturation", order, category, threshold), compute)


#: The process that draws figures and fits curves (see :func:`in_report_process`).
_REPORTS: dict = {"pool": None, "lock": threading.Lock()}


def in_report_process(fn, *args):
    """``fn(*args)`` in the service's one process for reports. Fitting growth curves and
    drawing figures is Python and matplotlib that hold the GIL for seconds; in another
    process they cannot hold up the event loop (``/healthz`` answers meanwhile). The
    process is started on first use and stopped with the service."""
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    with _REPORTS["lock"]:
        if _REPORTS["pool"] is None:
            _REPORTS["pool"] = ProcessPoolExecutor(1, mp_context=get_context("spawn"))
        pool = _REPORTS["pool"]
    return pool.submit(fn, *args).result()


def stop_report_process() -> None:
    with _REPORTS["lock"]:
        pool, _REPORTS["pool"] = _REPORTS["pool"], None
    if pool is not None:
        pool.shutdown(wait=False, cancel_futures=True)


def _analyse(store_path: str, db: str, summary: dict, order: int, names: list, threshold: float):
    """``accum saturation``'s curves and summaries (in the report process)."""
    from accum import saturation as sat
    from accum.counts import CountsSummary
    from accum.storage import Store

    store = Store(store_path, db=db)
    try:
        return sat.analyse(CountsSummary.from_dict(summary), store.growth, order, names, threshold)
    finally:
        store.engine.dispose()


def _draw(curves: dict, summaries: dict, fmt: str) -> bytes:
    """The saturation figure as ``fmt`` bytes (in the report process)."""
    from accum.plots import saturation_figure

    with tempfile.TemporaryDirectory(prefix="accum-figure-") as tmp:
        path = Path(tmp) / f"growth.{fmt}"
        saturation_figure(curves, summaries, None, path)
        return path.read_bytes()


def _saturation_json(served, order, category, threshold, computed) -> dict:
    """The answer of ``GET /saturation`` from :func:`_saturation_summaries`' ``computed``."""
    names, _, summaries = computed
    return {
        "order": order, "threshold": threshold, "shuffles": 0,
        "overall": summaries.get(None),
        "categories": [summaries[n] for n in names if n is not None],
        "bands": None, "files": [], "snapshot": served.snapshot,
    }


def _figure(store, served, fmt, order, category, threshold) -> bytes:
    """The figure (one at a time: the caller holds the figure gate)."""

    def render():
        _, curves, summaries = _saturation_summaries(store, served, order, category, threshold)
        return in_report_process(_draw, curves, summaries, fmt)

    return served.cached(("figure", fmt, order, category, threshold), render)


def _ingest(live: LiveModel, lock: threading.Lock, documents) -> dict:
    """``accum ingest``'s path for pages given in a request."""
    from accum.settings import Settings
    from accum.pages import Page

    from ..common import ingest_into

    store = live.store
    records = [
        Page(d.url, d.label, d.text, {"source": "POST /documents",
                                      "bytes": len(d.text.encode("utf-8", "surrogatepass"))})
        for d in documents
    ]
    command = {"sources": [], "via": "POST /documents", "format": "api", "label": "field:label",
               "pages": len(records)}
    with lock:  # one API ingest at a time in this process (the store's lock covers the rest)
        result = ingest_into(store, records, command, store.settings() or Settings())
    served = live.load_now()  # read your writes: answer from this snapshot from now on
    return result | {"snapshot": served.snapshot}


def _generate(served, generator: Generator, request) -> dict:
    """``accum generate --json`` (plus the snapshot)."""
    import secrets

    markov = generator.markov
    if request.category is not None and request.category not in markov.categories:
        raise unprocessable(("body", "category"),
                            f"no category {request.category!r}; the store has {', '.join(markov.categories)}")
    seed = request.seed if request.seed is not None else secrets.randbelow(2**31)  # as the CLI: reported back
    try:
        with generator.lock:
            text = markov.generate(request.length, prompt=request.prompt, seed=seed,
                                   temperature=request.temperature, top_k=request.top_k, greedy=request.greedy,
                                   category=request.category, method=request.method)
    except (ValueError, TypeError) as exc:
        raise unprocessable(("body",), str(exc)) from exc
    return {"text": text, "seed": seed, "category": request.category, "order": markov.order,
            "method": request.method or markov.method, "tokens": request.length, "prompt": request.prompt,
            "snapshot": served.snapshot}

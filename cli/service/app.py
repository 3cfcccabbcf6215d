"""The FastAPI application of ``accum serve``: routes, limits, token, warm start.

Every answer comes from the same calls as the CLI: ``Store.classifier`` (the store's
model with its calibration), ``predict_one`` and ``Prediction.to_dict``
for ``/classify`` (``accum classify --json``), ``Store.info`` and
``Store.categories``, the :mod:`accum.saturation` functions for ``/saturation`` (``accum
saturation --json``) and ``accum.plots.saturation_figure`` for its figure, and
``accum.ingest.ingest`` through a ``Store.writer`` for ``POST /documents`` (``accum
ingest``: same dedup by content hash, same growth log, same run rows).

Work runs on worker threads (:mod:`.work`; the numba kernels release the GIL) under a
per-request timeout; the event loop only routes and answers. Request bodies are read, parsed and
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
import logging
import os
import threading
import time
from contextlib import asynccontextmanager
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

from . import bodies, work
from . import schemas as S
from ..serve_config import ServeConfig
from .bodies import unprocessable
from .guard import DOCS_POLICY, FIGURE_POLICY, BodyLimit, Gate, HostCheck, SecurityHeaders, default_hosts
from .live import MISSING, LiveModel

log = logging.getLogger("accum.serve")

WRITES_OFF = "write endpoints are off: start accum serve with ACCUM_TOKEN or --token-file"
TOKEN_REQUIRED = "a valid bearer token is required (Authorization: Bearer TOKEN)"
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


def _web_dir() -> Path:
    return Path(str(resources.files("accum.cli").joinpath("web")))


#: The bearer scheme of the write token (documented in /openapi.json as ``HTTPBearer``).
BEARER = HTTPBearer(auto_error=False, description="The token accum serve read from ACCUM_TOKEN or --token-file.")


class _Service:
    """What the routes of one app share: the configuration, the store, the live model, the
    thread limiters, the figure gate, and the JSON bodies' schemas for /openapi.json."""

    def __init__(self, config: ServeConfig):
        from accum.storage import Store

        self.config = config
        self.started_at = config.started_at or time.time()
        self.store = store = Store(config.store, db=config.db)

        def open_classifier(model: str, alpha: float | None):
            """The classifier exactly as ``accum classify`` opens it (None while the store is empty)."""
            return store.classifier(model, alpha, save=False)  # reads never write

        self.live = LiveModel(store, open_classifier, config.model, config.alpha, config.check_seconds)
        self.ingest_lock = threading.Lock()
        self.figures = Gate("saturation answers and figures", waiting=FIGURE_QUEUE)
        self.ready_seconds: float | None = None
        self.classify_limiter = self.parse_limiter = None  # made in the app's event loop (lifespan)
        self.body_schemas: dict = {}  # component schemas of the bodies json_body reads, for /openapi.json
        self.max_members = bodies.max_members(config.max_batch)

    async def start(self) -> None:
        """Start answering: the limiters, then the model loaded and the kernels warmed."""
        self.classify_limiter = anyio.CapacityLimiter(CLASSIFY_THREADS)
        self.parse_limiter = anyio.CapacityLimiter(PARSE_THREADS)
        served = await anyio.to_thread.run_sync(functools.partial(work.warm_start, self.live))
        self.ready_seconds = round(time.time() - self.started_at, 3)
        log.info("ready in %.2f s: snapshot %s, %d categories, model %s", self.ready_seconds,
                 served.snapshot, served.n_categories, served.clf.name if served.clf else self.config.model)

    def stop(self) -> None:
        self.live.close()
        work.stop_report_process()

    async def offload(self, fn, *args, limiter=None, timeout=None, **kwargs):
        """Run ``fn`` on a worker thread; 503 when it (with its wait for a thread) takes
        longer than ``timeout`` (seconds, and the option that sets them; default --timeout)."""
        seconds, option = timeout or (self.config.timeout, "--timeout")
        with anyio.move_on_after(seconds):
            return await anyio.to_thread.run_sync(functools.partial(fn, *args, **kwargs), abandon_on_cancel=True,
                                                  limiter=limiter)
        raise HTTPException(503, f"the request took longer than {seconds:g} s (accum serve {option})")

    def token_refusal(self, credentials: HTTPAuthorizationCredentials | None, off: str, required: str):
        """None when ``credentials`` hold the token; else the 403 (``off``: no token is
        configured) or the 401 (``required``) to raise."""
        token = self.config.token
        if token is None:
            return HTTPException(403, off)
        if credentials is None or not hmac.compare_digest(
            credentials.credentials.encode("utf-8", "surrogatepass"), token.encode("utf-8")
        ):
            return HTTPException(401, required, headers={"WWW-Authenticate": "Bearer"})
        return None

    def require_token(self):
        """The dependency of the write routes: the token, or 403/401."""

        async def require_token(credentials: HTTPAuthorizationCredentials | None = Depends(BEARER)):
            if (refusal := self.token_refusal(credentials, WRITES_OFF, TOKEN_REQUIRED)) is not None:
                raise refusal

        return Depends(require_token)

    def json_body(self, shape, name: str):
        """``(Depends, openapi_extra)`` of a route whose JSON body has ``shape``: read and
        validated off the event loop at a bounded cost (:func:`.bodies.parse`) instead of
        by FastAPI on the loop; documented in /openapi.json as FastAPI would."""
        adapter = TypeAdapter(shape)
        schema = adapter.json_schema(ref_template="#/components/schemas/{model}")
        self.body_schemas.update(schema.pop("$defs", {}))
        if schema.get("type") == "object":
            self.body_schemas[name] = schema
            schema = {"$ref": f"#/components/schemas/{name}"}

        async def read(request: Request):
            body = await request.body()  # BodyLimit bounds its size and time
            return await self.offload(bodies.parse, body, request.headers.get("content-type"), adapter,
                                      self.max_members, limiter=self.parse_limiter,
                                      timeout=(self.config.body_timeout, "--body-timeout"))

        extra = {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}
        return Depends(read), extra

    def document_bodies(self, app: FastAPI) -> None:
        """Add the bodies' schemas to the app's /openapi.json."""
        fastapi_openapi = app.openapi

        def openapi():
            if app.openapi_schema is None:
                schema = fastapi_openapi()
                schema.setdefault("components", {}).setdefault("schemas", {}).update(self.body_schemas)
            return app.openapi_schema

        app.openapi = openapi


def create_app(config: ServeConfig) -> FastAPI:
    """The service over the store of ``config`` (the model is loaded at startup)."""
    from accum.storage import StoreError

    svc = _Service(config)

    @asynccontextmanager
    async def lifespan(app):
        await svc.start()
        yield
        svc.stop()

    async def poke():
        svc.live.poke()

    app = FastAPI(
        title="accum", version=__version__, lifespan=lifespan, dependencies=[Depends(poke)],
        description="Dirichlet-accumulator classifier over a live store: classify, saturation, "
                    "online ingest. Answers equal the accum CLI's --json output for the same store.",
    )
    app.add_middleware(BodyLimit, max_bytes=config.max_body_bytes, timeout=config.body_timeout)
    app.add_middleware(HostCheck, allowed=config.allowed_hosts or default_hosts(config.host))
    app.add_middleware(SecurityHeaders, policies={  # the outermost: answers of the others get them too
        path: DOCS_POLICY for path in (app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url) if path})
    app.state.live = svc.live
    app.state.config = config

    @app.exception_handler(RequestValidationError)
    async def validation_error(request, exc: RequestValidationError):
        return JSONResponse(bodies.problems(exc), status_code=422)  # a few KB, however many errors

    @app.exception_handler(StoreError)
    async def store_error(request, exc: StoreError):
        return JSONResponse({"detail": str(exc)}, status_code=409)

    svc.document_bodies(app)
    ClassifyRequest, DocumentsRequest, GenerateRequest = S.request_models(config.max_batch, config.max_generate_tokens)
    bodies_of = {"classify": svc.json_body(ClassifyRequest, "ClassifyRequest"),
                 "documents": svc.json_body(DocumentsRequest, "DocumentsRequest"),
                 "generate": svc.json_body(GenerateRequest, "GenerateRequest")}
    _reading_routes(app, svc, bodies_of["classify"])
    _saturation_routes(app, svc)
    _writing_routes(app, svc, bodies_of["documents"], bodies_of["generate"])
    _page_routes(app)
    return app


#: Answers every route may give besides its own.
ERRORS = {code: {"model": S.ErrorMessage} for code in (409, 413, 503)} | {422: {"model": S.ValidationProblem}}


def _reading_routes(app: FastAPI, svc: _Service, classify_body) -> None:
    """``POST /classify``, ``GET /categories``, ``/info`` and ``/healthz``."""
    config, live, store = svc.config, svc.live, svc.store
    body, doc = classify_body

    @app.post("/classify", response_model=S.ClassifyResponse, response_model_exclude_unset=True,
              responses={401: {"model": S.ErrorMessage}, 403: {"model": S.ErrorMessage}, **ERRORS},
              summary="Classify one text or a batch",
              openapi_extra=doc | {"security": [{}]})  # the token is optional: see alpha
    async def classify(request=body, credentials: HTTPAuthorizationCredentials | None = Depends(BEARER)):
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
            refusal = svc.token_refusal(credentials, f"{why}, and this accum serve has none (start it with "
                                        "ACCUM_TOKEN or --token-file); leave alpha out to use the served model",
                                        f"{why} (Authorization: Bearer TOKEN); leave alpha out to use the served "
                                        "model")
            if refusal is not None:
                raise refusal
        return await svc.offload(work.classify, served, request, limiter=svc.classify_limiter)

    @app.get("/categories", response_model=list[S.Category], summary="Categories with pages, tokens, features")
    async def categories():
        """``accum categories --json``."""
        served = live.current
        return await svc.offload(served.cached, ("categories",), store.categories)

    @app.get("/info", response_model=S.InfoResponse, summary="The store and the service")
    async def info():
        """``accum info --json`` plus the snapshot served, the time to ready and the limits."""
        served = live.current
        out = await svc.offload(store.info)
        return out | {
            "served_snapshot": served.snapshot, "ready_seconds": svc.ready_seconds,
            "model": served.clf.name if served.clf else config.model,
            "alpha": served.clf.alpha if served.clf else config.alpha,
            "writes": config.token is not None,
            "generation": work.GENERATE_COMMAND and bool((out["settings"] or {}).get("markov_order")),
            "limits": config.limits(),
        }

    @app.get("/healthz", response_model=S.Health, summary="Liveness")
    async def healthz():
        served = live.current
        return {"status": "ok", "snapshot": served.snapshot, "categories": served.n_categories}


def _saturation_params(
    order: int = Query(1, ge=1, le=8, description="n-gram order of the features."),
    category: str | None = Query(None, max_length=S.MAX_LABEL_CHARS,
                                 description="One category (default: all, plus all pages)."),
    threshold: float = Query(1.0, gt=0, le=1e9, allow_inf_nan=False,
                             description="Saturated when fewer new features seen >= 2 times arrive per page."),
):
    return order, category, threshold


def _saturation_routes(app: FastAPI, svc: _Service) -> None:
    """``GET /saturation`` and its figure, ``/saturation.png`` and ``/saturation.svg``."""
    live, store = svc.live, svc.store
    slow = {404: {"model": S.ErrorMessage}, 429: {"model": S.ErrorMessage}, **ERRORS}

    async def saturation_work(served, key, fn, *args):
        """A saturation answer from the snapshot's cache, else made through the gate."""
        cached = served.peek(key)
        return cached if cached is not MISSING else await svc.figures.run(svc.offload, fn, *args)

    @app.get("/saturation", response_model=S.SaturationResponse, responses=slow,
             summary="Growth, fits and saturation point per category")
    async def saturation(params=Depends(_saturation_params)):
        """``accum saturation --json`` (without --shuffles and --plot). One uncached answer or
        figure is made at a time, a few more wait; beyond, 429."""
        served = live.current
        summaries = await saturation_work(served, ("saturation", *params), work.saturation_summaries, store, served,
                                          *params)
        return work.saturation_json(served, *params, summaries)

    def figure_route(fmt: str, media_type: str):
        async def figure(params=Depends(_saturation_params)):
            served = live.current
            data = await saturation_work(served, ("figure", fmt, *params), work.figure, store, served, fmt, *params)
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


def _writing_routes(app: FastAPI, svc: _Service, documents_body, generate_body) -> None:
    """``POST /documents`` (needs the token) and ``POST /generate``."""
    config, live = svc.config, svc.live

    @app.post("/documents", response_model=S.IngestResponse, dependencies=[svc.require_token()],
              responses={401: {"model": S.ErrorMessage}, 403: {"model": S.ErrorMessage}, **ERRORS},
              summary="Ingest labelled pages", openapi_extra=documents_body[1])
    async def documents(request=documents_body[0]):
        """Add labelled pages as ``accum ingest`` does: pages whose text the store already has
        are counted as duplicates, the growth log continues, one run and one snapshot are
        committed. The service answers from the new snapshot before this returns."""
        return await svc.offload(work.ingest, live, svc.ingest_lock, request)

    @app.post("/generate", response_model=S.GenerateResponse,
              responses={501: {"model": S.ErrorMessage}, **ERRORS}, summary="Generate text",
              openapi_extra=generate_body[1])
    async def generate(request=generate_body[0]):
        """Generate text from the store's Markov counts (501 while the store keeps none)."""
        served = live.current
        generator = await svc.offload(work.generator_for, served, config, request.category)
        if generator.markov is None:
            raise HTTPException(501, generator.why_not)
        return await svc.offload(work.generate, served, generator, request)


def _page_routes(app: FastAPI) -> None:
    """``/``: the page to paste text into, and its files under ``/web``."""
    web = _web_dir()

    @app.get("/", include_in_schema=False)
    async def index():
        return FileResponse(web / "index.html", media_type="text/html")

    app.mount("/web", StaticFiles(directory=web), name="web")


def create_app_from_environment() -> FastAPI:
    """The app of a worker process (``accum serve --workers N``): config from ``ACCUM_SERVE_CONFIG``."""
    import json
    import os

    from .protocol import configure

    config = ServeConfig(**json.loads(os.environ["ACCUM_SERVE_CONFIG"]))
    configure(config.head_timeout)  # this process's connections
    return create_app(config)

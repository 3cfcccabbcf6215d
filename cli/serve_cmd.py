"""``accum serve``: the HTTP service over a store (FastAPI + uvicorn, the ``serve`` extra)."""

from __future__ import annotations

import ipaddress
import os
import time

import click

from .common import data_errors, model_options, store_options
from .serve_config import default

EXTRA_MISSING = ("accum serve needs FastAPI and uvicorn, which the core install leaves out: "
                 "pip install 'accum[serve]'")


@click.command("serve")
@click.option("--host", default=default("host"), show_default=True,
              help="Interface to listen on (loopback only by default; 0.0.0.0 for every interface).")
@click.option("--port", default=8750, show_default=True, type=click.IntRange(0, 65535), help="TCP port.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(min=1),
              help="Worker processes (each loads the model and follows new snapshots).")
@model_options
@click.option("--token-file", type=click.Path(exists=True, dir_okay=False),
              help="File holding the bearer token that turns POST /documents on (else env ACCUM_TOKEN; "
                   "without either, write endpoints are off).")
@click.option("--timeout", default=default("timeout"), show_default=True, type=click.FloatRange(min=0, min_open=True),
              help="Seconds a request may work before it is answered 503.")
@click.option("--max-body-bytes", default=default("max_body_bytes"), show_default=True, type=click.IntRange(min=1024),
              help="Larger request bodies are answered 413.")
@click.option("--max-batch", default=default("max_batch"), show_default=True, type=click.IntRange(min=1),
              help="Most texts per /classify and pages per /documents request (422 beyond).")
@click.option("--max-generate-tokens", default=default("max_generate_tokens"), show_default=True,
              type=click.IntRange(min=1),
              help="Longest /generate answer in tokens (422 beyond).")
@click.option("--allowed-host", "allowed_hosts", multiple=True, metavar="NAME",
              help="A Host name clients use to reach the service (repeat it; '*.example.com' for subdomains, "
                   "'*' for any); other Host headers are answered 400. Default: the --host address, "
                   "localhost, 127.0.0.1 and ::1.")
@click.option("--head-timeout", default=default("head_timeout"), show_default=True,
              type=click.FloatRange(min=0, min_open=True),
              help="Seconds a client may take to send a request head; then 408 and the connection closes.")
@click.option("--body-timeout", default=default("body_timeout"), show_default=True,
              type=click.FloatRange(min=0, min_open=True),
              help="Seconds a request body may take to arrive after its head (then 408) and to be parsed "
                   "(then 503).")
@click.option("--access-log/--no-access-log", default=True, show_default=True,
              help="Log every request on stderr.")
@store_options
@data_errors
def serve_command(host, port, workers, model, alpha, token_file, timeout, max_body_bytes, max_batch,
                  max_generate_tokens, allowed_hosts, head_timeout, body_timeout, access_log, store, db):
    """Serve the store over HTTP: classify, categories, info, saturation, online ingest, and a page at /.

    The service answers from the newest snapshot and switches to a newer one (committed
    by accum ingest or POST /documents) without failing a request. POST /documents, and
    /classify with a custom alpha, need the bearer token from --token-file or the
    ACCUM_TOKEN environment variable.
    """
    started_at = time.time()
    try:
        import fastapi  # noqa: F401
        import httptools  # noqa: F401
        import uvicorn
    except ImportError as exc:
        raise click.ClickException(f"{EXTRA_MISSING} ({exc})") from None
    from .serve_config import ServeConfig
    from .service import create_app
    from .service.protocol import IMPORT_PATH, configure

    token = _read_token(token_file)
    from accum.storage import Store

    Store(store, db=db)  # a missing store fails here, with its message, before uvicorn starts
    config = ServeConfig(
        store=store, db=db, model=model, alpha=alpha, token=token, timeout=timeout,
        max_body_bytes=max_body_bytes, max_batch=max_batch, max_generate_tokens=max_generate_tokens,
        started_at=started_at, host=host, allowed_hosts=list(allowed_hosts) or None,
        head_timeout=head_timeout, body_timeout=body_timeout,
    )
    if not _is_loopback(host):
        click.echo(f"accum serve: listening on {host}, not only on loopback: other machines can reach it"
                   + ("" if allowed_hosts else " (give the names they use with --allowed-host: others get 400)"),
                   err=True)
    click.echo(f"accum serve: store {store}, writes {'on' if token else 'off'}, "
               f"http://{host if ':' not in host else f'[{host}]'}:{port}/", err=True)
    options = dict(host=host, port=port, log_config=_log_config(), access_log=access_log,
                   timeout_graceful_shutdown=5, http=IMPORT_PATH)
    if workers == 1:
        configure(head_timeout)  # worker processes do it in create_app_from_environment
        uvicorn.run(create_app(config), **options)
    else:
        import dataclasses
        import json

        os.environ["ACCUM_SERVE_CONFIG"] = json.dumps(dataclasses.asdict(config))
        uvicorn.run("accum.cli.service:create_app_from_environment", factory=True, workers=workers, **options)


def _read_token(token_file: str | None) -> str | None:
    """The write token: --token-file first, then ACCUM_TOKEN; None when neither is set."""
    if token_file is not None:
        with open(token_file, encoding="utf-8") as f:
            token = f.read().strip()
        if not token:
            raise click.ClickException(f"the token file {token_file} is empty")
        return token
    token = os.environ.get("ACCUM_TOKEN", "").strip()
    return token or None


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _log_config() -> dict:
    """uvicorn's logging with everything (access log included) on stderr, plus accum's logger."""
    import copy

    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["handlers"]["access"]["stream"] = "ext://sys.stderr"
    config["loggers"]["accum.serve"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    return config

"""The HTTP service of ``accum serve`` (needs the ``serve`` extra: ``pip install 'accum[serve]'``).

- :mod:`.app`: the FastAPI application (:func:`create_app`), its limits and routes;
- :mod:`.work`: what the routes run on worker threads (and in the report process);
- :mod:`.live`: the model the service answers from, switched atomically to newer snapshots;
- :mod:`.schemas`: request and response shapes (documented at ``/openapi.json``);
- :mod:`.bodies`: request bodies parsed and validated off the event loop, at a bounded cost;
- :mod:`.guard`: Host names, security headers, body size and deadline, one figure at a time;
- :mod:`.protocol`: uvicorn's HTTP protocol with a deadline and a size limit on request heads.

Importing this package imports FastAPI; ``accum.cli.serve_cmd`` imports it only when
the command runs, so the core install does not need the extra.
"""

from .app import ServeConfig, create_app, create_app_from_environment

__all__ = ["ServeConfig", "create_app", "create_app_from_environment"]

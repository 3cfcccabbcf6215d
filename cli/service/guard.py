"""What stands between the network and the routes of ``accum serve``.

- :class:`SecurityHeaders`: a Content-Security-Policy, ``nosniff``, no framing and no
  referrer on every answer;
- :class:`HostCheck`: 400 to a Host header the service was not told to answer to, so a
  page on another site cannot reach it through DNS rebinding;
- :class:`BodyLimit`: 413 beyond a body size, 408 when a body does not arrive in time;
- :class:`Gate`: slow work (saturation figures) one job at a time with a short queue.

The request head has its own deadline and size limit, in the HTTP protocol itself
(:mod:`accum.cli.service.protocol`): an ASGI application only sees a request once its
head is complete.
"""

from __future__ import annotations

import ipaddress
import threading

import anyio
from fastapi import HTTPException
from fastapi.responses import JSONResponse

#: The page at / loads its script and style sheet from /web, its figure from
#: /saturation.png and its data with fetch(), all from this origin, and has no inline
#: script or style (app.js sets widths through the CSSOM, which style-src does not govern).
PAGE_POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
               "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
#: FastAPI's /docs and /redoc pages load Swagger UI and ReDoc from cdn.jsdelivr.net (and
#: ReDoc its fonts from Google) and start them with an inline script. They show the
#: OpenAPI schema, no data from the store.
DOCS_POLICY = ("default-src 'none'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
               "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com; "
               "font-src https://fonts.gstatic.com; img-src 'self' data: https://fastapi.tiangolo.com "
               "https://cdn.redoc.ly; connect-src 'self'; worker-src blob:; base-uri 'none'; frame-ancestors 'none'")
#: An SVG figure opened on its own: matplotlib writes an inline <style> element.
FIGURE_POLICY = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"

HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
]


class SecurityHeaders:
    """ASGI middleware: the headers of :data:`HEADERS` and a Content-Security-Policy on
    every answer (``policies`` by path, else :data:`PAGE_POLICY`; an answer that sets its
    own policy keeps it)."""

    def __init__(self, app, policies: dict[str, str] | None = None):
        self.app = app
        self.policies = {path: policy.encode("ascii") for path, policy in (policies or {}).items()}
        self.default = PAGE_POLICY.encode("ascii")

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        policy = self.policies.get(scope.get("path", ""), self.default)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {name.lower() for name, _ in headers}
                headers += [(name, value) for name, value in HEADERS if name not in names]
                if b"content-security-policy" not in names:
                    headers.append((b"content-security-policy", policy))
                message = {**message, "headers": headers}
            await send(message)

        return await self.app(scope, receive, send_with_headers)


def default_hosts(bound: str) -> list[str]:
    """The Host names answered by default: the address the service is bound to and loopback."""
    return list(dict.fromkeys([bound, "localhost", "127.0.0.1", "::1"]))


def host_name(header: str) -> str | None:
    """The host of a Host header (or of an allowed name) without its port and IPv6
    brackets, lower case; None when malformed."""
    header = header.strip().lower()
    if header.startswith("["):
        end = header.find("]")
        rest = header[end + 1:]
        if end < 0 or (rest and not (rest.startswith(":") and rest[1:].isdigit())):
            return None
        try:
            return ipaddress.IPv6Address(header[1:end]).compressed
        except ValueError:
            return None
    if header.count(":") == 1:
        header, port = header.split(":")
        if not port.isdigit():
            return None
    try:
        return ipaddress.ip_address(header).compressed
    except ValueError:
        return header.rstrip(".") if header and ":" not in header else None


class HostCheck:
    """ASGI middleware: 400 to a request whose Host header is not in ``allowed``.

    A browser page from another site can resolve its own name to 127.0.0.1 (DNS
    rebinding) and then read this service as if same-origin; its requests still carry the
    other site's name in Host, which this refuses. ``allowed`` holds names or addresses
    (``*.example.com`` for subdomains, ``*`` for any).
    """

    def __init__(self, app, allowed: list[str]):
        self.app = app
        self.allow_any = "*" in allowed
        names = [host_name(h) or h.strip().lower() for h in allowed if h != "*"]
        self.exact = {n for n in names if not n.startswith("*.")}
        self.suffixes = tuple(n[1:] for n in names if n.startswith("*."))
        self.listed = ", ".join(allowed)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or self.allow_any:
            return await self.app(scope, receive, send)
        given = [v for k, v in scope["headers"] if k == b"host"]
        name = host_name(given[0].decode("latin-1")) if len(given) == 1 else None
        if name is not None and (name in self.exact or (bool(self.suffixes) and name.endswith(self.suffixes))):
            return await self.app(scope, receive, send)
        shown = repr(given[0].decode("latin-1")[:100]) if given else "none"
        response = JSONResponse({"detail": (
            f"this service does not answer to Host {shown}: it answers to {self.listed}; start accum serve "
            "with --allowed-host NAME for each name clients use to reach it (--allowed-host '*' for any)")},
            status_code=400)
        return await response(scope, receive, send)


class BodyLimit:
    """ASGI middleware: 413 to a request body over ``max_bytes`` (declared or streamed), 408
    when the body is not complete ``timeout`` seconds after its head."""

    def __init__(self, app, max_bytes: int, timeout: float):
        self.app = app
        self.max_bytes = max_bytes
        self.timeout = timeout
        self.too_large = f"request body over the limit of {max_bytes:,} bytes (accum serve --max-body-bytes)"
        self.too_slow = (f"request body not complete within {timeout:g} s (accum serve --body-timeout): "
                         "send it at once")

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            response = JSONResponse({"detail": self.too_large}, status_code=413, headers={"Connection": "close"})
            return await response(scope, receive, send)
        deadline = anyio.current_time() + self.timeout
        seen = 0
        complete = False

        async def limited_receive():
            nonlocal seen, complete
            if complete:  # after the body only a disconnect can come: no deadline
                return await receive()
            with anyio.move_on_after(deadline - anyio.current_time()):
                message = await receive()
                if message["type"] == "http.request":
                    seen += len(message.get("body", b""))
                    if seen > self.max_bytes:  # chunked or lying about its length
                        raise HTTPException(413, self.too_large, headers={"Connection": "close"})
                complete = message["type"] != "http.request" or not message.get("more_body", False)
                return message
            raise HTTPException(408, self.too_slow, headers={"Connection": "close"})

        return await self.app(scope, limited_receive, send)


class Gate:
    """Slow work one job at a time, at most ``waiting`` more jobs queued; more are answered
    429 at once.

    For saturation answers and figures not yet cached: each costs seconds of CPU and
    needs no token (the page at / draws one), and any request may ask for a new one
    (category × order × threshold × format). A fixed set of thresholds would not bound
    that product, rounding thresholds would answer another question than the one asked,
    and a token would take the figure off the page; what must be bounded is the CPU and
    the queue, whatever the request rate. So: the work uses one thread at most; the
    queue is short, so a flood is refused instead of piling up; a job whose client has
    gone (the request timed out) is skipped when its turn comes; cached answers never
    wait. A flood can make an uncached figure wait or answer 429, and the rest of the
    service keeps its cores.

    Parameters
    ----------
    what : str
        What the jobs make, plural, for the 429 message.
    waiting : int
        Jobs that may wait while one runs.
    """

    def __init__(self, what: str, waiting: int = 4):
        self.what = what
        self.limit = waiting + 1
        self.admitted = 0  # changed on the event loop only
        self._lock = threading.Lock()

    async def run(self, offload, fn, *args):
        """``await offload(fn, *args)``, one at a time; 429 when the queue is full."""
        if self.admitted >= self.limit:
            raise HTTPException(429, f"{self.admitted} {self.what} are being made or waiting, the most this "
                                "service takes at once: retry in a few seconds", headers={"Retry-After": "5"})
        self.admitted += 1
        gone = threading.Event()

        def job():
            with self._lock:
                return None if gone.is_set() else fn(*args)

        try:
            return await offload(job)
        finally:
            self.admitted -= 1
            gone.set()

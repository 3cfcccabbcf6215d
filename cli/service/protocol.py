"""uvicorn's HTTP protocol with a deadline and a size limit on every request head.

uvicorn bounds only the idle time between two requests (``timeout_keep_alive``, armed
when a response completes and cancelled by the first byte that arrives). Nothing bounds
how long a client may take to send a request head, nor (with httptools, the parser
``accum serve`` uses) how large a head may grow: a client that sends a header byte a
second, or never anything after connecting, keeps its connection, its buffers and a
file descriptor forever, and a few hundred such clients exhaust the server
(slow-loris). h11 has ``h11_max_incomplete_event_size`` for the size but no deadline
either.

:class:`GuardedHttpToolsProtocol` arms a timer when a connection opens and again each
time it becomes ready for the next request; the timer is cancelled when a request head
is complete and, if it fires first, the connection is answered 408 and closed (closed
silently when not a byte of the head had arrived). Arriving bytes do not re-arm it: the
head must be complete within :attr:`head_timeout` seconds, however it is spread out.
Bytes received while a head is incomplete are counted; beyond :attr:`max_head_bytes`
the connection is answered 431 and closed. The request body has its own deadline, kept
by :class:`~accum.cli.service.guard.BodyLimit` in the application.

The limits are class attributes, set by :func:`configure` from the
:class:`~accum.cli.service.app.ServeConfig` in each process that serves (uvicorn builds
one protocol object per connection from the class it is given by import path, which
worker processes re-import).
"""

from __future__ import annotations

from asyncio import TimerHandle

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

#: ``uvicorn.run(http=...)`` for :class:`GuardedHttpToolsProtocol`.
IMPORT_PATH = "accum.cli.service.protocol:GuardedHttpToolsProtocol"


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """:class:`uvicorn.protocols.http.httptools_impl.HttpToolsProtocol` with a deadline
    (:attr:`head_timeout`) and a size limit (:attr:`max_head_bytes`) on request heads."""

    #: Seconds a request head may take to arrive, from the connection (or the previous
    #: response) on.
    head_timeout: float = 10.0
    #: Bytes a request head may take (request line and headers): browsers send a few
    #: hundred, and the servers in front of web applications refuse 8-64 KB.
    max_head_bytes: int = 64 * 1024

    _head_timer: TimerHandle | None = None
    _head_bytes: int = 0

    def connection_made(self, transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._await_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        reading_head = self._head_timer is not None
        super().data_received(data)
        if reading_head and self._head_timer is not None:  # the head is still incomplete
            self._head_bytes += len(data)
            if self._head_bytes > self.max_head_bytes:
                self._refuse(431, f"request head over {self.max_head_bytes:,} bytes")

    def on_headers_complete(self) -> None:
        self._stop_head_timer()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        in_progress = self.cycle is not None and not self.cycle.response_complete  # a pipelined request
        if not self.transport.is_closing() and not in_progress:
            self._await_head()

    # -- the head timer ------------------------------------------------------------------

    def _await_head(self) -> None:
        self._stop_head_timer()
        self._head_bytes = 0
        self._head_timer = self.loop.call_later(self.head_timeout, self._head_too_slow)

    def _stop_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_too_slow(self) -> None:
        self._head_timer = None
        if self.transport.is_closing():
            return
        if self._head_bytes == 0:
            self.transport.close()  # an idle connection: nothing to answer
            return
        self._refuse(408, f"request head not complete within {self.head_timeout:g} s")

    def _refuse(self, status: int, message: str) -> None:
        """Answer ``status`` with ``message`` and close (no request reaches the application)."""
        self._stop_head_timer()
        if self.transport.is_closing():
            return
        body = message.encode("ascii")
        self.transport.write(b"".join([
            STATUS_LINE[status],
            *(name + b": " + value + b"\r\n" for name, value in self.server_state.default_headers),
            b"content-type: text/plain; charset=utf-8\r\n",
            b"content-length: " + str(len(body)).encode("ascii") + b"\r\n",
            b"connection: close\r\n\r\n",
            body,
        ]))
        self.transport.close()


def configure(head_timeout: float, max_head_bytes: int | None = None) -> None:
    """Set the limits of :class:`GuardedHttpToolsProtocol` for this process."""
    GuardedHttpToolsProtocol.head_timeout = head_timeout
    if max_head_bytes is not None:
        GuardedHttpToolsProtocol.max_head_bytes = max_head_bytes

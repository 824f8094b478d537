"""Running the network host's ASGI app on uvicorn, with the limits a server needs.

- Connections are capped: past ``max_connections`` a new one is closed at once, so
  idle or half-open sockets cannot exhaust the process's file descriptors.
- A request's head must arrive within ``request_timeout`` seconds (the app bounds
  the body the same way): a client that trickles bytes (slowloris) is cut off.
- On a graceful shutdown (SIGTERM, SIGINT) every WebSocket is closed with 1001,
  going away, before uvicorn closes the connections.
- Dead peers are found by TCP keepalive (``KEEPALIVE``), not by WebSocket pings: the
  peer's kernel answers those even while its program reads nothing, so a client that
  stops reading is closed by the backlog rule (4008, ``docs/protocol.md``), never by a
  ping timed out (which the WebSocket library reports as 1011, a server failure).
  ``TCP_USER_TIMEOUT`` drops a connection whose sent bytes stay unacknowledged.

uvicorn's fast parser (httptools) and event loop (uvloop) are used when installed
(``pip install "cloudflare-durable[server]"`` brings them where they build).
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any, Final

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from .. import _protocol as proto
from .asgi import REQUEST_TIMEOUT, DurableApp

try:  # pragma: no cover - depends on what is installed
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # pragma: no cover
    HttpToolsProtocol = None  # type: ignore[assignment,misc]

__all__ = ["MAX_CONNECTIONS", "serve"]

MAX_CONNECTIONS: Final = 1024
"""Open connections one network host accepts; more are closed as they arrive."""


KEEPALIVE: Final = (30, 10, 3)
"""Seconds of silence before the first TCP keepalive probe, seconds between probes,
and probes unanswered before the kernel drops the connection."""

USER_TIMEOUT_MS: Final = 120_000
"""How long sent bytes may stay unacknowledged before the kernel drops the connection."""


def _keepalive(sock: socket.socket) -> None:
    """Set keepalive on the listening socket; accepted connections inherit it (Linux)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    idle, interval, count = KEEPALIVE
    for name, value in (
        ("TCP_KEEPIDLE", idle),
        ("TCP_KEEPINTVL", interval),
        ("TCP_KEEPCNT", count),
        ("TCP_USER_TIMEOUT", USER_TIMEOUT_MS),
    ):
        option = getattr(socket, name, None)
        if option is not None:  # pragma: no branch - absent on some platforms
            sock.setsockopt(socket.IPPROTO_TCP, option, value)


class _Limits:
    """What the protocol classes below read: set once, before the server starts."""

    max_connections = MAX_CONNECTIONS
    request_timeout = REQUEST_TIMEOUT


class _Guard:
    """Mixed into uvicorn's HTTP protocols: the connection cap and the head deadline.

    The deadline runs from the connection's start, and again from the end of each
    response, until the next request's head is complete.
    """

    transport: asyncio.Transport
    connections: set[Any]
    _head_timer: asyncio.TimerHandle | None = None

    def _start_head_timer(self) -> None:
        self._stop_head_timer()
        loop = asyncio.get_running_loop()
        self._head_timer = loop.call_later(_Limits.request_timeout, self._head_too_slow)

    def _stop_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_too_slow(self) -> None:
        self._head_timer = None
        if not self.transport.is_closing():
            self.transport.close()

    def _admit(self) -> bool:
        if len(self.connections) > _Limits.max_connections:
            self.transport.close()
            return False
        self._start_head_timer()
        return True


class _H11(_Guard, H11Protocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._admit()

    def handle_events(self) -> None:
        cycle = self.cycle
        super().handle_events()
        if self.cycle is not cycle:  # a request's head was read
            self._stop_head_timer()

    def handle_websocket_upgrade(self, event: Any) -> None:
        self._stop_head_timer()  # the head was read, and the connection is a WebSocket's now
        super().handle_websocket_upgrade(event)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._start_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_timer()
        super().connection_lost(exc)


if HttpToolsProtocol is not None:  # pragma: no branch

    class _HttpTools(_Guard, HttpToolsProtocol):
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._admit()

        def on_headers_complete(self) -> None:
            self._stop_head_timer()
            super().on_headers_complete()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._start_head_timer()

        def connection_lost(self, exc: Exception | None) -> None:
            self._stop_head_timer()
            super().connection_lost(exc)


class _Server(uvicorn.Server):
    """Says goodbye (close code 1001) on every WebSocket before shutting down."""

    def __init__(self, config: uvicorn.Config, app: DurableApp) -> None:
        super().__init__(config)
        self._durable_app = app

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()  # no new connection while the WebSockets close
        await self._durable_app.going_away()
        await super().shutdown(sockets)


def serve(
    app: DurableApp,
    sock: socket.socket,
    *,
    log_level: str = "warning",
    max_connections: int = MAX_CONNECTIONS,
    request_timeout: float = REQUEST_TIMEOUT,
) -> None:
    """Serve ``app`` on the listening socket ``sock`` until SIGTERM or SIGINT."""
    _Limits.max_connections = max_connections
    _Limits.request_timeout = request_timeout
    fast = HttpToolsProtocol is not None
    _keepalive(sock)
    config = uvicorn.Config(
        app,
        log_level=log_level,
        lifespan="on",  # the app runs the host's schedules during its lifespan
        http=_HttpTools if fast else _H11,
        loop="auto",
        ws_max_size=proto.MAX_FRAME_BYTES,
        ws_per_message_deflate=False,
        ws_ping_interval=None,  # see the module's docstring: TCP keepalive instead
        ws_ping_timeout=None,
        timeout_graceful_shutdown=5,
        timeout_keep_alive=5,
    )
    _Server(config, app).run(sockets=[sock])

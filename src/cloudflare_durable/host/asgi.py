"""The network host: protocol version 1 over HTTP and WebSocket, as an ASGI app.

``create_app(host, token=...)`` returns a plain ASGI application. Serve it with
``durable serve`` (uvicorn), or mount it inside your own Starlette or FastAPI
application (``app.mount("/durable", durable_app)``); it routes on the raw path
below its mount point, so object ids may contain any character.

Every failure is answered with the JSON error envelope of ``docs/protocol.md``;
unexpected exceptions are logged on ``cloudflare_durable.host`` and answered
``500 internal`` without a traceback.

The host's schedules run while the app's ASGI lifespan runs (``durable serve``
turns it on). An app mounted inside another, whose lifespan does not reach it,
runs them in the outer app's lifespan: ``async with durable_app.running(): ...``.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import inspect
import json
import logging
import sys
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any, Final, TypeAlias
from urllib.parse import urlsplit

import anyio
from anyio.abc import TaskGroup
from starlette.requests import HTTPConnection

from .. import _exceptions as exc
from .. import _protocol as proto
from .. import _tickets as tickets
from .._codegen.library import library_dir
from .._models import Event, events_in
from .._schema import schema_document, schema_json
from ._fanout import Subscriber
from ._operations import Outcome
from ._runtime import Host

__all__ = ["Authorize", "DurableApp", "client_script", "create_app"]

Scope: TypeAlias = MutableMapping[str, Any]
Message: TypeAlias = MutableMapping[str, Any]
Receive: TypeAlias = Callable[[], Awaitable[Message]]
Send: TypeAlias = Callable[[Message], Awaitable[None]]
Authorize: TypeAlias = Callable[[HTTPConnection, str, str, str], bool | Awaitable[bool]]
"""``authorize(connection, model, object_id, operation)``: may this request do that?
``operation`` is ``"load"`` (read, or open a WebSocket), ``"create"``, ``"update"``,
``"delete"`` or a remote method's name."""

logger = logging.getLogger("cloudflare_durable.host")

_VERSION_HEADER: Final = (b"durable-protocol", str(proto.PROTOCOL_VERSION).encode())
_FEATURES_HEADER: Final = (proto.FEATURES_HEADER.encode(), proto.PATCH_FEATURE.encode())
_JSON_HEADERS: Final = [(b"content-type", b"application/json"), _VERSION_HEADER, _FEATURES_HEADER]
LOOPBACK_NAMES: Final = frozenset({"localhost", "127.0.0.1", "[::1]"})
"""The Host names a host serving without a token answers to."""
REQUEST_TIMEOUT: Final = 10.0
"""Seconds a request's head and body may take to arrive."""
CLIENT_SCRIPT_PATH: Final = "/v1/client.js"
"""Where the host serves the browser module (no token needed: it is public code)."""


def client_script() -> bytes:
    """The browser ES module (``durable.js``), as shipped with the Worker library."""
    return (library_dir() / "browser" / "durable.js").read_bytes()


def create_app(
    host: Host,
    *,
    token: str | None = None,
    events: Iterable[type[Event]] | None = None,
    allowed_origins: Iterable[str] = (),
    request_timeout: float = REQUEST_TIMEOUT,
    authorize: Authorize | None = None,
) -> DurableApp:
    """An ASGI app serving ``host``; with ``token``, every request must carry it (or a
    ticket signed with it, see ``cloudflare_durable.issue_ticket``).

    - ``events``: the event types ``GET /v1/models`` describes (default: those
      defined or imported by the modules of the served models);
    - ``allowed_origins``: origins (``https://app.example.com``) whose pages may call
      the host besides its own; a request from any other page is refused;
    - ``request_timeout``: seconds a request's body may take to arrive;
    - ``authorize``: ``authorize(connection, model, object_id, operation)``, called
      for every operation, WebSocket handshake and call frame after the token or
      ticket was checked; false (or an awaitable of false) answers ``403 forbidden``.

    Without a token, only requests addressed to a loopback name (``localhost``,
    ``127.0.0.1``, ``[::1]``) are served, so a web page cannot reach the host
    through a DNS name it controls.
    """
    return DurableApp(
        host,
        token=token,
        events=events,
        allowed_origins=allowed_origins,
        request_timeout=request_timeout,
        authorize=authorize,
    )


class DurableApp:
    """The ASGI application of the network host."""

    def __init__(
        self,
        host: Host,
        *,
        token: str | None = None,
        events: Iterable[type[Event]] | None = None,
        allowed_origins: Iterable[str] = (),
        request_timeout: float = REQUEST_TIMEOUT,
        authorize: Authorize | None = None,
    ) -> None:
        if token is not None and not token.strip():
            raise exc.UsageError("the token is empty: give a real one, or none at all")
        self.host = host
        self._token_digest = hashlib.sha256(token.encode()).digest() if token else None
        self._ticket_key = tickets.ticket_key(token) if token else None
        self._authorize = authorize
        self._events = None if events is None else list(events)
        self._models_document: Any = None
        self._origins = {_normal_origin(origin) for origin in allowed_origins}
        self._request_timeout = request_timeout
        self._connections: set[_Connection] = set()
        self._all_closed: anyio.Event | None = None

    def models_document(self) -> Any:
        """What ``GET /v1/models`` answers: the schema document of the served models."""
        if self._models_document is None:
            models = self.host.served_models()
            events = self._events
            if events is None:
                modules = {sys.modules[model.__module__] for model in models}
                events = list(dict.fromkeys(e for module in modules for e in events_in(module)))
            self._models_document = json.loads(schema_json(schema_document(models, events)))
        return self._models_document

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "websocket":
            await _Connection(self, scope, receive, send).run()
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    def running(self) -> contextlib.AbstractAsyncContextManager[object]:
        """While entered, the host runs its schedules (see ``Host.running``)."""
        return self.host.running()

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        message = await receive()
        if message["type"] != "lifespan.startup":
            return
        async with self.running():
            await send({"type": "lifespan.startup.complete"})
            while message["type"] != "lifespan.shutdown":
                message = await receive()
        await send({"type": "lifespan.shutdown.complete"})

    # -- checks shared by HTTP and WebSocket ------------------------------

    def authorized(self, headers: dict[bytes, bytes]) -> bool:
        if self._token_digest is None:
            return True
        given = headers.get(b"authorization", b"")
        scheme, _, credential = given.partition(b" ")
        digest = hashlib.sha256(credential.strip()).digest()
        return hmac.compare_digest(digest, self._token_digest) and scheme.lower() == b"bearer"

    def check_caller(self, headers: dict[bytes, bytes]) -> None:
        """Refuse a request from a page of another origin, and, without a token, one
        addressed to a name that is not this machine's (DNS rebinding)."""
        origin = headers.get(b"origin")
        if origin is not None:
            text = origin.decode("latin-1")
            host = headers.get(b"host", b"").decode("latin-1").lower()
            normal = _normal_origin(text)
            if normal not in self._origins and _origin_host(normal) != _without_default_port(
                host, normal
            ):
                raise exc.ForbiddenError(f"requests from pages of {text[:100]!r} are not allowed")
        if self._token_digest is None:
            addressed = headers.get(b"host")
            name = None if addressed is None else _host_name(addressed.decode("latin-1").lower())
            if name is not None and name not in LOOPBACK_NAMES:
                raise exc.ForbiddenError(
                    "a host serving without a token answers only requests addressed to "
                    "localhost, 127.0.0.1 or [::1]"
                )

    def ticket(self, scope: Scope, headers: dict[bytes, bytes]) -> tickets.Ticket | None:
        """The ticket the request presents instead of the token (None: the token, or no
        token configured); ``UnauthorizedError`` when it presents neither validly."""
        if self.authorized(headers):
            return None
        assert self._ticket_key is not None
        scheme, _, credential = headers.get(b"authorization", b"").partition(b" ")
        presented: str | None = None
        if scheme.lower() == tickets.TICKET_SCHEME.encode():
            presented = credential.strip().decode("latin-1")
        elif scope["type"] == "websocket":
            presented = tickets.ticket_from_subprotocols(scope.get("subprotocols") or ())
        if presented is None:
            raise exc.UnauthorizedError("a valid bearer token is required")
        return tickets.read_ticket(presented, self._ticket_key)

    def route(
        self, scope: Scope, headers: dict[bytes, bytes]
    ) -> tuple[proto.Route, tickets.Ticket | None]:
        """Check the caller, auth and version, then route; raises the error to answer with."""
        path = _route_path(scope)
        version = headers.get(proto.PROTOCOL_HEADER.encode())
        if path == "/v1/health":
            proto.check_protocol_header(None if version is None else version.decode("latin-1"))
            return proto.Route("health"), None
        self.check_caller(headers)
        ticket = self.ticket(scope, headers)
        proto.check_protocol_header(None if version is None else version.decode("latin-1"))
        return proto.parse_path(path), ticket

    async def permit(
        self, scope: Scope, ticket: tickets.Ticket | None, route: proto.Route, operation: str
    ) -> None:
        """``ForbiddenError`` unless the ticket (if any) and the ``authorize`` hook allow
        ``operation`` on the route's object."""
        if ticket is not None and not ticket.permits(route.model, route.object_id, operation):
            raise exc.ForbiddenError(f"the ticket does not allow {operation!r} here")
        if self._authorize is None:
            return
        allowed = self._authorize(HTTPConnection(scope), route.model, route.object_id, operation)
        if inspect.isawaitable(allowed):
            allowed = await allowed
        if allowed is not True:
            raise exc.ForbiddenError(f"{operation!r} is not allowed on this object")

    # -- HTTP ----------------------------------------------------------------

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = dict(scope["headers"])
        if _route_path(scope) == CLIENT_SCRIPT_PATH and scope["method"] in ("GET", "HEAD"):
            await _respond(send, 200, client_script(), _SCRIPT_HEADERS)
            return
        try:
            status, body = await self._handle(scope, headers, receive)
        except exc.DurableError as error:
            status, body = proto.error_status(error), proto.dumps(proto.error_envelope(error))
        except Exception:
            logger.exception("unexpected failure serving %s %s", scope["method"], scope["path"])
            failure = exc.ServerError("unexpected server failure; nothing was applied")
            status, body = 500, proto.dumps(proto.error_envelope(failure))
        await _respond(send, status, body)

    async def _handle(
        self, scope: Scope, headers: dict[bytes, bytes], receive: Receive
    ) -> tuple[int, bytes]:
        route, ticket = self.route(scope, headers)
        method = scope["method"]
        if method not in proto.allowed_methods(route.kind):
            raise exc.MethodNotAllowedError(f"{method} is not allowed here")
        if route.model:
            self.host.model(route.model)
        if route.kind == "health":
            return 200, proto.dumps({"status": "ok", "protocol": proto.PROTOCOL_VERSION})
        if route.kind == "models":
            if ticket is not None:
                raise exc.ForbiddenError("a ticket is for one object")
            return 200, proto.dumps(self.models_document())
        if route.kind == "ws":
            raise exc.BadRequestError("this endpoint needs a WebSocket upgrade")
        if route.kind == "list":
            if ticket is not None:
                raise exc.ForbiddenError("a ticket is for one object")
            await self.permit(scope, None, route, "list")
            query = proto.list_query(route, _query_string(scope))
            return 200, proto.dumps(await self.host.query(query))
        operation = tickets.operation_name(route.kind, method, route.method)
        await self.permit(scope, ticket, route, operation)
        if route.kind == "schedules":
            schedules = proto.ListSchedules(route.model, route.object_id)
            return 200, proto.dumps(await self.host.query(schedules))
        try:
            with anyio.fail_after(self._request_timeout):
                body = await _read_body(headers, receive)
        except TimeoutError:
            raise exc.BadRequestError(
                f"the body did not arrive within {self._request_timeout:g} s"
            ) from None
        op = proto.http_operation(
            route, method, body, scope.get("query_string", b"").decode("latin-1")
        )
        reply = await self.host.perform(op)
        return reply.status, reply.encode(op.kind)

    async def going_away(self, grace: float = 2.0) -> None:
        """Close every WebSocket with 1001 (going away) before the server stops, waiting
        at most ``grace`` seconds for the close frames to be sent."""
        self._all_closed = anyio.Event()
        for connection in list(self._connections):
            connection.close(proto.CLOSE_GOING_AWAY, "the server is shutting down")
        if self._connections:
            with anyio.move_on_after(grace):
                await self._all_closed.wait()

    def _closed(self, connection: _Connection) -> None:
        self._connections.discard(connection)
        if not self._connections and self._all_closed is not None:
            self._all_closed.set()


def _normal_origin(origin: str) -> str:
    """``scheme://host[:port]``, lowercase, without the scheme's default port."""
    text = origin.strip().lower()
    parts = urlsplit(text)
    try:
        port = parts.port
    except ValueError:  # not a port: only an exact entry matches
        return text
    if not parts.scheme or not parts.hostname:
        return text  # "null" and the like: only an exact entry matches
    default = {"http": 80, "https": 443}.get(parts.scheme)
    netloc = parts.netloc.rpartition("@")[2]
    if port is not None and port == default:
        netloc = netloc.rsplit(":", 1)[0]
    return f"{parts.scheme}://{netloc}"


def _origin_host(origin: str) -> str:
    return origin.partition("://")[2]


def _without_default_port(host: str, origin: str) -> str:
    """The Host header as an origin's host part (its default port dropped)."""
    scheme = origin.partition("://")[0]
    default = {"http": ":80", "https": ":443"}.get(scheme)
    if default and host.endswith(default):
        return host[: -len(default)]
    return host


def _host_name(host: str) -> str:
    """The name in a Host header, without its port."""
    if host.startswith("["):
        return host.partition("]")[0] + "]"
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _route_path(scope: Scope) -> str:
    """The raw path below the mount point, still percent-encoded."""
    raw: bytes = scope.get("raw_path") or scope["path"].encode()
    path = raw.decode("latin-1").split("?", 1)[0]
    root = scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :]
    return path


async def _read_body(headers: dict[bytes, bytes], receive: Receive) -> dict[str, Any]:
    """The body as a JSON object; an empty body (which needs no Content-Type) is ``{}``."""
    length = headers.get(b"content-length")
    if length is not None and length.isdigit() and int(length) > proto.MAX_BODY_BYTES:
        raise exc.PayloadTooLargeError(f"the body is over {proto.MAX_BODY_BYTES} bytes")
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise exc.BadRequestError("the client went away")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > proto.MAX_BODY_BYTES:
            raise exc.PayloadTooLargeError(f"the body is over {proto.MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    data = b"".join(chunks)
    if not data:
        return {}
    content_type = headers.get(b"content-type")
    proto.check_content_type(None if content_type is None else content_type.decode("latin-1"))
    try:
        text = data.decode("utf-8-sig")  # bodies are UTF-8 (a byte order mark is ignored)
    except UnicodeDecodeError:
        raise exc.BadRequestError("the body is not valid UTF-8") from None
    return proto.loads_object(text)


_SCRIPT_HEADERS: Final = [
    (b"content-type", b"text/javascript; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-content-type-options", b"nosniff"),
]


async def _respond(
    send: Send, status: int, body: bytes, kind: list[tuple[bytes, bytes]] = _JSON_HEADERS
) -> None:
    headers = [*kind, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _query_string(scope: Scope) -> str:
    raw: bytes = scope.get("query_string", b"")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise exc.InvalidIdError("the query string is not UTF-8") from None


# -- WebSocket -----------------------------------------------------------------


class _Closed(Exception):
    def __init__(self, code: int, reason: str = "") -> None:
        self.code, self.reason = code, reason


class _Connection:
    """One WebSocket: a reader (this task), a writer task, and the object's drains.

    Outgoing frames go through one outbox in order. A subscriber's frames are
    put there synchronously when a change commits, before the results of the
    calls in that batch, so on one connection a snapshot and its events always
    come before the result of the call that made them.
    """

    def __init__(self, app: DurableApp, scope: Scope, receive: Receive, send: Send) -> None:
        self.app, self.scope, self.receive, self.send = app, scope, receive, send
        self.route = proto.Route("ws")
        self.outbox: deque[str] = deque()
        self.wakeup = anyio.Event()
        self.unacknowledged = 0  # frames queued since the client's last ping
        self.unacknowledged_bytes = 0
        self.in_flight = 0
        self.closing: _Closed | None = None
        self.subscriber: Subscriber | None = None
        self.ticket: tickets.Ticket | None = None

    async def run(self) -> None:
        message = await self.receive()
        if message["type"] != "websocket.connect":
            return
        if not await self._accept():
            return
        self.app._connections.add(self)
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._writer, tg)
                await self._reader(tg)
                tg.cancel_scope.cancel()
        finally:
            self.app._closed(self)
            if self.subscriber is not None:
                self.subscriber.close()

    async def _accept(self) -> bool:
        headers = dict(self.scope["headers"])
        try:
            self.route, self.ticket = self.app.route(self.scope, headers)
            if self.route.kind != "ws":
                if "GET" not in proto.allowed_methods(self.route.kind):
                    raise exc.MethodNotAllowedError("GET is not allowed here")
                raise exc.NotFoundError("WebSocket connections go to /v1/objects/{model}/{id}/ws")
            self.app.host.model(self.route.model)
            await self.app.permit(self.scope, self.ticket, self.route, "load")
        except exc.DurableError as error:
            await self._refuse(error)
            return False
        accept: dict[str, Any] = {
            "type": "websocket.accept",
            "headers": [_VERSION_HEADER, _FEATURES_HEADER],
        }
        if tickets.SUBPROTOCOL in (self.scope.get("subprotocols") or ()):
            accept["subprotocol"] = tickets.SUBPROTOCOL  # what browsers offer; selected
        await self.send(accept)
        return True

    async def _refuse(self, error: exc.DurableError) -> None:
        if "websocket.http.response" in self.scope.get("extensions", {}):
            body = proto.dumps(proto.error_envelope(error))
            headers = [*_JSON_HEADERS, (b"content-length", str(len(body)).encode())]
            status = proto.error_status(error)
            await self.send(
                {"type": "websocket.http.response.start", "status": status, "headers": headers}
            )
            await self.send({"type": "websocket.http.response.body", "body": body})
        else:
            await self.send({"type": "websocket.close", "code": 1008, "reason": error.code})

    async def _reader(self, tg: TaskGroup) -> None:
        while self.closing is None:
            message = await self.receive()
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            if text is None:
                self.close(1003, "binary frames are not supported")
            elif len(text) > proto.MAX_FRAME_BYTES:
                self.close(1009, "frame too large")
            else:
                await self._frame(text, tg)
        await anyio.sleep_forever()  # the writer sends the close frame, then cancels this

    async def _frame(self, text: str, tg: TaskGroup) -> None:
        try:
            frame = proto.parse_client_frame(text)
        except proto.FrameError as refused:
            self._put(proto.error_frame(refused.call_id, refused.error))
            return
        if isinstance(frame, proto.PingFrame):
            self.unacknowledged = self.unacknowledged_bytes = 0
            self._queue(proto.PONG_TEXT, counted=False)
        elif isinstance(frame, proto.CallFrame):
            if self.ticket is not None or self.app._authorize is not None:
                try:  # in the reader, so calls still run in the order they came
                    await self.app.permit(self.scope, self.ticket, self.route, frame.method)
                except exc.DurableError as error:
                    self._put(proto.error_frame(frame.id, error))
                    return
            self._call(frame, tg)
        else:
            self._subscribe(frame)

    def _call(self, frame: proto.CallFrame, tg: TaskGroup) -> None:
        if self.in_flight >= proto.MAX_CALLS_IN_FLIGHT:
            busy = exc.OverloadedError(
                f"this connection already has {proto.MAX_CALLS_IN_FLIGHT} calls unanswered"
            )
            self._put(proto.error_frame(frame.id, busy))
            return
        self.in_flight += 1

        def done(outcome: Outcome) -> None:
            self.in_flight -= 1
            if isinstance(outcome, exc.DurableError):
                self._put(proto.error_frame(frame.id, outcome))
            else:
                self._queue(proto.result_text(frame.id, outcome))

        op = frame.operation(self.route.model, self.route.object_id)
        try:
            drain = self.app.host._submit(op, done)
        except exc.DurableError as error:
            done(error)
            return
        if drain is not None:
            tg.start_soon(drain)

    def _subscribe(self, frame: proto.SubscribeFrame) -> None:
        if self.subscriber is not None:
            error = exc.BadRequestError("this connection is already subscribed")
            self._put(proto.error_frame(None, error))
            return
        try:
            self.subscriber = self.app.host.subscribe(
                self.route.model, self.route.object_id, frame, self._queue
            )
        except exc.DurableError as error:  # its state cannot be read (a newer schema version)
            self._put(proto.error_frame(None, error))

    def _put(self, frame: dict[str, Any]) -> None:
        self._queue(proto.dumps_text(frame))

    def _queue(self, text: str, *, counted: bool = True, replay: bool = False) -> None:
        """Queue a frame. A client acknowledges what it read with a ping; one that lets
        more than the backlog go unacknowledged (it does not read, or reads too slowly)
        is cut off with 4008, and resumes with ``since`` (``docs/protocol.md``).
        Replayed frames (the events a resuming subscriber missed) count in bytes only."""
        if self.closing is not None:
            return
        if counted:
            self.unacknowledged += 0 if replay else 1
            self.unacknowledged_bytes += len(text)
            if (
                self.unacknowledged > proto.SUBSCRIBER_BACKLOG
                or self.unacknowledged_bytes > proto.SUBSCRIBER_BACKLOG_BYTES
            ):
                self.outbox.clear()
                self.close(proto.CLOSE_LAGGING, "too many frames unread since the last ping")
                return
        self.outbox.append(text)
        self.wakeup.set()

    def close(self, code: int, reason: str) -> None:
        if self.closing is None:
            self.closing = _Closed(code, reason)
            self.wakeup.set()

    async def _writer(self, tg: TaskGroup) -> None:
        while self.closing is None:
            await self.wakeup.wait()
            self.wakeup = anyio.Event()
            try:
                while self.outbox and self.closing is None:
                    await self.send({"type": "websocket.send", "text": self.outbox.popleft()})
            except OSError:  # the peer went away; the reader sees the disconnect
                tg.cancel_scope.cancel()
                return
        closing = self.closing
        with contextlib.suppress(OSError):
            await self.send(
                {"type": "websocket.close", "code": closing.code, "reason": closing.reason}
            )
        tg.cancel_scope.cancel()

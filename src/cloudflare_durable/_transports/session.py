"""Subscriptions and RPC sessions over the WebSocket driver.

``WebSocketStream`` reads a subscription inline, in its caller's task.
``WebSocketSession`` multiplexes calls over one connection, with a reader task
in a task group it owns, and reconnects (through the retry engine) when the
connection drops.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections import deque
from types import TracebackType
from typing import Any

import anyio
import anyio.abc
import anyio.lowlevel

from .. import _exceptions as exc
from .. import _protocol as proto
from .. import _telemetry as telemetry
from .._config import Settings
from .._retry import backoff, deadline, retrying
from .base import CallChannel, MessageStream
from .websocket import PING_FRAME, Connections, Endpoint, WebSocket, open_websocket

__all__ = ["WebSocketSession", "WebSocketStream", "connect"]

logger = logging.getLogger("cloudflare_durable.transport")


async def connect(endpoint: Endpoint, path: str, connections: Connections) -> WebSocket:
    """Open a WebSocket within the endpoint's timeout and register it with ``connections``."""
    if connections.closed:
        raise exc.UsageError("the client is closed; create a new one")
    with deadline(endpoint.timeout, "WebSocket handshake"):
        websocket = await open_websocket(endpoint, path)
    await connections.adopt(websocket)
    return websocket


class WebSocketStream(MessageStream):
    """A subscription's messages, read inline in the caller's task."""

    def __init__(self, websocket: WebSocket, connections: Connections) -> None:
        self._websocket = websocket
        self._connections = connections
        self._early: deque[proto.Message] = deque()

    async def subscribe(self, frame: bytes, *, confirm: bool = True) -> None:
        """Send the subscribe frame and, with ``confirm``, wait until the server has it.

        A ping follows the subscribe frame, and servers answer frames in order:
        once the pong is back, every later change reaches this stream. Messages
        that come before it are kept for ``receive``. A subscription that resumes
        (``since``) needs no such wait: what happens before the server has it
        comes anyway (a newer state, the events it missed), and the wait would
        come after all of it.
        """
        self._websocket.send_text(frame)
        self._websocket.send_text(PING_FRAME)
        await self._websocket.flush()
        while confirm:
            message = await self._next()
            if message is None:
                return
            self._early.append(message)

    async def receive(self) -> proto.Message:
        if self._early:
            return self._early.popleft()
        while True:
            message = await self._next()
            if message is not None:
                return message

    async def _next(self) -> proto.Message | None:
        """The next state, event or gap, or None for a pong."""
        while True:
            message = proto.parse_server_frame(await self._websocket.receive_text())
            if isinstance(
                message, proto.Snapshot | proto.PatchMessage | proto.EventMessage | proto.GapMessage
            ):
                return message
            if isinstance(message, proto.Pong):
                return None
            if isinstance(message, proto.ErrorMessage):
                raise message.error
            # Results never come on a subscription.

    async def aclose(self) -> None:
        await self._connections.release(self._websocket)


class _Slots:
    """At most ``total`` holders at once, served first come, first served.

    anyio's ``CapacityLimiter`` yields to the event loop even when a slot is free
    and tracks its holders by task; a session with hundreds of calls in flight
    spent a fifth of its client's time there. Here a free slot is taken without
    yielding, and a freed one is handed straight to the oldest waiter.
    """

    __slots__ = ("_free", "_waiting")

    def __init__(self, total: int) -> None:
        self._free = total
        self._waiting: deque[anyio.Event] = deque()

    async def acquire(self) -> None:
        if self._free and not self._waiting:
            await anyio.lowlevel.checkpoint_if_cancelled()  # nothing is sent once cancelled
            self._free -= 1
            return
        handed = anyio.Event()
        self._waiting.append(handed)
        try:
            await handed.wait()
        except BaseException:
            if handed.is_set():  # handed a slot while being cancelled: pass it on
                self.release()
            else:
                self._waiting.remove(handed)
            raise

    def release(self) -> None:
        if self._waiting:
            self._waiting.popleft().set()
        else:
            self._free += 1


class _Call:
    """One call of a session, from the moment it is made until its reply arrives."""

    __slots__ = ("done", "error", "frame", "reply", "request_id", "sent_on")

    def __init__(self, frame: bytes, request_id: str | None) -> None:
        self.frame = frame
        self.request_id = request_id
        self.sent_on = 0  # the connection it was sent on (0: not sent yet)
        self.done = anyio.Event()
        self.reply: proto.Reply | None = None
        self.error: exc.DurableError | None = None

    def finish(self, reply: proto.Reply | None, error: exc.DurableError | None) -> None:
        if not self.done.is_set():
            self.reply, self.error = reply, error
            self.done.set()


class WebSocketSession(CallChannel):
    """Calls to one object over one WebSocket, many in flight at once.

    Replies are matched to calls by frame id. When the connection drops, the
    session reconnects with jittered, capped backoff (``reconnect_delay``) and
    sends again every call still waiting, with its request id, so the server
    answers a call it already ran without running it twice (a call without a
    request id fails with ``ConnectionLostError`` instead). After ``retries``
    failed reconnects in a row, waiting calls fail with ``ConnectError``; the
    next call tries again.
    """

    def __init__(
        self,
        endpoint: Endpoint,
        settings: Settings,
        model: str,
        object_id: str,
        connections: Connections,
    ) -> None:
        self._endpoint = endpoint
        self._settings = settings
        self._path = proto.object_path(model, object_id, "ws")
        self._metadata: dict[str, Any] = {"model": model, "object_id": object_id}
        self._connections = connections
        self._ids = itertools.count(1)
        self._pending: dict[int, _Call] = {}
        self._websocket: WebSocket | None = None
        self._connection = 0  # counts connections, so a call knows which one it went out on
        self._failed = False
        self._closed = False
        self._wanted = anyio.Event()
        self._task_group: anyio.abc.TaskGroup | None = None
        # A server answers calls beyond this many unanswered ones with `overloaded`:
        # the others wait here for their turn.
        self._slots = _Slots(proto.MAX_CALLS_IN_FLIGHT)

    # -- lifecycle ---------------------------------------------------------

    async def __aenter__(self) -> WebSocketSession:
        websocket = await self._reconnect(first=True)
        assert websocket is not None
        self._install(websocket)
        task_group = anyio.create_task_group()
        await task_group.__aenter__()
        self._task_group = task_group
        task_group.start_soon(self._supervise)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._closed = True
        self._fail_all(exc.ConnectionLostError("the session was closed", retryable=False))
        try:
            if self._task_group is not None:
                self._task_group.cancel_scope.cancel()
                # The body's own exception is not the task group's: it propagates as is.
                await self._task_group.__aexit__(None, None, None)
        finally:
            websocket, self._websocket = self._websocket, None
            if websocket is not None:
                await self._connections.release(websocket)

    # -- calls -------------------------------------------------------------

    async def perform(self, op: proto.Call) -> proto.Reply:
        if self._closed:
            raise exc.UsageError("this session is closed")
        await self._slots.acquire()
        try:
            return await self._perform(op)
        finally:
            self._slots.release()

    async def _perform(self, op: proto.Call) -> proto.Reply:
        call_id = next(self._ids)
        frame = proto.encode(proto.call_frame(call_id, op), proto.MAX_FRAME_BYTES)
        call = _Call(frame, op.request_id)
        self._pending[call_id] = call
        try:
            websocket = self._websocket
            if websocket is not None and websocket.send_text(call.frame):
                call.sent_on = self._connection
                await websocket.flush()
            elif self._failed:
                self._wanted.set()
            await call.done.wait()
        finally:
            del self._pending[call_id]
        if call.error is not None:
            raise call.error
        assert call.reply is not None
        return call.reply

    def _route(self, text: str) -> None:
        message = proto.parse_server_frame(text)
        if isinstance(message, proto.Result):
            call = self._pending.get(message.id)
            if call is not None:
                call.finish(message.reply, None)
        elif isinstance(message, proto.ErrorMessage):
            call = self._pending.get(message.id) if message.id is not None else None
            if call is not None:
                call.finish(None, message.error)
            else:
                logger.warning(
                    "the server refused a frame of session %s: %s", self._metadata, message.error
                )

    def _fail_all(self, error: exc.DurableError) -> None:
        for call in self._pending.values():
            call.finish(None, error)

    # -- the connection ----------------------------------------------------

    def _install(self, websocket: WebSocket) -> None:
        """Make ``websocket`` current and queue every waiting call on it, oldest first."""
        self._connection += 1
        self._failed = False
        for call in self._pending.values():
            if call.done.is_set():
                continue
            if call.sent_on and call.request_id is None:
                call.finish(
                    None,
                    exc.ConnectionLostError(
                        "the connection dropped after the call was sent, and without a "
                        "request id it cannot be sent again safely",
                        retryable=False,
                    ),
                )
            elif websocket.send_text(call.frame):
                call.sent_on = self._connection
        self._websocket = websocket

    async def _supervise(self) -> None:
        while True:
            websocket = self._websocket
            if websocket is not None:
                error = await self._serve(websocket)
                self._websocket = None
                await self._connections.release(websocket)
                telemetry.emit("websocket.disconnected", {}, {**self._metadata, "error": error})
                logger.info("session %s lost its connection: %s", self._metadata, error)
                if not error.retryable:
                    self._give_up(error)
            pause = True
            if self._failed:
                await self._wanted.wait()  # until a call needs the connection again
                pause = False
            started = time.perf_counter()
            websocket = await self._reconnect(first=False, pause=pause)
            if websocket is not None:
                self._install(websocket)
                telemetry.emit(
                    "websocket.connected",
                    {"duration": time.perf_counter() - started},
                    {**self._metadata, "reconnect": True},
                )

    async def _serve(self, websocket: WebSocket) -> exc.DurableError:
        """Read replies until the connection ends; return why it ended."""
        try:
            await websocket.flush()
            while True:
                await websocket.receive_some()
                while (text := websocket.next_message()) is not None:
                    self._route(text)
                await websocket.acknowledge()
        except exc.DurableError as error:
            return error

    async def _reconnect(self, *, first: bool, pause: bool = False) -> WebSocket | None:
        """A new connection, or None after giving up (the first connection raises instead).

        The first connection gets ``retries`` more attempts, as a request does; a lost
        one gets ``retries`` attempts in a row (at least one), the first after a pause.
        """
        settings = self._settings
        if pause:
            await anyio.sleep(next(backoff(settings.reconnect_delay)))
        try:
            return await retrying(
                lambda: connect(self._endpoint, self._path, self._connections),
                retries=settings.retries if first else max(1, settings.retries) - 1,
                delay=settings.reconnect_delay,
                within=self._endpoint.timeout,
                what=f"session {self._metadata}",
            )
        except exc.DurableError as error:
            if first:
                raise
            self._give_up(error)
            return None

    def _give_up(self, error: exc.DurableError) -> None:
        self._wanted = anyio.Event()
        self._failed = True
        if error.retryable:
            error = exc.ConnectError(
                f"gave up reconnecting: {error.message}",
                retryable=False,
            )
        self._fail_all(error)

"""Subscriptions: async iterators over snapshots or events that survive disconnects.

A subscription reads its stream inline, in the caller's task: no background
task and no cancel scope stays open between two ``__anext__`` calls, so it can
be iterated from any async code, under any timeout. When the stream breaks with
a retryable error it reconnects with jittered, capped backoff and resumes from
what it has: the server sends the newer state, and replays the events it
missed. Versions only go up, and no state or event is delivered twice.

What it has is tracked by version: the greatest version whose state it
received and, when it asked for events, the greatest version whose every event
it received (an event frame says its place among its version's events). A
state frame of version V that follows another on the same connection means
every event before V was sent; the first one on a connection does not (a
resumed connection replays the events after its state). Frames it already had
are dropped.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Generic, Self, TypeVar

import anyio

from . import _exceptions as exc
from . import _protocol as proto
from . import _telemetry as telemetry
from ._retry import Backoff, deadline
from ._transports.base import MessageStream

__all__ = ["Subscription"]

T_co = TypeVar("T_co", covariant=True)


class Subscription(Generic[T_co]):
    """An async iterator of validated items (snapshots or events) of one object.

    Iterate it with ``async for``. Entering it with ``async with`` connects at
    once (so nothing that happens afterwards is missed) and closes the connection
    when the block ends; without ``async with`` it connects at the first
    iteration and closes when exhausted or on ``aclose()``.
    """

    def __init__(
        self,
        open_stream: Callable[[int | None], Awaitable[MessageStream]],
        convert: Callable[[proto.Message], T_co | None],
        *,
        since: int | None,
        timeout: float,
        reconnect_delay: float,
        metadata: Mapping[str, Any],
        events: bool = False,
    ) -> None:
        self._open = open_stream
        self._convert = convert
        self._since = since  # the greatest version whose state was received
        self._events = events
        self._events_done = since  # the greatest version whose every event was received
        self._event_at: tuple[int, int] | None = None  # (version, next index) under way
        self._first_state = True  # no state frame yet on this connection
        self._timeout = timeout
        self._metadata = dict(metadata)
        self._stream: MessageStream | None = None
        self._closed = False
        self._backoff = Backoff(reconnect_delay)
        self.reconnects = 0

    @property
    def version(self) -> int | None:
        """The version of the last state received (``None`` before the first)."""
        return self._since

    @property
    def resume_from(self) -> int | None:
        """The version a new connection resumes from: the server sends what is newer."""
        return self._events_done if self._events else self._since

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> T_co:
        while True:
            if self._closed:
                raise StopAsyncIteration
            stream = self._stream or await self._connect()
            try:
                message = await stream.receive()
            except exc.TransportError as error:
                if not error.retryable:
                    await self.aclose()
                    raise
                await self._lost(error)
                continue
            self._backoff.reset()  # the connection works: a later loss starts over
            if not self._fresh(message):
                continue
            item = self._convert(message)
            if item is not None:
                return item

    def _fresh(self, message: proto.Message) -> bool:
        """Track ``message``; False if it was had already. A gap raises ``EventsLostError``."""
        if isinstance(message, proto.EventMessage):
            return self._fresh_event(message)
        if isinstance(message, proto.GapMessage):
            if self._events_done is not None and message.until <= self._events_done:
                return False
            self._events_done, self._event_at = message.until, None
            raise exc.EventsLostError(
                f"events of versions {message.since + 1} to {message.until} of "
                f"{self._metadata.get('model')} {self._metadata.get('object_id')!r} may be "
                "missing: the object's event log no longer holds them",
                since=message.since,
                until=message.until,
            )
        version = message.version
        first, self._first_state = self._first_state, False
        if self._since is not None and version <= self._since:
            return False
        resumed = self._since is not None or self._events_done is not None
        self._since = version
        if self._events:
            if first and not resumed:
                self._events_done = version  # a new subscriber wants no earlier event
            elif not first:
                self._events_done = max(self._events_done or 0, version - 1)
        return True

    def _fresh_event(self, message: proto.EventMessage) -> bool:
        version, index, count = message.version, message.index, message.count
        if index is None or count is None:
            return True  # a server that does not say: nothing to track
        if self._events_done is not None and version <= self._events_done:
            return False
        at = self._event_at
        if at is not None and at[0] == version and index < at[1]:
            return False
        self._event_at = (version, index + 1)
        if index + 1 == count:
            self._events_done = version
        return True

    async def _connect(self) -> MessageStream:
        while True:
            try:
                with deadline(self._timeout, f"subscription {self._metadata}"):
                    self._stream = await self._open(self.resume_from)
                    self._first_state = True
            except exc.DurableError as error:
                if not error.retryable:
                    self._closed = True
                    raise
                await self._backoff.wait(f"subscription {self._metadata}", error)
            else:
                return self._stream

    async def _lost(self, error: exc.DurableError) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            await stream.aclose()
        telemetry.emit("websocket.disconnected", {}, {**self._metadata, "error": error})
        self.reconnects += 1
        if not isinstance(error, exc.SubscriberLagged):
            await self._backoff.wait(f"subscription {self._metadata}", error)

    async def aclose(self) -> None:
        """Stop the subscription and close its connection; idempotent."""
        self._closed = True
        stream, self._stream = self._stream, None
        if stream is not None:
            with anyio.CancelScope(shield=True):
                await stream.aclose()

    async def __aenter__(self) -> Self:
        """Connect now: once entered, the subscription is live and misses nothing."""
        if self._stream is None and not self._closed:
            await self._connect()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

"""Subscriptions: async iterators over snapshots or events that survive disconnects.

A subscription reads its stream inline, in the caller's task: no background
task and no cancel scope stays open between two ``__anext__`` calls, so it can
be iterated from any async code, under any timeout. When the stream breaks with
a retryable error it reconnects with jittered, capped backoff and resumes from
the last version it yielded: versions only go up, and none repeats.
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
    ) -> None:
        self._open = open_stream
        self._convert = convert
        self._since = since
        self._timeout = timeout
        self._metadata = dict(metadata)
        self._stream: MessageStream | None = None
        self._closed = False
        self._backoff = Backoff(reconnect_delay)
        self.reconnects = 0

    @property
    def version(self) -> int | None:
        """The last snapshot version yielded (``None`` before the first)."""
        return self._since

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
            if isinstance(message, proto.Snapshot | proto.PatchMessage):
                if self._since is not None and message.version <= self._since:
                    continue
                self._since = message.version
            item = self._convert(message)
            if item is not None:
                return item

    async def _connect(self) -> MessageStream:
        while True:
            try:
                with deadline(self._timeout, f"subscription {self._metadata}"):
                    self._stream = await self._open(self._since)
            except exc.DurableError as error:
                if not error.retryable:
                    self._closed = True
                    raise
                await self._backoff.wait(f"subscription {self._metadata}", error)
            else:
                self._backoff.reset()
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

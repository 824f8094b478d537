"""The local transport: operations go straight to an in-process host."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Coroutine
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from .. import _context
from .. import _protocol as proto
from .._client import provide_embedded
from .._config import Settings
from ..host import Host
from ..host._fanout import Subscriber
from .base import CallChannel, MessageStream, Transport

__all__ = ["LocalTransport"]


class _LocalStream(MessageStream):
    def __init__(self, subscriber: Subscriber) -> None:
        self._subscriber = subscriber

    async def receive(self) -> proto.Message:
        return await self._subscriber.receive()

    async def aclose(self) -> None:
        self._subscriber.close()


class _LocalChannel(CallChannel):
    def __init__(self, host: Host) -> None:
        self._host = host

    async def perform(self, op: proto.Call) -> proto.Reply:
        return await self._host.perform(op)


class LocalTransport(Transport):
    """Talks to ``host`` in the same process; closing it closes the host if it owns it.

    A host it owns runs its schedules while the transport is ``running()`` (the client
    was entered with ``async with``); otherwise the schedules that are due run before
    the next operation, in the caller's task (the default client).
    """

    in_process = True
    patches = True

    def __init__(self, host: Host, *, owns_host: bool) -> None:
        self.host = host
        self._owns_host = owns_host

    def perform(self, op: proto.Operation) -> Coroutine[Any, Any, proto.Reply]:
        if self._owns_host and self.host.due() and self._catches_up():
            return self._after_due(op)
        return self.host.perform(op)  # no extra frame on the hot path

    def _catches_up(self) -> bool:
        return not self.host.runs_schedules and _context.current() is None

    async def _after_due(self, op: proto.Operation) -> proto.Reply:
        await self.host.fire_due()
        return await self.host.perform(op)

    async def create_many(
        self, model: str, states: dict[str, dict[str, Any]]
    ) -> dict[str, int] | None:
        return await self.host.create_many(model, states)

    async def query(self, query: proto.Query) -> dict[str, Any]:
        if self._owns_host and self.host.due() and self._catches_up():
            await self.host.fire_due()
        return await self.host.query(query)

    def running(self) -> AbstractAsyncContextManager[object]:
        """The host this transport owns runs its schedules while entered."""
        if self._owns_host:
            return self.host.running()
        return contextlib.nullcontext()

    async def stream(
        self, model: str, object_id: str, subscribe: proto.SubscribeFrame
    ) -> MessageStream:
        return _LocalStream(self.host.subscribe(model, object_id, subscribe))

    @asynccontextmanager
    async def channel(self, model: str, object_id: str) -> AsyncIterator[CallChannel]:
        yield _LocalChannel(self.host)

    async def aclose(self) -> None:
        self.close_now()

    def close_now(self) -> None:
        if self._owns_host:
            self.host.close()


def _embedded(
    settings: Settings, *, store: str | None = None, host: Host | None = None
) -> LocalTransport:
    if host is not None:
        return LocalTransport(host, owns_host=False)
    return LocalTransport(Host(store or ":memory:", call_timeout=settings.timeout), owns_host=True)


provide_embedded(_embedded)

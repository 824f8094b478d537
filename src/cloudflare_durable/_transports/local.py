"""The local transport: operations go straight to an in-process host."""

from __future__ import annotations

from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from typing import Any

from .. import _protocol as proto
from ..host._runtime import Host, Subscriber
from .base import CallChannel, MessageStream, Transport


class _LocalStream(MessageStream):
    def __init__(self, subscriber: Subscriber) -> None:
        self._subscriber = subscriber

    async def receive(self) -> proto.Snapshot | proto.EventMessage:
        return await self._subscriber.receive()

    async def aclose(self) -> None:
        self._subscriber.close()


class _LocalChannel(CallChannel):
    def __init__(self, host: Host, model: str, object_id: str) -> None:
        self._host, self._model, self._object_id = host, model, object_id

    async def call(
        self, method: str, args: dict[str, Any], request_id: str | None
    ) -> proto.CallReply:
        return await self._host.call(self._model, self._object_id, method, args, request_id)


class LocalTransport(Transport):
    """Talks to ``host`` in the same process; closing it closes the host if it owns it."""

    in_process = True

    def __init__(self, host: Host, *, owns_host: bool) -> None:
        self.host = host
        self._owns_host = owns_host

    def call(
        self, model: str, object_id: str, method: str, args: dict[str, Any], request_id: str | None
    ) -> Coroutine[Any, Any, proto.CallReply]:
        return self.host.call(model, object_id, method, args, request_id)  # no extra frame

    async def read(self, model: str, object_id: str) -> proto.StateReply:
        return await self.host.read(model, object_id)

    async def create(
        self, model: str, object_id: str, state: dict[str, Any], request_id: str | None
    ) -> proto.StateReply:
        return await self.host.create(model, object_id, state, request_id)

    async def update(
        self,
        model: str,
        object_id: str,
        fields: dict[str, Any],
        if_version: int | None,
        request_id: str | None,
    ) -> proto.StateReply:
        return await self.host.update(model, object_id, fields, if_version, request_id)

    async def delete(self, model: str, object_id: str, request_id: str | None) -> proto.DeleteReply:
        return await self.host.delete(model, object_id, request_id)

    async def stream(
        self, model: str, object_id: str, subscribe: proto.SubscribeFrame
    ) -> MessageStream:
        return _LocalStream(self.host.subscribe(model, object_id, subscribe))

    @asynccontextmanager
    async def channel(self, model: str, object_id: str) -> AsyncIterator[CallChannel]:
        yield _LocalChannel(self.host, model, object_id)

    async def aclose(self) -> None:
        if self._owns_host:
            self.host.close()

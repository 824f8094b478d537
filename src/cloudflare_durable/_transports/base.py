"""The transport interface.

A transport turns one operation into one reply, or opens one stream of server
messages, and raises ``DurableError`` subclasses (``TransportError`` when the
request may not have arrived). Retries, request ids, backoff, timeouts and
telemetry belong to the client above it.
"""

from __future__ import annotations

import abc
from contextlib import AbstractAsyncContextManager
from typing import Any

from .. import _protocol as proto


class MessageStream(abc.ABC):
    """A subscription's incoming messages, read inline: no background task, and no
    cancel scope held open between calls, so it can be read from any async code."""

    @abc.abstractmethod
    async def receive(self) -> proto.Snapshot | proto.EventMessage:
        """The next message; ``TransportError`` when the stream broke."""

    @abc.abstractmethod
    async def aclose(self) -> None:
        """Close the stream; idempotent."""


class CallChannel(abc.ABC):
    """Calls to one object over one connection, many in flight at once."""

    @abc.abstractmethod
    async def call(
        self, method: str, args: dict[str, Any], request_id: str | None
    ) -> proto.CallReply:
        """Send one call and wait for its reply."""


class Transport(abc.ABC):
    """Moves operations to a host and replies back."""

    #: True when nothing can be lost in transit (an in-process host): an operation
    #: either completes or fails before changing anything, so the client sends no
    #: request ids and sets no timeouts.
    in_process: bool = False

    @abc.abstractmethod
    async def call(
        self, model: str, object_id: str, method: str, args: dict[str, Any], request_id: str | None
    ) -> proto.CallReply: ...

    @abc.abstractmethod
    async def read(self, model: str, object_id: str) -> proto.StateReply: ...

    @abc.abstractmethod
    async def create(
        self, model: str, object_id: str, state: dict[str, Any], request_id: str | None
    ) -> proto.StateReply: ...

    @abc.abstractmethod
    async def update(
        self,
        model: str,
        object_id: str,
        fields: dict[str, Any],
        if_version: int | None,
        request_id: str | None,
    ) -> proto.StateReply: ...

    @abc.abstractmethod
    async def delete(
        self, model: str, object_id: str, request_id: str | None
    ) -> proto.DeleteReply: ...

    @abc.abstractmethod
    async def stream(
        self, model: str, object_id: str, subscribe: proto.SubscribeFrame
    ) -> MessageStream:
        """Open a subscription and send ``subscribe``."""

    @abc.abstractmethod
    def channel(self, model: str, object_id: str) -> AbstractAsyncContextManager[CallChannel]:
        """Open a call channel (an RPC session) to one object."""

    @abc.abstractmethod
    async def aclose(self) -> None: ...


class ForwardingTransport(Transport):
    """Forwards every operation to ``inner``; subclasses override what differs."""

    def __init__(self, inner: Transport) -> None:
        self.inner = inner
        self.in_process = inner.in_process

    async def call(
        self, model: str, object_id: str, method: str, args: dict[str, Any], request_id: str | None
    ) -> proto.CallReply:
        return await self.inner.call(model, object_id, method, args, request_id)

    async def read(self, model: str, object_id: str) -> proto.StateReply:
        return await self.inner.read(model, object_id)

    async def create(
        self, model: str, object_id: str, state: dict[str, Any], request_id: str | None
    ) -> proto.StateReply:
        return await self.inner.create(model, object_id, state, request_id)

    async def update(
        self,
        model: str,
        object_id: str,
        fields: dict[str, Any],
        if_version: int | None,
        request_id: str | None,
    ) -> proto.StateReply:
        return await self.inner.update(model, object_id, fields, if_version, request_id)

    async def delete(self, model: str, object_id: str, request_id: str | None) -> proto.DeleteReply:
        return await self.inner.delete(model, object_id, request_id)

    async def stream(
        self, model: str, object_id: str, subscribe: proto.SubscribeFrame
    ) -> MessageStream:
        return await self.inner.stream(model, object_id, subscribe)

    def channel(self, model: str, object_id: str) -> AbstractAsyncContextManager[CallChannel]:
        return self.inner.channel(model, object_id)

    async def aclose(self) -> None:
        await self.inner.aclose()

"""The transport interface.

A transport performs one operation (``proto.Operation``) and returns its reply,
or opens one stream of server messages, and raises ``DurableError`` subclasses
(``TransportError`` when the request may not have arrived). Retries, request
ids, backoff, timeouts and telemetry belong to the client above it.
"""

from __future__ import annotations

import abc
import contextlib
from contextlib import AbstractAsyncContextManager
from typing import Any

from .. import _exceptions as exc
from .. import _protocol as proto


class MessageStream(abc.ABC):
    """A subscription's incoming messages, read inline: no background task, and no
    cancel scope held open between calls, so it can be read from any async code."""

    @abc.abstractmethod
    async def receive(self) -> proto.Message:
        """The next message; ``TransportError`` when the stream broke."""

    @abc.abstractmethod
    async def aclose(self) -> None:
        """Close the stream; idempotent."""


class CallChannel(abc.ABC):
    """Calls to one object over one connection, many in flight at once."""

    @abc.abstractmethod
    async def perform(self, op: proto.Call) -> proto.Reply:
        """Send one call and wait for its reply."""


class Transport(abc.ABC):
    """Moves operations to a host and replies back."""

    #: True when nothing can be lost in transit (an in-process host): an operation
    #: either completes or fails before changing anything, so the client sends no
    #: request ids and sets no timeouts.
    in_process: bool = False

    #: True once the server has said it answers with patches (``Durable-Features``).
    patches: bool = False

    @abc.abstractmethod
    async def perform(self, op: proto.Operation) -> proto.Reply:
        """Perform ``op`` and return its reply, or raise the error it met."""

    @abc.abstractmethod
    async def stream(
        self, model: str, object_id: str, subscribe: proto.SubscribeFrame
    ) -> MessageStream:
        """Open a subscription and send ``subscribe``."""

    @abc.abstractmethod
    async def query(self, query: proto.Query) -> dict[str, Any]:
        """Ask ``query`` (a listing, an object's schedules); the reply's JSON body."""

    @abc.abstractmethod
    def channel(self, model: str, object_id: str) -> AbstractAsyncContextManager[CallChannel]:
        """Open a call channel (an RPC session) to one object."""

    @abc.abstractmethod
    async def aclose(self) -> None: ...

    async def create_many(
        self, model: str, states: dict[str, dict[str, Any]]
    ) -> dict[str, int] | None:
        """Create many objects at once, all or nothing, if this transport can (the
        in-process host: one transaction); ``None`` if it cannot."""
        return None

    async def schema(self) -> dict[str, Any]:
        """The server's schema document (``GET /v1/models``)."""
        raise exc.UsageError("only a server has a schema document to check")

    def running(self) -> AbstractAsyncContextManager[object]:
        """While entered, do the transport's background work, if it has any (the embedded
        host it owns runs its schedules). Nothing by default."""
        return contextlib.nullcontext()

    def close_now(self) -> None:  # noqa: B027 - an optional hook, nothing to release by default
        """Release what can be released without I/O, from outside the event loop
        (a client dropped from the default-client cache). Nothing by default."""

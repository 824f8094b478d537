"""The network transport: HTTP for calls and state, WebSockets for streams and sessions.

It talks to any server of the protocol (``docs/protocol.md``): the Python
network host (``durable serve``) or the Worker on Cloudflare. Each operation is
one request; the client above it retries, with the same request id.
"""

from __future__ import annotations

from typing import Any

import anyio
import httpx

from .. import _exceptions as exc
from .. import _protocol as proto
from .._config import Settings
from .base import MessageStream, Transport
from .http import HttpTransport, encode
from .websocket import Connections, Endpoint, WebSocketSession, WebSocketStream, open_websocket

__all__ = ["NetworkTransport"]


class NetworkTransport(Transport):
    """HTTP (one pooled ``httpx.AsyncClient``) and WebSockets to ``settings.url``.

    Both verify TLS with the same context (httpx's default certificates, which
    honour ``SSL_CERT_FILE``); neither goes through proxies from the environment,
    which WebSockets could not follow.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        url = settings.url or ""
        tls = httpx.create_ssl_context() if url.startswith("https://") else None
        self._http = HttpTransport(settings, tls)
        self._endpoint = Endpoint.from_settings(settings, tls)
        self._connections = Connections()

    async def call(
        self, model: str, object_id: str, method: str, args: dict[str, Any], request_id: str | None
    ) -> proto.CallReply:
        return await self._http.call(model, object_id, method, args, request_id)

    async def read(self, model: str, object_id: str) -> proto.StateReply:
        return await self._http.read(model, object_id)

    async def create(
        self, model: str, object_id: str, state: dict[str, Any], request_id: str | None
    ) -> proto.StateReply:
        return await self._http.create(model, object_id, state, request_id)

    async def update(
        self,
        model: str,
        object_id: str,
        fields: dict[str, Any],
        if_version: int | None,
        request_id: str | None,
    ) -> proto.StateReply:
        return await self._http.update(model, object_id, fields, if_version, request_id)

    async def delete(self, model: str, object_id: str, request_id: str | None) -> proto.DeleteReply:
        return await self._http.delete(model, object_id, request_id)

    async def stream(
        self, model: str, object_id: str, subscribe: proto.SubscribeFrame
    ) -> MessageStream:
        """Open a subscription; it returns once the server has it, so no change is missed."""
        frame = encode(subscribe.to_json(), proto.MAX_FRAME_BYTES)
        if self._connections.closed:
            raise exc.UsageError("the client is closed; create a new one")
        websocket = await open_websocket(self._endpoint, proto.object_path(model, object_id, "ws"))
        await self._connections.adopt(websocket)
        stream = WebSocketStream(websocket, self._connections)
        try:
            await stream.subscribe(frame)
        except BaseException:
            await stream.aclose()
            raise
        return stream

    def channel(self, model: str, object_id: str) -> WebSocketSession:
        if self._connections.closed:
            raise exc.UsageError("the client is closed; create a new one")
        return WebSocketSession(self._endpoint, self.settings, model, object_id, self._connections)

    async def aclose(self) -> None:
        """Close the HTTP connection pool and every WebSocket still open."""
        with anyio.CancelScope(shield=True):
            try:
                await self._http.aclose()
            finally:
                await self._connections.aclose()

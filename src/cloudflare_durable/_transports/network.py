"""The network transport: HTTP for calls and state, WebSockets for streams and sessions.

It talks to any server of the protocol (``docs/protocol.md``): the Python
network host (``durable serve``) or the Worker on Cloudflare. Each operation is
one request; the client above it retries, with the same request id.
"""

from __future__ import annotations

from typing import Any

import anyio

from .. import _protocol as proto
from .._config import Settings
from .base import MessageStream, Transport
from .http import HttpTransport, encode
from .websocket import Endpoint, WebSocket, WebSocketSession, WebSocketStream, open_websocket

__all__ = ["NetworkTransport"]


class NetworkTransport(Transport):
    """HTTP (one pooled ``httpx.AsyncClient``) and WebSockets to ``settings.url``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._http = HttpTransport(settings)
        self._endpoint = Endpoint.from_settings(settings)
        self._websockets: set[WebSocket] = set()

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
        frame = encode(subscribe.to_json(), proto.MAX_FRAME_BYTES)
        websocket = await open_websocket(self._endpoint, proto.object_path(model, object_id, "ws"))
        self._websockets.add(websocket)
        websocket.send_text(frame)
        await websocket.flush()
        return WebSocketStream(websocket, self._websockets.discard)

    def channel(self, model: str, object_id: str) -> WebSocketSession:
        return WebSocketSession(self._endpoint, self.settings, model, object_id, self._websockets)

    async def aclose(self) -> None:
        """Close the HTTP connection pool and every WebSocket still open."""
        with anyio.CancelScope(shield=True):
            try:
                await self._http.aclose()
            finally:
                websockets, self._websockets = list(self._websockets), set()
                for websocket in websockets:
                    await websocket.aclose()

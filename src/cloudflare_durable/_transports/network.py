"""The network transport: HTTP for operations, WebSockets for streams and sessions.

It talks to any server of the protocol (``docs/protocol.md``): the Python
network host (``durable serve``) or the Worker on Cloudflare. Each operation is
one request; the client above it retries, with the same request id.
"""

from __future__ import annotations

import dataclasses

import anyio
import httpx

from .. import _exceptions as exc
from .. import _protocol as proto
from .._config import Settings
from .base import MessageStream, Transport
from .http import HttpTransport
from .session import WebSocketSession, WebSocketStream, connect
from .websocket import Connections, Endpoint

__all__ = ["NetworkTransport"]


class NetworkTransport(HttpTransport, Transport):
    """HTTP (one pooled ``httpx.AsyncClient``) and WebSockets to ``settings.url``.

    Both verify TLS with the same context (httpx's default certificates, which
    honour ``SSL_CERT_FILE``); neither goes through proxies from the environment,
    which WebSockets could not follow.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        url = settings.url or ""
        tls = httpx.create_ssl_context() if url.startswith("https://") else None
        super().__init__(settings, tls)  # operations go over HTTP
        self._endpoint = Endpoint.from_settings(settings, tls)
        self._connections = Connections()

    async def stream(
        self, model: str, object_id: str, subscribe: proto.SubscribeFrame
    ) -> MessageStream:
        """Open a subscription; it returns once the server has it, so no change is missed.
        Patches are asked for only from a server that announced them."""
        path = proto.object_path(model, object_id, "ws")
        websocket = await connect(self._endpoint, path, self._connections)
        if proto.has_patch_feature(websocket.features):
            self.patches = True
        elif subscribe.patches:
            subscribe = dataclasses.replace(subscribe, patches=False)
        frame = proto.encode(subscribe.to_json(), proto.MAX_FRAME_BYTES)
        stream = WebSocketStream(websocket, self._connections)
        try:
            await stream.subscribe(frame, confirm=subscribe.since is None)
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
                await super().aclose()
            finally:
                await self._connections.aclose()

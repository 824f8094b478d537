"""Operations over HTTP, with one pooled ``httpx.AsyncClient``.

``perform`` sends exactly one request and either returns the parsed reply or
raises: the error a server sent in its envelope, or a ``TransportError`` that
translates what httpx raised. Retrying is the client's business, never this
module's.
"""

from __future__ import annotations

import ssl
from typing import Any, Final

import anyio
import httpx

from .. import _exceptions as exc
from .. import _protocol as proto
from .._config import Settings

__all__ = ["HTTP_CONCURRENCY", "HttpTransport"]

HTTP_CONCURRENCY: Final = 16
"""Requests one client hands to its HTTP connection pool at a time (see below)."""


class HttpTransport:
    """One request per operation, on a pool of keep-alive connections."""

    patches = False

    def __init__(self, settings: Settings, ssl_context: ssl.SSLContext | None = None) -> None:
        if settings.url is None:
            raise exc.UsageError("the HTTP transport needs a server URL")
        self._base = settings.url.rstrip("/")
        headers = proto.request_headers(settings.token)
        headers["Content-Type"] = "application/json"
        headers["Accept"] = "application/json"
        self._client = httpx.AsyncClient(
            headers=headers,
            timeout=httpx.Timeout(settings.timeout),
            limits=httpx.Limits(
                max_connections=settings.pool_size, max_keepalive_connections=settings.pool_size
            ),
            trust_env=False,
            verify=ssl_context if ssl_context is not None else True,
        )
        # At most HTTP_CONCURRENCY requests are handed to httpx at a time; the others
        # wait here, in a fair queue. httpcore matches waiting requests to connections in
        # time that grows with both, and churns when many wait (encode/httpcore#1035):
        # a hundred calls at once on a pool of a hundred ran at a quarter of the rate of
        # ten, and at 0.84 of it with this bound. More concurrency: a session (WebSocket).
        self._slots = anyio.CapacityLimiter(min(settings.pool_size, HTTP_CONCURRENCY))

    async def perform(self, op: proto.Operation) -> proto.Reply:
        request = proto.http_request(op)
        status, body = await self._send(request.method, request.path, request.body)
        return proto.read_reply(op.kind, body, status)

    async def schema(self) -> dict[str, Any]:
        return (await self._send("GET", proto.MODELS_PATH, None))[1]

    async def query(self, query: proto.Query) -> dict[str, Any]:
        return (await self._send("GET", proto.query_path(query), None))[1]

    async def _send(self, method: str, path: str, body: bytes | None) -> tuple[int, dict[str, Any]]:
        url = self._base + path
        try:
            async with self._slots:
                response = await self._client.request(method, url, content=body)
        except (httpx.HTTPError, httpx.InvalidURL) as error:
            raise translate_error(error, method, url) from error
        except RuntimeError as error:
            if self._client.is_closed:
                raise exc.UsageError("the client is closed; create a new one") from error
            raise
        headers_ok = response.headers.get(proto.PROTOCOL_HEADER) == proto.PROTOCOL_VALUE
        status = response.status_code
        if headers_ok and 200 <= status < 300:
            if not self.patches:
                self.patches = proto.has_patch_feature(response.headers.get(proto.FEATURES_HEADER))
            return status, proto.read_reply_body(response.content)
        raise proto.reply_error(status, headers_ok, response.content)

    async def aclose(self) -> None:
        await self._client.aclose()


def translate_error(
    error: httpx.HTTPError | httpx.InvalidURL, method: str, url: str
) -> exc.DurableError:
    """Our exception for what httpx raised (the caller chains it with ``from``)."""
    where = f"{method} {url}"
    if isinstance(error, httpx.TimeoutException):
        kind = type(error).__name__
        return exc.TimeoutError(f"{where}: {kind} (no reply in time)")
    if isinstance(error, httpx.ConnectError):
        return exc.ConnectError(f"{where}: cannot connect: {error}")
    if isinstance(error, httpx.UnsupportedProtocol | httpx.InvalidURL | httpx.LocalProtocolError):
        return exc.UsageError(f"{where}: the request cannot be sent: {error}")
    if isinstance(error, httpx.RemoteProtocolError):
        return exc.ConnectionLostError(
            f"{where}: the connection broke: {error or type(error).__name__}"
        )
    if isinstance(error, httpx.TransportError):
        return exc.ConnectionLostError(f"{where}: {type(error).__name__}: {error}")
    return exc.ProtocolError(f"{where}: {type(error).__name__}: {error}")

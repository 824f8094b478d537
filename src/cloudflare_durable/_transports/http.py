"""Calls and state operations over HTTP, with one pooled ``httpx.AsyncClient``.

Each method sends exactly one request and either returns the parsed reply or
raises: the error a server sent in its envelope, or a ``TransportError`` that
translates what httpx raised. Retrying is the client's business, never this
module's.
"""

from __future__ import annotations

import json
import logging
import ssl
from typing import Any, Final

import httpx

from .. import _exceptions as exc
from .. import _protocol as proto
from .._config import Settings

__all__ = ["HttpTransport"]

logger = logging.getLogger("cloudflare_durable.transport")

PROTOCOL_VALUE: Final = str(proto.PROTOCOL_VERSION)
# Statuses a proxy in front of the server (Cloudflare's edge, a load balancer)
# answers with when it cannot reach the server; such replies carry no protocol
# header and no envelope, and trying again later may well succeed.
GATEWAY_STATUSES: Final = frozenset({502, 503, 504})


def protocol_headers(token: str | None) -> dict[str, str]:
    """The headers every request and WebSocket handshake carries."""
    headers = {"Durable-Protocol": PROTOCOL_VALUE}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return headers


def encode(value: Any, limit: int = proto.MAX_BODY_BYTES) -> bytes:
    """A body or frame as JSON bytes; values JSON cannot carry are a ValidationError."""
    try:
        data = proto.dumps(value)
    except (TypeError, ValueError) as error:
        raise exc.ValidationError(f"the request cannot be sent as JSON: {error}") from error
    if len(data) > limit:
        raise proto.PayloadTooLarge(
            f"the request is {len(data):,} bytes; the protocol allows at most {limit:,}"
        )
    return data


def reply_error(status: int, headers_ok: bool, content: bytes) -> exc.DurableError:
    """The exception for a reply that is not a success (or not of this protocol)."""
    if not headers_ok:
        if status in GATEWAY_STATUSES:
            return exc.UnavailableError(f"HTTP {status} from a proxy in front of the server")
        return exc.ProtocolError(
            f"HTTP {status} reply without 'Durable-Protocol: {PROTOCOL_VALUE}': "
            "the URL does not point at a cloudflare-durable server of this protocol version"
        )
    try:
        body = json.loads(content)
    except ValueError:
        return exc.ProtocolError(f"HTTP {status} reply is not JSON: {content[:200]!r}")
    return proto.error_from_envelope(status, body)


class HttpTransport:
    """One request per operation, on a pool of keep-alive connections."""

    def __init__(self, settings: Settings, ssl_context: ssl.SSLContext | None = None) -> None:
        if settings.url is None:
            raise exc.UsageError("the HTTP transport needs a server URL")
        self._base = settings.url.rstrip("/")
        headers = protocol_headers(settings.token)
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
        self._paths: dict[tuple[str, ...], str] = {}

    def _url(self, model: str, object_id: str, *rest: str) -> str:
        key = (model, object_id, *rest)
        url = self._paths.get(key)
        if url is None:
            if len(self._paths) >= 4096:
                self._paths.clear()
            url = self._paths[key] = self._base + proto.object_path(model, object_id, *rest)
        return url

    async def _send(self, method: str, url: str, body: bytes | None) -> dict[str, Any]:
        try:
            response = await self._client.request(method, url, content=body)
        except (httpx.HTTPError, httpx.InvalidURL) as error:
            raise translate_error(error, method, url) from error
        except RuntimeError as error:
            if self._client.is_closed:
                raise exc.UsageError("the client is closed; create a new one") from error
            raise
        headers_ok = response.headers.get("durable-protocol") == PROTOCOL_VALUE
        content = response.content
        if headers_ok and 200 <= response.status_code < 300:
            try:
                reply = json.loads(content)
            except ValueError:
                raise exc.ProtocolError(f"reply is not JSON: {content[:200]!r}") from None
            if isinstance(reply, dict):
                return reply
            raise exc.ProtocolError(f"reply is not a JSON object: {content[:200]!r}")
        raise reply_error(response.status_code, headers_ok, content)

    async def call(
        self, model: str, object_id: str, method: str, args: dict[str, Any], request_id: str | None
    ) -> proto.CallReply:
        body: dict[str, Any] = {"args": args}
        if request_id is not None:
            body["request_id"] = request_id
        url = self._url(model, object_id, "call", method)
        return proto.read_call_reply(await self._send("POST", url, encode(body)))

    async def read(self, model: str, object_id: str) -> proto.StateReply:
        return proto.read_state_reply(await self._send("GET", self._url(model, object_id), None))

    async def create(
        self, model: str, object_id: str, state: dict[str, Any], request_id: str | None
    ) -> proto.StateReply:
        body: dict[str, Any] = {"state": state}
        if request_id is not None:
            body["request_id"] = request_id
        url = self._url(model, object_id)
        return proto.read_state_reply(await self._send("PUT", url, encode(body)))

    async def update(
        self,
        model: str,
        object_id: str,
        fields: dict[str, Any],
        if_version: int | None,
        request_id: str | None,
    ) -> proto.StateReply:
        body: dict[str, Any] = {"fields": fields, "if_version": if_version}
        if request_id is not None:
            body["request_id"] = request_id
        url = self._url(model, object_id)
        return proto.read_state_reply(await self._send("PATCH", url, encode(body)))

    async def delete(self, model: str, object_id: str, request_id: str | None) -> proto.DeleteReply:
        body = None if request_id is None else encode({"request_id": request_id})
        url = self._url(model, object_id)
        return proto.read_delete_reply(await self._send("DELETE", url, body))

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

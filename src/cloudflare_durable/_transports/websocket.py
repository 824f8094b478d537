"""WebSockets on anyio (asyncio or trio): the driver.

The WebSocket protocol itself is websockets' sans-I/O ``ClientProtocol``: it
turns frames into bytes and bytes into frames. This module only moves those
bytes over an anyio TCP (or TLS) stream, so it runs the same on every anyio
backend, and maps what happens on the wire onto our exceptions:

- a refused handshake raises the error in the server's JSON envelope;
- a connection that closes or breaks raises ``ConnectionLostError``
  (retryable, except after a normal closure, code 1000, which means "stop");
- close code 4008 raises ``SubscriberLagged`` (resume at once);
- close codes that blame the client (1002, 1003, 1007, 1008, 1009, 1010) and
  frames that break the protocol raise ``ProtocolError``.

Reading keeps the connection alive: after ``KEEPALIVE_INTERVAL`` seconds
without traffic it pings, and after twice that it gives the connection up.
Subscriptions and RPC sessions on top of it live in ``session.py``.
"""

from __future__ import annotations

import logging
import ssl
import time
from collections import deque
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

import anyio
import anyio.abc
from websockets.client import ClientProtocol
from websockets.exceptions import InvalidHandshake, InvalidMessage, InvalidStatus, PayloadTooBig
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import State
from websockets.typing import BytesLike
from websockets.uri import WebSocketURI

from .. import _exceptions as exc
from .. import _protocol as proto
from .._config import Settings

__all__ = ["Connections", "Endpoint", "WebSocket", "open_websocket"]

logger = logging.getLogger("cloudflare_durable.transport")

KEEPALIVE_INTERVAL: Final = 20.0
"""Seconds without traffic before a ping; twice that and the connection is dead."""
CLOSE_TIMEOUT: Final = 2.0
READ_SIZE: Final = 65536
PING_FRAME: Final = proto.PING_TEXT.encode()
# Close codes by which the server says the client broke the protocol.
CLIENT_FAULT_CODES: Final = frozenset({1002, 1003, 1007, 1008, 1009, 1010})
STREAM_ERRORS: Final = (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError)


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where WebSockets connect, derived once from the server URL."""

    secure: bool
    host: str
    port: int
    prefix: str
    headers: tuple[tuple[str, str], ...]
    timeout: float
    write_timeout: float
    ssl_context: ssl.SSLContext | None = None

    @classmethod
    def from_settings(
        cls, settings: Settings, ssl_context: ssl.SSLContext | None = None
    ) -> Endpoint:
        if settings.url is None:
            raise exc.UsageError("WebSockets need a server URL")
        parts = urlsplit(settings.url)
        secure = parts.scheme == "https"
        if parts.hostname is None:
            raise exc.UsageError(f"the server URL has no host: {settings.url!r}")
        return cls(
            secure=secure,
            host=parts.hostname,
            port=parts.port or (443 if secure else 80),
            prefix=parts.path.rstrip("/"),
            headers=tuple(proto.request_headers(settings.token).items()),
            timeout=settings.timeout,
            write_timeout=settings.timeout,
            ssl_context=ssl_context,
        )

    def uri(self, path: str) -> WebSocketURI:
        return WebSocketURI(self.secure, self.host, self.port, self.prefix + path, "")


async def open_websocket(endpoint: Endpoint, path: str) -> WebSocket:
    """Connect and complete the opening handshake, or raise what the server said.

    It has no timeout of its own: callers bound it (``fail_after``).
    """
    uri = endpoint.uri(path)
    stream: anyio.abc.ByteStream
    try:
        if endpoint.secure:
            stream = await anyio.connect_tcp(
                endpoint.host,
                endpoint.port,
                ssl_context=endpoint.ssl_context or ssl.create_default_context(),
                tls_hostname=endpoint.host,
            )
        else:
            stream = await anyio.connect_tcp(endpoint.host, endpoint.port)
    except ssl.SSLCertVerificationError as error:
        raise exc.ConnectError(f"TLS to {uri.host}: {error}", retryable=False) from error
    except (*STREAM_ERRORS, anyio.EndOfStream) as error:
        raise exc.ConnectError(
            f"cannot connect to {uri.host}:{uri.port}: {error or type(error).__name__}"
        ) from error
    protocol = ClientProtocol(uri, max_size=proto.MAX_REPLY_BYTES)
    websocket = WebSocket(stream, protocol, endpoint.write_timeout)
    try:
        request = protocol.connect()
        for name, value in endpoint.headers:
            request.headers[name] = value
        protocol.send_request(request)
        await websocket.flush()
        await websocket.handshake()
    except BaseException:
        await anyio.aclose_forcefully(stream)
        raise
    return websocket


class WebSocket:
    """One client WebSocket: ``ClientProtocol`` driven over an anyio byte stream.

    Sending buffers frames in the protocol and ``flush()`` writes them; any
    number of tasks may send, and one of them writes for all (never two writes
    at once). One task at a time reads (``receive_some``/``receive_text``).
    Once the connection is done, ``error`` holds why, and reading raises it
    after every message received before it has been returned.
    """

    def __init__(
        self, stream: anyio.abc.ByteStream, protocol: ClientProtocol, write_timeout: float
    ) -> None:
        self._stream = stream
        self._protocol = protocol
        self._write_timeout = write_timeout
        self._frames: deque[Frame] = deque()
        self._fragments: list[BytesLike] = []
        self._flushing = False
        self._reading = False
        self._closed = False
        self.error: exc.DurableError | None = None
        self.last_received = time.monotonic()
        self.features: str | None = None
        """The server's ``Durable-Features`` header, from the handshake."""
        self._unacknowledged = 0  # messages read since the last ping sent
        self._unacknowledged_bytes = 0

    # -- opening handshake -------------------------------------------------

    async def handshake(self) -> None:
        protocol = self._protocol
        while True:
            await self._read()
            for event in protocol.events_received():
                if isinstance(event, Response):
                    self._accept(event)
                elif isinstance(event, Frame):
                    self._frames.append(event)
            if protocol.state is State.OPEN:
                self._after_feed()
                return
            if protocol.handshake_exc is not None:
                raise self._refused(protocol.handshake_exc)
            if self.error is not None:
                raise exc.ConnectError(f"handshake failed: {self.error.message}") from self.error

    def _accept(self, response: Response) -> None:
        self.features = response.headers.get(proto.FEATURES_HEADER)
        if response.status_code == 101 and response.headers.get(proto.PROTOCOL_HEADER) != str(
            proto.PROTOCOL_VERSION
        ):
            raise exc.ProtocolError(
                "the WebSocket handshake reply has no 'Durable-Protocol: 1': "
                "the URL does not point at a cloudflare-durable server of this protocol version"
            )

    def _refused(self, error: Exception) -> exc.DurableError:
        if isinstance(error, InvalidStatus):
            response = error.response
            headers_ok = response.headers.get(proto.PROTOCOL_HEADER) == str(proto.PROTOCOL_VERSION)
            refusal = proto.reply_error(response.status_code, headers_ok, bytes(response.body))
        elif isinstance(error, InvalidMessage) and isinstance(error.__cause__, EOFError):
            refusal = exc.ConnectError("the server closed the connection during the handshake")
        elif isinstance(error, InvalidHandshake):
            refusal = exc.ProtocolError(f"bad WebSocket handshake reply: {error}")
        else:  # pragma: no cover - websockets only reports InvalidHandshake
            refusal = exc.ProtocolError(f"WebSocket handshake failed: {error!r}")
        refusal.__cause__ = error
        return refusal

    # -- sending -----------------------------------------------------------

    @property
    def is_open(self) -> bool:
        return self.error is None and self._protocol.state is State.OPEN

    def send_text(self, data: bytes) -> bool:
        """Buffer one text frame (``flush`` writes it); False once the connection cannot send."""
        if self.error is not None or self._protocol.state is not State.OPEN:
            return False
        self._protocol.send_text(data)
        return True

    async def flush(self) -> None:
        """Write every buffered frame. Never raises: a failed write ends the connection
        (``error`` is set and the socket closed, so the reader learns of it)."""
        if self._flushing:
            return  # the task writing now loops until the buffer is empty
        self._flushing = True
        try:
            # Shielded: a write cut short would leave half a frame on the wire.
            with anyio.CancelScope(shield=True) as scope:
                scope.deadline = anyio.current_time() + self._write_timeout
                while chunks := self._protocol.data_to_send():
                    data = b"".join(chunks)
                    if data:
                        await self._stream.send(data)
            if scope.cancelled_caught:
                await self.abort(exc.ConnectionLostError("a write to the WebSocket timed out"))
        except STREAM_ERRORS as error:
            await self.abort(
                exc.ConnectionLostError(f"the WebSocket broke while writing: {error!r}")
            )
        finally:
            self._flushing = False

    # -- receiving ---------------------------------------------------------

    async def receive_some(self) -> None:
        """Wait for data and parse it; raise ``error`` once the connection is done.

        After ``KEEPALIVE_INTERVAL`` seconds without traffic it pings the server
        and returns; after twice that it gives the connection up.
        """
        if self.error is not None:
            raise self.error
        with anyio.move_on_after(KEEPALIVE_INTERVAL) as idle:
            await self._read()
        if idle.cancelled_caught:
            await self._keep_alive()
            return
        self._after_feed()
        if self._protocol.writes:
            await self.flush()  # pongs and the echo of a close frame

    async def _keep_alive(self) -> None:
        quiet = time.monotonic() - self.last_received
        if quiet >= 2 * KEEPALIVE_INTERVAL:
            await self.abort(
                exc.ConnectionLostError(f"no traffic on the WebSocket for {quiet:.0f} s")
            )
        elif self.send_text(PING_FRAME):
            self._unacknowledged = self._unacknowledged_bytes = 0
            await self.flush()
        if self.error is not None:
            raise self.error

    async def receive_text(self) -> str:
        """The next text message."""
        while (text := self.next_message()) is None:
            await self.receive_some()
        await self.acknowledge()
        return text

    async def acknowledge(self) -> None:
        """Ping once every ``ACKNOWLEDGE_EVERY`` messages (or bytes) read: a server
        closes a connection whose frames go unacknowledged too long (4008)."""
        if (
            self._unacknowledged >= proto.ACKNOWLEDGE_EVERY
            or self._unacknowledged_bytes >= proto.ACKNOWLEDGE_BYTES
        ) and self.send_text(PING_FRAME):
            self._unacknowledged = self._unacknowledged_bytes = 0
            await self.flush()

    def next_message(self) -> str | None:
        """The next complete text message already received, if any."""
        frames = self._frames
        while frames:
            frame = frames.popleft()
            opcode = frame.opcode
            if opcode is Opcode.TEXT:
                if frame.fin:
                    return self._counted(frame.data)
                self._fragments = [frame.data]
            elif opcode is Opcode.CONT and self._fragments:
                self._fragments.append(frame.data)
                if frame.fin:
                    text = self._counted(b"".join(self._fragments))
                    self._fragments = []
                    return text
            elif opcode is Opcode.BINARY:
                logger.warning("ignoring a binary WebSocket message (the protocol uses text)")
        return None

    def _counted(self, data: BytesLike) -> str:
        self._unacknowledged += 1
        self._unacknowledged_bytes += len(data)
        return _text(data)

    async def _read(self) -> None:
        self._reading = True
        try:
            data = await self._stream.receive(READ_SIZE)
        except anyio.EndOfStream:
            self._protocol.receive_eof()
        except STREAM_ERRORS as error:
            self._fail(exc.ConnectionLostError(f"the WebSocket broke: {error!r}"))
            self._protocol.receive_eof()
        else:
            self._protocol.receive_data(data)
            self.last_received = time.monotonic()
        finally:
            self._reading = False

    def _after_feed(self) -> None:
        protocol = self._protocol
        events = protocol.events_received()
        if events:
            self._frames.extend(events)  # type: ignore[arg-type]  # only frames after the handshake
        if (
            protocol.close_rcvd is not None
            or protocol.parser_exc is not None
            or protocol.state is State.CLOSED
        ):
            self._fail(self._close_error())

    def _close_error(self) -> exc.DurableError:
        received = self._protocol.close_rcvd
        parser_error = self._protocol.parser_exc
        if isinstance(parser_error, PayloadTooBig):
            return exc.ProtocolError(
                f"the server sent a message over {proto.MAX_REPLY_BYTES:,} bytes"
            )
        if received is None:
            if parser_error is not None and not isinstance(parser_error, EOFError):
                return exc.ProtocolError(f"the server broke the WebSocket protocol: {parser_error}")
            return exc.ConnectionLostError("the WebSocket closed without a closing handshake")
        code, reason = received.code, received.reason or "no reason given"
        if code == proto.CLOSE_LAGGING:
            return exc.SubscriberLagged(f"the server dropped this subscriber for lagging: {reason}")
        if code == 1000:
            return exc.ConnectionLostError(
                f"the server closed the WebSocket (1000, {reason})", retryable=False
            )
        if code in CLIENT_FAULT_CODES:
            return exc.ProtocolError(f"the server closed the WebSocket ({code}, {reason})")
        return exc.ConnectionLostError(f"the server closed the WebSocket ({code}, {reason})")

    def _fail(self, error: exc.DurableError) -> None:
        if self.error is None:
            self.error = error

    # -- closing -----------------------------------------------------------

    async def abort(self, error: exc.DurableError) -> None:
        """End the connection at once with ``error``; a blocked reader wakes up with it."""
        self._fail(error)
        if not self._closed:
            self._closed = True
            await anyio.aclose_forcefully(self._stream)

    async def aclose(self) -> None:
        """Close with a closing handshake, waiting briefly for the server; idempotent."""
        if self._closed:
            return
        with anyio.move_on_after(CLOSE_TIMEOUT, shield=True):
            if self.is_open:
                self._protocol.send_close(1000)
                await self.flush()
                while not self._reading and self.error is None:
                    await self._read()
                    self._after_feed()
        await self.abort(exc.ConnectionLostError("the WebSocket was closed", retryable=False))


def _text(data: BytesLike) -> str:
    try:
        return str(data, "utf-8")
    except UnicodeDecodeError as error:
        raise exc.ProtocolError(
            f"the server sent a text message that is not UTF-8: {error}"
        ) from None


class Connections:
    """The WebSockets a transport has open, so that closing the transport closes them."""

    def __init__(self) -> None:
        self.open: set[WebSocket] = set()
        self.closed = False

    async def adopt(self, websocket: WebSocket) -> None:
        if self.closed:
            await websocket.abort(exc.UsageError("the client is closed"))
            raise exc.UsageError("the client is closed; create a new one")
        self.open.add(websocket)

    async def release(self, websocket: WebSocket) -> None:
        self.open.discard(websocket)
        await websocket.aclose()

    async def aclose(self) -> None:
        self.closed = True
        websockets, self.open = list(self.open), set()
        for websocket in websockets:
            await websocket.aclose()

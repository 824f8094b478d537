"""Stand-in peers for the network transport's own logic, on 127.0.0.1.

The real servers (``durable serve`` and the Worker) are what the transport is
tested against; these stand-ins only play the misbehaving peers a real server
never is: a URL that is not a cloudflare-durable server, a server that hangs or
drops the connection, a WebSocket peer that closes with a chosen code, pings,
fragments its messages or goes silent. Each runs in the test's own event loop
(asyncio or trio), inside a task group the test owns.
"""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.abc
from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.protocol import State
from websockets.server import ServerProtocol

Handler = Callable[[anyio.abc.ByteStream], Awaitable[None]]


def free_port() -> int:
    """A port nothing listens on (bound and released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@asynccontextmanager
async def tcp_server(handler: Handler) -> AsyncIterator[str]:
    """Serve ``handler`` on a free port; yields the base URL (``http://127.0.0.1:PORT``)."""
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)

    async def guarded(stream: anyio.abc.ByteStream) -> None:
        try:
            await handler(stream)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, anyio.EndOfStream):
            pass
        finally:
            await anyio.aclose_forcefully(stream)

    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, guarded)
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            tg.cancel_scope.cancel()


async def read_http_request(stream: anyio.abc.ByteStream) -> bytes:
    """Read one HTTP request (head and Content-Length body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += await stream.receive()
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        body += await stream.receive()
    return head


def http_reply(status: int, body: bytes, headers: dict[str, str] | None = None) -> bytes:
    lines = [f"HTTP/1.1 {status} X", f"Content-Length: {len(body)}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def replying(status: int, body: bytes, headers: dict[str, str] | None = None) -> Handler:
    """A handler answering every request with the same reply."""

    async def handler(stream: anyio.abc.ByteStream) -> None:
        await read_http_request(stream)
        await stream.send(http_reply(status, body, headers))

    return handler


class PeerSocket:
    """The server side of one WebSocket, on websockets' sans-I/O ``ServerProtocol``."""

    def __init__(self, stream: anyio.abc.ByteStream, protocol: ServerProtocol) -> None:
        self.stream = stream
        self.protocol = protocol
        self.request: Request | None = None
        self._frames: list[Frame] = []

    async def flush(self) -> None:
        data = b"".join(self.protocol.data_to_send())
        if data:
            await self.stream.send(data)

    async def receive_frame(self) -> Frame:
        while not self._frames:
            if self.protocol.state is State.CLOSED:
                raise anyio.EndOfStream
            try:
                data = await self.stream.receive()
            except anyio.EndOfStream:
                self.protocol.receive_eof()
            else:
                self.protocol.receive_data(data)
            self._frames.extend(e for e in self.protocol.events_received() if isinstance(e, Frame))
            await self.flush()
        return self._frames.pop(0)

    async def receive_json(self) -> dict[str, Any]:
        """The next text message as JSON (control frames are skipped)."""
        while True:
            frame = await self.receive_frame()
            if frame.opcode is Opcode.TEXT:
                value: dict[str, Any] = json.loads(bytes(frame.data))
                return value

    async def send_json(self, value: object) -> None:
        self.protocol.send_text(json.dumps(value).encode())
        await self.flush()

    async def send_frame(self, opcode: Opcode, data: bytes, fin: bool = True) -> None:
        self.protocol.send_frame(Frame(opcode, data, fin))
        await self.flush()

    async def close(self, code: int, reason: str = "") -> None:
        self.protocol.send_close(code, reason)
        await self.flush()


async def accept_websocket(
    stream: anyio.abc.ByteStream, headers: dict[str, str] | None = None
) -> PeerSocket:
    """Complete the opening handshake, answering with ``headers`` (default: protocol 1)."""
    protocol = ServerProtocol(max_size=2**20)
    peer = PeerSocket(stream, protocol)
    while peer.request is None:
        protocol.receive_data(await stream.receive())
        for event in protocol.events_received():
            if isinstance(event, Request):
                peer.request = event
    response = protocol.accept(peer.request)
    for name, value in ({"Durable-Protocol": "1"} if headers is None else headers).items():
        response.headers[name] = value
    protocol.send_response(response)
    await peer.flush()
    return peer


def websocket_server(script: Callable[[PeerSocket], Awaitable[None]], **kwargs: Any) -> Handler:
    """A handler that accepts a WebSocket and runs ``script`` on it."""

    async def handler(stream: anyio.abc.ByteStream) -> None:
        peer = await accept_websocket(stream, **kwargs)
        await script(peer)

    return handler


class FaultyProxy:
    """A TCP proxy in front of a real server that drops connections at the worst moment.

    While ``cuts`` is positive, a chunk from the server that contains ``cut_on``
    is not forwarded: the proxy closes that connection instead (and counts the
    cut). The server has done the work, and the client never hears of it.
    """

    def __init__(self, target_port: int, cut_on: bytes = b'"result"', cuts: int = 0) -> None:
        self.target_port = target_port
        self.cut_on = cut_on
        self.cuts = cuts

    @asynccontextmanager
    async def running(self) -> AsyncIterator[str]:
        async with tcp_server(self._handle) as url:
            yield url

    async def _handle(self, client: anyio.abc.ByteStream) -> None:
        server = await anyio.connect_tcp("127.0.0.1", self.target_port)
        async with server, anyio.create_task_group() as tg:
            tg.start_soon(self._pipe, client, server, False, tg.cancel_scope)
            await self._pipe(server, client, True, tg.cancel_scope)

    async def _pipe(
        self,
        source: anyio.abc.ByteStream,
        sink: anyio.abc.ByteStream,
        from_server: bool,
        scope: anyio.CancelScope,
    ) -> None:
        try:
            async for chunk in source:
                if from_server and self.cuts > 0 and self.cut_on in chunk:
                    self.cuts -= 1
                    return
                await sink.send(chunk)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, anyio.EndOfStream):
            pass
        finally:
            scope.cancel()  # either side ending ends the connection

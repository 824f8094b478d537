"""Raw HTTP and WebSocket peers: what a well-behaved client never sends.

``RawSocket`` is a blocking TCP connection for the hostile-input tests (they run
under hypothesis, synchronously): it sends any bytes and reads whatever comes
back. ``ws_connect`` opens a WebSocket over it with websockets' sans-I/O
protocol, so a test can send any frame, valid or not. ``vanishing_subscriber``
(anyio) subscribes, waits for the first snapshot and then disappears without a
goodbye, for the resource tests.
"""

from __future__ import annotations

import contextlib
import json
import socket
import struct
import time
from dataclasses import dataclass, field
from typing import Final, Literal, TypeAlias
from urllib.parse import urlsplit

import anyio
import anyio.abc
from websockets.client import ClientProtocol
from websockets.frames import Close, Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import State
from websockets.uri import WebSocketURI

Vanish: TypeAlias = Literal["reset", "fin", "close"]
_LINGER_RESET: Final = struct.pack("ii", 1, 0)
SUBSCRIBE: Final = b'{"type":"subscribe","since":null,"snapshots":true,"events":true}'


def host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    assert parts.hostname is not None, url
    assert parts.port is not None, url
    return parts.hostname, parts.port


@dataclass(slots=True)
class HttpReply:
    status: int
    headers: dict[str, str]
    body: bytes


class RawSocket:
    """A blocking TCP connection to a server, with a deadline on every read."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.sock = socket.create_connection(host_port(url), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.timeout = timeout
        self.buffer = b""

    def send(self, data: bytes) -> bool:
        """Send ``data``; False if the server already closed the connection."""
        try:
            self.sock.sendall(data)
        except OSError:
            return False
        return True

    def receive(self) -> bytes:
        """Some bytes, or b"" once the server closed the connection."""
        try:
            return self.sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            return b""

    def read_reply(self, *, head_only: bool = False) -> HttpReply | None:
        """One HTTP reply (``Content-Length`` bodies; only the head for ``head_only``,
        the reply to a HEAD), or None if the server closed first."""
        deadline = time.monotonic() + self.timeout
        while b"\r\n\r\n" not in self.buffer:
            if time.monotonic() > deadline:
                raise TimeoutError("no HTTP reply head in time")
            chunk = self.receive()
            if not chunk:
                return None
            self.buffer += chunk
        head, _, rest = self.buffer.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = 0 if head_only else int(headers.get("content-length", "0"))
        while len(rest) < length:
            if time.monotonic() > deadline:
                raise TimeoutError("no complete HTTP reply body in time")
            chunk = self.receive()
            if not chunk:
                break
            rest += chunk
        self.buffer = rest[length:]
        return HttpReply(status, headers, rest[:length])

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()

    def __enter__(self) -> RawSocket:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def http_request(
    method: str,
    path: str,
    headers: list[tuple[str, str]],
    body: bytes = b"",
    *,
    host: str = "127.0.0.1",
) -> bytes:
    """An HTTP/1.1 request as bytes (with ``Content-Length`` unless a header sets it)."""
    names = {name.lower() for name, _ in headers}
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{name}: {value}" for name, value in headers]
    if "content-length" not in names and "transfer-encoding" not in names:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape") + body


@dataclass(slots=True)
class RawWebSocket:
    """A client WebSocket whose frames a test chooses, over a ``RawSocket``."""

    raw: RawSocket
    protocol: ClientProtocol
    frames: list[Frame] = field(default_factory=list)

    def flush(self) -> bool:
        return self.raw.send(b"".join(self.protocol.data_to_send()))

    def send_frame(self, frame: Frame) -> bool:
        """Send one frame as is (masked, as a client must)."""
        self.protocol.send_frame(frame)
        return self.flush()

    def send_bytes(self, data: bytes) -> bool:
        """Send raw bytes, bypassing the WebSocket framing."""
        return self.raw.send(data)

    def next_frame(self, timeout: float = 10.0) -> Frame | None:
        """The next data or close frame from the server; None once the connection is gone."""
        deadline = time.monotonic() + timeout
        while True:
            while self.frames:
                frame = self.frames.pop(0)
                if frame.opcode in (Opcode.TEXT, Opcode.BINARY, Opcode.CLOSE):
                    return frame
            if self.protocol.state is State.CLOSED:
                return None
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no frame from the server in time")
            self.raw.sock.settimeout(left)
            data = self.raw.receive()
            if data:
                self.protocol.receive_data(data)
            else:
                self.protocol.receive_eof()
            self.frames += [e for e in self.protocol.events_received() if isinstance(e, Frame)]
            self.flush()  # pongs and the echo of a close

    def close_code(self, frame: Frame | None) -> int | None:
        if frame is None or frame.opcode is not Opcode.CLOSE:
            return None
        return Close.parse(frame.data).code

    def close(self) -> None:
        self.raw.close()


def ws_connect(url: str, path: str, headers: list[tuple[str, str]]) -> RawWebSocket | HttpReply:
    """Open a WebSocket (the ``RawWebSocket``), or the HTTP reply that refused it."""
    host, port = host_port(url)
    protocol = ClientProtocol(WebSocketURI(False, host, port, path, ""), max_size=None)
    raw = RawSocket(url)
    request = protocol.connect()
    for name, value in headers:
        if name.lower() == "host":  # one Host header: the caller's
            del request.headers["Host"]
        request.headers[name] = value
    protocol.send_request(request)
    raw.send(b"".join(protocol.data_to_send()))
    deadline = time.monotonic() + raw.timeout
    while True:
        if time.monotonic() > deadline:
            raise TimeoutError("no handshake reply in time")
        data = raw.receive()
        if not data:
            protocol.receive_eof()
        else:
            protocol.receive_data(data)
        events = protocol.events_received()
        response = next((e for e in events if isinstance(e, Response)), None)
        if response is not None:
            if protocol.state is State.OPEN:
                frames = [e for e in events if isinstance(e, Frame)]
                return RawWebSocket(raw, protocol, frames)
            raw.close()
            return HttpReply(response.status_code, dict(response.headers), bytes(response.body))
        if not data:
            raw.close()
            raise ConnectionError("the server closed the connection during the handshake")


async def vanishing_subscriber(url: str, path: str, token: str, how: Vanish) -> int:
    """Subscribe, read the first snapshot, then vanish ``how``; returns its version.

    ``reset``: a TCP reset; ``fin``: the socket closes without a closing
    handshake; ``close``: a closing handshake sent, and the socket closed
    without waiting for the reply.
    """
    host, port = host_port(url)
    protocol = ClientProtocol(WebSocketURI(False, host, port, path, ""), max_size=None)
    request = protocol.connect()
    request.headers["Authorization"] = f"Bearer {token}"
    protocol.send_request(request)
    stream = await anyio.connect_tcp(host, port)
    try:
        await stream.send(b"".join(protocol.data_to_send()))
        version = -1
        while version < 0:
            protocol.receive_data(await stream.receive())
            for event in protocol.events_received():
                if isinstance(event, Response):
                    if event.status_code != 101:
                        raise ConnectionError(f"refused: {event.status_code} {event.body!r}")
                    protocol.send_text(SUBSCRIBE)
                    await stream.send(b"".join(protocol.data_to_send()))
                elif isinstance(event, Frame) and event.opcode is Opcode.TEXT:
                    version = int(json.loads(bytes(event.data))["version"])
        if how == "close":
            protocol.send_close(1000)
            await stream.send(b"".join(protocol.data_to_send()))
        elif how == "reset":
            raw = stream.extra(anyio.abc.SocketAttribute.raw_socket)
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
        return version
    finally:
        await anyio.aclose_forcefully(stream)

"""The network transport: HTTP and WebSockets against the real servers.

Every operation and error runs against both servers of the protocol, the
network host (``durable serve``) and the Worker on workerd, on both anyio
backends. Restarts use servers of their own, stopped and started again on the
same port and store. Stand-in peers (``tests/_network.py``) play only what a
real server never does on purpose: not speaking the protocol, hanging,
dropping connections, closing with a chosen code, going silent.
"""

from __future__ import annotations

import dataclasses
import itertools
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import anyio.lowlevel
import pytest
from websockets.frames import Opcode

from cloudflare_durable import (
    AlreadyExistsError,
    BadRequestError,
    ConflictError,
    ConnectError,
    ConnectionLostError,
    DurableClient,
    PayloadTooLargeError,
    ProtocolError,
    RemoteError,
    UnauthorizedError,
    UnavailableError,
    UnknownMethodError,
    UnknownModelError,
    UnsupportedProtocolError,
    UsageError,
    ValidationError,
    attach,
)
from cloudflare_durable import TimeoutError as DurableTimeoutError
from cloudflare_durable import _protocol as proto
from cloudflare_durable._config import Settings
from cloudflare_durable._exceptions import SubscriberLagged
from cloudflare_durable._transports import websocket as websocket_module
from cloudflare_durable._transports.network import NetworkTransport
from cloudflare_durable.testing import NetworkHost, ServerProcess, WorkerHost

from ._network import (
    FaultyProxy,
    PeerSocket,
    free_port,
    read_http_request,
    replying,
    tcp_server,
    websocket_server,
)
from .conftest import MODELS, TOKEN, worker_available
from .models import Counter

pytestmark = pytest.mark.anyio

FAST: dict[str, Any] = {
    "timeout": 10.0,
    "retries": 20,
    "retry_delay": 0.02,
    "reconnect_delay": 0.02,
}


def settings(url: str, token: str | None = TOKEN, **options: Any) -> Settings:
    return Settings(url=url, token=token, **{**FAST, **options}).check()


@asynccontextmanager
async def connect(
    url: str, token: str | None = TOKEN, **options: Any
) -> AsyncIterator[NetworkTransport]:
    transport = NetworkTransport(settings(url, token, **options))
    try:
        yield transport
    finally:
        await transport.aclose()


@pytest.fixture(params=["network", "worker"])
def server(request: pytest.FixtureRequest) -> ServerProcess:
    """Each of the two servers of the protocol (shared by the session)."""
    host: ServerProcess = request.getfixturevalue(f"{request.param}_host")
    return host


@pytest.fixture
def own_network_host(tmp_path: Path) -> Any:
    """A network host of this test's own, free to restart."""
    with NetworkHost(MODELS, store=tmp_path / "state.sqlite3", token=TOKEN) as host:
        yield host


@pytest.fixture(params=["network", "worker"])
def own_server(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """Each server, of this test's own, free to restart on the same port and store."""
    host: ServerProcess
    if request.param == "network":
        host = NetworkHost(MODELS, store=tmp_path / "state.sqlite3", token=TOKEN)
    else:
        if not worker_available():
            pytest.skip("Node dependencies of worker/ are not installed (npm ci)")
        host = WorkerHost(tmp_path / "worker", token=TOKEN)
    with host:
        yield host


async def until_serving(transport: NetworkTransport) -> None:
    """Wait until a server that announced its URL accepts connections."""
    with anyio.fail_after(10):
        while True:
            try:
                await transport.perform(proto.Read("Counter", "ready"))
            except ConnectError:
                await anyio.sleep(0.02)
            else:
                return


def rid() -> str:
    return uuid.uuid4().hex


# -- HTTP ---------------------------------------------------------------------


async def test_every_operation_over_http(server: ServerProcess, oid: str) -> None:
    odd = f"{oid}/é ?#%"  # every character that needs escaping in a path
    async with connect(server.url) as transport:
        assert await transport.perform(proto.Read("Counter", odd)) == proto.Reply(200, 0, None)
        created = await transport.perform(proto.Create("Counter", odd, {"value": 5}, rid()))
        assert created == proto.Reply(201, 1, {"value": 5})
        call_id = rid()
        reply = await transport.perform(proto.Call("Counter", odd, "increment", {"by": 2}, call_id))
        assert reply == proto.Reply(200, 2, {"value": 7}, 7)
        assert (
            await transport.perform(proto.Call("Counter", odd, "increment", {"by": 2}, call_id))
            == reply
        )
        assert await transport.perform(
            proto.Call("Counter", odd, "increment", {}, None)
        ) == proto.Reply(200, 3, {"value": 8}, 8)
        updated = await transport.perform(proto.Update("Counter", odd, {"value": 1}, 3, rid()))
        assert updated == proto.Reply(200, 4, {"value": 1})
        assert await transport.perform(
            proto.Update("Counter", odd, {"value": 2}, None, None)
        ) == proto.Reply(200, 5, {"value": 2})
        assert await transport.perform(proto.Delete("Counter", odd, rid())) == proto.Reply(
            200, 6, None, deleted=True
        )
        assert await transport.perform(proto.Delete("Counter", odd, None)) == proto.Reply(
            200, 6, None, deleted=False
        )
        assert await transport.perform(proto.Read("Counter", odd)) == proto.Reply(200, 6, None)
        recent = await transport.perform(proto.Call("ChatRoom", odd, "recent", {"limit": 3}, None))
        assert recent.result == []


async def test_server_errors_map_onto_the_exception_tree(server: ServerProcess, oid: str) -> None:
    async with connect(server.url) as transport:
        with pytest.raises(UnknownModelError) as unknown_model:
            await transport.perform(proto.Read("NoSuchModel", oid))
        with pytest.raises(UnknownMethodError):
            await transport.perform(proto.Call("Counter", oid, "no_such_method", {}, rid()))
        with pytest.raises(ValidationError):
            await transport.perform(proto.Call("Counter", oid, "increment", {"by": "many"}, rid()))
        await transport.perform(proto.Create("Counter", oid, {"value": 1}, rid()))
        with pytest.raises(AlreadyExistsError):
            await transport.perform(proto.Create("Counter", oid, {"value": 2}, rid()))
        with pytest.raises(ConflictError) as conflict:
            await transport.perform(proto.Update("Counter", oid, {"value": 3}, 99, rid()))
        assert not isinstance(conflict.value, AlreadyExistsError)
        assert conflict.value.details == {"expected": 99, "actual": 1}
        with pytest.raises(RemoteError) as denied:
            await transport.perform(
                proto.Call(
                    "Document",
                    oid,
                    "edit",
                    {"editor_id": "eve", "content": "x", "version": 1},
                    rid(),
                )
            )
        assert denied.value.type_name == "PermissionError"
        with pytest.raises(RemoteError) as blank:
            await transport.perform(
                proto.Call("ChatRoom", oid, "post", {"author": "ann", "text": " "}, rid())
            )
        assert blank.value.type_name == "ValueError"
        for error in (unknown_model.value, conflict.value, denied.value, blank.value):
            assert error.retryable is False
        assert await transport.perform(proto.Read("Counter", oid)) == proto.Reply(
            200, 1, {"value": 1}
        )


@pytest.mark.parametrize("token", [None, "wrong-token"])
async def test_a_missing_or_wrong_token_is_unauthorized(
    server: ServerProcess, oid: str, token: str | None
) -> None:
    async with connect(server.url, token=token, retries=0) as transport:
        with pytest.raises(UnauthorizedError) as refused:
            await transport.perform(proto.Call("Counter", oid, "increment", {}, rid()))
        assert refused.value.retryable is False
        with pytest.raises(UnauthorizedError):
            await transport.perform(proto.Read("NoSuchModel", oid))
        with pytest.raises(UnauthorizedError):
            await transport.stream("Counter", oid, proto.SubscribeFrame())
        with pytest.raises(UnauthorizedError):
            async with transport.channel("Counter", oid):
                pass


async def test_another_protocol_version_is_refused(server: ServerProcess, oid: str) -> None:
    async with connect(server.url) as transport:
        transport._client.headers["Durable-Protocol"] = "2"
        with pytest.raises(UnsupportedProtocolError) as refused:
            await transport.perform(proto.Read("Counter", oid))
        assert isinstance(refused.value, ProtocolError)
        assert not refused.value.retryable
        endpoint = endpoint_with(
            transport, {"Durable-Protocol": "2", "Authorization": f"Bearer {TOKEN}"}
        )
        with pytest.raises(UnsupportedProtocolError):
            await websocket_module.open_websocket(endpoint, proto.object_path("Counter", oid, "ws"))


def endpoint_with(
    transport: NetworkTransport, headers: Mapping[str, str]
) -> websocket_module.Endpoint:
    return dataclasses.replace(transport._endpoint, headers=tuple(headers.items()))


@pytest.mark.parametrize(
    ("status", "body", "headers", "expected", "retryable"),
    [
        (200, b'{"version":1,"state":null}', {}, ProtocolError, False),
        (200, b'{"version":1,"state":null}', {"Durable-Protocol": "2"}, ProtocolError, False),
        (200, b"<html>hello</html>", {"Durable-Protocol": "1"}, ProtocolError, False),
        (200, b"[1, 2]", {"Durable-Protocol": "1"}, ProtocolError, False),
        (200, b'{"state": {}}', {"Durable-Protocol": "1"}, ProtocolError, False),
        (500, b"Internal Server Error", {"Durable-Protocol": "1"}, ProtocolError, False),
        (502, b"Bad Gateway", {}, UnavailableError, True),
        (
            503,
            b'{"error":{"code":"unavailable","message":"restarting","retryable":true}}',
            {"Durable-Protocol": "1"},
            UnavailableError,
            True,
        ),
    ],
)
async def test_replies_of_another_protocol_are_protocol_errors(
    status: int, body: bytes, headers: dict[str, str], expected: type[Exception], retryable: bool
) -> None:
    async with tcp_server(replying(status, body, headers)) as url, connect(url) as transport:
        with pytest.raises(expected) as error:
            await transport.perform(proto.Read("Counter", "c"))
        assert type(error.value) is expected
        assert getattr(error.value, "retryable", None) is retryable


async def test_connection_failures_are_retryable_transport_errors() -> None:
    async def hang(stream: anyio.abc.ByteStream) -> None:
        await read_http_request(stream)
        await anyio.sleep_forever()

    async def drop(stream: anyio.abc.ByteStream) -> None:
        await read_http_request(stream)
        await stream.aclose()

    async with connect(f"http://127.0.0.1:{free_port()}") as transport:
        with pytest.raises(ConnectError) as refused:
            await transport.perform(proto.Call("Counter", "c", "increment", {}, rid()))
        assert refused.value.retryable
        assert isinstance(refused.value.__cause__, Exception)
        with pytest.raises(ConnectError):
            await transport.stream("Counter", "c", proto.SubscribeFrame())
    async with tcp_server(hang) as url, connect(url, timeout=0.3) as transport:
        with anyio.fail_after(5), pytest.raises(DurableTimeoutError) as timed_out:
            await transport.perform(proto.Read("Counter", "c"))
        assert timed_out.value.retryable
    async with tcp_server(drop) as url, connect(url) as transport:
        with pytest.raises(ConnectionLostError) as lost:
            await transport.perform(proto.Call("Counter", "c", "increment", {}, rid()))
        assert lost.value.retryable


async def test_requests_too_large_or_not_json_are_refused_before_sending() -> None:
    async with connect(f"http://127.0.0.1:{free_port()}") as transport:
        with pytest.raises(PayloadTooLargeError):
            await transport.perform(
                proto.Call("Counter", "c", "increment", {"by": "x" * proto.MAX_BODY_BYTES}, None)
            )
        with pytest.raises(ValidationError):
            await transport.perform(
                proto.Call("Counter", "c", "increment", {"by": float("nan")}, None)
            )


async def test_a_retry_after_a_lost_reply_does_not_apply_the_call_again(
    server: ServerProcess, oid: str
) -> None:
    proxy = FaultyProxy(server.port, cut_on=b"HTTP/1.1 200", cuts=2)  # bodies may be gzipped
    async with (
        proxy.running() as url,
        DurableClient(url, token=TOKEN, **FAST) as client,
        connect(server.url) as direct,
    ):
        with anyio.fail_after(10):
            assert await client.get(Counter, oid).increment(5) == 5
        assert proxy.cuts == 0, "both replies were lost, the third attempt got through"
        assert await direct.perform(proto.Read("Counter", oid)) == proto.Reply(200, 1, {"value": 5})


# -- subscriptions ------------------------------------------------------------


async def test_a_stream_receives_the_snapshot_then_every_change(
    server: ServerProcess, oid: str
) -> None:
    async with connect(server.url) as transport:
        stream = await transport.stream("Document", oid, proto.SubscribeFrame())
        try:
            with anyio.fail_after(10):
                assert await stream.receive() == proto.Snapshot(0, None)
                await transport.perform(
                    proto.Call("Document", oid, "join", {"editor_id": "ann", "name": "Ann"}, rid())
                )
                snapshot = await stream.receive()
                assert isinstance(snapshot, proto.Snapshot)
                assert snapshot.version == 1
                assert await stream.receive() == proto.EventMessage(
                    1, "Joined", {"editor_id": "ann", "name": "Ann"}
                )
        finally:
            await stream.aclose()
            await stream.aclose()  # idempotent
        with pytest.raises(ConnectionLostError) as closed:
            await stream.receive()
        assert not closed.value.retryable


async def test_an_events_stream_gets_what_is_posted_right_after_it_opens(
    server: ServerProcess, oid: str
) -> None:
    async with connect(server.url) as transport:
        for n in range(5):
            stream = await transport.stream(
                "ChatRoom", oid, proto.SubscribeFrame(None, False, True)
            )
            try:
                args = {"author": "ann", "text": f"hello {n}"}
                await transport.perform(proto.Call("ChatRoom", oid, "post", args, rid()))
                with anyio.fail_after(10):
                    event = await stream.receive()
                assert event == proto.EventMessage(n + 1, "Posted", args)
            finally:
                await stream.aclose()


async def test_refused_handshakes_raise_the_servers_error(server: ServerProcess, oid: str) -> None:
    async with connect(server.url) as transport:
        with pytest.raises(UnknownModelError):
            await transport.stream("NoSuchModel", oid, proto.SubscribeFrame())
        with pytest.raises(UnknownModelError):
            async with transport.channel("NoSuchModel", oid):
                pass


@pytest.mark.slow
async def test_a_subscription_resumes_after_the_server_restarts(
    own_server: ServerProcess, oid: str
) -> None:
    seen: list[tuple[int, int]] = []
    first = anyio.Event()
    async with DurableClient(own_server.url, token=TOKEN, **FAST) as client:
        counter = client.get(Counter, oid)

        async def watch() -> None:
            async with counter.subscribe() as snapshots:
                async for snapshot in snapshots:
                    seen.append((snapshot.durable_version or 0, snapshot.value))
                    first.set()
                    if snapshot.value == 10:
                        return

        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                tg.start_soon(watch)
                await first.wait()
                for _ in range(5):
                    await counter.increment(1)
                await anyio.to_thread.run_sync(own_server.restart)
                for _ in range(5):
                    await counter.increment(1)
    versions = [version for version, _ in seen]
    assert versions == sorted(set(versions)), "versions strictly increase, none repeats"
    assert seen[-1] == (10, 10)


# -- stand-in WebSocket peers ------------------------------------------------


async def expect_subscribe(peer: PeerSocket) -> None:
    """Play a server's side of a subscription: the snapshot, then the pong."""
    assert await peer.receive_json() == proto.SubscribeFrame().to_json()
    assert await peer.receive_json() == {"type": "ping"}
    await peer.send_json(proto.snapshot_frame(1, {"value": 1}))
    await peer.send_json({"type": "pong"})


@pytest.mark.parametrize(
    ("code", "expected", "retryable"),
    [
        (1000, ConnectionLostError, False),
        (1001, ConnectionLostError, True),
        (1011, ConnectionLostError, True),
        (1012, ConnectionLostError, True),
        (4008, SubscriberLagged, True),
        (1009, ProtocolError, False),
        (None, ConnectionLostError, True),  # the TCP connection just ends
    ],
)
async def test_close_codes_map_onto_errors(
    code: int | None, expected: type[Exception], retryable: bool
) -> None:
    async def script(peer: PeerSocket) -> None:
        await expect_subscribe(peer)
        if code is None:
            await peer.stream.aclose()
            return
        await peer.close(code, "bye")
        with anyio.move_on_after(2):
            await peer.receive_frame()

    async with tcp_server(websocket_server(script)) as url, connect(url) as transport:
        stream = await transport.stream("Counter", "c", proto.SubscribeFrame())
        with anyio.fail_after(5):
            assert await stream.receive() == proto.Snapshot(1, {"value": 1})
            with pytest.raises(expected) as error:
                await stream.receive()
        assert type(error.value) is expected
        assert getattr(error.value, "retryable", None) is retryable
        await stream.aclose()


async def test_pings_fragments_and_error_frames_from_the_server() -> None:
    async def script(peer: PeerSocket) -> None:
        await expect_subscribe(peer)
        peer.protocol.send_ping(b"are you there")
        await peer.flush()
        pong = await peer.receive_frame()
        assert (pong.opcode, pong.data) == (Opcode.PONG, b"are you there")
        text = proto.dumps(proto.snapshot_frame(2, {"value": "x" * 100_000}))
        peer.protocol.send_text(text[:10], fin=False)
        peer.protocol.send_continuation(text[10:50_000], fin=False)
        peer.protocol.send_continuation(text[50_000:], fin=True)
        await peer.flush()
        await peer.send_json({"type": "pong"})
        await peer.send_json(proto.error_frame(None, BadRequestError("bad frame")))
        await anyio.sleep_forever()

    async with tcp_server(websocket_server(script)) as url, connect(url) as transport:
        stream = await transport.stream("Counter", "c", proto.SubscribeFrame())
        with anyio.fail_after(5):
            assert await stream.receive() == proto.Snapshot(1, {"value": 1})
            assert await stream.receive() == proto.Snapshot(2, {"value": "x" * 100_000})
            with pytest.raises(BadRequestError, match="bad frame"):
                await stream.receive()
        await stream.aclose()


async def test_text_that_is_not_utf8_is_a_protocol_error() -> None:
    async def script(peer: PeerSocket) -> None:
        await expect_subscribe(peer)
        await peer.send_frame(Opcode.TEXT, b'{"type": "snapshot", "\xff": 1}')
        await anyio.sleep(2)

    async with tcp_server(websocket_server(script)) as url, connect(url) as transport:
        stream = await transport.stream("Counter", "c", proto.SubscribeFrame())
        with anyio.fail_after(5):
            await stream.receive()
            with pytest.raises(ProtocolError, match="UTF-8"):
                await stream.receive()
        await stream.aclose()


async def test_oversize_messages_and_handshakes_of_another_protocol() -> None:
    legal = {"v": "x" * (proto.MAX_STATE_BYTES + proto.MAX_RESULT_BYTES)}

    async def flood(peer: PeerSocket) -> None:
        await expect_subscribe(peer)
        await peer.send_json({"type": "snapshot", "version": 2, "state": legal})
        await peer.send_json(
            {"type": "snapshot", "version": 3, "state": {"v": "x" * proto.MAX_REPLY_BYTES}}
        )
        await anyio.sleep(2)

    async with tcp_server(websocket_server(flood)) as url, connect(url) as transport:
        stream = await transport.stream("Counter", "c", proto.SubscribeFrame())
        with anyio.fail_after(5):
            await stream.receive()
            assert await stream.receive() == proto.Snapshot(2, legal)  # 2 MiB: a server may
            with pytest.raises(ProtocolError, match="over"):
                await stream.receive()
        await stream.aclose()

    async def anything(peer: PeerSocket) -> None:
        await anyio.sleep(2)

    async with tcp_server(websocket_server(anything, headers={})) as url, connect(url) as transport:
        with pytest.raises(ProtocolError, match="Durable-Protocol"):
            await transport.stream("Counter", "c", proto.SubscribeFrame())


async def test_keepalive_pings_an_idle_stream_and_detects_a_dead_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(websocket_module, "KEEPALIVE_INTERVAL", 0.1)
    answered = 0

    async def lively(peer: PeerSocket) -> None:
        nonlocal answered
        await expect_subscribe(peer)
        while answered < 4:
            assert await peer.receive_json() == {"type": "ping"}
            answered += 1
            await peer.send_json({"type": "pong"})
        await peer.send_json(proto.snapshot_frame(2, {"value": 2}))
        await anyio.sleep_forever()

    async def silent(peer: PeerSocket) -> None:
        await expect_subscribe(peer)
        await anyio.sleep_forever()

    async with tcp_server(websocket_server(lively)) as url, connect(url) as transport:
        stream = await transport.stream("Counter", "c", proto.SubscribeFrame())
        with anyio.fail_after(5):
            assert await stream.receive() == proto.Snapshot(1, {"value": 1})
            assert await stream.receive() == proto.Snapshot(2, {"value": 2})
        assert answered == 4
        await stream.aclose()
    async with tcp_server(websocket_server(silent)) as url, connect(url) as transport:
        stream = await transport.stream("Counter", "c", proto.SubscribeFrame())
        with anyio.fail_after(5):
            await stream.receive()
            with pytest.raises(ConnectionLostError, match="no traffic") as dead:
                await stream.receive()
        assert dead.value.retryable
        await stream.aclose()


async def test_closing_the_transport_closes_its_websockets(server: ServerProcess, oid: str) -> None:
    transport = NetworkTransport(settings(server.url))
    stream = await transport.stream("Counter", oid, proto.SubscribeFrame())
    with anyio.fail_after(5):
        await stream.receive()
    await transport.aclose()
    with pytest.raises(ConnectionLostError) as closed:
        await stream.receive()
    assert not closed.value.retryable
    await stream.aclose()
    with pytest.raises(UsageError):
        await transport.perform(proto.Read("Counter", oid))
    with pytest.raises(UsageError):
        await transport.stream("Counter", oid, proto.SubscribeFrame())
    with pytest.raises(UsageError):
        transport.channel("Counter", oid)


# -- RPC sessions -------------------------------------------------------------


async def test_a_session_carries_a_thousand_calls_in_flight(
    server: ServerProcess, oid: str
) -> None:
    results: list[int] = []
    async with connect(server.url) as transport, transport.channel("Counter", oid) as channel:

        async def one() -> None:
            reply = await channel.perform(proto.Call("Counter", oid, "increment", {"by": 1}, rid()))
            assert reply.state == {"value": reply.result}
            results.append(reply.result)

        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                for _ in range(1000):
                    tg.start_soon(one)
    assert sorted(results) == list(range(1, 1001))


async def test_a_session_returns_each_reply_to_its_caller(server: ServerProcess, oid: str) -> None:
    async with connect(server.url) as transport, transport.channel("Document", oid) as channel:

        async def join(editor: str) -> None:
            reply = await channel.perform(
                proto.Call(
                    "Document", oid, "join", {"editor_id": editor, "name": editor.upper()}, rid()
                )
            )
            assert reply.result[-1] == editor

        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:
                for n in range(150):
                    tg.start_soon(join, f"e{n}")
        with pytest.raises(UnknownMethodError):
            await channel.perform(proto.Call("Document", oid, "no_such_method", {}, rid()))
        with pytest.raises(ValidationError):
            await channel.perform(proto.Call("Document", oid, "join", {"editor_id": 1}, rid()))
        with pytest.raises(RemoteError) as stale:
            await channel.perform(
                proto.Call(
                    "Document",
                    oid,
                    "edit",
                    {"editor_id": "e1", "content": "x", "version": 9},
                    rid(),
                )
            )
        assert stale.value.type_name == "ValueError"
        again = await channel.perform(
            proto.Call("Document", oid, "leave", {"editor_id": "e0"}, "same-request")
        )
        assert again == await channel.perform(
            proto.Call("Document", oid, "leave", {"editor_id": "e0"}, "same-request")
        )
        assert again.result is True
    with pytest.raises(UsageError):
        await channel.perform(proto.Call("Document", oid, "leave", {"editor_id": "e1"}, rid()))


@pytest.mark.slow
async def test_a_session_survives_a_server_crash_without_applying_a_call_twice(
    own_network_host: NetworkHost, oid: str
) -> None:
    disconnects: list[Mapping[str, Any]] = []
    reconnects: list[Mapping[str, Any]] = []
    detachers = [
        attach("websocket.disconnected", lambda _e, _m, metadata: disconnects.append(metadata)),
        attach("websocket.connected", lambda _e, _m, metadata: reconnects.append(metadata)),
    ]
    results: list[int] = []
    hundred = anyio.Event()
    calls = 600
    try:
        async with (
            connect(own_network_host.url) as transport,
            transport.channel("Counter", oid) as channel,
        ):

            async def one() -> None:
                reply = await channel.perform(
                    proto.Call("Counter", oid, "increment", {"by": 1}, rid())
                )
                results.append(reply.result)
                if len(results) == 100:
                    hundred.set()

            async def crash_and_restart() -> None:
                await hundred.wait()
                await anyio.to_thread.run_sync(own_network_host.kill)
                await anyio.to_thread.run_sync(own_network_host.start)

            with anyio.fail_after(60):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(crash_and_restart)
                    for _ in range(calls):
                        tg.start_soon(one)
                        await anyio.lowlevel.checkpoint()
            assert (await transport.perform(proto.Read("Counter", oid))).state == {"value": calls}
    finally:
        for detach in detachers:
            detach()
    assert sorted(results) == list(range(1, calls + 1))
    assert reconnects
    assert reconnects[0]["reconnect"] is True
    assert disconnects
    assert disconnects[0]["model"] == "Counter"
    assert isinstance(disconnects[0]["error"], ConnectionLostError)


async def test_a_session_resends_calls_whose_replies_were_lost(
    server: ServerProcess, oid: str
) -> None:
    proxy = FaultyProxy(server.port, cuts=3)
    results: list[int] = []
    async with (
        proxy.running() as url,
        connect(url) as transport,
        transport.channel("Counter", oid) as channel,
    ):

        async def one() -> None:
            results.append(
                (
                    await channel.perform(proto.Call("Counter", oid, "increment", {"by": 1}, rid()))
                ).result
            )

        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:
                for _ in range(300):
                    tg.start_soon(one)
        assert proxy.cuts == 0
    assert sorted(results) == list(range(1, 301))
    async with connect(server.url) as direct:
        assert await direct.perform(proto.Read("Counter", oid)) == proto.Reply(
            200, 300, {"value": 300}
        )


@pytest.mark.slow
async def test_a_session_survives_a_graceful_restart(own_server: ServerProcess, oid: str) -> None:
    async with connect(own_server.url) as transport, transport.channel("Counter", oid) as channel:
        first = await channel.perform(proto.Call("Counter", oid, "increment", {"by": 1}, rid()))
        await anyio.to_thread.run_sync(own_server.restart)
        with anyio.fail_after(30):
            second = await channel.perform(
                proto.Call("Counter", oid, "increment", {"by": 1}, rid())
            )
    assert (first.result, second.result) == (1, 2)


async def test_a_session_gives_up_then_reconnects_on_the_next_call(
    own_network_host: NetworkHost, oid: str
) -> None:
    async with (
        connect(own_network_host.url, retries=2, reconnect_delay=0.01) as transport,
        transport.channel("Counter", oid) as channel,
    ):
        assert (
            await channel.perform(proto.Call("Counter", oid, "increment", {}, rid()))
        ).result == 1
        await anyio.to_thread.run_sync(own_network_host.stop)
        with anyio.fail_after(10), pytest.raises(ConnectError, match="gave up") as gave_up:
            await channel.perform(proto.Call("Counter", oid, "increment", {}, rid()))
        assert not gave_up.value.retryable
        await anyio.to_thread.run_sync(own_network_host.start)
        await until_serving(transport)
        with anyio.fail_after(10):
            assert (
                await channel.perform(proto.Call("Counter", oid, "increment", {}, rid()))
            ).result == 2


async def test_a_session_resends_calls_with_request_ids_after_a_drop() -> None:
    connections = itertools.count()
    received: list[dict[str, Any]] = []

    async def script(peer: PeerSocket) -> None:
        if next(connections) == 0:
            received.append(await peer.receive_json())
            received.append(await peer.receive_json())
            await peer.close(1001, "going away")
            with anyio.move_on_after(2):
                await peer.receive_frame()
            return
        while True:
            frame = await peer.receive_json()
            received.append(frame)
            result = {"type": "result", "id": frame["id"], "result": 7, "version": 1, "state": None}
            await peer.send_json(result)

    async with (
        tcp_server(websocket_server(script)) as url,
        connect(url) as transport,
        transport.channel("Counter", "c") as channel,
    ):
        outcomes: dict[str, object] = {}

        async def one(request_id: str | None) -> None:
            try:
                outcomes[str(request_id)] = (
                    await channel.perform(proto.Call("Counter", "c", "increment", {}, request_id))
                ).result
            except ConnectionLostError as error:
                outcomes[str(request_id)] = error

        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                tg.start_soon(one, "kept")
                await anyio.sleep(0.05)
                tg.start_soon(one, None)
    assert outcomes["kept"] == 7
    lost = outcomes["None"]
    assert isinstance(lost, ConnectionLostError)
    assert not lost.retryable
    assert [frame.get("request_id") for frame in received] == ["kept", None, "kept"]
    assert received[0] == received[2]


async def test_a_session_refuses_a_call_too_large_for_a_frame(
    server: ServerProcess, oid: str
) -> None:
    async with connect(server.url) as transport, transport.channel("Counter", oid) as channel:
        with pytest.raises(PayloadTooLargeError):
            await channel.perform(
                proto.Call("Counter", oid, "increment", {"by": "x" * proto.MAX_FRAME_BYTES}, rid())
            )
        assert (
            await channel.perform(proto.Call("Counter", oid, "increment", {}, rid()))
        ).result == 1


async def test_entering_a_session_without_a_server_fails_after_retries() -> None:
    async with connect(
        f"http://127.0.0.1:{free_port()}", retries=2, reconnect_delay=0.01
    ) as transport:
        with anyio.fail_after(5), pytest.raises(ConnectError):
            async with transport.channel("Counter", "c"):
                pass


async def test_an_exception_in_a_session_body_propagates_unwrapped(
    server: ServerProcess, oid: str
) -> None:
    async with connect(server.url) as transport:
        with pytest.raises(KeyError):
            async with transport.channel("Counter", oid):
                raise KeyError("mine")

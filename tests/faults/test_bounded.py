"""Bounded resources: request ids and vanished subscribers do not pile up.

Request ids: servers remember at least the 10,000 most recent request ids of an
object (less than an hour old) and forget the rest (docs/protocol.md). The
network host prunes an object's records once they exceed 10,000 by its slack of
1,000, so an object never holds more than 10,000 + 1,000 + one batch (512)
records, however many ids it sees, across restarts too. The host runtime is
driven directly for the million ids (the same code ``durable serve`` runs); the
network host and the Worker are checked over the wire with fewer.

Subscribers that connect and vanish (a TCP reset, a close without a closing
handshake, or a closing handshake the client does not wait for) must leave
nothing behind: see ``test_vanished_subscribers_*`` for what is measured where.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import statistics
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import uvicorn
from websockets.frames import Frame, Opcode

from cloudflare_durable import DurableClient
from cloudflare_durable import _protocol as proto
from cloudflare_durable.host import Host
from cloudflare_durable.host._objects import CACHED_OBJECTS
from cloudflare_durable.host._operations import Outcome
from cloudflare_durable.host._queue import MAX_BATCH
from cloudflare_durable.host.asgi import create_app
from cloudflare_durable.testing import NetworkHost, ServerProcess, WorkerHost

from ..conftest import TOKEN
from ..models import Counter
from ._wire import RawWebSocket, Vanish, vanishing_subscriber, ws_connect
from .conftest import Kind, server_memory_kib, start_server
from .test_durability import applied_request_ids

pytestmark = pytest.mark.anyio

KEEP = proto.IDEMPOTENCY_MAX_PER_OBJECT
SLACK = 1000
"""How far past ``max_requests`` the network host lets an object's records grow."""


def store_size(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.iterdir())


def bound(keep: int) -> int:
    return keep + SLACK + MAX_BATCH


def stored_ids(host: Host, object_id: str) -> int:
    db: sqlite3.Connection = host.store._db
    row = db.execute(
        "SELECT COUNT(*) FROM durable_requests WHERE model = 'Counter' AND object_id = ?",
        (object_id,),
    ).fetchone()
    return int(row[0])


async def call_with_ids(host: Host, object_id: str, request_ids: list[str]) -> list[Outcome]:
    """One ``increment`` per request id, queued together: the host runs them as
    batches (up to ``MAX_BATCH`` calls share one commit). Returns the outcomes."""
    outcomes: list[Outcome] = []
    drain: Callable[[], Any] | None = None
    for request_id in request_ids:
        op = proto.Call("Counter", object_id, "increment", {"by": 1}, request_id)
        drain = host._submit(op, outcomes.append) or drain
    assert drain is not None
    await drain()
    assert len(outcomes) == len(request_ids)
    return outcomes


async def check_remembered(host: Host, object_id: str, total: int, keep: int) -> None:
    """The newest ``keep`` ids are answered from their record; the oldest may run again."""
    read = proto.Read("Counter", object_id)
    before = (await host.perform(read)).version
    for index in (total - 1, total - keep // 2, total - keep):
        (reply,) = await call_with_ids(host, object_id, [f"r{index}"])
        assert isinstance(reply, proto.Reply)
        assert reply.result == index + 1, f"request id r{index} ran again"
    assert (await host.perform(read)).version == before


async def fill(host: Host, object_id: str, start: int, count: int, sample: int = 64) -> int:
    """Send ``count`` new request ids; returns the most records the object ever held."""
    peak = 0
    for number, first in enumerate(range(start, start + count, MAX_BATCH)):
        last = min(start + count, first + MAX_BATCH)
        await call_with_ids(host, object_id, [f"r{i}" for i in range(first, last)])
        if number % sample == 0 or last == start + count:
            peak = max(peak, stored_ids(host, object_id))
    return peak


@pytest.mark.slow
async def test_a_million_request_ids_stay_bounded(tmp_path: Path) -> None:
    store = tmp_path / "state.sqlite3"
    async with Host(str(store), models=[Counter]) as host:
        peak = await fill(host, "c", 0, 100_000, sample=8)
        size_at_100k = store_size(tmp_path)
        peak = max(peak, await fill(host, "c", 100_000, 900_000, sample=8))
        assert (await host.perform(proto.Read("Counter", "c"))).version == 1_000_000
        assert peak <= bound(KEEP), f"{peak} request ids held (bound {bound(KEEP)})"
        await check_remembered(host, "c", 1_000_000, KEEP)
    size = store_size(tmp_path)
    assert size < 2 * size_at_100k, f"the store grew from {size_at_100k} to {size} bytes"


async def test_request_ids_stay_bounded_with_a_small_limit(tmp_path: Path) -> None:
    keep = 1000
    async with Host(str(tmp_path / "state.sqlite3"), models=[Counter], max_requests=keep) as host:
        peak = await fill(host, "c", 0, 100_000, sample=1)
        assert peak <= bound(keep), f"{peak} request ids held (bound {bound(keep)})"
        await check_remembered(host, "c", 100_000, keep)


async def test_request_ids_stay_bounded_across_restarts(tmp_path: Path) -> None:
    """Each process sees fewer new ids than the limit, but together they see many more."""
    keep = 1000
    peaks = []
    store = str(tmp_path / "state.sqlite3")
    for restart in range(8):
        async with Host(store, models=[Counter], max_requests=keep) as host:
            peaks.append(await fill(host, "c", restart * 1500, 1500, sample=1))
    assert max(peaks) <= bound(keep), f"request ids held after each restart: {peaks}"


async def test_request_ids_stay_bounded_on_the_server(kind: Kind, tmp_path: Path) -> None:
    """Over the wire, pipelined on WebSocket sessions: 25,000 calls with request ids."""
    total = 25_000
    server: ServerProcess = await anyio.to_thread.run_sync(start_server, kind, tmp_path)
    try:
        async with DurableClient(server.url, token=TOKEN, timeout=30) as client:
            counter = client.get(Counter, "bounded")

            async def caller(calls: int) -> None:
                async with counter.session() as session:
                    for _ in range(calls):
                        await session.increment(1)

            with anyio.fail_after(240):
                async with anyio.create_task_group() as tg:
                    for _ in range(50):
                        tg.start_soon(caller, total // 50)
            assert (await counter.load()).value == total
        if isinstance(server, NetworkHost):
            held = await anyio.to_thread.run_sync(applied_request_ids, server, "bounded")
            assert held <= bound(KEEP), f"{held} request ids held"
        else:
            await anyio.to_thread.run_sync(server.stop)
            held = await anyio.to_thread.run_sync(applied_request_ids, server, "bounded")
            assert held <= KEEP, f"{held} request ids held"
        assert held >= KEEP  # and at least the newest 10,000 are remembered
    finally:
        server.close()


# -- objects and subscribers ----------------------------------------------------


async def test_objects_no_longer_in_use_are_not_kept_in_memory(tmp_path: Path) -> None:
    """The host caches objects it serves; idle ones must not accumulate without bound.

    30,000 distinct objects are each subscribed to and left, or called once. A
    subscriber that stays connected keeps its object served throughout: a change
    made afterwards still reaches it.
    """
    frame = proto.SubscribeFrame(None, True, False)
    async with Host(str(tmp_path / "state.sqlite3"), models=[Counter]) as host:
        kept = host.subscribe("Counter", "kept", frame)
        baseline = len(host._cells)
        for index in range(30_000):
            if index % 2:
                host.subscribe("Counter", f"s{index}", frame).close()
            else:
                await host.perform(
                    proto.Call("Counter", f"c{index}", "increment", {"by": 1}, f"r{index}")
                )
        assert len(host._cells) - baseline <= 2 * CACHED_OBJECTS  # evicted in rounds
        assert all(not cell.subscribers for cell in host._cells if cell.object_id != "kept")
        await host.perform(proto.Call("Counter", "kept", "increment", {"by": 5}))
        with anyio.fail_after(5):
            first, second = await kept.receive(), await kept.receive()
        assert isinstance(second, proto.Snapshot)
        assert (first, second.state) == (proto.Snapshot(0, None), {"value": 5})
        assert (await host.perform(proto.Read("Counter", "c0"))).state == {"value": 1}
        kept.close()


VANISHING: tuple[Vanish, ...] = ("reset", "fin", "close")


async def vanish(url: str, object_id: Callable[[int], str], count: int) -> None:
    """``count`` subscribers connect, get their snapshot and vanish, 100 at a time."""
    limit = anyio.Semaphore(100)

    async def one(index: int) -> None:
        async with limit:
            path = proto.object_path("Counter", object_id(index), "ws")
            await vanishing_subscriber(url, path, TOKEN, VANISHING[index % 3])

    with anyio.fail_after(300):
        async with anyio.create_task_group() as tg:
            for index in range(count):
                tg.start_soon(one, index)


async def median_call_ms(url: str, object_id: str, calls: int = 60) -> float:
    """The median time of one ``increment`` over HTTP, in milliseconds."""
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    times = []
    async with httpx.AsyncClient(base_url=url, headers=headers) as http:
        path = proto.object_path("Counter", object_id, "call", "increment")
        for _ in range(calls):
            started = time.perf_counter()
            reply = await http.post(path, content=b'{"args":{}}')
            times.append((time.perf_counter() - started) * 1000)
            assert reply.status_code == 200, reply.text
    return statistics.median(times)


@pytest.mark.slow
async def test_vanished_subscribers_leave_nothing_behind(
    server: ServerProcess, kind: Kind, oid: str
) -> None:
    """10,000 subscribers of one object connect and vanish; then a change on that
    object costs what it costs on a fresh one, and a new subscriber still gets it.

    The cost of a change is the measure: a server that kept the vanished
    subscribers would send every change to each of them (2,000 live subscribers
    make a call about 30 times slower on both servers). On the network host the
    process's resident memory must also stay flat (a kept connection costs tens
    of KB). On the Worker, workerd's memory under Miniflare grows with every
    request, even ``/v1/health``, so memory cannot single out subscribers there.
    """
    await vanish(server.url, lambda index: f"{oid}-warm-up", 1000)
    memory_before = server_memory_kib(server)
    await vanish(server.url, lambda index: oid, 10_000)
    memory_growth_mib = (server_memory_kib(server) - memory_before) / 1024

    async with (
        DurableClient(server.url, token=TOKEN) as client,
        client.get(Counter, oid).subscribe() as snapshots,
    ):
        await client.get(Counter, oid).increment(1)
        with anyio.fail_after(10):
            first = await snapshots.__anext__()
            second = await snapshots.__anext__() if first.value == 0 else first
        assert second.value == 1

    deadline = time.monotonic() + 20  # the server may take a moment to notice the last ones
    while True:
        used = await median_call_ms(server.url, oid)
        fresh = await median_call_ms(server.url, f"{oid}-fresh")
        if used <= 2 * fresh + 2 or time.monotonic() > deadline:
            break
    print(f"{kind}: {used:.2f} ms, fresh {fresh:.2f} ms, memory +{memory_growth_mib:.1f} MiB")
    assert used <= 2 * fresh + 2, f"{used:.2f} ms a call after 10,000 vanished, {fresh:.2f} fresh"
    if kind == "network":
        assert memory_growth_mib < 16, f"resident memory grew by {memory_growth_mib:.1f} MiB"


class InProcessHost:
    """The network host's ASGI app on uvicorn in a thread of this process, so that
    a test can look inside: its objects' subscriber sets and its open connections."""

    def __init__(self, store: Path) -> None:
        self.host = Host(str(store), models=[Counter])
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        config = uvicorn.Config(
            create_app(self.host, token=TOKEN),
            lifespan="off",
            log_level="warning",
            ws_max_size=proto.MAX_FRAME_BYTES,
            ws_per_message_deflate=False,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, args=([self.sock],), daemon=True)

    def __enter__(self) -> InProcessHost:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.01)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.host.close()

    def subscribers(self) -> int:
        return sum(len(cell.subscribers) for cell in list(self.host._cells))

    def connections(self) -> int:
        return len(self.server.server_state.connections)

    def tasks(self) -> int:
        return len(self.server.server_state.tasks)


@pytest.mark.slow
async def test_vanished_subscribers_leave_no_subscriber_or_connection(tmp_path: Path) -> None:
    """Inside the network host: after 10,000 subscribers over 50 objects vanished, no
    object has a subscriber left, and no connection or connection task remains."""
    with InProcessHost(tmp_path / "state.sqlite3") as served:
        await vanish(served.url, lambda index: f"room-{index % 50}", 10_000)
        deadline = time.monotonic() + 10
        while served.subscribers() or served.connections() or served.tasks():
            left = (served.subscribers(), served.connections(), served.tasks())
            assert time.monotonic() < deadline, f"subscribers, connections, tasks left: {left}"
            await anyio.sleep(0.05)
        assert len(served.host._cells) == 50


# -- byte budgets (docs/protocol.md, "Limits") --------------------------------------


def store_bytes(server: ServerProcess) -> int:
    """Bytes the server's storage takes on disk (SQLite files with their journals)."""
    if isinstance(server, NetworkHost):
        store = Path(server.store)
        return sum(path.stat().st_size for path in store.parent.glob(store.name + "*"))
    assert isinstance(server, WorkerHost)
    return sum(path.stat().st_size for path in Path(server.persist).rglob("*") if path.is_file())


def _request(url: str, method: str, path: str, body: bytes | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    with httpx.Client(base_url=url, headers=headers, timeout=30) as http:
        return http.request(method, path, content=body)


def grow_and_edit(url: str, object_id: str, edits: int) -> tuple[int, list[int]]:
    """A Document of about 600 KB, then ``edits`` small changes with request ids."""
    path = proto.object_path("Document", object_id)
    big = json.dumps({"fields": {"content": "x" * 600_000}}).encode()
    assert _request(url, "PATCH", path, big).status_code == 200
    statuses = []
    for n in range(edits):
        body = {"args": {"editor_id": f"e{n}", "name": "N"}, "request_id": f"edit-{n}"}
        reply = _request(url, "POST", f"{path}/call/join", json.dumps(body).encode())
        statuses.append(reply.status_code)
    return len(big), statuses


async def test_remembered_replies_do_not_keep_the_state(kind: Kind, tmp_path: Path) -> None:
    """150 changes with request ids to a 600 KB document: a repeat needs its status,
    version and result, never the state, so the store keeps about one copy of the
    document (it grew by about 90 MB when every reply kept its state)."""
    server: ServerProcess = await anyio.to_thread.run_sync(start_server, kind, tmp_path)
    try:
        await anyio.to_thread.run_sync(grow_and_edit, server.url, "warm-up", 1)
        before = store_bytes(server)
        _, statuses = await anyio.to_thread.run_sync(grow_and_edit, server.url, "doc", 150)
        assert statuses == [200] * 150
        reply = await anyio.to_thread.run_sync(
            _request,
            server.url,
            "POST",
            proto.object_path("Document", "doc", "call", "join"),
            b'{"args":{"editor_id":"e0","name":"N"},"request_id":"edit-0"}',
        )
        assert reply.json() == {"result": ["e0"], "version": 2}  # remembered, without a state
        growth_mib = (store_bytes(server) - before) / 1_048_576
        print(f"{kind}: the store grew by {growth_mib:.1f} MiB")
        assert growth_mib < 16, f"the store grew by {growth_mib:.1f} MiB"
    finally:
        server.close()


async def test_a_state_cannot_outgrow_its_budget(server: ServerProcess, oid: str) -> None:
    """Changes past 1 MiB of state are refused (413 state_too_large) and change nothing;
    the object keeps answering calls at the speed of a 1 MiB state (an 18 MB state made
    every call on the network host take about 460 ms)."""
    path = proto.object_path("Document", oid)

    def patch(fields: dict[str, object]) -> tuple[int, str]:
        reply = _request(server.url, "PATCH", path, json.dumps({"fields": fields}).encode())
        return reply.status_code, reply.json().get("error", {}).get("code", "")

    def grow() -> list[tuple[int, str]]:
        return [
            patch({"content": "x" * 600_000}),
            patch({"editors": {"a": "y" * 300_000}}),
            patch({"editors": {"a": "y" * 450_000}}),
            patch({"content": "x" * 800_000}),
        ]

    outcomes = await anyio.to_thread.run_sync(grow)
    assert outcomes[:2] == [(200, ""), (200, "")]
    assert outcomes[2:] == [(413, "state_too_large")] * 2
    state = (await anyio.to_thread.run_sync(_request, server.url, "GET", path)).json()
    assert state["version"] == 2
    started = time.perf_counter()
    for _ in range(10):
        reply = await anyio.to_thread.run_sync(
            _request, server.url, "POST", f"{path}/call/leave", b'{"args":{"editor_id":"zz"}}'
        )
        assert reply.status_code == 200
    assert (time.perf_counter() - started) / 10 < 0.25


# -- what one connection may hold (docs/protocol.md, "Per connection") ----------------


def _silent_client(url: str, path: str, frames: list[bytes]) -> RawWebSocket:
    """A WebSocket client that sends ``frames`` and reads nothing (a small receive window)."""
    socket_ = ws_connect(url, path, [("Authorization", f"Bearer {TOKEN}")])
    assert isinstance(socket_, RawWebSocket), socket_
    socket_.raw.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16_384)
    for frame in frames:
        socket_.protocol.send_text(frame)
    socket_.flush()
    return socket_


def _close_code_after_reading(socket_: RawWebSocket) -> tuple[int, int | None]:
    """Reads everything the server sent: (text frames, close code)."""
    texts = 0
    try:
        while True:
            frame = socket_.next_frame(timeout=30)
            if frame is None:
                return texts, None
            if frame.opcode is Opcode.CLOSE:
                return texts, socket_.close_code(frame)
            texts += 1
    finally:
        socket_.close()


async def _settled_memory_kib(server: ServerProcess) -> int:
    await anyio.sleep(2)
    return server_memory_kib(server)


@pytest.mark.slow
async def test_a_client_that_never_reads_is_closed_with_4008(kind: Kind, tmp_path: Path) -> None:
    """5,000 calls answered with 200 KB each (1 GB of replies), sent by a client that
    reads nothing: the server closes the connection (4008) once 1,000 frames or 8 MiB
    wait unread. Four such clients one after the other: together they grow the
    network host by less than 64 MiB (at most 256 calls in flight, each with its
    200 KB reply, and 8 MiB queued) and the Worker (node and workerd) by less than
    128 MiB (V8's heap grows before it collects: 60 to 110 MiB in our runs), so
    nothing is kept per client: one client like this made workerd grow by about
    220 MB, the network host by about 200 MB. Which client pays for the growth
    depends on the allocator, the event loop (uvloop or not) and V8's collector, so
    the bound is on the whole run."""
    server: ServerProcess = await anyio.to_thread.run_sync(start_server, kind, tmp_path)
    try:
        room = proto.object_path("ChatRoom", "big")
        messages = [{"author": "a", "text": "m" * 2_000} for _ in range(100)]
        body = json.dumps({"state": {"messages": messages}}).encode()
        created = await anyio.to_thread.run_sync(_request, server.url, "PUT", room, body)
        assert created.status_code == 201
        frames = [
            json.dumps(
                {"type": "call", "id": n, "method": "recent", "args": {"limit": 100}}
            ).encode()
            for n in range(5_000)
        ]
        start = await _settled_memory_kib(server)
        growth: list[float] = []
        for attempt in range(4):
            before = await _settled_memory_kib(server)
            socket_ = await anyio.to_thread.run_sync(
                _silent_client, server.url, room + "/ws", frames
            )
            growth.append((await _settled_memory_kib(server) - before) / 1024)
            texts, code = await anyio.to_thread.run_sync(_close_code_after_reading, socket_)
            print(f"{kind} (client {attempt + 1}): +{growth[-1]:.1f} MiB, {texts} replies read")
            assert code == proto.CLOSE_LAGGING
            assert texts < 1_000
        total = (server_memory_kib(server) - start) / 1024
        print(f"{kind}: +{total:.1f} MiB in all")
        bound = 64 if kind == "network" else 128
        assert total < bound, f"four clients grew the server by {total:.1f} MiB ({growth})"
    finally:
        server.close()


@pytest.mark.slow
async def test_a_subscriber_that_falls_behind_is_closed_with_4008(
    kind: Kind, tmp_path: Path
) -> None:
    """A subscriber that reads nothing while 200 changes of a 500 KB document go out
    (100 MB of snapshots) is closed with 4008 within 8 MiB. Measured after the same
    changes to another object warmed the server up."""
    server: ServerProcess = await anyio.to_thread.run_sync(start_server, kind, tmp_path)
    try:

        def change(object_id: str, count: int) -> None:
            path = proto.object_path("Document", object_id)
            for n in range(count):
                body = json.dumps({"fields": {"content": str(n % 10) * 500_000}}).encode()
                assert _request(server.url, "PATCH", path, body).status_code == 200

        await anyio.to_thread.run_sync(change, "unwatched", 200)
        before = await _settled_memory_kib(server)
        path = proto.object_path("Document", "watched")
        subscribe = [b'{"type":"subscribe","since":null,"snapshots":true,"events":false}']
        socket_ = await anyio.to_thread.run_sync(
            _silent_client, server.url, path + "/ws", subscribe
        )
        await anyio.to_thread.run_sync(change, "watched", 200)
        grown = (await _settled_memory_kib(server) - before) / 1024
        texts, code = await anyio.to_thread.run_sync(_close_code_after_reading, socket_)
        print(f"{kind}: +{grown:.1f} MiB, {texts} snapshots read, closed with {code}")
        assert code == proto.CLOSE_LAGGING
        assert texts < 100
        assert grown < 64, f"the server grew by {grown:.1f} MiB"
    finally:
        server.close()


def _server_side_timer(server_port: int, client_port: int) -> tuple[int, float] | None:
    """The kernel's timer on the server's end of one loopback TCP connection:
    (kind, seconds left), kind 2 being keepalive (``/proc/net/tcp``)."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, remote = fields[1], fields[2]
            if int(local.split(":")[1], 16) == server_port and (
                int(remote.split(":")[1], 16) == client_port
            ):
                kind, jiffies = fields[5].split(":")
                return int(kind, 16), int(jiffies, 16) / os.sysconf("SC_CLK_TCK")
    return None


def _opcodes_received(socket_: RawWebSocket, seconds: float) -> list[Opcode]:
    """The opcodes of every frame the server sends in ``seconds`` (answering none)."""
    deadline = time.monotonic() + seconds
    opcodes: list[Opcode] = []
    while (left := deadline - time.monotonic()) > 0:
        socket_.raw.sock.settimeout(left)
        try:
            data = socket_.raw.sock.recv(65536)
        except TimeoutError:
            break
        if not data:
            break
        socket_.protocol.receive_data(data)
        opcodes += [e.opcode for e in socket_.protocol.events_received() if isinstance(e, Frame)]
    return opcodes


@pytest.mark.slow
async def test_idle_connections_are_watched_by_tcp_keepalive_not_pings(
    tmp_path: Path,
) -> None:
    """The network host finds dead peers with TCP keepalive (the peer's kernel answers
    it, even while the program reads nothing), and sends no WebSocket pings: a ping
    left unanswered would close a client that only reads slowly with 1011 instead of
    the backlog's 4008."""
    server = await anyio.to_thread.run_sync(start_server, "network", tmp_path)
    try:
        path = proto.object_path("Counter", "idle")
        socket_ = await anyio.to_thread.run_sync(
            _silent_client, server.url, path + "/ws", [b'{"type":"subscribe"}']
        )
        try:
            server_port = int(server.url.rsplit(":", 1)[1])
            client_port = socket_.raw.sock.getsockname()[1]
            await anyio.sleep(0.5)
            timer = _server_side_timer(server_port, client_port)
            assert timer is not None, "the server's end of the connection was not found"
            kind, left = timer
            assert kind == 2, f"timer {kind} on the server's end, not keepalive (2)"
            assert 0 < left <= 30
            # uvicorn's default would ping after 20 s: no ping may come in 25 s.
            opcodes = await anyio.to_thread.run_sync(_opcodes_received, socket_, 25.0)
            assert Opcode.PING not in opcodes, opcodes
        finally:
            socket_.close()
    finally:
        server.close()

"""Subscribers converge: through resets and a server restart, every subscriber ends
on the final version, having seen versions strictly increase (no duplicates, never
backwards).

A writer makes 500 changes to one counter. Subscribers read it through the fault
proxy, which cuts four connections in five after a random number of
bytes (mid-frame, often); halfway through, the server is restarted. Each
subscriber reconnects with the last version it saw and resumes.
"""

from __future__ import annotations

import itertools
import json

import anyio
import pytest

from cloudflare_durable import DurableClient
from cloudflare_durable import _protocol as proto
from cloudflare_durable.testing import ServerProcess

from ..conftest import TOKEN
from ..models import Counter
from ._wire import RawWebSocket, ws_connect
from .proxy import FaultProxy, Schedule, replay_note

pytestmark = pytest.mark.anyio

CHANGES = 500
SUBSCRIBERS = 5


async def test_subscribers_converge_through_resets_and_a_restart(
    own_server: ServerProcess, seed: int, oid: str
) -> None:
    schedule = Schedule(seed, stream_reset=0.8, stream_reset_bytes=(50, 2000))
    seen: list[list[int]] = [[] for _ in range(SUBSCRIBERS)]
    reconnects = [0] * SUBSCRIBERS
    async with (
        FaultProxy(own_server.url, schedule) as proxy,
        DurableClient(
            proxy.url, token=TOKEN, reconnect_delay=0.01, timeout=10, retries=5
        ) as watchers,
        DurableClient(
            own_server.url, token=TOKEN, retries=60, retry_delay=0.02, timeout=10
        ) as writers,
    ):
        with replay_note(proxy):
            counter = writers.get(Counter, oid)
            final = anyio.Event()

            async def subscriber(index: int, ready: anyio.Event) -> None:
                async with watchers.get(Counter, oid).subscribe() as snapshots:
                    ready.set()
                    async for snapshot in snapshots:
                        seen[index].append(snapshot.durable_version)
                        if snapshot.value == CHANGES:
                            break
                    reconnects[index] = snapshots.reconnects

            async def writer() -> None:
                for change in range(CHANGES):
                    await counter.increment(1)
                    if change == CHANGES // 2:
                        await anyio.to_thread.run_sync(own_server.restart)
                    elif change % 25 == 0:
                        await anyio.sleep(0.01)  # let subscribers keep up now and then
                final.set()

            with anyio.fail_after(120):
                async with anyio.create_task_group() as tg:
                    for index in range(SUBSCRIBERS):
                        ready = anyio.Event()
                        tg.start_soon(subscriber, index, ready)
                        await ready.wait()
                    tg.start_soon(writer)
            assert final.is_set()
            loaded = await counter.load()
            assert loaded.value == CHANGES
            for versions in seen:
                assert versions, "a subscriber saw nothing"
                assert all(a < b for a, b in itertools.pairwise(versions)), versions
                assert versions[-1] == loaded.durable_version
            print(proxy.describe(), reconnects, [len(v) for v in seen])
            assert proxy.counters.stream_resets >= 5
            assert sum(reconnects) > 0


def _subscribed(url: str, object_id: str) -> RawWebSocket:
    socket_ = ws_connect(
        url, proto.object_path("Counter", object_id, "ws"), [("Authorization", f"Bearer {TOKEN}")]
    )
    assert isinstance(socket_, RawWebSocket), socket_
    socket_.protocol.send_text(b'{"type":"subscribe","since":null}')
    socket_.flush()
    frame = socket_.next_frame()
    assert frame is not None
    assert json.loads(bytes(frame.data))["type"] == "snapshot"
    return socket_


async def test_a_server_shutting_down_closes_every_websocket_with_1001(
    own_server: ServerProcess, oid: str
) -> None:
    """A graceful shutdown (SIGTERM) sends close code 1001 (going away) on every
    WebSocket before the server exits; clients reconnect with backoff and resume."""
    sockets = [
        await anyio.to_thread.run_sync(_subscribed, own_server.url, f"{oid}-{n}") for n in range(3)
    ]
    await anyio.to_thread.run_sync(own_server.stop)
    for socket_ in sockets:
        try:
            frame = await anyio.to_thread.run_sync(socket_.next_frame, 10)
            assert socket_.close_code(frame) == 1001
        finally:
            socket_.close()

"""Time and collections under faults.

- Schedules run exactly once through a crash: the server is killed with SIGKILL
  while 1,000 schedules fall due, and started again on its store; afterwards each
  schedule has run once, counted by its call's effect (each appends its own token).
- Events survive reconnects: a subscriber behind the fault proxy, which cuts every
  connection after a few frames, receives each of 500 events exactly once, in
  order (each reconnect resumes from what it has; the server replays the rest),
  on the network host and on the Worker.
- Listing 100,000 objects streams in bounded memory, on the server and the client.
"""

from __future__ import annotations

import sqlite3
import time
import tracemalloc
from pathlib import Path

import anyio
import pytest

from cloudflare_durable import DurableClient
from cloudflare_durable.host import Host
from cloudflare_durable.testing import NetworkHost, ServerProcess

from ..conftest import MODELS, TOKEN
from ..models import Alarm, ChatRoom, Counter, Posted
from .conftest import server_memory_kib
from .proxy import FaultProxy, Schedule, replay_note

pytestmark = pytest.mark.anyio

ALARMS = 20
PER_ALARM = 50  # 1,000 schedules in all


def pending_schedules(store: Path) -> int:
    with sqlite3.connect(store) as db:
        return int(db.execute("SELECT COUNT(*) FROM durable_schedules").fetchone()[0])


async def test_schedules_run_once_through_a_sigkill(tmp_path: Path) -> None:
    store = tmp_path / "state.sqlite3"
    with NetworkHost(MODELS, store=store, token=TOKEN) as server:
        async with DurableClient(
            server.url, token=TOKEN, timeout=10, retries=60, retry_delay=0.05
        ) as client:
            alarms = [client.get(Alarm, f"alarm-{n:02d}") for n in range(ALARMS)]
            # Due from 1.5 s to 3.5 s from now, interleaved across the alarms.
            started = time.monotonic()
            for number, alarm in enumerate(alarms):
                offset = 1.5 - (time.monotonic() - started)
                delays = [offset + (i * ALARMS + number) * 2.0 / 1000 for i in range(PER_ALARM)]
                await alarm.arm_many(delays, f"{number}-")
            await anyio.sleep(1.5 + 0.8 - (time.monotonic() - started))  # mid-way
            await anyio.to_thread.run_sync(server.kill)
            left = pending_schedules(store)
            assert 0 < left < ALARMS * PER_ALARM, f"{left} schedules were pending at the kill"
            await anyio.sleep(0.5)
            await anyio.to_thread.run_sync(server.start)
            with anyio.fail_after(60):
                while pending_schedules(store):  # noqa: ASYNC110 - another process
                    await anyio.sleep(0.05)
            for number, alarm in enumerate(alarms):
                rings = (await alarm.load()).rings
                assert sorted(rings) == sorted(f"{number}-{i}" for i in range(PER_ALARM)), number
            print(f"{left} of {ALARMS * PER_ALARM} schedules were pending at the kill")


async def test_every_event_arrives_once_in_order_through_cut_connections(
    server: ServerProcess, seed: int, oid: str
) -> None:
    # Every connection is cut after 400 to 1,500 bytes, often in the middle of a frame.
    # The room's state outgrows that (it keeps its last 100 messages, about 3 KB): a
    # subscription to events resumes asking for events alone, so that each connection
    # still moves on.
    schedule = Schedule(seed, stream_reset=1.0, stream_reset_bytes=(400, 1500))
    async with (
        FaultProxy(server.url, schedule) as proxy,
        DurableClient(
            proxy.url, token=TOKEN, reconnect_delay=0.01, timeout=10, retries=5
        ) as reader,
        DurableClient(server.url, token=TOKEN, timeout=10) as writer,
    ):
        with replay_note(proxy):
            got: list[str] = []

            async def subscribe(ready: anyio.Event) -> None:
                async with reader.get(ChatRoom, oid).events(Posted) as events:
                    ready.set()
                    async for event in events:
                        got.append(event.text)
                        if len(got) == 500:
                            break
                    reconnects.append(events.reconnects)

            async def write() -> None:
                room = writer.get(ChatRoom, oid)
                for n in range(500):
                    await room.post("ann", f"{n}")
                    if n % 50 == 0:
                        await anyio.sleep(0.01)

            reconnects: list[int] = []
            with anyio.fail_after(120):
                async with anyio.create_task_group() as group:
                    ready = anyio.Event()
                    group.start_soon(subscribe, ready)
                    await ready.wait()
                    group.start_soon(write)
            assert got == [f"{n}" for n in range(500)]
            print(proxy.describe(), reconnects)
            assert reconnects[0] >= 20
            assert proxy.counters.stream_resets >= 20


LISTED = 100_000


@pytest.mark.slow
async def test_listing_a_hundred_thousand_objects_streams_in_bounded_memory(
    tmp_path: Path,
) -> None:
    store = tmp_path / "state.sqlite3"
    async with Host(str(store), models=[Counter]) as host:
        for start in range(0, LISTED, 20_000):
            states = {f"item-{n:06d}": {"value": n} for n in range(start, start + 20_000)}
            await host.create_many("Counter", states)
    with NetworkHost(MODELS, store=store, token=TOKEN) as server:
        async with DurableClient(server.url, token=TOKEN, timeout=30) as client:
            assert [i async for i in Counter.list("item-", limit=3, client=client)] == [
                "item-000000",
                "item-000001",
                "item-000002",
            ]
            before = server_memory_kib(server)
            started = time.perf_counter()
            count = 0
            async for _ in Counter.list("item-", client=client):
                count += 1
            elapsed = time.perf_counter() - started
            tracemalloc.start()  # a second time, tracing what the client holds
            try:
                last = ""
                async for object_id in Counter.list("item-", client=client):
                    assert object_id > last
                    last = object_id
                _, client_peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
            grown = server_memory_kib(server, "VmHWM") - before
    assert count == LISTED
    assert last == f"item-{LISTED - 1:06d}"
    print(
        f"listed {count:,} ids in {elapsed:.2f} s ({count / elapsed:,.0f} objects/s); "
        f"client peak {client_peak / 1024:,.0f} KiB traced; server peak grew {grown:,} KiB"
    )
    assert client_peak < 8 * 1_048_576  # a page of 1,000 ids at a time, not 100,000
    assert grown < 32 * 1024

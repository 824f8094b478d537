"""Scale: how each cost grows with the state, the store, the subscribers, the objects.

    python benchmarks/bench_scale.py [--quick] [--full] [--no-worker] [--disk] [--only SECTION]

Every figure is a ratio within one run, so a flat line that starts to grow shows:

- ``state``: one tiny change per call (``Blob.bump``: a counter) on objects whose
  untouched ``blob`` makes the state 100 B, 1 KB, 10 KB, 100 KB, 1 MB; the
  latency and the server's CPU time per call against the 100 B object, and the
  growth per 10x. Embedded host, network host (HTTP and RPC session), Worker.
  Goal: <= 3x at 1 MB.
- ``store``: bytes the SQLite file and its WAL grow per call on a 1 MB state,
  after a checkpoint (the 100 B object alongside). Goal: <= 64 KB a call. And
  calls piling up on one object past the 10,000 request-id records a network
  host keeps: latency and server CPU per block of calls (flat).
- ``fanout``: the server's CPU time per change with 300 subscribers, 100 KB state
  against 100 B (goal <= 2.5x); and with 1,000 subscribers, the time until the
  last has the change, p99, against a raw ``websockets`` server (a separate
  process, like ours) broadcasting the same pre-encoded frame to 1,000
  connections (goal <= 3x). Both read by the same raw clients.
- ``objects``: 10 then 100 objects called at once over HTTP by one
  ``DurableClient``: calls/s against 10 objects (goal >= 0.7x), every object
  served; then 1k, 10k (and 100k with ``--full``) objects in the store, each
  called once: per-call latency against 1k (flat), server memory per object.
- ``bulk``: ``create_many`` on the embedded host against ``create`` one by one
  (goal >= 10x the rate), and a create against a call over the network (<= 2x).

Servers run on 127.0.0.1 and are stopped at the end. The Worker serves the same
models from a project ``durable init worker`` makes of ``benchmarks/models.py``.
Stores and the Worker's state are on tmpfs (``/dev/shm``) unless ``--disk`` is
given: an fsync per commit would hide a cost that grows behind it. A full run
takes two to six minutes (more with ``--full``); ``--quick`` is a smoke run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
from websockets.asyncio.client import ClientConnection, connect

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from common import (  # noqa: E402
    HEADERS,
    MODELS,
    TOKEN,
    cpu_seconds,
    interleave_many,
    percentile,
    print_grid,
    process_tree,
    rss_bytes,
    say_left_out,
    server_pid,
    verdict,
    worker_project,
    worker_status,
)
from models import Blob  # noqa: E402

from cloudflare_durable import DurableClient  # noqa: E402
from cloudflare_durable._protocol import ACKNOWLEDGE_EVERY, PING_TEXT  # noqa: E402
from cloudflare_durable.testing import NetworkHost, WorkerHost  # noqa: E402

SECTIONS = ("state", "store", "fanout", "objects", "bulk")


@dataclass
class Plan:
    sizes: tuple[int, ...] = (100, 1_000, 10_000, 100_000, 1_000_000)
    calls: int = 600
    chunk: int = 100
    store_calls: int = 100
    history: tuple[int, ...] = (1_000, 5_000, 10_000, 15_000)
    history_block: int = 1_000
    fan_subscribers: int = 300
    fan_changes: int = 30
    delivery_subscribers: int = 1000
    delivery_changes: int = 200
    delivery_blocks: int = 4
    at_once: tuple[int, int] = (10, 100)
    at_once_seconds: float = 2.0
    at_once_rounds: int = 3
    many: tuple[int, ...] = (1_000, 10_000)
    many_calls: int = 600
    bulk_objects: int = 1000
    bulk_single: int = 200
    bulk_rounds: int = 3
    create_calls: int = 600

    @classmethod
    def quick(cls) -> Plan:
        return cls(
            sizes=(100, 10_000),
            calls=60,
            chunk=20,
            store_calls=10,
            history=(100, 200),
            history_block=50,
            fan_subscribers=20,
            fan_changes=4,
            delivery_subscribers=50,
            delivery_changes=5,
            delivery_blocks=1,
            at_once_seconds=0.5,
            at_once_rounds=1,
            many=(200, 2_000),
            many_calls=60,
            bulk_objects=100,
            bulk_single=20,
            bulk_rounds=1,
            create_calls=60,
        )


@dataclass
class Target:
    """One host to measure: the embedded host in this process, or a server."""

    name: str
    url: str | None = None
    store: Path | None = None
    pids: list[int] = field(default_factory=list)

    @property
    def served(self) -> bool:
        return self.url is not None

    def client(self, **options: Any) -> DurableClient:
        if self.url is None:
            assert self.store is not None
            return DurableClient(store=str(self.store), **options)
        return DurableClient(self.url, token=TOKEN, **options)

    def cpu(self) -> float:
        """CPU seconds of the server so far (this process for the embedded host)."""
        return cpu_seconds(self.pids) if self.pids else time.process_time()

    def rss(self) -> int:
        return rss_bytes(self.pids)

    def ws(self, model: str, object_id: str) -> str:
        assert self.url is not None
        return self.url.replace("http://", "ws://") + f"/v1/objects/{model}/{object_id}/ws"


def tag() -> str:
    return uuid.uuid4().hex[:8]


def size_label(size: int) -> str:
    for unit, scale in (("MB", 1_000_000), ("KB", 1_000)):
        if size >= scale:
            return f"{size / scale:g} {unit}"
    return f"{size} B"


def us(seconds: float) -> str:
    return f"{seconds * 1e6:,.0f} us"


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:,.1f} ms"


# -- state size ------------------------------------------------------------------


async def state_size(target: Target, plan: Plan, session: bool) -> list[list[str]]:
    """A tiny change per call on objects of growing state, chunks interleaved."""
    how = "RPC session" if session else ("HTTP" if target.served else "in-process")
    spent = [0.0] * len(plan.sizes)
    async with target.client(timeout=60) as client, contextlib.AsyncExitStack() as stack:
        handles = []
        label = tag()
        for size in plan.sizes:
            handle = await client.create(Blob, f"size-{size}-{label}", blob="x" * size)
            if session:
                handle = await stack.enter_async_context(handle.session())
            handles.append(handle)
        samples = await interleave_many(
            [handle.bump for handle in handles],
            plan.calls,
            plan.chunk,
            meter=target.cpu,
            spent=spent,
        )
    medians = [statistics.median(found) for found in samples]
    cpu = [spent[i] / len(samples[i]) for i in range(len(samples))]
    rows = []
    for index, size in enumerate(plan.sizes):
        last = index == len(plan.sizes) - 1
        ratio = medians[index] / medians[0]
        step = medians[index] / medians[index - 1] if index else 1.0
        per_10x = step ** (1 / max(1e-9, _decades(plan.sizes, index)))
        rows.append(
            [
                f"{target.name}, {how}",
                size_label(size),
                us(medians[index]),
                f"{ratio:.2f}",
                f"{per_10x:.2f}" if index else "",
                us(cpu[index]),
                f"{cpu[index] / cpu[0]:.2f}" if cpu[0] > 0 else "-",
                "<= 3" if last else "",
                verdict(ratio <= 3) if last else "",
            ]
        )
    return rows


def _decades(sizes: tuple[int, ...], index: int) -> float:
    return math.log10(sizes[index] / sizes[index - 1]) if index else 1.0


# -- store growth ------------------------------------------------------------------


def store_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())


def checkpoint(path: Path) -> None:
    """Move the WAL into the file and empty it (from a connection of our own)."""
    db = sqlite3.connect(path, timeout=10)
    try:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    finally:
        db.close()


async def store_growth(target: Target, plan: Plan) -> list[list[str]]:
    assert target.store is not None
    rows = []
    async with target.client(timeout=60) as client:
        label = tag()
        handles = {
            size: await client.create(Blob, f"grow-{size}-{label}", blob="x" * size)
            for size in (100, 1_000_000)
        }
        grown = {}
        for size, handle in handles.items():
            await handle.bump()
            checkpoint(target.store)
            before = store_bytes(target.store)
            for _ in range(plan.store_calls):
                await handle.bump()
            grown[size] = (store_bytes(target.store) - before) / plan.store_calls
    per_call = grown[1_000_000]
    rows.append(
        [
            target.name,
            f"{per_call / 1024:,.1f} KB",
            f"{grown[100] / 1024:,.1f} KB (100 B state)",
            f"{per_call / grown[100]:.2f}" if grown[100] else "-",
            "<= 64 KB",
            verdict(per_call <= 64 * 1024),
        ]
    )
    return rows


async def request_history(target: Target, plan: Plan) -> list[list[str]]:
    """One object called over and over in an RPC session (each call leaves a request-id
    record; the store keeps the newest 10,000 per object): the mean latency and the
    server's CPU time of a block of sequential calls ending at each mark."""
    block = plan.history_block
    rows: list[list[str]] = []
    first: tuple[float, float] | None = None
    async with target.client(timeout=60) as client:
        handle = await client.create(Blob, f"history-{tag()}", blob="x" * 80)
        async with handle.session() as session:
            done = 0
            for mark in plan.history:
                todo = iter(range(mark - block - done))

                async def push(todo: Iterator[int] = todo) -> None:
                    for _ in todo:
                        await session.bump()

                async with anyio.create_task_group() as tg:  # quickly, 32 in flight
                    for _ in range(32):
                        tg.start_soon(push)
                cpu = target.cpu()
                start = time.perf_counter()
                for _ in range(block):
                    await session.bump()
                latency = (time.perf_counter() - start) / block
                cpu = (target.cpu() - cpu) / block
                done = mark
                first = first or (latency, cpu)
                last = mark == plan.history[-1]
                rows.append(
                    [
                        target.name,
                        f"calls {mark - block + 1:,} to {mark:,} on one object",
                        us(latency),
                        f"{latency / first[0]:.2f}",
                        us(cpu),
                        f"{cpu / first[1]:.2f}" if first[1] else "-",
                        "<= 1.5 (flat)" if last else "",
                        verdict(latency / first[0] <= 1.5) if last else "",
                    ]
                )
    return rows


# -- fan-out -----------------------------------------------------------------------


class Watched:
    """One object and its subscribers (our client's ``subscribe``): when every one of
    them has seen a given ``count``."""

    def __init__(self, handle: Blob, subscribers: int) -> None:
        self.handle = handle
        self.subscribers = subscribers
        self.seen: Counter[int] = Counter()
        self.complete: dict[int, anyio.Event] = {}

    def event(self, count: int) -> anyio.Event:
        return self.complete.setdefault(count, anyio.Event())

    async def subscriber(self) -> None:
        async with self.handle.subscribe() as snapshots:
            async for snapshot in snapshots:
                self.seen[snapshot.count] += 1
                if self.seen[snapshot.count] == self.subscribers:
                    self.event(snapshot.count).set()


async def fan_out_cpu(target: Target, plan: Plan) -> list[list[str]]:
    """Server CPU per change, ``fan_subscribers`` on a 100 B and on a 100 KB object."""
    spent = {100: 0.0, 100_000: 0.0}
    async with target.client(timeout=120) as client, anyio.create_task_group() as tg:
        label = tag()
        watched = {}
        for size in spent:
            handle = await client.create(Blob, f"fan-{size}-{label}", blob="x" * size)
            watched[size] = Watched(client.get(Blob, handle.durable_id), plan.fan_subscribers)
            for _ in range(plan.fan_subscribers):
                tg.start_soon(watched[size].subscriber)
        with anyio.fail_after(180):
            for one in watched.values():
                await one.event(0).wait()
        for change in range(plan.fan_changes + 1):
            for size, one in watched.items():
                before = target.cpu()
                count = await one.handle.bump()
                with anyio.fail_after(60):
                    await one.event(count).wait()
                if change:  # the first change of each warms up
                    spent[size] += target.cpu() - before
        tg.cancel_scope.cancel()
    small, big = (spent[s] / plan.fan_changes for s in (100, 100_000))
    ratio = big / small if small else None  # too short a run for the clock's ticks
    return [
        [
            target.name,
            f"{plan.fan_subscribers} subscribers, server CPU per change",
            f"{ms(big)} (100 KB state)",
            f"{ms(small)} (100 B state)",
            "-" if ratio is None else f"{ratio:.2f}",
            "<= 2.5",
            "-" if ratio is None else verdict(ratio <= 2.5),
        ]
    ]


class Listener:
    """Raw ``websockets`` subscribers: when the last of them has each version."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.arrivals: dict[int, list[float]] = {}
        self.complete: dict[int, anyio.Event] = {}
        self.ready = 0
        self.all_ready = anyio.Event()
        self.texts: list[str] = []  # the first copy of each change, in order

    def event(self, version: int) -> anyio.Event:
        return self.complete.setdefault(version, anyio.Event())

    async def listen(self, socket: ClientConnection, hello: str | None) -> None:
        if hello is not None:
            await socket.send(hello)
        unacknowledged = 0
        first = True
        async for text in socket:
            frame = json.loads(text)
            unacknowledged += 1
            if unacknowledged >= ACKNOWLEDGE_EVERY:  # our server wants pings (4008)
                unacknowledged = 0
                await socket.send(PING_TEXT)
            if first:  # the snapshot (our server) or the greeting (the raw server)
                first = False
                self.ready += 1
                if self.ready == self.count:
                    self.all_ready.set()
                continue
            if frame.get("type") not in ("patch", "snapshot"):
                continue
            version = frame["version"]
            arrived = self.arrivals.setdefault(version, [])
            arrived.append(time.perf_counter())
            if len(arrived) == 1:
                self.texts.append(text if isinstance(text, str) else text.decode())
            if len(arrived) == self.count:
                self.event(version).set()


async def delivery_spans(
    urls: Callable[[], str],
    hello: str | None,
    trigger: Callable[[], Awaitable[int]],
    subscribers: int,
    changes: int,
) -> tuple[list[float], list[str]]:
    """For each change ``trigger`` makes: the time until the last subscriber has it; and
    the frame of each change as subscribers received it."""
    listener = Listener(subscribers)
    spans = []
    async with contextlib.AsyncExitStack() as stack, anyio.create_task_group() as tg:
        for start in range(0, subscribers, 100):
            sockets = await asyncio.gather(
                *(
                    stack.enter_async_context(
                        connect(
                            urls(),
                            additional_headers=HEADERS,
                            compression=None,
                            ping_interval=None,
                            max_size=None,
                        )
                    )
                    for _ in range(start, min(subscribers, start + 100))
                )
            )
            for socket in sockets:
                tg.start_soon(listener.listen, socket, hello)
        with anyio.fail_after(180):
            await listener.all_ready.wait()
        for _ in range(changes):
            sent = time.perf_counter()
            version = await trigger()
            with anyio.fail_after(60):
                await listener.event(version).wait()
            spans.append(max(listener.arrivals[version]) - sent)
        tg.cancel_scope.cancel()
    return spans, listener.texts


@contextlib.contextmanager
def raw_server() -> Iterator[str]:
    """The raw broadcast server in a child process; yields its ws:// URL."""
    process = subprocess.Popen(
        [sys.executable, __file__, "--raw-server"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        if not url.startswith("ws://"):
            raise RuntimeError("the raw broadcast server did not start")
        yield url
    finally:
        process.terminate()
        process.wait(10)


def run_raw_server() -> None:
    """A tiny asyncio ``websockets`` server: ``/sub`` connections are greeted and kept;
    each message on ``/go`` (a frame our server sent for a change) is broadcast, encoded
    once, to every ``/sub`` connection, then answered ``ok``."""
    from websockets.asyncio.server import ServerConnection, broadcast, serve

    subscribers: set[ServerConnection] = set()

    async def handler(socket: ServerConnection) -> None:
        assert socket.request is not None
        if socket.request.path == "/go":
            async for frame in socket:
                broadcast(subscribers, frame)
                await socket.send("ok")
            return
        subscribers.add(socket)
        try:
            await socket.send('{"type":"hello"}')
            async for _ in socket:  # pings
                pass
        finally:
            subscribers.discard(socket)

    async def main() -> None:
        async with serve(
            handler, "127.0.0.1", 0, compression=None, ping_interval=None, max_size=None
        ) as server:
            port = next(iter(server.sockets)).getsockname()[1]
            print(f"ws://127.0.0.1:{port}", flush=True)
            await asyncio.Future()

    try:
        import uvloop  # the network host's event loop too, when it is installed
    except ImportError:
        asyncio.run(main())
    else:
        uvloop.run(main())


async def delivery(target: Target, plan: Plan, raw_url: str) -> list[list[str]]:
    """p99 of the time until the last of ``delivery_subscribers`` raw subscribers has a
    change: our server (a call on an RPC session) against the raw broadcast server
    sending each frame our server sent, in blocks that alternate (ours, raw, ours,
    raw...), so that a slow moment of the machine falls on both alike."""
    object_id = f"deliver-{tag()}"
    subscribe = {"type": "subscribe", "since": None, "snapshots": True, "events": False}
    our_spans: list[float] = []
    raw_spans: list[float] = []
    per_block = max(1, plan.delivery_changes // plan.delivery_blocks)
    async with target.client() as client:
        handle = await client.create(Blob, object_id, blob="x" * 100)
        if client._patches:  # the server announced Durable-Features: patch
            subscribe["patches"] = True
        async with (
            handle.session() as session,
            connect(f"{raw_url}/go", compression=None, ping_interval=None) as control,
        ):

            async def ours() -> int:
                await session.bump()
                return session.durable_version

            pending: list[str] = []  # the frames our server sent, for the raw one to send

            async def raw() -> int:
                frame = pending.pop(0)
                await control.send(frame)
                await control.recv()
                return int(json.loads(frame)["version"])

            for _ in range(plan.delivery_blocks):
                spans, frames = await delivery_spans(
                    lambda: target.ws("bench.Blob", object_id),
                    json.dumps(subscribe),
                    ours,
                    plan.delivery_subscribers,
                    per_block,
                )
                our_spans += spans
                pending.extend(frames)
                spans, _ = await delivery_spans(
                    lambda: f"{raw_url}/sub", None, raw, plan.delivery_subscribers, per_block
                )
                raw_spans += spans
    ours_p99, raw_p99 = percentile(our_spans, 0.99), percentile(raw_spans, 0.99)
    ratio = ours_p99 / raw_p99
    kind = "patch" if "patches" in subscribe else "snapshot"
    return [
        [
            target.name,
            f"{plan.delivery_subscribers} subscribers ({kind} frames), "
            "until the last has it, p50 / p99",
            f"{ms(statistics.median(our_spans))} / {ms(ours_p99)}",
            f"{ms(statistics.median(raw_spans))} / {ms(raw_p99)} (raw websockets server)",
            f"{ratio:.2f}",
            "<= 3 (p99)",
            verdict(ratio <= 3),
        ]
    ]


# -- objects -----------------------------------------------------------------------


async def at_once(target: Target, plan: Plan, pool_size: int | None) -> list[list[str]]:
    """10, then 100 objects called at once by one client: calls/s, rounds alternating."""
    few, many = plan.at_once
    served: dict[int, Counter[int]] = {few: Counter(), many: Counter()}
    elapsed = {few: 0.0, many: 0.0}
    options = {} if pool_size is None else {"pool_size": pool_size}
    async with target.client(**options) as client:
        label = tag()
        handles = {
            n: [client.get(Blob, f"at-once-{n}-{i}-{label}") for i in range(n)] for n in elapsed
        }
        async with anyio.create_task_group() as tg:  # warm up: connections, and objects
            for handle in handles[few] + handles[many]:  # the Worker starts on first use
                tg.start_soon(handle.bump)
        for _ in range(plan.at_once_rounds):
            for n in (few, many):
                deadline = time.perf_counter() + plan.at_once_seconds

                async def caller(
                    index: int, handle: Blob, n: int = n, deadline: float = deadline
                ) -> None:
                    while time.perf_counter() < deadline:
                        await handle.bump()
                        served[n][index] += 1

                start = time.perf_counter()
                async with anyio.create_task_group() as tg:
                    for index, handle in enumerate(handles[n]):
                        tg.start_soon(caller, index, handle)
                elapsed[n] += time.perf_counter() - start
        pool = client.settings.pool_size
    rates = {n: sum(served[n].values()) / elapsed[n] for n in elapsed}
    ratio = rates[many] / rates[few]
    counts = [served[many][i] for i in range(many)]
    starved = sum(1 for c in counts if c == 0)
    return [
        [
            target.name,
            f"{many} objects at once vs {few}, HTTP, pool_size={pool}"
            + (" (default)" if pool_size is None else ""),
            f"{rates[many]:,.0f} calls/s; each object {min(counts)}..{max(counts)} calls",
            f"{rates[few]:,.0f} calls/s ({few} objects)",
            f"{ratio:.2f}",
            ">= 0.7, none starved",
            verdict(ratio >= 0.7 and starved == 0),
        ]
    ]


async def populate(path: Path, count: int) -> list[str]:
    """``count`` Blob objects of about 100 bytes in a new store (in-process, in bulk)."""
    ids = [f"many-{i}" for i in range(count)]
    async with DurableClient(store=str(path)) as client:
        for start in range(0, count, 10_000):
            chunk = ids[start : start + 10_000]
            await Blob.create_many({oid: {"blob": "x" * 80} for oid in chunk}, client=client)
    return ids


async def touch_all(client: DurableClient, ids: list[str], tasks: int = 10) -> None:
    queue = iter(ids)

    async def worker() -> None:
        for object_id in queue:
            await client.get(Blob, object_id).bump()

    async with anyio.create_task_group() as tg:
        for _ in range(tasks):
            tg.start_soon(worker)


async def many_objects(servers: dict[int, tuple[Target, list[str]]], plan: Plan) -> list[list[str]]:
    """Each server holds a different number of objects: call every one once (memory
    per object), then time calls on random objects, chunks alternating servers."""
    memory = {}
    async with contextlib.AsyncExitStack() as stack:
        clients = {}
        for n, (target, ids) in servers.items():
            client = clients[n] = await stack.enter_async_context(target.client(timeout=60))
            for object_id in ids[:10]:
                await client.get(Blob, object_id).bump()
            before = target.rss()
            await touch_all(client, ids)
            memory[n] = (target.rss() - before) / len(ids)

        def random_call(n: int) -> Callable[[], Awaitable[int]]:
            ids = servers[n][1]
            return lambda: clients[n].get(Blob, random.choice(ids)).bump()

        order = sorted(servers)
        spent = [0.0] * len(order)
        samples = await interleave_many(
            [random_call(n) for n in order],
            plan.many_calls,
            min(100, plan.chunk),
            meter=[servers[n][0].cpu for n in order],
            spent=spent,
        )
    medians = [statistics.median(s) for s in samples]
    cpu = [spent[i] / len(samples[i]) for i in range(len(order))]
    rows = []
    for index, n in enumerate(order):
        ratio = medians[index] / medians[0]
        last = index == len(order) - 1
        rows.append(
            [
                "network host",
                f"{n:,} objects, each called once, then random ones",
                us(medians[index]),
                f"{ratio:.2f}",
                f"{(medians[index] / medians[index - 1]):.2f}" if index else "",
                f"{us(cpu[index])} ({cpu[index] / cpu[0]:.2f})" if cpu[0] else us(cpu[index]),
                f"{memory[n]:,.0f} B",
                "<= 1.5 (flat)" if last else "",
                verdict(ratio <= 1.5) if last else "",
            ]
        )
    return rows


# -- bulk --------------------------------------------------------------------------


async def bulk_embedded(folder: Path, plan: Plan, where: str) -> list[list[str]]:
    """``create_many`` against ``create`` one by one, rounds alternating."""
    times = {"many": 0.0, "single": 0.0}
    made = {"many": 0, "single": 0}
    async with DurableClient(store=str(folder / "bulk.sqlite3")) as client:
        for round_ in range(plan.bulk_rounds):
            items = {f"bulk-{round_}-{i}": {"blob": "x" * 80} for i in range(plan.bulk_objects)}
            start = time.perf_counter()
            await Blob.create_many(items, client=client)
            times["many"] += time.perf_counter() - start
            made["many"] += len(items)
            start = time.perf_counter()
            for i in range(plan.bulk_single):
                await client.create(Blob, f"single-{round_}-{i}", blob="x" * 80)
            times["single"] += time.perf_counter() - start
            made["single"] += plan.bulk_single
    rates = {k: made[k] / times[k] for k in times}
    ratio = rates["many"] / rates["single"]
    return [
        [
            "embedded host",
            f"create_many({plan.bulk_objects}) vs create one by one, {where}",
            f"{rates['many']:,.0f} objects/s",
            f"{rates['single']:,.0f} objects/s (one by one)",
            f"{ratio:.1f}",
            ">= 10" if where == "store on disk" else "report",
            verdict(ratio >= 10) if where == "store on disk" else "",
        ]
    ]


async def create_vs_call(target: Target, plan: Plan) -> list[list[str]]:
    async with target.client() as client:
        label = tag()
        counter = client.get(Blob, f"call-{label}")
        made = iter(range(10**9))

        async def create() -> None:
            await client.create(Blob, f"new-{label}-{next(made)}", blob="x" * 80)

        calls, creates = await interleave_many(
            [counter.bump, create], plan.create_calls, plan.chunk
        )
    call_m, create_m = statistics.median(calls), statistics.median(creates)
    ratio = create_m / call_m
    return [
        [
            target.name,
            "create a new object vs call one, HTTP, median",
            us(create_m),
            f"{us(call_m)} (a call)",
            f"{ratio:.2f}",
            "<= 2",
            verdict(ratio <= 2),
        ]
    ]


# -- servers -----------------------------------------------------------------------


@contextlib.asynccontextmanager
async def nothing() -> AsyncIterator[None]:
    yield


def server_support() -> str:
    found = []
    for module in ("httptools", "uvloop"):
        try:
            __import__(module)
            found.append(module)
        except ImportError:
            pass
    if len(found) == 2:
        return "the network host runs uvicorn with httptools and uvloop"
    missing = " and ".join(sorted({"httptools", "uvloop"} - set(found)))
    return (
        f"the network host runs uvicorn WITHOUT {missing}"
        ' (pip install "cloudflare-durable[server]" brings them)'
    )


# -- the run -----------------------------------------------------------------------


def run(args: argparse.Namespace, folder: Path) -> None:
    plan = Plan.quick() if args.quick else Plan()
    if args.full:
        plan.many = (*plan.many, 100_000)
    wanted = set(args.only or SECTIONS)
    left_out = worker_status(args.no_worker)
    print(server_support())
    print(f"stores and Worker state in {folder}", flush=True)
    embedded = Target("embedded host", store=folder / "embedded.sqlite3")
    with contextlib.ExitStack() as stack:
        network = stack.enter_context(
            NetworkHost(MODELS, store=folder / "net.sqlite3", token=TOKEN)
        )
        hosts = [Target("network host", network.url, folder / "net.sqlite3", [server_pid(network)])]
        if left_out is None:
            worker = stack.enter_context(
                WorkerHost(folder / "worker-state", token=TOKEN, worker_dir=worker_project(folder))
            )
            hosts.append(Target("Worker", worker.url, None, process_tree(server_pid(worker))))
        if "state" in wanted:
            rows = anyio.run(state_size, embedded, plan, False)
            for host in hosts:
                rows += anyio.run(state_size, host, plan, False)
                rows += anyio.run(state_size, host, plan, True)
            print_grid(
                "State size: one tiny change per call (Blob.bump), the rest of the state untouched",
                [
                    "host",
                    "state",
                    "latency (median)",
                    "x 100 B",
                    "x per 10x",
                    "server CPU/call",
                    "CPU x 100 B",
                    "goal",
                    "met",
                ],
                rows,
            )
        if "store" in wanted:
            rows = anyio.run(store_growth, embedded, plan)
            rows += anyio.run(store_growth, hosts[0], plan)
            print_grid(
                f"Store growth per call on a 1 MB state (SQLite file + WAL, "
                f"{plan.store_calls} calls after a checkpoint)",
                ["host", "per call, 1 MB state", "baseline", "ratio", "goal", "met"],
                rows,
            )
            print_grid(
                "Calls piling up on one object (request-id records: the newest 10,000 kept)",
                [
                    "host",
                    "block of sequential calls (RPC session)",
                    "latency (mean)",
                    "x first",
                    "server CPU/call",
                    "x first",
                    "goal",
                    "met",
                ],
                anyio.run(request_history, hosts[0], plan),
            )
        if "fanout" in wanted:
            rows = []
            with raw_server() as raw_url:
                for host in hosts:
                    rows += anyio.run(fan_out_cpu, host, plan)
                    rows += anyio.run(delivery, host, plan, raw_url)
            print_grid(
                "Fan-out",
                ["host", "measure", "ours", "baseline (same run)", "ratio", "goal", "met"],
                rows,
            )
        if "objects" in wanted:
            rows = []
            for host in hosts:
                rows += anyio.run(at_once, host, plan, None)
                rows += anyio.run(at_once, host, plan, 100)
            print_grid(
                "Objects called at once by one client",
                ["host", "measure", "ours", "baseline (same run)", "ratio", "goal", "met"],
                rows,
            )
    if "objects" in wanted:
        print_grid(
            "Objects in the store (each server holds its own number of Blob objects)",
            [
                "host",
                "measure",
                "latency (median)",
                "x smallest",
                "x previous",
                "server CPU/call (x smallest)",
                "server memory per object",
                "goal",
                "met",
            ],
            many_servers(folder, plan),
        )
    if "bulk" in wanted:
        with tempfile.TemporaryDirectory(prefix="durable-bulk-") as disk:
            rows = anyio.run(bulk_embedded, Path(disk), plan, "store on disk")
        if str(folder).startswith("/dev/shm"):
            rows += anyio.run(bulk_embedded, folder, plan, "store on tmpfs")
        with contextlib.ExitStack() as stack:
            network = stack.enter_context(
                NetworkHost(MODELS, store=folder / "bulk-net.sqlite3", token=TOKEN)
            )
            targets = [Target("network host", network.url)]
            if left_out is None:
                worker = stack.enter_context(
                    WorkerHost(
                        folder / "bulk-worker", token=TOKEN, worker_dir=worker_project(folder)
                    )
                )
                targets.append(Target("Worker", worker.url))
            for target in targets:
                rows += anyio.run(create_vs_call, target, plan)
        print_grid(
            "Bulk",
            ["host", "measure", "ours", "baseline (same run)", "ratio", "goal", "met"],
            rows,
        )
    if left_out is not None:
        say_left_out(left_out)


def many_servers(folder: Path, plan: Plan) -> list[list[str]]:
    with contextlib.ExitStack() as stack:
        servers = {}
        for n in plan.many:
            path = folder / f"many-{n}.sqlite3"
            ids = anyio.run(populate, path, n)
            server = stack.enter_context(NetworkHost(MODELS, store=path, token=TOKEN))
            servers[n] = (Target("network host", server.url, path, [server_pid(server)]), ids)
        return anyio.run(many_objects, servers, plan)


def main() -> None:
    parser = argparse.ArgumentParser(description="cloudflare-durable: how costs grow")
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    parser.add_argument("--full", action="store_true", help="also 100k objects in the store")
    parser.add_argument("--no-worker", action="store_true", help="skip the Worker on workerd")
    parser.add_argument("--only", action="append", choices=SECTIONS, help="run only these")
    parser.add_argument(
        "--disk", action="store_true", help="keep the stores on disk, not on tmpfs (/dev/shm)"
    )
    parser.add_argument("--raw-server", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.raw_server:
        run_raw_server()
        return
    started = time.perf_counter()
    # On tmpfs unless --disk: a disk's fsync per commit (milliseconds on a busy machine)
    # would hide a cost that grows behind it.
    tmpfs = Path("/dev/shm")
    on_tmpfs = not args.disk and tmpfs.is_dir() and os.access(tmpfs, os.W_OK)
    folder = Path(tempfile.mkdtemp(prefix="durable-scale-", dir=tmpfs if on_tmpfs else None))
    try:
        run(args, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)  # unlinks the node_modules link only
    print(f"\n(bench_scale.py took {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()

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

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

from cloudflare_durable import DurableClient
from cloudflare_durable import _protocol as proto
from cloudflare_durable.host import Host
from cloudflare_durable.host._runtime import MAX_BATCH, Operation, Outcome
from cloudflare_durable.testing import NetworkHost, ServerProcess

from ..conftest import TOKEN
from ..models import Counter
from .conftest import Kind, start_server
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
        op = Operation("call", outcomes.append, request_id, "increment", {"by": 1})
        drain = host.submit("Counter", object_id, op) or drain
    assert drain is not None
    await drain()
    assert len(outcomes) == len(request_ids)
    return outcomes


async def check_remembered(host: Host, object_id: str, total: int, keep: int) -> None:
    """The newest ``keep`` ids are answered from their record; the oldest may run again."""
    before = (await host.read("Counter", object_id)).version
    for index in (total - 1, total - keep // 2, total - keep):
        (reply,) = await call_with_ids(host, object_id, [f"r{index}"])
        assert isinstance(reply, proto.CallReply)
        assert reply.result == index + 1, f"request id r{index} ran again"
    assert (await host.read("Counter", object_id)).version == before


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
        assert (await host.read("Counter", "c")).version == 1_000_000
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

"""Durable when acknowledged: a server killed with SIGKILL loses no acknowledged call.

Writers increment one counter while the server is killed (SIGKILL: no shutdown
code runs) and started again on the same port and the same store. For the
Worker, the process killed is serve.mjs, and workerd, its child, must die with
it: no orphan keeps the port or the storage, and the restarted server reads the
same persistence folder.

Two ways to look at it:

- without retries, each call is acknowledged, refused (the server was down:
  nothing was sent), or of unknown outcome (it was in flight when the server
  died). The final value is at least the acknowledged count and at most that
  plus the unknown ones, and it equals exactly the number of distinct request
  ids the server applied (read from its storage);
- with retries, the calls in flight at a kill are sent again with their request
  ids after the restart; a server that applied one before dying answers from
  its stored record. Every call returns, and the final value is exactly the
  number of calls.
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
import time
from pathlib import Path

import anyio
import pytest

from cloudflare_durable import ConnectError, DurableClient, TransportError
from cloudflare_durable.testing import NetworkHost, ServerProcess, WorkerHost

from ..conftest import TOKEN
from ..models import Counter
from .conftest import alive, pid_of, process_tree

pytestmark = pytest.mark.anyio

WRITERS = 8
KILLS = 3


async def kill_and_restart(server: ServerProcess, pause: float = 0.0) -> None:
    """SIGKILL the server; check its whole process tree died; start it on the same port."""
    tree = process_tree(pid_of(server))
    port = server.port
    await anyio.to_thread.run_sync(server.kill)
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in tree):
        orphans = [pid for pid in tree if alive(pid)]
        assert time.monotonic() < deadline, f"orphans after SIGKILL: {orphans}"
        await anyio.sleep(0.02)
    await anyio.sleep(pause)
    await anyio.to_thread.run_sync(server.start)
    assert server.port == port


def applied_request_ids(server: ServerProcess, object_id: str) -> int:
    """How many request ids the server stored for Counter ``object_id``.

    Read from the server's own storage: the network host's SQLite file, or the
    Worker's per-object SQLite database in its persistence folder (copied first,
    so nothing of workerd's is touched).
    """
    if isinstance(server, NetworkHost):
        with sqlite3.connect(server.store) as db:
            row = db.execute(
                "SELECT COUNT(*) FROM durable_requests WHERE model = 'Counter' AND object_id = ?",
                (object_id,),
            ).fetchone()
        return int(row[0])
    assert isinstance(server, WorkerHost)
    counts = []
    for path in Path(server.persist).glob("*Counter/*.sqlite"):
        if path.name == "metadata.sqlite":
            continue
        with tempfile.TemporaryDirectory() as copy:
            for part in path.parent.glob(path.name + "*"):
                shutil.copy(part, copy)
            with sqlite3.connect(Path(copy) / path.name) as db:
                tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
                if "durable_requests" in tables:
                    counts.append(db.execute("SELECT COUNT(*) FROM durable_requests").fetchone()[0])
            db.close()
    assert len(counts) == 1, f"expected one Counter object in {server.persist}, found {len(counts)}"
    return int(counts[0])


async def test_acknowledged_calls_survive_sigkill(own_server: ServerProcess, oid: str) -> None:
    acknowledged: list[int] = []
    unknown = 0  # failed after the request may have reached the server
    refused = 0  # failed to connect: nothing was sent
    in_flight = 0
    in_flight_at_kills: list[int] = []
    async with DurableClient(own_server.url, token=TOKEN, retries=0, timeout=10) as client:
        counter = client.get(Counter, oid)
        for _ in range(KILLS):
            stop = anyio.Event()

            async def writer(stop: anyio.Event) -> None:
                nonlocal unknown, refused, in_flight
                while not stop.is_set():
                    in_flight += 1
                    try:
                        acknowledged.append(await counter.increment(1))
                    except ConnectError:
                        refused += 1
                        await anyio.sleep(0.01)
                    except TransportError:
                        unknown += 1
                        await anyio.sleep(0.01)
                    finally:
                        in_flight -= 1

            async with anyio.create_task_group() as tg:
                for _ in range(WRITERS):
                    tg.start_soon(writer, stop)
                await anyio.sleep(0.5)
                in_flight_at_kills.append(in_flight)
                await kill_and_restart(own_server)
                stop.set()
        final = await counter.load()

    applied = await anyio.to_thread.run_sync(applied_request_ids, own_server, oid)
    summary = (
        f"final {final.value}, acknowledged {len(acknowledged)}, unknown {unknown}, "
        f"refused {refused}, in flight at kills {in_flight_at_kills}, request ids {applied}"
    )
    print(summary)
    assert len(set(acknowledged)) == len(acknowledged), summary
    assert max(acknowledged) <= final.value, summary
    assert len(acknowledged) <= final.value <= len(acknowledged) + unknown, summary
    assert final.value == applied, summary
    assert final.durable_version == final.value, summary
    assert sum(in_flight_at_kills) > 0, summary


async def test_retried_calls_apply_once_across_sigkills(
    own_server: ServerProcess, oid: str
) -> None:
    acknowledged: list[int] = []
    async with DurableClient(
        own_server.url, token=TOKEN, retries=60, retry_delay=0.02, timeout=10
    ) as client:
        counter = client.get(Counter, oid)
        stop = anyio.Event()

        async def writer() -> None:
            while not stop.is_set():
                acknowledged.append(await counter.increment(1))

        with anyio.fail_after(120):
            async with anyio.create_task_group() as tg:
                for _ in range(WRITERS):
                    tg.start_soon(writer)
                for _ in range(KILLS):
                    await anyio.sleep(0.5)
                    await kill_and_restart(own_server, pause=0.2)
                await anyio.sleep(0.3)
                stop.set()
        final = await counter.load()

    summary = f"final {final.value}, acknowledged {len(acknowledged)}"
    assert sorted(acknowledged) == list(range(1, len(acknowledged) + 1)), summary
    assert final.value == len(acknowledged), summary
    applied = await anyio.to_thread.run_sync(applied_request_ids, own_server, oid)
    assert applied == final.value, summary

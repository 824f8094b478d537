"""Testing models with the pytest plugin that comes with cloudflare-durable.

Run it with ``pytest examples/testing``. Nothing to import or register: the
fixtures ``durable_client``, ``durable_server`` and ``durable_worker`` are there
once the package is installed. ``pytest.ini`` beside this file names the models
``durable_server`` serves.
"""

from __future__ import annotations

import anyio
import pytest
from counter import Counter

from cloudflare_durable import DurableClient
from cloudflare_durable.testing import NetworkHost, WorkerHost

pytestmark = pytest.mark.anyio  # async tests, run by anyio's pytest plugin


async def test_increment(durable_client: DurableClient) -> None:
    counter = Counter.get("c1")  # no client=: the test's own in-memory host
    assert await counter.increment(2) == 2
    assert (await counter.load()).value == 2


async def test_every_test_starts_from_nothing(durable_client: DurableClient) -> None:
    snapshot = await Counter.get("c1").load()
    assert (snapshot.value, snapshot.durable_version) == (0, 0)


async def test_subscribers_see_every_change(durable_client: DurableClient) -> None:
    counter = Counter.get("c2")
    seen: list[int] = []
    async with counter.subscribe() as snapshots, anyio.create_task_group() as tg:
        tg.start_soon(counter.increment, 1)
        async for snapshot in snapshots:
            seen.append(snapshot.value)
            if snapshot.value == 1:
                break
    assert seen == [0, 1]


async def test_over_the_network(durable_server: NetworkHost) -> None:
    async with durable_server.client() as client:
        counter = client.get(Counter, "network-c1")
        await counter.reset()
        await counter.increment(5)
        durable_server.restart()  # a real server: state survives a restart
        assert (await counter.load()).value == 5


async def test_on_the_worker(durable_worker: WorkerHost) -> None:
    async with durable_worker.client() as client:
        counter = client.get(Counter, "worker-c1")
        await counter.reset()
        assert await counter.increment(3) == 3

"""State survives a restart of each server: the network host on the same SQLite
file, the Worker on workerd with the same persistence folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cloudflare_durable import DurableClient
from cloudflare_durable.testing import NetworkHost, ServerProcess, WorkerHost

from .conftest import CLIENT_OPTIONS, MODELS, TOKEN, worker_available
from .models import ChatRoom, Counter

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["network", "worker"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServerProcess]:
    if request.param == "network":
        process: ServerProcess = NetworkHost(MODELS, store=tmp_path / "s.sqlite3", token=TOKEN)
    else:
        if not worker_available():
            pytest.skip("Node dependencies of worker/ are not installed (npm ci)")
        process = WorkerHost(tmp_path / "persist", token=TOKEN)
    with process:
        yield process


@pytest.mark.parametrize("stop", ["graceful", "kill"])
async def test_state_survives_a_restart(server: ServerProcess, stop: str) -> None:
    async with DurableClient(server.url, token=TOKEN, **CLIENT_OPTIONS) as client:
        await client.get(Counter, "kept").increment(41)
        await client.get(ChatRoom, "kept").post("ann", "still here?")
    if stop == "kill":
        server.kill()
        server.start()
    else:
        server.restart()
    async with DurableClient(server.url, token=TOKEN, **CLIENT_OPTIONS) as client:
        counter = await client.get(Counter, "kept").load()
        assert (counter.value, counter.durable_version) == (41, 1)
        assert await client.get(Counter, "kept").increment() == 42
        room = client.get(ChatRoom, "kept")
        assert [m.text for m in await room.recent()] == ["still here?"]

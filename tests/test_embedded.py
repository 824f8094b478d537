"""The embedded host: persistence, restarts, several processes on one file, defaults."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import anyio
import anyio.lowlevel
import pytest

from cloudflare_durable import DurableClient, DurableModel, UsageError, remote
from cloudflare_durable import _protocol as proto
from cloudflare_durable.host import Host

from .models import ROOT_FOR_EXAMPLES, Counter, Document

pytestmark = pytest.mark.anyio


async def test_state_survives_a_restart(tmp_path: Path) -> None:
    store = str(tmp_path / "state.sqlite3")
    async with DurableClient(store=store) as client:
        await client.get(Counter, "c").increment(41)
        await client.get(Document, "d").join("ann", "Ann")
    async with DurableClient(store=store) as client:
        counter = await client.get(Counter, "c").load()
        assert (counter.value, counter.durable_version) == (41, 1)
        assert await client.get(Counter, "c").increment() == 42
        assert (await client.get(Document, "d").load()).editors == {"ann": "Ann"}


async def test_memory_store_is_private_and_throwaway(tmp_path: Path) -> None:
    async with DurableClient(store=":memory:") as first, DurableClient(store=":memory:") as second:
        await first.get(Counter, "c").increment(5)
        assert (await second.get(Counter, "c").load()).value == 0


async def test_a_retried_request_id_is_applied_once(tmp_path: Path) -> None:
    increment = proto.Call("Counter", "c", "increment", {"by": 3}, "request-1")
    read = proto.Read("Counter", "c")
    async with Host(str(tmp_path / "s.sqlite3")) as host:
        first = await host.perform(increment)
        again = await host.perform(increment)
        assert first == again
        assert (await host.perform(read)).state == {"value": 3}
    async with Host(str(tmp_path / "s.sqlite3")) as host:  # remembered across restarts
        again = await host.perform(increment)
        assert again == first
        assert (await host.perform(read)).version == 1


async def test_request_ids_are_bounded(tmp_path: Path) -> None:
    async with Host(str(tmp_path / "s.sqlite3"), max_requests=50) as host:
        for n in range(2000):
            await host.perform(proto.Call("Counter", "c", "increment", {}, f"r{n}"))
        assert host.store.count_requests() <= 50 + 1000 + 1
        assert (await host.perform(proto.Read("Counter", "c"))).state == {"value": 2000}


async def test_closed_clients_refuse_work(tmp_path: Path) -> None:
    client = DurableClient(store=":memory:")
    async with client:
        await client.get(Counter, "c").increment()
    with pytest.raises(UsageError, match="closed"):
        await client.get(Counter, "c").increment()
    with pytest.raises(UsageError, match="closed"):
        async with client:
            pass


WRITER = textwrap.dedent(
    """
    import sys
    import anyio
    sys.path.insert(0, {examples!r})
    from counter import Counter
    from cloudflare_durable import DurableClient

    async def main() -> None:
        async with DurableClient(store={store!r}) as client:
            counter = client.get(Counter, "shared")
            for _ in range({count}):
                await counter.increment(1)

    anyio.run(main)
    """
)


def _writer(store: Path, count: int) -> subprocess.Popen[bytes]:
    code = WRITER.format(examples=ROOT_FOR_EXAMPLES, store=str(store), count=count)
    return subprocess.Popen([sys.executable, "-c", code])


async def test_two_processes_on_one_file_lose_nothing(tmp_path: Path) -> None:
    store = tmp_path / "shared.sqlite3"
    writers = [_writer(store, 150) for _ in range(2)]
    async with DurableClient(store=str(store)) as client:
        counter = client.get(Counter, "shared")
        for _ in range(100):
            await counter.increment(1)
    for writer in writers:
        assert writer.wait(60) == 0
    async with DurableClient(store=str(store)) as client:
        final = await client.get(Counter, "shared").load()
    assert (final.value, final.durable_version) == (400, 400)


async def test_a_subscriber_sees_another_process_writes(tmp_path: Path) -> None:
    store = tmp_path / "shared.sqlite3"
    async with DurableClient(store=str(store)) as client:
        counter = client.get(Counter, "shared")
        await counter.load()
        writer = _writer(store, 30)
        seen: list[int] = []
        try:
            with anyio.fail_after(30):
                async with counter.subscribe() as snapshots:
                    async for snapshot in snapshots:
                        seen.append(snapshot.durable_version)
                        if snapshot.value == 30:
                            break
        finally:
            assert writer.wait(30) == 0
    assert seen == sorted(set(seen))
    assert seen[-1] == 30


async def test_default_client_uses_the_environment(tmp_path: Path) -> None:
    code = textwrap.dedent(
        f"""
        import sys, anyio
        sys.path.insert(0, {ROOT_FOR_EXAMPLES!r})
        from counter import Counter

        async def main() -> None:
            print(await Counter.get("env").increment(7))

        anyio.run(main)
        anyio.run(main, backend="trio")
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDFLARE_")}
    env["CLOUDFLARE_DURABLE_STORE"] = "state.sqlite3"
    with anyio.fail_after(60):
        result = await anyio.run_process(
            [sys.executable, "-c", code], cwd=tmp_path, env=env, check=False
        )
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode().split() == ["7", "14"]
    assert (tmp_path / "state.sqlite3").exists()


class Gate(DurableModel, name="test.Gate"):
    """A body that suspends until the test opens the gate."""

    passed: int = 0

    @remote
    async def wait_then_pass(self) -> int:
        await GATE.opened.wait()
        self.passed += 1
        return self.passed


class _Gate:
    opened: anyio.Event


GATE = _Gate()


async def test_cancelling_the_caller_that_drains_does_not_strand_others() -> None:
    GATE.opened = anyio.Event()
    async with DurableClient(store=":memory:") as client:
        gate = client.get(Gate, "g")
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                tg.start_soon(gate.wait_then_pass)  # drains the object; suspends in its body
                await anyio.sleep(0.02)
                tg.start_soon(gate.wait_then_pass)  # queued behind it
                await anyio.sleep(0.02)
                tg.cancel_scope.cancel()  # both callers are cancelled...
                GATE.opened.set()
        # ...but the drain, suspended in a body, was shielded: it finished both calls.
        assert (await gate.load()).passed == 2
        assert await gate.wait_then_pass() == 3


async def test_a_loop_of_calls_lets_other_tasks_run() -> None:
    async with DurableClient(store=":memory:") as client:
        counter = client.get(Counter, "busy")
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await anyio.lowlevel.checkpoint()

        async with anyio.create_task_group() as tg:
            tg.start_soon(ticker)
            await anyio.lowlevel.checkpoint()
            for _ in range(200):
                await counter.increment()
            tg.cancel_scope.cancel()
        assert ticks >= 10


def test_default_clients_pushed_out_of_the_cache_are_closed(tmp_path: Path) -> None:
    """One default client per event loop; when newer loops push the oldest out, their
    embedded hosts are closed (no SQLite handle is left open), not just dropped."""
    from cloudflare_durable import _client

    store = str(tmp_path / "state.sqlite3")
    clients: list[DurableClient] = []

    async def call() -> None:
        clients.append(_client.default_client())
        await Counter.get("c").increment(1)

    os.environ["CLOUDFLARE_DURABLE_STORE"] = store
    try:
        for _ in range(3 * _client._MAX_DEFAULTS):
            anyio.run(call)
    finally:
        del os.environ["CLOUDFLARE_DURABLE_STORE"]
    assert len(set(map(id, clients))) == len(clients)  # one per loop
    assert len(_client._defaults) <= _client._MAX_DEFAULTS
    evicted = [client for client in clients if client not in _client._defaults.values()]
    assert len(evicted) >= 2 * _client._MAX_DEFAULTS
    assert all(client.closed for client in evicted)
    assert open_files(store) <= _client._MAX_DEFAULTS


def open_files(path: str) -> int:
    """How many file descriptors of this process are open on ``path``."""
    folder = Path(f"/proc/{os.getpid()}/fd")
    count = 0
    for fd in folder.iterdir():
        with contextlib.suppress(OSError):  # closed meanwhile (the listing's own, say)
            count += os.readlink(fd) == path
    return count

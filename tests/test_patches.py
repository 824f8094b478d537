"""Cost that grows with what changed: fields tracked in method bodies, one row per
field in the store, and patches instead of whole states in replies and to
subscribers (``Durable-Features: patch``)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import httpx
import pytest

from cloudflare_durable import (
    AlreadyExistsError,
    DurableClient,
    DurableModel,
    InvalidResultError,
    ValidationError,
    remote,
)
from cloudflare_durable import _protocol as proto
from cloudflare_durable.host import Host
from cloudflare_durable.host import _store as store_format
from cloudflare_durable.testing import NetworkHost

from .conftest import CLIENT_OPTIONS, TOKEN
from .models import Counter

pytestmark = pytest.mark.anyio

BIG = ["x" * 100] * 2000


class Ledgerish(DurableModel, name="test.Ledgerish"):
    """A big field beside small ones, and bodies that read, mutate or leave each."""

    count: int = 0
    items: list[str] = []
    tags: dict[str, list[int]] = {}
    label: str = ""

    @remote
    async def bump(self) -> int:
        self.count += 1
        return self.count

    @remote
    async def size(self) -> int:
        return len(self.items)

    @remote
    async def append(self, item: str) -> int:
        self.items.append(item)
        return len(self.items)

    @remote
    async def tag(self, name: str, value: int) -> None:
        self.tags.setdefault(name, []).append(value)

    @remote
    async def dump_all(self) -> dict[str, Any]:
        return self.model_dump(mode="json", include={"count", "label"})

    @remote
    async def corrupt_nested(self) -> None:
        self.tags.setdefault("bad", []).append("not an int")  # type: ignore[arg-type]

    @remote
    async def fill(self, count: int) -> int:
        self.items = [f"item-{n}" for n in range(count)]
        return len(self.items)


async def stored_rows(store: Path, object_id: str) -> dict[str, str]:
    with sqlite3.connect(store) as db:
        rows = db.execute(
            "SELECT field, value FROM durable_fields WHERE model = ? AND object_id = ?",
            ("test.Ledgerish", object_id),
        ).fetchall()
    return dict(rows)


async def test_bodies_change_what_they_touch(tmp_path: Path) -> None:
    store = tmp_path / "s.sqlite3"
    async with Host(str(store), models=[Ledgerish]) as host:
        await host.perform(proto.Create("test.Ledgerish", "l", {"items": BIG}))
        call = await host.perform(proto.Call("test.Ledgerish", "l", "bump", have=1))
        assert (call.version, call.patch) == (2, proto.Patch(1, {"count": 1}))
        size = await host.perform(proto.Call("test.Ledgerish", "l", "size", have=2))
        assert (size.result, size.version, size.patch) == (2000, 2, proto.Patch(2, {}))
        appended = await host.perform(
            proto.Call("test.Ledgerish", "l", "append", {"item": "y"}, have=2)
        )
        assert appended.patch is not None
        assert appended.patch.fields == {"items": [*BIG, "y"]}
        await host.perform(proto.Call("test.Ledgerish", "l", "tag", {"name": "a", "value": 1}))
        nested = await host.perform(
            proto.Call("test.Ledgerish", "l", "tag", {"name": "a", "value": 2}, have=4)
        )
        assert nested.patch == proto.Patch(4, {"tags": {"a": [1, 2]}})
        dumped = await host.perform(proto.Call("test.Ledgerish", "l", "dump_all", have=5))
        assert (dumped.result, dumped.version) == ({"count": 1, "label": ""}, 5)
        since_start = await host.perform(proto.Read("test.Ledgerish", "l", have=1))
        assert since_start.patch is not None
        assert set(since_start.patch.fields) == {"count", "items", "tags"}
        with pytest.raises(InvalidResultError, match="fields reject"):
            await host.perform(proto.Call("test.Ledgerish", "l", "corrupt_nested"))
        after = await host.perform(proto.Read("test.Ledgerish", "l"))
        assert after.version == 5
        assert after.state is not None
        assert after.state["tags"] == {"a": [1, 2]}
    rows = await stored_rows(store, "l")
    assert set(rows) == {"count", "items", "tags", "label"}
    assert rows["tags"] == '{"a":[1,2]}'


async def test_handles_and_subscriptions_follow_patches(tmp_path: Path) -> None:
    async with DurableClient(store=str(tmp_path / "s.sqlite3")) as client:
        handle = await client.create(Ledgerish, "l", items=BIG)
        seen: list[Ledgerish] = []
        async with handle.subscribe() as snapshots:
            first = await anext(snapshots)
            assert first.items == BIG
            for _ in range(3):
                await handle.bump()
            await handle.append("z")
            while len(seen) < 4:
                seen.append(await anext(snapshots))
        assert [s.count for s in seen] == [1, 2, 3, 3]
        assert [s.durable_version for s in seen] == [2, 3, 4, 5]
        assert seen[-1].items == [*BIG, "z"]
        assert handle.count == 3
        assert handle.items[-1] == "z"
        assert handle.durable_version == 5
        loaded = await handle.load()  # the object has not moved: an empty patch
        assert (loaded.count, loaded.items[-1], loaded.durable_version) == (3, "z", 5)


async def test_a_subscriber_resuming_within_the_history_gets_a_patch(tmp_path: Path) -> None:
    async with Host(str(tmp_path / "s.sqlite3"), models=[Ledgerish]) as host:
        await host.perform(proto.Create("test.Ledgerish", "l", {"items": BIG}))
        for _ in range(3):
            await host.perform(proto.Call("test.Ledgerish", "l", "bump"))
        frame = proto.SubscribeFrame(since=2, patches=True)
        subscriber = host.subscribe("test.Ledgerish", "l", frame)
        assert await subscriber.receive() == proto.PatchMessage(4, 2, {"count": 3})
        subscriber.close()
        whole = host.subscribe("test.Ledgerish", "l", proto.SubscribeFrame(since=2))
        message = await whole.receive()
        assert isinstance(message, proto.Snapshot)
        assert message.version == 4
        whole.close()


async def test_the_network_host_announces_and_sends_patches(tmp_path: Path) -> None:
    from .conftest import MODELS

    with NetworkHost(MODELS, store=tmp_path / "s.sqlite3", token=TOKEN) as server:
        headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
        async with httpx.AsyncClient(base_url=server.url, headers=headers) as http:
            path = proto.object_path("Counter", "p")
            reply = await http.post(f"{path}/call/increment", json={"args": {}})
            assert reply.headers["durable-features"] == "patch"
            assert reply.json() == {"result": 1, "version": 1, "state": {"value": 1}}
            reply = await http.post(f"{path}/call/increment", json={"args": {}, "have": 1})
            assert reply.json() == {
                "result": 2,
                "version": 2,
                "patch": {"since": 1, "set": {"value": 2}},
            }
            read = await http.get(path, params={"have": 1})
            assert read.json() == {"version": 2, "patch": {"since": 1, "set": {"value": 2}}}
            read = await http.get(path, params={"have": 0})  # the state appeared since: whole
            assert read.json() == {"version": 2, "state": {"value": 2}}
        async with DurableClient(server.url, token=TOKEN, **CLIENT_OPTIONS) as client:
            counter = client.get(Counter, "p")
            assert await counter.increment(1) == 3  # the first reply is whole: no version yet
            assert client._patches
            async with counter.subscribe() as snapshots:
                assert (await anext(snapshots)).value == 3
                await counter.increment(2)
                assert (await anext(snapshots)).value == 5
                assert counter.value == 5


def old_store(path: Path) -> None:
    """A store as format 1 wrote it: each state one JSON text."""
    with sqlite3.connect(path) as db:
        db.executescript(
            """
            CREATE TABLE durable_objects (model TEXT NOT NULL, object_id TEXT NOT NULL,
                version INTEGER NOT NULL, state TEXT, PRIMARY KEY (model, object_id)) WITHOUT ROWID;
            CREATE TABLE durable_requests (model TEXT NOT NULL, object_id TEXT NOT NULL,
                request_id TEXT NOT NULL, status INTEGER NOT NULL, reply TEXT NOT NULL,
                created REAL NOT NULL, digest TEXT,
                PRIMARY KEY (model, object_id, request_id)) WITHOUT ROWID;
            INSERT INTO durable_objects VALUES
                ('test.Ledgerish', 'old', 4, '{"count":2,"items":["a"],"tags":{},"label":"x"}'),
                ('test.Ledgerish', 'gone', 3, NULL);
            PRAGMA user_version = 1;
            """
        )


async def test_a_store_of_the_previous_format_is_upgraded(tmp_path: Path) -> None:
    store = tmp_path / "old.sqlite3"
    old_store(store)
    async with DurableClient(store=str(store)) as client:
        old = await client.get(Ledgerish, "old").load()
        assert (old.count, old.items, old.label, old.durable_version) == (2, ["a"], "x", 4)
        gone = await client.get(Ledgerish, "gone").load()
        assert (gone.count, gone.durable_version) == (0, 3)
        assert await client.get(Ledgerish, "old").bump() == 3
    rows = await stored_rows(store, "old")
    assert rows == {"count": "3", "items": '["a"]', "tags": "{}", "label": '"x"'}
    with sqlite3.connect(store) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == store_format.FORMAT


async def test_a_small_change_to_a_big_object_writes_a_small_row(tmp_path: Path) -> None:
    store = tmp_path / "s.sqlite3"
    async with DurableClient(store=str(store)) as client:
        handle = client.get(Ledgerish, "big")
        await handle.fill(8000)
        await anyio.lowlevel.checkpoint()
        size = store.stat().st_size + (tmp_path / "s.sqlite3-wal").stat().st_size
        for _ in range(200):
            await handle.bump()
        grown = store.stat().st_size + (tmp_path / "s.sqlite3-wal").stat().st_size - size
    assert grown / 200 < 16 * 1024, f"{grown / 200:.0f} bytes per small change"


@pytest.mark.parametrize("where", ["embedded", "network"])
async def test_create_many(where: str, tmp_path: Path) -> None:
    from .conftest import MODELS

    items = {f"bulk-{n}": {"value": n} for n in range(300)}
    if where == "embedded":
        client = DurableClient(store=str(tmp_path / "s.sqlite3"))
        server = None
    else:
        server = NetworkHost(MODELS, store=tmp_path / "s.sqlite3", token=TOKEN).start()
        client = DurableClient(server.url, token=TOKEN, **CLIENT_OPTIONS)
    try:
        async with client:
            handles = await Counter.create_many(items, client=client)
            assert [h.durable_id for h in handles] == list(items)
            assert [h.value for h in handles] == list(range(300))
            assert (await client.get(Counter, "bulk-7").load()).value == 7
            assert await client.get(Counter, "bulk-7").increment(1) == 8
            await client.get(Counter, "bulk-8").delete()
            with pytest.raises(AlreadyExistsError) as taken:
                await client.create_many(Counter, {"bulk-8": {}, "bulk-9": {}, "new": {}})
            assert "bulk-9" in taken.value.message
            if where == "embedded":  # one transaction: all or nothing
                assert (await client.get(Counter, "new").load()).durable_version == 0
                assert (await client.get(Counter, "bulk-8").load()).durable_version == 2
                created = await client.create_many(Counter, {"bulk-8": {"value": 80}})
                assert created[0].durable_version == 3
            else:  # one request each: the others were created
                assert (await client.get(Counter, "new").load()).durable_version == 1
                assert (await client.get(Counter, "bulk-8").load()).durable_version == 3
            with pytest.raises(ValidationError):
                await Counter.create_many({"x": {"value": "many"}}, client=client)
    finally:
        if server is not None:
            server.close()

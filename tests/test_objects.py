"""Behaviour every host shares: the embedded host, the network host and the Worker.

Each test runs against all three (the ``client`` fixture) on both anyio backends.
"""

from __future__ import annotations

import anyio
import pytest

from cloudflare_durable import (
    AlreadyExistsError,
    ConflictError,
    DurableClient,
    NotLoadedError,
    RemoteError,
    UnknownMethodError,
    UsageError,
    ValidationError,
)
from cloudflare_durable import _protocol as proto

from .models import ChatRoom, Counter, Document, Edited, Joined, Left, Message, Posted

pytestmark = pytest.mark.anyio


async def test_virtual_objects_start_from_defaults(client: DurableClient, oid: str) -> None:
    snapshot = await client.get(Counter, oid).load()
    assert (snapshot.value, snapshot.durable_version, snapshot.durable_id) == (0, 0, oid)


async def test_calls_return_typed_results_and_bump_versions(
    client: DurableClient, oid: str
) -> None:
    counter = client.get(Counter, oid)
    assert await counter.increment(2) == 2
    assert await counter.increment() == 3
    assert await counter.increment(by=4) == 7
    assert (counter.value, counter.durable_version) == (7, 3)
    room = client.get(ChatRoom, oid)
    assert await room.post("ann", "hi") == 1
    recent = await room.recent(limit=5)
    assert recent == [Message(author="ann", text="hi")]
    assert isinstance(recent[0], Message)


async def test_a_call_that_changes_nothing_keeps_the_version(
    client: DurableClient, oid: str
) -> None:
    room = client.get(ChatRoom, oid)
    assert await room.recent() == []
    assert room.durable_version == 0
    await room.post("ann", "one")
    assert await room.recent(limit=1) == [Message(author="ann", text="one")]
    assert room.durable_version == 1


async def test_handle_fields_are_unknown_until_seen(client: DurableClient, oid: str) -> None:
    counter = client.get(Counter, oid)
    assert not counter.durable_loaded
    with pytest.raises(NotLoadedError, match="load"):
        _ = counter.value
    assert "durable_loaded=False" in repr(counter)
    await counter.load()
    assert counter.value == 0
    with pytest.raises(UsageError, match="update"):
        counter.value = 5


async def test_create_load_update_delete(client: DurableClient, oid: str) -> None:
    created = await client.create(Counter, oid, value=10)
    assert (created.value, created.durable_version) == (10, 1)
    with pytest.raises(AlreadyExistsError):
        await client.create(Counter, oid, value=11)
    handle = client.get(Counter, oid)
    updated = await handle.update(value=20, if_version=1)
    assert (updated.value, updated.durable_version) == (20, 2)
    with pytest.raises(ConflictError) as conflict:
        await handle.update(value=30, if_version=1)
    assert conflict.value.details == {"expected": 1, "actual": 2}
    assert (await handle.load()).value == 20
    assert await handle.delete() is True
    assert await handle.delete() is False
    after = await handle.load()
    assert (after.value, after.durable_version) == (0, 3)
    assert await handle.increment() == 1
    assert handle.durable_version == 4


async def test_update_rejects_unknown_fields_and_bad_values(
    client: DurableClient, oid: str
) -> None:
    handle = client.get(Counter, oid)
    with pytest.raises(ValidationError, match="nope"):
        await handle.update(nope=1)
    with pytest.raises(ValidationError, match="value"):
        await handle.update(value="many")
    with pytest.raises(ValidationError):
        await client.create(Counter, oid, value=1, extra=True)
    with pytest.raises(UsageError):
        await handle.update(value=1, if_version=-1)
    snapshot = await handle.load()
    assert (snapshot.value, snapshot.durable_version) == (0, 0)


async def test_a_method_that_raises_changes_nothing(client: DurableClient, oid: str) -> None:
    doc = client.get(Document, oid)
    assert await doc.join("ann", "Ann") == ["ann"]
    with pytest.raises(RemoteError) as stale:
        await doc.edit("ann", "hello", 5)
    assert stale.value.type_name == "ValueError"
    with pytest.raises(RemoteError) as forbidden:
        await doc.edit("bob", "hello", 1)
    assert forbidden.value.type_name == "PermissionError"
    snapshot = await doc.load()
    assert (snapshot.content, snapshot.version, snapshot.durable_version) == ("", 0, 1)
    assert await doc.edit("ann", "hello", 1) == 1


async def test_arguments_are_validated_before_anything_is_sent(
    client: DurableClient, oid: str
) -> None:
    counter = client.get(Counter, oid)
    with pytest.raises(ValidationError, match="by"):
        await counter.increment("two")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="step"):
        await counter.increment(step=1)  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        await counter.increment(1, 2)  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="name"):
        await client.get(Document, oid).join("ann")  # type: ignore[call-arg]
    assert (await counter.load()).durable_version == 0


async def test_unknown_method_from_an_out_of_date_model(client: DurableClient, oid: str) -> None:
    counter = client.get(Counter, oid)
    with pytest.raises(UnknownMethodError):
        await client._perform(proto.Call("Counter", oid, "explode", {}))
    assert (await counter.load()).durable_version == 0


async def test_concurrent_increments_are_all_applied(client: DurableClient, oid: str) -> None:
    counter = client.get(Counter, oid)

    async def worker() -> None:
        for _ in range(10):
            await counter.increment(1)

    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            for _ in range(20):
                tg.start_soon(worker)
    final = await counter.load()
    assert (final.value, final.durable_version) == (200, 200)


async def test_handle_state_never_goes_backwards(client: DurableClient, oid: str) -> None:
    counter = client.get(Counter, oid)
    seen: list[int] = []

    async def bump() -> None:
        await counter.increment(1)
        seen.append(counter.durable_version)

    async with anyio.create_task_group() as tg:
        for _ in range(20):
            tg.start_soon(bump)
    assert counter.durable_version == 20
    assert counter.value == 20


async def test_subscribe_yields_current_snapshot_then_every_change(
    client: DurableClient, oid: str
) -> None:
    counter = client.get(Counter, oid)
    await counter.increment(5)
    versions: list[int] = []
    values: list[int] = []
    with anyio.fail_after(30):
        async with counter.subscribe() as snapshots:
            async for snapshot in snapshots:
                assert isinstance(snapshot, Counter)
                versions.append(snapshot.durable_version)
                values.append(snapshot.value)
                if snapshot.value == 5:
                    for _ in range(5):
                        await client.get(Counter, oid).increment(1)
                if snapshot.value == 10:
                    break
    assert versions[0] == 1
    assert versions == sorted(set(versions))
    assert values[-1] == 10
    assert counter.value == 10


async def test_subscribers_see_strictly_increasing_versions(
    client: DurableClient, oid: str
) -> None:
    counter = client.get(Counter, oid)
    seen: list[int] = []
    ready = anyio.Event()

    async def subscriber() -> None:
        async with counter.subscribe() as snapshots:
            async for snapshot in snapshots:
                seen.append(snapshot.durable_version)
                ready.set()
                if snapshot.value >= 50:
                    return

    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            tg.start_soon(subscriber)
            await ready.wait()
            for _ in range(50):
                await client.get(Counter, oid).increment(1)
    assert seen == sorted(set(seen)), "versions must strictly increase"
    assert seen[-1] == 50


async def test_events_arrive_in_emission_order(client: DurableClient, oid: str) -> None:
    doc = client.get(Document, oid)
    with anyio.fail_after(30):
        async with doc.events(Joined, Edited, Left) as events:  # live once entered
            await doc.join("ann", "Ann")
            await doc.join("bob", "Bob")
            await doc.edit("ann", "v1", 1)
            await doc.edit("bob", "v2", 2)
            await doc.leave("ann")
            received = [await anext(events) for _ in range(5)]
    assert received == [
        Joined(editor_id="ann", name="Ann"),
        Joined(editor_id="bob", name="Bob"),
        Edited(editor_id="ann", version=1),
        Edited(editor_id="bob", version=2),
        Left(editor_id="ann"),
    ]


async def test_events_filter_by_type(client: DurableClient, oid: str) -> None:
    doc = client.get(Document, oid)
    with anyio.fail_after(30):
        async with doc.events(Edited) as edits:
            await doc.join("ann", "Ann")  # Joined: not asked for
            await doc.edit("ann", "one", 1)
            await doc.leave("ann")  # Left: not asked for
            await doc.join("bob", "Bob")
            await doc.edit("bob", "two", 2)
            received = [await anext(edits) for _ in range(2)]
    assert received == [Edited(editor_id="ann", version=1), Edited(editor_id="bob", version=2)]


async def test_posted_events_in_a_chat_room(client: DurableClient, oid: str) -> None:
    room = client.get(ChatRoom, oid)
    with anyio.fail_after(30):
        async with room.events(Posted) as posts:
            await room.post("ann", "one")
            await room.post("bob", "two")
            received = [await anext(posts) for _ in range(2)]
    assert received == [Posted(author="ann", text="one"), Posted(author="bob", text="two")]


async def test_rpc_session_calls_many_in_flight(client: DurableClient, oid: str) -> None:
    counter = client.get(Counter, oid)
    results: list[int] = []
    with anyio.fail_after(60):
        async with counter.session() as session:

            async def one() -> None:
                results.append(await session.increment(1))

            async with anyio.create_task_group() as tg:
                for _ in range(200):
                    tg.start_soon(one)
    assert sorted(results) == list(range(1, 201))
    assert (await counter.load()).value == 200


async def test_invalid_object_ids_are_refused_without_io(client: DurableClient, oid: str) -> None:
    from cloudflare_durable import InvalidIdError

    for bad in ["", "x" * 257, "a\nb", "nul\x00", "tab\tid"]:
        with pytest.raises(InvalidIdError):
            client.get(Counter, bad)
    odd = f"{oid[-10:]}/slash and space é?#%"
    counter = client.get(Counter, odd)
    assert await counter.increment() == 1
    assert (await client.get(Counter, odd).load()).value == 1

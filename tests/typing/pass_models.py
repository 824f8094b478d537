"""What users' code infers under ``mypy --strict``, with no plugin.

Checked by ``tests/test_typing.py`` (and by ``mypy src tests``): every line here
must pass. Nothing here runs; the functions only exist to be type-checked.
"""

from __future__ import annotations

import asyncio
from typing import Any, TypeVar, assert_never, assert_type

from pydantic import BaseModel

from cloudflare_durable import (
    DurableClient,
    DurableModel,
    Event,
    RemoteMethod,
    Subscription,
    remote,
)


class Message(BaseModel):
    author: str
    text: str


class Joined(Event):
    who: str


class Left(Event, name="left"):
    who: str


class Renamed(Event):
    old: str
    new: str


class Closed(Event):
    pass


class Reopened(Event):
    pass


class Counter(DurableModel, name="typing.Counter"):
    value: int = 0
    labels: dict[str, str] = {}

    @remote
    async def increment(self, by: int = 1) -> int:
        self.value += by
        return self.value

    @remote
    async def reset(self) -> None:
        self.value = 0

    @remote
    async def is_zero(self) -> bool:
        return self.value == 0

    @remote
    async def label_map(self) -> dict[str, str]:
        return dict(self.labels)

    @remote
    async def history(self, author: str, *, limit: int = 10) -> list[Message]:
        return [Message(author=author, text=str(self.value))][:limit]

    @remote(name="add_many")
    async def add(self, first: int, second: int | None = None) -> int:
        # Inside a method body the instance is live: other remote methods are plain calls.
        assert_type(await self.increment(first), int)
        self.emit(Joined(who="self"))
        return self.value + (second or 0)


class BigCounter(Counter, name="typing.BigCounter"):
    step: int = 10

    @remote
    async def big_step(self) -> int:
        return await self.increment(self.step)


CounterT = TypeVar("CounterT", bound=Counter)


async def remote_calls() -> None:
    handle = Counter.get("c1")
    assert_type(handle, Counter)
    assert_type(await Counter.get("c1").increment(1), int)
    assert_type(await handle.increment(), int)
    assert_type(await handle.increment(by=2), int)
    assert_type(await handle.reset(), None)
    assert_type(await handle.is_zero(), bool)
    assert_type(await handle.label_map(), dict[str, str])
    assert_type(await handle.history("ann"), list[Message])
    assert_type(await handle.history(author="ann", limit=3), list[Message])
    value: int = await handle.increment(1)
    assert_type(value, int)


async def renamed_on_the_wire() -> None:
    handle = Counter.get("c1")
    assert_type(await handle.add(1), int)
    assert_type(await handle.add(1, 2), int)
    assert_type(await handle.add(first=1, second=None), int)


async def calls_are_coroutines() -> None:
    handle = Counter.get("c1")
    task = asyncio.create_task(handle.increment(5))
    assert_type(task, asyncio.Task[int])
    results = await asyncio.gather(handle.increment(1), handle.is_zero())
    assert_type(results, tuple[int, bool])


async def class_attribute() -> None:
    method = Counter.increment
    remote_method: RemoteMethod[Any, Any, Any] = method
    assert_type(remote_method.wire_name, str)
    assert_type(Counter.add.wire_name, str)


async def handles_and_state(client: DurableClient) -> None:
    assert_type(Counter.get("x"), Counter)
    assert_type(Counter.get("x", client=client), Counter)
    assert_type(client.get(Counter, "x"), Counter)
    handle = Counter.get("x")
    assert_type(handle.durable_id, str)
    assert_type(handle.durable_version, int)
    assert_type(handle.durable_loaded, bool)
    assert_type(handle.durable_client, DurableClient)
    # Fields read on a handle that has not seen state raise NotLoadedError, and setting
    # them raises UsageError (use update() or a @remote method): mypy cannot tell.
    assert_type(handle.value, int)
    assert_type(handle.labels, dict[str, str])
    snapshot = await handle.load()
    assert_type(snapshot, Counter)
    assert_type(snapshot.value, int)


async def lifecycle(client: DurableClient) -> None:
    # The names and types in **fields are checked at run time only (ValidationError):
    # without a plugin, mypy cannot derive keyword parameters from the model's fields.
    assert_type(await Counter.create("x", value=1), Counter)
    assert_type(await Counter.create("x"), Counter)
    assert_type(await client.create(Counter, "x", value=1), Counter)
    handle = Counter.get("x")
    assert_type(await handle.update(value=2), Counter)
    assert_type(await handle.update(if_version=3, value=2), Counter)
    assert_type(await handle.delete(), bool)


async def subscriptions() -> None:
    handle = Counter.get("x")
    assert_type(handle.subscribe(), Subscription[Counter])
    async for snapshot in handle.subscribe():
        assert_type(snapshot, Counter)
        assert_type(snapshot.durable_version, int)
    async with handle.subscribe() as snapshots:
        assert_type(snapshots, Subscription[Counter])
        assert_type(snapshots.version, int | None)
        async for snapshot in snapshots:
            assert_type(snapshot, Counter)
    subscription = handle.subscribe()
    assert_type(await anext(subscription), Counter)
    await subscription.aclose()


async def events() -> None:
    handle = Counter.get("x")
    assert_type(handle.events(Joined), Subscription[Joined])
    assert_type(handle.events(Joined, Left), Subscription[Joined | Left])
    assert_type(handle.events(Joined, Left, Renamed), Subscription[Joined | Left | Renamed])
    assert_type(
        handle.events(Joined, Left, Renamed, Closed),
        Subscription[Joined | Left | Renamed | Closed],
    )
    # Past four types, items are typed as their common base class (mypy) or their
    # union (pyright): either way, as events.
    five: Subscription[Event] = handle.events(Joined, Left, Renamed, Closed, Reopened)
    print(five)
    async for event in handle.events(Joined, Left):
        assert_type(event, Joined | Left)
        match event:
            case Joined(who=who):
                assert_type(who, str)
            case Left():
                assert_type(event, Left)
            case _:
                assert_never(event)
    async with handle.events(Renamed) as renames:
        async for rename in renames:
            assert_type(rename.new, str)


def takes_any_events(events: Subscription[Event]) -> None:
    pass


def takes_counters(snapshots: Subscription[Counter]) -> None:
    pass


def subscriptions_are_covariant() -> None:
    joined = Counter.get("x").events(Joined, Left)
    takes_any_events(joined)
    big = BigCounter.get("b").subscribe()
    takes_counters(big)


async def sessions() -> None:
    handle = Counter.get("x")
    async with handle.session() as session:
        assert_type(session, Counter)
        assert_type(await session.increment(1), int)
        assert_type(await session.load(), Counter)


async def inheritance(client: DurableClient) -> None:
    big = BigCounter.get("b")
    assert_type(big, BigCounter)
    assert_type(await big.increment(2), int)
    assert_type(await big.big_step(), int)
    assert_type(await big.add(1, second=2), int)
    assert_type(await big.load(), BigCounter)
    assert_type(await BigCounter.create("b", step=3), BigCounter)
    assert_type(client.get(BigCounter, "b"), BigCounter)
    async for snapshot in big.subscribe():
        assert_type(snapshot, BigCounter)
        assert_type(snapshot.step, int)
    async with big.session() as session:
        assert_type(session, BigCounter)


async def generic_helper(handle: CounterT) -> CounterT:
    await handle.increment()
    return await handle.load()


async def generic_use() -> None:
    assert_type(await generic_helper(BigCounter.get("b")), BigCounter)


def events_are_pydantic_models() -> None:
    joined = Joined(who="ann")
    assert_type(joined.who, str)
    assert_type(Joined.__durable_event_name__, str)

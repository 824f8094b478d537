"""Handle, lifecycle and subscription misuse that mypy must reject (marked lines only)."""

from __future__ import annotations

from cloudflare_durable import DurableClient, DurableModel, Event, Subscription, remote


class Joined(Event):
    who: str


class Other(DurableModel, name="typing.fail.Other"):
    pass


class Counter(DurableModel, name="typing.fail.HandleCounter"):
    value: int = 0

    @remote
    async def increment(self, by: int = 1) -> int:
        self.value += by
        return self.value


async def handles(client: DurableClient) -> None:
    Counter.get(123)  # E: arg-type
    Counter.get("x", client="http://localhost")  # E: arg-type
    Counter.get("x", "y")  # E: call-arg, arg-type
    client.get(Counter, 1)  # E: arg-type
    client.get(int, "x")  # E: type-var
    other: Other = Counter.get("x")  # E: assignment
    version: str = Counter.get("x").durable_version  # E: assignment
    print(other, version)


async def lifecycle() -> None:
    handle = Counter.get("x")
    await Counter.create(123)  # E: arg-type
    await handle.update(if_version="3", value=1)  # E: arg-type
    deleted: str = await handle.delete()  # E: assignment
    snapshot: Other = await handle.load()  # E: assignment
    print(deleted, snapshot)


async def subscriptions() -> None:
    handle = Counter.get("x")
    others: Subscription[Other] = handle.subscribe()  # E: assignment
    async for snapshot in handle.subscribe():
        text: str = snapshot.value  # E: assignment
        print(text)
    for _item in handle.subscribe():  # E: attr-defined
        continue
    print(others)


async def events() -> None:
    handle = Counter.get("x")
    handle.events(int)  # E: type-var
    handle.events(Joined, str)  # E: type-var
    handle.events()  # E: call-overload
    handle.events(Joined(who="ann"))  # E: call-overload
    async for event in handle.events(Joined):
        count: int = event.who  # E: assignment
        print(count)

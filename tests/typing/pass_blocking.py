"""``cloudflare_durable.blocking`` keeps the types of what it waits for."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import assert_type

from cloudflare_durable import DurableModel, Event, blocking, remote


class Bumped(Event, name="typing.blocking.Bumped"):
    by: int


class Counter(DurableModel, name="typing.blocking.Counter"):
    value: int = 0

    @remote
    async def increment(self, by: int = 1) -> int:
        self.value += by
        self.emit(Bumped(by=by))
        return self.value

    @remote
    async def reset(self) -> None:
        self.value = 0


async def numbers() -> AsyncIterator[float]:
    yield 1.5


def scripts() -> None:
    counter = Counter.get("c1")
    assert_type(blocking.run(counter.increment(1)), int)
    assert_type(blocking.run(counter.reset()), None)
    assert_type(blocking.run(counter.load()), Counter)
    assert_type(blocking.run(Counter.create("c2", value=3)), Counter)
    assert_type(blocking.run(counter.delete()), bool)
    n: int = blocking.run(counter.increment(by=2))
    print(n)

    assert_type(blocking.iterate(counter.subscribe()), Iterator[Counter])
    for snapshot in blocking.iterate(counter.subscribe()):
        assert_type(snapshot, Counter)
        assert_type(snapshot.value, int)
    for event in blocking.iterate(counter.events(Bumped)):
        assert_type(event, Bumped)
    for number in blocking.iterate(numbers()):
        assert_type(number, float)

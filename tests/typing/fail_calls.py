"""Remote calls that mypy must reject: each marked line, and no other, is an error."""

from __future__ import annotations

from cloudflare_durable import DurableModel, remote


class Counter(DurableModel, name="typing.fail.Counter"):
    value: int = 0

    @remote
    async def increment(self, by: int = 1) -> int:
        self.value += by
        return self.value

    @remote(name="set_to")
    async def set_value(self, value: int) -> None:
        self.value = value


async def arguments() -> None:
    handle = Counter.get("c1")
    await handle.increment("one")  # E: arg-type
    await handle.increment(step=1)  # E: call-arg
    await handle.increment(1, 2)  # E: call-arg
    await handle.set_value()  # E: call-arg
    await handle.set_value(value=None)  # E: arg-type
    await handle.set_to(1)  # E: attr-defined


async def unknown_method() -> None:
    handle = Counter.get("c1")
    await handle.decrement()  # E: attr-defined


async def results() -> None:
    handle = Counter.get("c1")
    text: str = await handle.increment(1)  # E: assignment
    nothing: int = await handle.set_value(1)  # E: func-returns-value, assignment
    print(text, nothing)


async def forgotten_await() -> None:
    handle = Counter.get("c1")
    value: int = handle.increment(1)  # E: assignment
    handle.increment(1)  # E: unused-coroutine
    print(value + handle.increment(2))  # E: operator


async def class_attribute() -> None:
    handle = Counter.get("c1")
    await Counter.increment(handle, 1)  # E: operator

"""Model and event definitions that mypy must reject (marked lines only)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable

from cloudflare_durable import DurableModel, Event, remote


class Joined(Event):
    who: str


class Counter(DurableModel, name="typing.fail.DefinedCounter"):
    value: int = 0

    @remote  # E: arg-type
    def not_async(self) -> int:
        return self.value

    @remote(name="also_not_async")  # E: arg-type
    def not_async_either(self) -> int:
        return self.value

    @remote  # E: arg-type
    def returns_awaitable(self) -> Awaitable[int]:
        return self.increment(1)

    @remote  # E: arg-type
    async def stream(self) -> AsyncIterator[int]:
        yield self.value

    @remote  # E: arg-type
    @staticmethod
    async def no_self() -> int:
        return 0

    @remote(name=3)  # E: call-overload, untyped-decorator
    async def badly_named(self) -> int:
        return self.value

    @remote
    async def increment(self, by: int = 1) -> int:
        self.value += by
        return self.value

    @remote
    async def emits(self) -> None:
        self.emit(Joined(who=1))  # E: arg-type
        self.emit("joined")  # E: arg-type
        self.emit(Joined)  # E: arg-type


class NotAModel:
    @remote  # E: type-var
    async def go(self) -> int:
        return 1

"""Misuses of ``cloudflare_durable.blocking`` that type checkers must reject."""

from __future__ import annotations

from cloudflare_durable import DurableModel, blocking, remote


class Counter(DurableModel, name="typing.fail.blocking.Counter"):
    value: int = 0

    @remote
    async def increment(self, by: int = 1) -> int:
        self.value += by
        return self.value


def scripts() -> None:
    counter = Counter.get("c1")
    text: str = blocking.run(counter.increment(1))  # E: assignment
    blocking.run(counter.increment)  # E: arg-type
    blocking.run(counter.increment("one"))  # E: arg-type
    blocking.iterate(counter.increment(1))  # E: arg-type
    for snapshot in blocking.iterate(counter.subscribe()):
        print(snapshot.missing)  # E: attr-defined
    blocking.run(1)  # E: arg-type
    print(text)

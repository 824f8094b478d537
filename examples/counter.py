"""A counter: remote calls, typed results, and a live subscription.

Run it with ``python examples/counter.py``. With no ``CLOUDFLARE_WORKER_URL`` it
runs on the embedded host and keeps its state in ``durable.sqlite3`` (set
``CLOUDFLARE_DURABLE_STORE=:memory:`` for throwaway state); with it, the same
code talks to ``durable serve`` or the Worker.
"""

from __future__ import annotations

import anyio

from cloudflare_durable import DurableModel, remote


class Counter(DurableModel):
    value: int = 0

    @remote
    async def increment(self, by: int = 1) -> int:
        self.value += by
        return self.value

    @remote
    async def reset(self) -> None:
        self.value = 0


async def count_up(counter: Counter, times: int) -> None:
    for _ in range(times):
        value: int = await counter.increment(1)  # typed: int
        print(f"increment -> {value}")


async def main() -> None:
    counter = Counter.get("example-counter")
    await counter.reset()
    # Entering the subscription connects it: nothing that happens afterwards is missed.
    async with counter.subscribe() as snapshots, anyio.create_task_group() as tg:
        tg.start_soon(count_up, counter, 3)
        async for snapshot in snapshots:
            print(f"  seen: value={snapshot.value} (version {snapshot.durable_version})")
            if snapshot.value >= 3:
                break
    print(f"final value: {counter.value} at version {counter.durable_version}")


if __name__ == "__main__":
    anyio.run(main)

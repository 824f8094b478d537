"""A plain script: no ``async def``, no event loop of its own.

Run it with ``python examples/blocking_script.py``. ``blocking.run`` waits for
one call; ``blocking.iterate`` turns a subscription into an ordinary iterator.
Every call in the process shares one background event loop, so one client and
one store (or one connection pool to a server) serve them all.
"""

from __future__ import annotations

import threading

from counter import Counter

from cloudflare_durable import blocking


def count_up(counter: Counter, times: int) -> None:
    for _ in range(times):
        value: int = blocking.run(counter.increment(1))  # typed: int
        print(f"increment -> {value}")


def main() -> None:
    counter = Counter.get("blocking-example")
    blocking.run(counter.reset())
    for snapshot in blocking.iterate(counter.subscribe()):  # Counter snapshots
        print(f"  seen: value={snapshot.value} (version {snapshot.durable_version})")
        if snapshot.value == 0:
            threading.Thread(target=count_up, args=(counter, 3)).start()  # from another thread
        if snapshot.value >= 3:
            break  # leaving the loop closes the subscription
    print(f"counter at {blocking.run(counter.load()).value}")


if __name__ == "__main__":
    main()

"""Models served to the test suite: the examples' models, plus models that only
the Python hosts serve (for behaviour the Worker's objects do not have).

``durable serve tests/models.py`` serves all of them.
"""

from __future__ import annotations

import datetime
import sys
from pathlib import Path
from typing import Any

from pydantic import Field

ROOT_FOR_EXAMPLES = str(Path(__file__).resolve().parents[1] / "examples")
if ROOT_FOR_EXAMPLES not in sys.path:
    sys.path.insert(0, ROOT_FOR_EXAMPLES)

from auction import Auction, AuctionClosed, BidPlaced, Wallet  # noqa: E402
from bank import Account, Transfer  # noqa: E402
from chat_room import ChatRoom, Message, Posted  # noqa: E402
from collaborative_document import Document, Edited, Joined, Left  # noqa: E402
from counter import Counter  # noqa: E402

from cloudflare_durable import DurableModel, Event, RemoteError, remote  # noqa: E402

__all__ = [
    "Account",
    "Alarm",
    "Auction",
    "AuctionClosed",
    "BidPlaced",
    "ChatRoom",
    "Counter",
    "Document",
    "Edited",
    "Flaky",
    "Joined",
    "Ledger",
    "Left",
    "Message",
    "Noted",
    "Posted",
    "Profile",
    "Purse",
    "Rang",
    "Relay",
    "Shapes",
    "Teller",
    "Transfer",
    "Tricky",
    "Wallet",
]


class Profile(DurableModel, name="test.Profile"):
    """Has a required field: it cannot exist before ``create``."""

    email: str
    age: int = Field(default=0, ge=0)

    @remote
    async def birthday(self) -> int:
        self.age += 1
        return self.age


class Noted(Event, name="test.Noted"):
    text: str


class Ledger(DurableModel, name="test.Ledger"):
    """Changes state and then fails in various ways, to prove nothing half-done is kept."""

    entries: list[str] = []
    total: int = 0

    @remote
    async def add(self, entry: str, amount: int) -> int:
        self.entries = [*self.entries, entry]
        self.total += amount
        self.emit(Noted(text=entry))
        return self.total

    @remote
    async def add_then_fail(self, entry: str) -> None:
        self.entries.append(entry)
        self.total += 1000
        raise RuntimeError(f"refusing {entry}")

    @remote
    async def bad_result(self) -> int:
        self.total += 1
        return "not a number"  # type: ignore[return-value]

    @remote
    async def unserialisable(self) -> object:
        self.total += 1
        return object()

    @remote
    async def corrupt(self) -> None:
        self.entries.append(42)  # type: ignore[arg-type]

    @remote
    async def note(self, text: str) -> None:
        self.emit(Noted(text=text))

    @remote
    async def note_many(self, texts: list[str]) -> None:
        for text in texts:
            self.emit(Noted(text=text))


class Tricky(DurableModel, name="test.Tricky"):
    """Awaits inside its body, so concurrent calls interleave unless serialised."""

    value: int = 0

    @remote
    async def slow_increment(self) -> int:
        import anyio

        current = self.value
        await anyio.lowlevel.checkpoint()
        self.value = current + 1
        return self.value


class Relay(DurableModel, name="test.Relay"):
    """Calls other objects from its bodies: itself, back and forth, or in a cycle."""

    hops: int = 0

    @remote
    async def ping(self) -> int:
        self.hops += 1
        return self.hops

    @remote
    async def call_self(self) -> int:
        return await Relay.get(self.durable_id).ping()

    @remote
    async def call_back(self, other: str) -> int:
        """Asks ``other`` to call this object back (a cycle of two)."""
        return await Relay.get(other).forward(self.durable_id)

    @remote
    async def forward(self, to: str) -> int:
        self.hops += 1
        return await Relay.get(to).ping()

    @remote
    async def read_self(self) -> int:
        return (await Relay.get(self.durable_id).load()).hops

    @remote
    async def slow_then_call(self, other: str, delay: float) -> int:
        """Waits, then calls ``other``: two of these on each other wait on each other."""
        import anyio

        await anyio.sleep(delay)
        return await Relay.get(other).ping()


FAILURES: dict[str, int] = {}
"""How many more times Flaky.bump_then_fail fails, by object id (set by tests)."""


class Flaky(DurableModel, name="test.Flaky"):
    """Calls a counter, then fails while the test says so: a retried call must not
    call the counter twice."""

    runs: int = 0

    @remote
    async def bump_then_fail(self, counter: str) -> int:
        value = await Counter.get(counter).increment(1)
        if FAILURES.get(self.durable_id, 0) > 0:
            FAILURES[self.durable_id] -= 1
            raise RuntimeError("failing after the nested call")
        self.runs += 1
        return value


class Shapes(DurableModel, name="test.Shapes"):
    """Runs a program of awaits: checkpoints, timeouts, task groups and nested calls
    to counters, as any anyio code would."""

    runs: int = 0

    @remote
    async def run(self, program: list[dict[str, Any]]) -> int:
        await interpret(program)
        self.runs += 1
        return self.runs


async def interpret(steps: list[dict[str, Any]]) -> None:
    import anyio
    import anyio.lowlevel

    for step in steps:
        kind = step["do"]
        if kind == "sleep0" or kind == "checkpoint":
            await anyio.lowlevel.checkpoint()
        elif kind == "call":
            await Counter.get(step["target"]).increment(1)
        elif kind == "fail_after":
            with anyio.fail_after(10):
                await interpret(step["steps"])
        elif kind == "move_on_after":
            with anyio.move_on_after(10):
                await interpret(step["steps"])
        elif kind == "group":
            async with anyio.create_task_group() as group:
                for branch in step["steps"]:
                    group.start_soon(interpret, [branch])
        else:
            raise ValueError(f"unknown step {kind!r}")


class Purse(DurableModel, name="test.Purse"):
    """Money, taken and given with no bookkeeping of its own: a call applied twice
    moves money twice."""

    balance: int = 0

    @remote
    async def give(self, amount: int) -> int:
        self.balance += amount
        return self.balance

    @remote
    async def take(self, amount: int) -> int:
        if amount > self.balance:
            raise ValueError("not enough money")
        self.balance -= amount
        return self.balance


class Teller(DurableModel, name="test.Teller"):
    """A transfer written naively, one call after the other: only the request ids
    derived from the teller's own keep a re-run from moving money twice."""

    moved: int = 0

    @remote
    async def transfer(self, source: str, target: str, amount: int) -> bool:
        try:
            await Purse.get(source).take(amount)
        except RemoteError:
            return False
        await Purse.get(target).give(amount)
        self.moved += amount
        return True


class Rang(Event, name="test.Rang"):
    token: str


ALARM_FAILURES: dict[str, int] = {}
"""How many more times Alarm.flaky fails, by object id (set by tests on the embedded host)."""


class Alarm(DurableModel, name="test.Alarm"):
    """Calls itself later: each ring its schedules make is kept, in order."""

    rings: list[str] = []

    @remote
    async def arm(self, delay: float, token: str) -> str:
        return self.schedule(delay, self.ring, token)

    @remote
    async def arm_at(self, when: datetime.datetime, token: str) -> str:
        return self.schedule(when, self.ring, token=token)

    @remote
    async def arm_many(self, delays: list[float], prefix: str) -> list[str]:
        return [self.schedule(delay, self.ring, f"{prefix}{n}") for n, delay in enumerate(delays)]

    @remote
    async def arm_then_fail(self, delay: float) -> str:
        self.schedule(delay, self.ring, "never")
        raise RuntimeError("changed my mind")

    @remote
    async def arm_and_cancel(self, delay: float) -> bool:
        return self.cancel_schedule(self.schedule(delay, self.ring, "cancelled"))

    @remote
    async def arm_flaky(self, delay: float) -> str:
        return self.schedule(delay, self.flaky)

    @remote
    async def arm_bad(self, delay: float) -> str:
        return self.schedule(delay, self.ring, 42)  # type: ignore[arg-type]

    @remote
    async def arm_naive(self) -> str:
        return self.schedule(datetime.datetime(2030, 1, 1), self.ring, "naive")

    @remote
    async def ring(self, token: str) -> int:
        self.rings = [*self.rings, token]
        self.emit(Rang(token=token))
        return len(self.rings)

    @remote
    async def flaky(self) -> int:
        left = ALARM_FAILURES.get(self.durable_id, 0)
        if left > 0:
            ALARM_FAILURES[self.durable_id] = left - 1
            raise RuntimeError(f"failing {left} more time(s)")
        return await self.ring("flaky")

    @remote
    async def disarm(self, schedule_id: str) -> bool:
        return self.cancel_schedule(schedule_id)

    @remote
    async def ids(self, prefix: str) -> list[str]:
        """Lists the alarms from inside a body (on the host running it)."""
        return [object_id async for object_id in Alarm.list(prefix)]

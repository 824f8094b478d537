"""Models served to the test suite: the examples' models, plus models that only
the Python hosts serve (for behaviour the Worker's objects do not have).

``durable serve tests/models.py`` serves all of them.
"""

from __future__ import annotations

import sys
from pathlib import Path

from pydantic import Field

ROOT_FOR_EXAMPLES = str(Path(__file__).resolve().parents[1] / "examples")
if ROOT_FOR_EXAMPLES not in sys.path:
    sys.path.insert(0, ROOT_FOR_EXAMPLES)

from chat_room import ChatRoom, Message, Posted  # noqa: E402
from collaborative_document import Document, Edited, Joined, Left  # noqa: E402
from counter import Counter  # noqa: E402

from cloudflare_durable import DurableModel, Event, remote  # noqa: E402

__all__ = [
    "ChatRoom",
    "Counter",
    "Document",
    "Edited",
    "Joined",
    "Ledger",
    "Left",
    "Message",
    "Posted",
    "Profile",
    "Tricky",
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

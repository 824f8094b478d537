"""Models for the contract tests: every schema feature the Worker checks, a model
without methods, and one with methods. ``durable init worker`` is run on this
module in the tests (from a temporary folder outside the repository)."""

from __future__ import annotations

import datetime
import enum
import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from cloudflare_durable import DurableModel, Event, remote


class Kind(enum.StrEnum):
    SMALL = "small"
    LARGE = "large"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Point(BaseModel):
    x: int
    y: int = 0


class Circle(BaseModel):
    kind: Literal["circle"]
    radius: float = Field(gt=0)


class Square(BaseModel):
    kind: Literal["square"]
    side: float = Field(gt=0)


class Everything(DurableModel, name="contract.Everything"):
    """State only: every kind of field, constraint and default."""

    count: int = Field(default=0, ge=0, le=1000, multiple_of=2)
    ratio: float = Field(default=0.5, gt=0, lt=1)
    step: float = Field(default=0.5, multiple_of=0.25)
    name: str = Field(default="a", min_length=1, max_length=8, pattern=r"^[a-z]")
    flag: bool = False
    tags: list[str] = Field(default_factory=list, max_length=3)
    scores: dict[str, int] = Field(default_factory=dict, max_length=3)
    mode: Literal["a", "b", 1] = "a"
    kind: Kind = Kind.SMALL
    level: Level = Level.LOW
    point: Point = Point(x=0)
    points: list[Point] = []
    maybe: int | None = None
    either: int | str = 0
    shape: Annotated[Circle | Square, Field(discriminator="kind")] | None = None
    at: datetime.datetime | None = None
    day: datetime.date | None = None
    uid: uuid.UUID | None = None
    anything: Any = None
    nested: list[dict[str, list[int]]] = []


class Profile(DurableModel, name="contract.Profile"):
    """State only, with a required field: it must be created first."""

    email: str = Field(min_length=3)
    age: int = Field(default=0, ge=0)


class Scored(Event, name="contract.Scored"):
    player: str
    points: int


class Game(DurableModel, name="contract.Game"):
    """With methods: the tests fill in their bodies on the Worker."""

    scores: dict[str, int] = {}
    rounds: int = Field(default=0, ge=0)

    @remote
    async def score(self, player: str, points: int = 1) -> int:
        """Adds points to a player; returns the player's total."""
        if points <= 0:
            raise ValueError("points must be positive")
        self.scores = {**self.scores, player: self.scores.get(player, 0) + points}
        self.emit(Scored(player=player, points=points))
        return self.scores[player]

    @remote
    async def leader(self) -> str | None:
        return max(self.scores, key=lambda p: self.scores[p]) if self.scores else None

    @remote
    async def probe(
        self,
        count: Annotated[int, Field(ge=0, multiple_of=2)],
        when: datetime.datetime,
        point: Point,
        tags: list[str] = [],  # noqa: B006 - a default for the wire, never mutated
        mode: Literal["a", "b"] = "a",
        extra: Any = None,
    ) -> bool:
        """Checks its arguments and does nothing else."""
        return True

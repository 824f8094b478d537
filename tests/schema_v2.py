"""Version 2 of the models of ``tests/schema_v1.py``: a field removed, one renamed, one
whose type changed, each with its migration from version 1."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from cloudflare_durable import DurableModel, migration, remote


class Shrink(DurableModel, name="test.Shrink", schema_version=2):
    kept: int = 0

    @migration(from_version=1)
    @staticmethod
    def drop_legacy(data: dict[str, Any]) -> dict[str, Any]:
        data.pop("legacy", None)
        return data

    @remote
    async def bump(self) -> int:
        self.kept += 1
        return self.kept


class Rename(DurableModel, name="test.Rename", schema_version=2):
    name: str = ""

    @migration(from_version=1)
    @staticmethod
    def title_to_name(data: dict[str, Any]) -> dict[str, Any]:
        data["name"] = data.pop("title")
        return data

    @remote
    async def describe(self) -> str:
        return self.name

    @remote
    async def rename(self, name: str) -> None:
        self.name = name


class Retype(DurableModel, name="test.Retype", schema_version=2):
    cents: int = 0

    @migration(from_version=1)
    @staticmethod
    def to_cents(data: dict[str, Any]) -> dict[str, Any]:
        return {"cents": int(Decimal(data.pop("price")) * 100)}

    @remote
    async def describe(self) -> str:
        return f"{self.cents / 100:.2f}"


MIGRATED: dict[type[DurableModel], dict[str, Any]] = {
    Shrink: {"kept": 3},
    Rename: {"name": "teapot"},
    Retype: {"cents": 1250},
}

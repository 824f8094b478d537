"""Schedules, listing and migrations as users write them: every line must pass
``mypy --strict`` and pyright (strict). Nothing here runs."""

from __future__ import annotations

import datetime
from collections.abc import AsyncIterator
from typing import Any, assert_type

from cloudflare_durable import DurableModel, Schedule, migration, remote


class Auction(DurableModel, name="typing.time.Auction", schema_version=3):
    item: str = ""
    closed: bool = False
    reminders: list[str] = []

    @migration(from_version=1)
    @staticmethod
    def rename_title(data: dict[str, Any]) -> dict[str, Any]:
        data["item"] = data.pop("title")
        return data

    @migration(from_version=2)
    @staticmethod
    def add_reminders(data: dict[str, Any]) -> dict[str, Any]:
        data.setdefault("reminders", [])
        return data

    @remote
    async def open(self, closes_at: datetime.datetime) -> str:
        closing = self.schedule(closes_at, self.close)
        assert_type(closing, str)
        self.schedule(datetime.timedelta(minutes=5), self.remind, "five minutes", loud=True)
        self.schedule(60, self.remind, text="a minute")
        self.schedule(0.5, self.remind, "soon", True)
        return closing

    @remote
    async def close(self) -> bool:
        self.closed = True
        return True

    @remote
    async def remind(self, text: str, loud: bool = False) -> None:
        self.reminders = [*self.reminders, text.upper() if loud else text]

    @remote
    async def reopen(self, schedule_id: str) -> bool:
        cancelled = self.cancel_schedule(schedule_id)
        assert_type(cancelled, bool)
        return cancelled


async def handles() -> None:
    auction = Auction.get("a")
    pending = await auction.schedules()
    assert_type(pending, list[Schedule])
    for entry in pending:
        assert_type(entry.id, str)
        assert_type(entry.when, datetime.datetime)
        assert_type(entry.method, str)
        assert_type(entry.args, dict[str, Any])
        assert_type(entry.attempts, int)
        assert_type(entry.error, dict[str, Any] | None)
    ids = Auction.list("a-", limit=10)
    assert_type(ids, AsyncIterator[str])
    async for object_id in Auction.list():
        assert_type(object_id, str)

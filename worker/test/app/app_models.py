"""The models the test Worker (worker/test/app) serves, for tests that run on workerd:
test models of tests/models.py whose objects call each other, and models of its own
for schedules and schema versions (their Python bodies show what the TypeScript ones
do; they run on hosts with schedules). Regenerate its code from the repository's root:

    durable codegen typescript worker/test/app/app_models.py --out worker/test/app/src/generated
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from pydantic import AwareDatetime

ROOT = str(Path(__file__).resolve().parents[3])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from cloudflare_durable import DurableModel, remote  # noqa: E402
from tests.models import Purse, Relay, Teller  # noqa: E402

__all__ = ["Item", "Purse", "Relay", "Teller", "Timer"]


class Timer(DurableModel, name="app.Timer"):
    """Calls itself later: each note it is asked to fire later is fired once."""

    fired: list[str] = []
    blocked: bool = False
    """While set, ``fire`` fails (so its schedules are tried again, then kept as failed)."""

    @remote
    async def later(self, note: str, seconds: float) -> str:
        return self.schedule(seconds, self.fire, note)  # type: ignore[attr-defined,no-any-return]

    @remote
    async def at(self, note: str, when: AwareDatetime) -> str:
        return self.schedule(when, self.fire, note)  # type: ignore[attr-defined,no-any-return]

    @remote
    async def cancel(self, schedule_id: str) -> bool:
        return self.cancel_schedule(schedule_id)  # type: ignore[attr-defined,no-any-return]

    @remote
    async def fire(self, note: str) -> int:
        if self.blocked:
            raise RuntimeError(f"blocked: {note} not fired")
        self.fired = [*self.fired, note]
        return len(self.fired)

    @remote
    async def block(self, blocked: bool) -> None:
        self.blocked = blocked


class Item(DurableModel, name="app.Item"):
    """Schema version 2: version 1 called ``name`` ``title``."""

    name: str = ""
    count: int = 0

    @remote
    async def bump(self) -> int:
        self.count += 1
        return self.count

    @staticmethod
    def rename_title(data: dict[str, Any]) -> dict[str, Any]:
        data["name"] = data.pop("title", "")
        return data


# As the class keyword ``schema_version=2`` sets it (with ``@migration(from_version=1)``
# on ``rename_title``), for the code generated from this module.
Item.__durable_schema_version__ = 2  # type: ignore[attr-defined]

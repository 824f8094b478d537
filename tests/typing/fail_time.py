"""Schedules that mypy and pyright must reject: each marked line, and no other."""

from __future__ import annotations

import datetime

from cloudflare_durable import DurableModel, remote


class Timer(DurableModel, name="typing.fail.Timer"):
    count: int = 0

    @remote
    async def ring(self, times: int, label: str = "") -> int:
        self.count += times
        return self.count

    @remote
    async def arm(self) -> None:
        self.schedule(1, self.ring, "three")  # E: arg-type
        self.schedule(1, self.ring)  # E: call-arg
        self.schedule(1, self.ring, 3, "x", "extra")  # E: call-arg
        self.schedule(1, self.ring, 3, colour="red")  # E: call-arg
        self.schedule("soon", self.ring, 3)  # E: arg-type
        self.schedule(datetime.date(2030, 1, 1), self.ring, 3)  # E: arg-type
        self.schedule(1, self.count, 3)  # E: arg-type
        self.cancel_schedule(3)  # E: arg-type
        when: str = self.schedule(1, self.ring, 3)
        missing: int = self.schedule(1, self.ring, 3)  # E: assignment
        print(when, missing)


async def listing() -> None:
    async for object_id in Timer.list(prefix=3):  # E: arg-type
        print(object_id)
    count: int = await Timer.get("t").schedules()  # E: assignment
    print(count)

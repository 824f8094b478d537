"""Schedules: each runs once, at or after its time, as a call of its object.

A host's ``Scheduler`` asks the store for the pending schedules that are due and
runs each as a call of its method on its object, with the request id
``schedule:<id>``, through the object's queue (one at a time with its other
calls). The batch that runs it removes it in the same transaction as the call's
change, or records the failed attempt (``_operations.Batch``), so a schedule
runs once whatever happens to the process: a run that did not commit left the
schedule pending, and runs again after a restart.

``run`` is the loop a ``Host.running()`` block keeps going: it sleeps until the
next schedule is due, a commit makes an earlier one, a run ends, or, on a store
file other processes may share, the poll interval passes. ``catch_up`` runs
what is due now in the caller's task (a host nobody runs).
"""

from __future__ import annotations

import json
import logging
import math
import time
from typing import TYPE_CHECKING, Final

import anyio
import anyio.abc

from .. import _exceptions as exc
from .. import _protocol as proto
from ._store import ScheduleRow, Store

if TYPE_CHECKING:
    from ._runtime import Host

__all__ = ["FIRING", "Scheduler"]

logger = logging.getLogger("cloudflare_durable.host")

FIRING: Final = 64
"""Schedules run at once (each in its object's queue)."""
PUT_OFF: Final = 1000
"""Milliseconds a schedule waits after a run that failed before it could be recorded
(the object was busy in another process, the host was closing...)."""

Due = tuple[str, str, ScheduleRow]


def now_ms() -> int:
    return int(time.time() * 1000)


class Scheduler:
    """Runs one host's schedules."""

    def __init__(self, host: Host, store: Store, poll_interval: float) -> None:
        self._host = host
        self._store = store
        self._poll_interval = poll_interval
        self._wakeup = anyio.Event()
        self._planned = math.inf  # when the loop means to look again (milliseconds)
        self._firing: set[str] = set()
        self._later: dict[str, int] = {}  # schedule id -> not before (milliseconds)

    def wake(self, due: int) -> None:
        """A schedule is due at ``due``: look again then, if that is earlier than planned."""
        if due < self._planned:
            self._wakeup.set()

    async def run(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        async with anyio.create_task_group() as group:
            task_status.started()
            try:
                while not self._host.closed:
                    self._wakeup = anyio.Event()
                    now = now_ms()
                    full = self._start_due(group, now)
                    self._planned = math.inf if full else self._next(now)
                    delay = min(max(self._planned - now, 0) / 1000, self._poll_interval)
                    with anyio.move_on_after(delay):
                        await self._wakeup.wait()
            finally:
                self._planned = math.inf

    async def catch_up(self) -> int:
        """Run every schedule due now, in the caller's task; returns how many ran."""
        total = 0
        while not self._host.closed:
            due = self._startable(now_ms())
            if not due:
                break
            async with anyio.create_task_group() as group:
                for model, object_id, row in due:
                    self._firing.add(row.id)
                    group.start_soon(self._fire, model, object_id, row)
            total += len(due)
        return total

    # -- machinery ------------------------------------------------------------

    def _startable(self, now: int) -> list[Due]:
        """Due schedules not running already, nor put off; at most what may start now."""
        room = FIRING - len(self._firing)
        if room <= 0:
            return []
        names = [model.__durable_name__ for model in self._host.served_models()]
        found = []
        for model, object_id, row in self._store.due_schedules(now, FIRING * 2, names):
            if row.id in self._firing or self._later.get(row.id, 0) > now:
                continue
            found.append((model, object_id, row))
            if len(found) >= room:
                break
        return found

    def _start_due(self, group: anyio.abc.TaskGroup, now: int) -> bool:
        """Start the due schedules; True if more are due than may run at once."""
        for later in [key for key, until in self._later.items() if until <= now]:
            del self._later[later]
        due = self._startable(now)
        for model, object_id, row in due:
            self._firing.add(row.id)
            group.start_soon(self._fire, model, object_id, row)
        return len(self._firing) >= FIRING

    def _next(self, now: int) -> float:
        """When a schedule not running yet is next due (milliseconds)."""
        names = [model.__durable_name__ for model in self._host.served_models()]
        found = self._store.next_due(names, after=now)
        planned = math.inf if found is None else float(found)
        if self._later:
            planned = min(planned, float(min(self._later.values())))
        return planned

    async def _fire(self, model: str, object_id: str, row: ScheduleRow) -> None:
        try:
            op = proto.Call(
                model,
                object_id,
                row.method,
                json.loads(row.args),
                request_id=proto.SCHEDULE_REQUEST_PREFIX + row.id,
            )
            try:
                outcome: exc.DurableError | object = await self._host.fire(
                    model, object_id, row.id, op
                )
            except exc.DurableError as error:
                outcome = error
            if isinstance(outcome, exc.DurableError) and not self._host.closed:
                after = self._store.schedule(model, object_id, row.id)
                if after is not None and after.attempts == row.attempts:
                    # The run failed before its batch could record it: put it off a little.
                    logger.info("schedule %s put off: %s", row.id, outcome.message)
                    self._later[row.id] = now_ms() + PUT_OFF
        finally:
            self._firing.discard(row.id)
            self._wakeup.set()

"""One operation at a time per object: the queue, the drain and the commit.

Operations on one object queue in its cell. Whoever finds the cell idle drains
the queue: it takes every queued operation as one batch, applies them in order
(``_operations.Batch``), commits the batch's end state and request-id records
in one transaction, and only then, call by call, tells subscribers of the
call's change and answers the call. So each acknowledged change is durable,
pipelined calls share one commit, and on a connection that subscribes and calls
at once each call's snapshot and events come before its result.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import anyio

from .. import _exceptions as exc
from .. import _protocol as proto
from .._context import Key, Ticket
from .._models import schema_version_of
from ._fanout import publish
from ._objects import EventLog
from ._operations import Applied, Batch, Outcome
from ._store import Store, VersionMoved, Write

if TYPE_CHECKING:
    from ._objects import Cell, Cells

__all__ = ["MAX_BATCH", "Pending", "Queue"]

logger = logging.getLogger("cloudflare_durable.host")

MAX_BATCH: Final = 512
"""Operations of one object applied together and committed in one transaction."""
MAX_RERUNS: Final = 8
"""Times a batch is re-run on fresh state when another process changed its object."""

Drain = Callable[[], Coroutine[Any, Any, None]]


@dataclass(slots=True)
class Pending:
    """One queued operation: what it asks, who waits for it, and where it came from."""

    op: proto.Mutation
    done: Callable[[Outcome], None]
    ticket: Ticket
    chain: tuple[Key, ...] = ()
    """The objects whose bodies are waiting on this operation (empty from outside)."""
    fire: str | None = None
    """The schedule this call runs, if it runs one."""


class Queue:
    """Drains the queues of one host's cells."""

    def __init__(self, host: Any, store: Store, cells: Cells) -> None:
        self._host = host
        self._store = store
        self._cells = cells
        self.closed = False

    def submit(self, cell: Cell, pending: Pending) -> Drain | None:
        """Queue ``pending``; if the object is idle, return the coroutine function to drain it.

        The caller must run what is returned (``await it()``, or start it in its
        task group): that is what runs the queue, ``pending`` included.
        """
        cell.queue.append(pending)
        if cell.draining:
            return None
        cell.draining = True
        return lambda: self._drain(cell)

    async def _drain(self, cell: Cell) -> None:
        # The operations of other callers ride on this drain, so it must not be
        # cancelled halfway: it runs shielded, and method bodies run inside it as
        # ordinary code (their own cancel scopes and timeouts nest in this one).
        try:
            with anyio.CancelScope(shield=True):
                while cell.queue:
                    count = min(MAX_BATCH, len(cell.queue))
                    batch = [cell.queue.popleft() for _ in range(count)]
                    try:
                        await self._run(cell, batch)
                    except Exception:
                        self._failed(cell, batch)
        finally:
            cell.draining = False

    def _failed(self, cell: Cell, batch: list[Pending]) -> None:
        """A batch failed in a way no operation answers for (say, a state SQLite cannot
        store): forget the working state, so that the object is not left broken, and
        answer every operation, so that no caller waits forever."""
        logger.exception("a batch of %s %r failed", cell.name, cell.object_id)
        self._cells.reload(cell)
        failure = exc.ServerError("unexpected server failure; nothing was applied")
        for pending in batch:
            pending.done(failure)

    async def _run(self, cell: Cell, batch: list[Pending]) -> None:
        for _ in range(MAX_RERUNS):
            if self.closed:
                break
            start = cell.version
            run = Batch(self._host, self._cells, cell)
            applied = [await run.apply(pending) for pending in batch]
            if not run.changed and not run.bookkeeping:
                # Nothing to commit, so no version check: make sure no other process
                # changed the object under these answers (a write is checked at commit).
                if self._cells.catch_up(cell):
                    continue
                _settle(cell, batch, applied)
                return
            log, now = self._log_plan(cell, run)
            write = Write(
                run.version,
                run.present,
                run.written,
                run.clear,
                run.remember,
                schema_version_of(cell.model),
                run.logged,
                log[1],
                run.schedule_ops,
                run.changed,
                now,
            )
            try:
                self._store.commit(cell.name, cell.object_id, start, write)
            except VersionMoved:
                self._cells.reload(cell)
                continue
            except sqlite3.Error:
                logger.exception("storing a change of %s %r failed", cell.name, cell.object_id)
                self._cells.reload(cell)
                failure = exc.ServerError("storing the change failed; nothing was applied")
                for pending in batch:
                    pending.done(failure)
                return
            _committed(cell, run)
            if run.logged and cell.log is not None:
                cell.log.update(EventLog.entries(run.logged, now), log[0])
            cell.remember(run.remember, self._store.max_requests)
            if run.schedule_ops:
                self._host._schedules_changed(run.schedule_ops)
            _settle(cell, batch, applied)
            return
        busy = exc.UnavailableError("the object is busy in another process")
        for pending in batch:
            pending.done(busy)

    def _log_plan(self, cell: Cell, run: Batch) -> tuple[tuple[int, int], float]:
        """What to drop from the object's event log to keep it within its bounds once the
        batch's events are in it: (how many of its oldest versions, the last of them)."""
        if not run.logged:
            return (0, 0), 0.0
        now = time.time()
        if cell.log is None:
            cell.log = EventLog(self._store.log_summary(cell.name, cell.object_id))
        return cell.log.to_drop(EventLog.entries(run.logged, now), now), now


def _committed(cell: Cell, run: Batch) -> None:
    """The batch is stored: its working state becomes the cell's."""
    cell.version, cell.bytes = run.version, run.bytes
    if run.clear:
        cell.values = {}
        cell.migrated = False
    cell.refused = run.refused
    cell.texts = run.texts
    if run.texts is not None:
        cell.values.update(run.values)
    cell.history.extend(run.entries)


def _settle(cell: Cell, batch: list[Pending], applied: list[Applied]) -> None:
    """Call by call: tell subscribers of its change, then answer it."""
    for pending, outcome in zip(batch, applied, strict=True):
        if outcome.change is not None and cell.subscribers:
            publish(cell.subscribers, outcome.change)
        pending.done(outcome.outcome)

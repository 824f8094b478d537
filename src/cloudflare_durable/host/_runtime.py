"""The host runtime: ``Host`` serves ``DurableModel`` objects from one SQLite store.

It ties together the cells of its objects (``_objects``), their queues
(``_queue``), what each operation means (``_operations``), the fan-out to
subscribers (``_fanout``) and the schedules (``_scheduler``). An operation a
method body sends to this same host (a handle used inside the body) is checked
for re-entry into its chain of calls and given a request id derived from the
body's own.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from typing import Any, Final

import anyio
import anyio.lowlevel

from .. import _context
from .. import _exceptions as exc
from .. import _protocol as proto
from .._config import DEFAULT_TIMEOUT, store_path
from .._models import DurableModel, registered_models, schema_version_of
from ._fanout import Change, Subscriber, TextSink
from ._objects import Cell, Cells
from ._operations import Outcome, encoded_state, validated_state
from ._queue import Drain, Pending, Queue
from ._scheduler import Scheduler
from ._store import AddSchedule, LoggedEvent, RetrySchedule, ScheduleOp, Store

__all__ = ["Host"]

YIELD_EVERY: Final = 8
POLL_INTERVAL: Final = 0.5
"""How often an idle subscriber of a shared store file looks for other processes' writes."""


class Host:
    """Serves ``DurableModel`` objects from one SQLite store.

    ``store`` is a file path or ``":memory:"``. ``models`` limits which models
    are served (default: every ``DurableModel`` defined in the process).
    ``call_timeout`` bounds, in seconds, how long a method body waits for each call
    it makes to another object (so bodies waiting on each other give up).
    """

    def __init__(
        self,
        store: str = ":memory:",
        *,
        models: Iterable[type[DurableModel]] | None = None,
        request_ttl: float = proto.IDEMPOTENCY_TTL_SECONDS,
        max_requests: int = proto.IDEMPOTENCY_MAX_PER_OBJECT,
        poll_interval: float | None = None,
        call_timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        path = store_path(store)
        self.call_timeout = call_timeout
        self._store = Store(path, request_ttl=request_ttl, max_requests=max_requests)
        self._models = None if models is None else {m.__durable_name__: m for m in models}
        self._cells = Cells(self._store)
        self._queue = Queue(self, self._store, self._cells)
        self._closed = False
        self._unyielded = 0
        shared = path != ":memory:"
        self.poll_interval = poll_interval or (POLL_INTERVAL if shared else math.inf)
        self._scheduler = Scheduler(self, self._store, POLL_INTERVAL if shared else math.inf)
        self._running = 0  # how many ``running()`` blocks are open
        self._catching_up = False
        self._next_due = self._store.next_due()
        """When the earliest pending schedule this host knows of is due (milliseconds), for
        hosts whose schedules run only when they are used (``fire_due``)."""

    # -- lifecycle --------------------------------------------------------

    @property
    def store(self) -> Store:
        return self._store

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        if not self._closed:
            self._closed = self._queue.closed = True
            self._scheduler.wake(-1)
            for cell in self._cells:
                for subscriber in list(cell.subscribers):
                    subscriber.close()
            self._store.close()

    async def __aenter__(self) -> Host:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()

    # -- schedules ----------------------------------------------------------

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Host]:
        """While the block runs, run the schedules as they fall due (those already due
        first), in a task of the block's own, cancelled when it ends::

            async with host.running():
                ...

        ``durable serve`` runs its host this way, and so does a ``DurableClient`` entered
        with ``async with`` on the embedded host it starts.
        """
        async with anyio.create_task_group() as group:
            await group.start(self._scheduler.run)
            self._running += 1
            try:
                yield self
            finally:
                self._running -= 1
                group.cancel_scope.cancel()

    @property
    def runs_schedules(self) -> bool:
        return self._running > 0

    async def fire_due(self) -> int:
        """Run the schedules that are due now, in the caller's task; returns how many ran.
        For a host no ``running()`` block runs (the default client's)."""
        if self._catching_up or self._closed:
            return 0
        self._catching_up = True
        try:
            count = await self._scheduler.catch_up()
        finally:
            self._catching_up = False
            self._next_due = None if self._closed else self._store.next_due()
        return count

    def due(self) -> bool:
        """Whether a schedule this host knows of is due (no query: a time compared)."""
        due = self._next_due
        return due is not None and due <= time.time() * 1000

    def _schedules_changed(self, ops: Sequence[ScheduleOp]) -> None:
        """A commit made schedules or put one off: the scheduler may wake up earlier."""
        for op in ops:
            due = op.row.due if isinstance(op, AddSchedule) else None
            if isinstance(op, RetrySchedule) and op.status == "pending":
                due = op.due
            if due is not None:
                if self._next_due is None or due < self._next_due:
                    self._next_due = due
                self._scheduler.wake(due)

    async def fire(self, model: str, object_id: str, schedule_id: str, op: proto.Call) -> Outcome:
        """Run one schedule as a call of its object (queued like any other operation)."""
        cell = self._cell(model, object_id)
        waiter = _Waiter()
        pending = Pending(op, waiter.done, _context.Ticket(op.request_id), fire=schedule_id)
        drain = self._queue.submit(cell, pending)
        if drain is not None:
            await drain()
        return waiter.outcome if waiter.outcome is not None else await waiter.wait()

    # -- models -----------------------------------------------------------

    def served_models(self) -> list[type[DurableModel]]:
        """The models this host serves, by wire name."""
        models = self._models if self._models is not None else registered_models()
        return [models[name] for name in sorted(models)]

    def model(self, name: str) -> type[DurableModel]:
        models = self._models if self._models is not None else registered_models()
        model = models.get(name)
        if model is None:
            raise exc.UnknownModelError(f"no model named {name!r} is served here")
        return model

    # -- operations -------------------------------------------------------

    async def perform(self, op: proto.Operation) -> proto.Reply:
        """Perform ``op`` and return its reply, or raise the error it met."""
        op, chain = self._from_body(op)
        cell = self._cell(op.model, op.object_id)
        if isinstance(op, proto.Read):
            self._poll(cell)
            return _read(cell, op.have)
        waiter = _Waiter()
        drain = self._queue.submit(
            cell, Pending(op, waiter.done, _context.Ticket(op.request_id), chain)
        )
        if drain is not None:
            await drain()  # usually answers our own operation on the way
            self._unyielded += 1
            if self._unyielded >= YIELD_EVERY:
                # A drain that never had to wait never gave the event loop a turn:
                # now and then, let other tasks run, so a loop of calls starves nobody.
                self._unyielded = 0
                await anyio.lowlevel.checkpoint()
        outcome = waiter.outcome if waiter.outcome is not None else await waiter.wait()
        if isinstance(outcome, exc.DurableError):
            raise outcome
        return outcome

    async def query(self, query: proto.Query) -> dict[str, Any]:
        """Answer ``query`` with the JSON body the network host sends for it."""
        if self._closed:
            raise exc.UnavailableError("the host is closed", retryable=False)
        self.model(query.model)
        if isinstance(query, proto.ListSchedules):
            proto.check_object_id(query.object_id)
            rows = self._store.schedules(query.model, query.object_id)
            return {"schedules": [schedule_json(row) for row in rows]}
        ids = self._store.list_ids(query.model, query.prefix, query.after, query.limit + 1)
        more = len(ids) > query.limit
        ids = ids[: query.limit]
        return proto.ObjectPage(ids, ids[-1] if more else None).to_json()

    async def create_many(self, model: str, states: dict[str, dict[str, Any]]) -> dict[str, int]:
        """Create many objects of ``model`` (fields by object id) in one transaction: all
        or nothing. Returns each object's version; ``AlreadyExistsError`` if one of them
        already has state."""
        model_class = self.model(model)
        if _context.current() is not None:
            raise exc.UsageError("create_many cannot be called from inside a method body")
        texts = {}
        for object_id, fields in states.items():
            proto.check_object_id(object_id)
            texts[object_id] = encoded_state(model, validated_state(model_class, fields))[0]
        busy = [oid for oid in texts if (cell := self._cells.cached(model, oid)) and not cell.idle]
        if busy:
            raise exc.OverloadedError(
                f"{len(busy)} of these objects are busy ({busy[0]!r}...); create them one by one"
            )
        self._cells.refresh_epoch()
        versions = self._store.create_many(model, texts, schema_version_of(model_class))
        for object_id in texts:
            self._cells.forget(model, object_id)
        return versions

    def _submit(self, op: proto.Mutation, done: Callable[[Outcome], None]) -> Drain | None:
        """Queue ``op`` (from outside any body); if the object is idle, return the
        coroutine function the caller must run to drain it (the network host starts
        it in a connection's task group)."""
        cell = self._cell(op.model, op.object_id)
        return self._queue.submit(cell, Pending(op, done, _context.Ticket(op.request_id)))

    def subscribe(
        self,
        model: str,
        object_id: str,
        frame: proto.SubscribeFrame,
        sink: TextSink | None = None,
    ) -> Subscriber:
        """Register a subscriber; it holds the current snapshot first if it is newer,
        then, if it resumes (``since``) and asked for events, the logged events after
        ``since``.

        With ``sink``, frames are handed to it as text, synchronously, in order,
        instead of queueing as messages for ``receive()`` (a network connection's
        own outbox).
        """
        self._from_body(proto.Read(model, object_id))
        cell = self._cell(model, object_id)
        self._poll(cell)
        if cell.refused is not None:
            refused = cell.refused
            raise type(refused)(refused.message, details=refused.details)
        subscriber = Subscriber(
            frame,
            poll=lambda: self._poll(cell),
            poll_interval=self.poll_interval,
            detach=cell.subscribers.discard,
            sink=sink,
        )
        cell.subscribers.add(subscriber)
        _offer(cell, subscriber)
        if frame.since is not None and frame.events:
            subscriber.replay(*self._logged(cell, frame.since))
        return subscriber

    def _logged(self, cell: Cell, since: int) -> tuple[tuple[int, int] | None, list[LoggedEvent]]:
        """The logged events of versions ``since + 1`` up to the object's, and the gap
        (``since``, ``until``) if the log no longer holds them all."""
        if since >= cell.version:
            return None, []
        events, dropped = self._store.logged_events(
            cell.name, cell.object_id, since, cell.version, proto.EVENT_LOG_SECONDS
        )
        gap = None
        if dropped > since:
            gap = (since, events[0].version - 1 if events else cell.version)
        return gap, events

    # -- machinery --------------------------------------------------------

    def _from_body(self, op: proto.Operation) -> tuple[proto.Operation, tuple[_context.Key, ...]]:
        """For an operation a method body of this host sends: refuse re-entry into the
        chain, and derive its request id from the body's."""
        body = _context.current()
        if body is None or body.host is not self:
            return op, ()
        key = (op.model, op.object_id)
        if key in body.chain:
            raise exc.ReentrancyError(
                f"{body.describe(key)}: {op.model}({op.object_id!r}) is already running a "
                "method in this chain of calls, and would wait for itself forever"
            )
        if isinstance(op, proto.MUTATIONS) and op.request_id is None:
            op = dataclasses.replace(op, request_id=body.nested_request_id(key))
        return op, body.chain

    def forget(self, model: str, object_id: str) -> None:
        """Drop what is cached of an object (its store changed behind this host), unless
        it is in use."""
        self._cells.forget(model, object_id)

    def _cell(self, model: str, object_id: str) -> Cell:
        if self._closed:
            raise exc.UnavailableError("the host is closed", retryable=False)
        return self._cells.get(self.model(model), object_id)

    def _poll(self, cell: Cell) -> None:
        """Catch up with changes another process made to the same store."""
        if self._closed or cell.draining:
            return
        if self._cells.catch_up(cell):
            for subscriber in list(cell.subscribers):
                self._catch_up(cell, subscriber)

    def _catch_up(self, cell: Cell, subscriber: Subscriber) -> None:
        """Bring ``subscriber`` to the object's version, which another process made: the
        events of the versions it skips, its state, then that version's own events (in
        the order the versions' own frames would have come)."""
        seen = subscriber.last_version
        if seen < 0 or not subscriber.frame.events:
            _offer(cell, subscriber)
            return
        gap, events = self._logged(cell, seen)
        subscriber.replay(gap, [e for e in events if e.version < cell.version])
        _offer(cell, subscriber)
        subscriber.replay(None, [e for e in events if e.version == cell.version])


def schedule_json(row: Any) -> dict[str, Any]:
    """A stored schedule as ``GET .../schedules`` lists it."""
    return {
        "id": row.id,
        "when": proto.format_time(row.at),
        "method": row.method,
        "args": json.loads(row.args),
        "attempts": row.attempts,
        "status": row.status,
        "error": None if row.error is None else json.loads(row.error),
    }


def _read(cell: Cell, have: int | None) -> proto.Reply:
    """The object's state, or, when the reader holds an older version the history
    reaches, the fields changed since."""
    if cell.refused is not None:
        refused = cell.refused
        raise type(refused)(refused.message, details=refused.details)
    if have is not None and cell.texts is not None:
        names = cell.changed_since(have)
        if names is not None:
            fields = {name: cell.state_field(name) for name in cell.texts if name in names}
            return proto.Reply(200, cell.version, patch=proto.Patch(have, fields))
    return proto.Reply(200, cell.version, state_text=cell.state_text())


def _offer(cell: Cell, subscriber: Subscriber) -> None:
    change = Change(cell.version, cell.texts, None, [])
    subscriber.offer(change, cell.changed_since)


class _Waiter:
    """Holds one operation's outcome; an event is made only if someone must wait."""

    __slots__ = ("_event", "outcome")

    def __init__(self) -> None:
        self.outcome: Outcome | None = None
        self._event: anyio.Event | None = None

    def done(self, outcome: Outcome) -> None:
        self.outcome = outcome
        if self._event is not None:
            self._event.set()

    async def wait(self) -> Outcome:
        self._event = anyio.Event()
        await self._event.wait()
        assert self.outcome is not None
        return self.outcome

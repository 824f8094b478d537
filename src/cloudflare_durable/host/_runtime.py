"""The host runtime: objects, one operation at a time each, persisted in SQLite.

Every object lives in a *cell*: its model, version, stored state (as JSON), a
live model instance that method bodies run against, a queue of operations and
its subscribers. Operations on one cell run one at a time; cells run
concurrently. Whoever finds a cell idle drains its queue: it takes every queued
operation as one batch, runs them in order against a working copy of the state,
commits the batch's end state and request-id records in one transaction, and only
then resolves each operation and tells subscribers, version by version. So each
acknowledged change is durable, and pipelined calls share one commit.
"""

from __future__ import annotations

import logging
import math
import sqlite3
import types
from collections import OrderedDict, deque
from collections.abc import Callable, Coroutine, Generator, Iterable
from dataclasses import dataclass, field
from typing import Any, Final, Literal, TypeAlias

import anyio
import anyio.lowlevel
import pydantic

from .. import _exceptions as exc
from .. import _protocol as proto
from .._config import store_path
from .._models import DurableModel, Event, Execution, event_name, live_instance, registered_models
from .._pydantic import dump_state, translate
from ._store import Remembered, Store, VersionMoved, Write

logger = logging.getLogger("cloudflare_durable.host")

Reply: TypeAlias = proto.CallReply | proto.StateReply | proto.DeleteReply
Outcome: TypeAlias = Reply | exc.DurableError
OpKind: TypeAlias = Literal["call", "create", "update", "delete"]

MAX_BATCH: Final = 512
YIELD_EVERY: Final = 8
MAX_RERUNS: Final = 8
RECENT_REPLIES: Final = 1000
POLL_INTERVAL: Final = 0.5
CACHED_OBJECTS: Final = 4096
"""Idle objects (no queued operation, no subscriber) kept in memory; older ones are dropped."""


@dataclass(slots=True)
class Operation:
    """One queued change request; ``done`` receives its reply or error."""

    kind: OpKind
    done: Callable[[Outcome], None]
    request_id: str | None = None
    method: str = ""
    args: dict[str, Any] = field(default_factory=dict)
    if_version: int | None = None


@dataclass(slots=True)
class _Change:
    """What one operation did inside a batch, for subscribers."""

    version: int
    state: dict[str, Any] | None
    events: list[Event]


class Subscriber:
    """One subscriber's ordered inbox of snapshots and events.

    A subscriber more than ``SUBSCRIBER_BACKLOG`` messages behind is cut off:
    ``receive`` raises ``ConnectionLostError`` and the client resumes from the
    last version it saw, so it skips ahead but never repeats.
    """

    def __init__(
        self,
        host: Host,
        cell: _Cell,
        frame: proto.SubscribeFrame,
        sink: Callable[[proto.Snapshot | proto.EventMessage], None] | None = None,
    ) -> None:
        self._host = host
        self._cell = cell
        self.frame = frame
        self._sink = sink
        self._inbox: deque[proto.Snapshot | proto.EventMessage] = deque()
        self._wakeup = anyio.Event()
        self._lagged = False
        self._closed = False
        self.last_version = frame.since if frame.since is not None else -1

    def push(self, message: proto.Snapshot | proto.EventMessage) -> None:
        if self._closed or self._lagged:
            return
        if self._sink is not None:
            self._sink(message)
            return
        if len(self._inbox) >= proto.SUBSCRIBER_BACKLOG:
            self._lagged = True
            self._inbox.clear()
        else:
            self._inbox.append(message)
        self._wakeup.set()

    def push_snapshot(self, version: int, state: dict[str, Any] | None) -> None:
        if self.frame.snapshots and version > self.last_version:
            self.last_version = version
            self.push(proto.Snapshot(version, state))

    async def receive(self) -> proto.Snapshot | proto.EventMessage:
        while not self._inbox:
            if self._lagged:
                raise proto.SubscriberLagged("the subscriber fell behind; resume from its version")
            if self._closed:
                raise exc.ConnectionLostError("the subscription is closed", retryable=False)
            with anyio.move_on_after(self._host.poll_interval):
                await self._wakeup.wait()
            if not self._wakeup.is_set():
                self._host.poll(self._cell)
                continue
            self._wakeup = anyio.Event()
        return self._inbox.popleft()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._wakeup.set()
            self._cell.subscribers.discard(self)


class _Cell:
    __slots__ = (
        "draining",
        "epoch",
        "execution",
        "known_ids",
        "live",
        "live_json",
        "model",
        "name",
        "object_id",
        "queue",
        "recent",
        "state",
        "subscribers",
        "version",
    )

    def __init__(self, model: type[DurableModel], object_id: str, stored: Any) -> None:
        self.model = model
        self.name = model.__durable_name__
        self.object_id = object_id
        self.version: int = stored.version
        self.state: dict[str, Any] | None = stored.state
        self.execution = Execution()
        self.live: DurableModel | None = None
        self.live_json: dict[str, Any] | None = None
        self.queue: deque[Operation] = deque()
        self.draining = False
        self.subscribers: set[Subscriber] = set()
        self.recent: OrderedDict[str, Remembered] = OrderedDict()
        # Request ids the store holds for this object, loaded at the first lookup,
        # so that the common case, a new id, costs no query.
        self.known_ids: set[str] | None = None
        self.epoch = 0

    def reset(self, version: int, state: dict[str, Any] | None) -> None:
        self.version, self.state = version, state
        self.live = self.live_json = None
        self.recent.clear()
        self.known_ids = None

    def live_for(self, state: dict[str, Any] | None) -> tuple[DurableModel, dict[str, Any]]:
        """The instance to run a body against, built from ``state`` unless still current."""
        if self.live is None or self.live_json is None:
            self.live = live_instance(self.model, self.object_id, state, self.execution)
            self.live_json = state if state is not None else _dump(self.live)
        return self.live, self.live_json


_dump = dump_state


class Host:
    """Serves ``DurableModel`` objects from one SQLite store.

    ``store`` is a file path or ``":memory:"``. ``models`` limits which models
    are served (default: every ``DurableModel`` defined in the process).
    """

    def __init__(
        self,
        store: str = ":memory:",
        *,
        models: Iterable[type[DurableModel]] | None = None,
        request_ttl: float = proto.IDEMPOTENCY_TTL_SECONDS,
        max_requests: int = proto.IDEMPOTENCY_MAX_PER_OBJECT,
        poll_interval: float | None = None,
    ) -> None:
        path = store_path(store)
        self._store = Store(path, request_ttl=request_ttl, max_requests=max_requests)
        self._models = None if models is None else {m.__durable_name__: m for m in models}
        self._cells: dict[tuple[str, str], _Cell] = {}
        self._evict_at = 2 * CACHED_OBJECTS
        self._closed = False
        self._epoch = 0  # grows when another process commits to the store
        self._unyielded = 0
        shared = path != ":memory:"
        self.poll_interval = poll_interval or (POLL_INTERVAL if shared else math.inf)

    # -- lifecycle --------------------------------------------------------

    @property
    def store(self) -> Store:
        return self._store

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            for cell in self._cells.values():
                for subscriber in list(cell.subscribers):
                    subscriber.close()
            self._store.close()

    async def __aenter__(self) -> Host:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()

    # -- models -----------------------------------------------------------

    def model(self, name: str) -> type[DurableModel]:
        models = self._models if self._models is not None else registered_models()
        model = models.get(name)
        if model is None:
            raise exc.UnknownModelError(f"no model named {name!r} is served here")
        return model

    # -- operations -------------------------------------------------------

    async def read(self, model: str, object_id: str) -> proto.StateReply:
        cell = self._cell(model, object_id)
        self.poll(cell)
        return proto.StateReply(cell.version, cell.state)

    async def call(
        self,
        model: str,
        object_id: str,
        method: str,
        args: dict[str, Any],
        request_id: str | None = None,
    ) -> proto.CallReply:
        op = Operation("call", _ignore, request_id, method, args)
        reply = await self._perform(model, object_id, op)
        assert isinstance(reply, proto.CallReply)
        return reply

    async def create(
        self, model: str, object_id: str, state: dict[str, Any], request_id: str | None = None
    ) -> proto.StateReply:
        reply = await self._perform(
            model, object_id, Operation("create", _ignore, request_id, args=state)
        )
        assert isinstance(reply, proto.StateReply)
        return reply

    async def update(
        self,
        model: str,
        object_id: str,
        fields: dict[str, Any],
        if_version: int | None = None,
        request_id: str | None = None,
    ) -> proto.StateReply:
        op = Operation("update", _ignore, request_id, args=fields, if_version=if_version)
        reply = await self._perform(model, object_id, op)
        assert isinstance(reply, proto.StateReply)
        return reply

    async def delete(
        self, model: str, object_id: str, request_id: str | None = None
    ) -> proto.DeleteReply:
        reply = await self._perform(model, object_id, Operation("delete", _ignore, request_id))
        assert isinstance(reply, proto.DeleteReply)
        return reply

    def subscribe(
        self,
        model: str,
        object_id: str,
        frame: proto.SubscribeFrame,
        sink: Callable[[proto.Snapshot | proto.EventMessage], None] | None = None,
    ) -> Subscriber:
        """Register a subscriber; it holds the current snapshot first if it is newer.

        With ``sink``, messages are handed to it synchronously, in order, instead
        of queueing for ``receive()`` (a network connection's own outbox).
        """
        cell = self._cell(model, object_id)
        self.poll(cell)
        subscriber = Subscriber(self, cell, frame, sink)
        cell.subscribers.add(subscriber)
        subscriber.push_snapshot(cell.version, cell.state)
        return subscriber

    def submit(
        self, model: str, object_id: str, op: Operation
    ) -> Callable[[], Coroutine[Any, Any, None]] | None:
        """Queue ``op``; if the object is idle, return the coroutine function to drain it.

        The caller must run what is returned (``await it()``, or start it in its
        task group): that is what runs the queue, ``op`` included.
        """
        cell = self._cell(model, object_id)
        cell.queue.append(op)
        if cell.draining:
            return None
        cell.draining = True
        return lambda: self._drain(cell)

    async def _perform(self, model: str, object_id: str, op: Operation) -> Reply:
        waiter = _Waiter()
        op.done = waiter.done
        drain = self.submit(model, object_id, op)
        if drain is not None:
            await drain()  # usually answers our own operation on the way
            self._unyielded += 1
            if self._unyielded >= YIELD_EVERY:
                # A drain that never had to wait never gave the event loop a turn:
                # now and then, let other tasks run, so a loop of calls starves nobody.
                self._unyielded = 0
                await anyio.lowlevel.checkpoint()
        result = waiter.outcome if waiter.outcome is not None else await waiter.wait()
        if isinstance(result, exc.DurableError):
            raise result
        return result

    # -- the queue --------------------------------------------------------

    def _cell(self, model: str, object_id: str) -> _Cell:
        if self._closed:
            raise exc.UnavailableError("the host is closed", retryable=False)
        key = (model, object_id)
        cell = self._cells.get(key)
        if cell is None:
            model_cls = self.model(model)
            proto.check_object_id(object_id)
            if len(self._cells) >= self._evict_at:
                self._evict()
            self._refresh_epoch()
            cell = _Cell(model_cls, object_id, self._store.read(model, object_id))
            cell.epoch = self._epoch
            self._cells[key] = cell
        return cell

    def _evict(self) -> None:
        """Drop the oldest idle cells (their state is in the store) down to ``CACHED_OBJECTS``.

        Cells with queued operations, a running drain or subscribers stay. If too
        many are busy to get there, the next attempt waits until twice as many.
        """
        idle = [
            key
            for key, cell in self._cells.items()
            if not (cell.draining or cell.queue or cell.subscribers)
        ]
        for key in idle[: max(0, len(self._cells) - CACHED_OBJECTS)]:
            del self._cells[key]
        self._evict_at = max(2 * CACHED_OBJECTS, 2 * len(self._cells))

    def _refresh_epoch(self) -> None:
        if self._store.changed_elsewhere():
            self._epoch += 1

    def _catch_up(self, cell: _Cell) -> bool:
        """Re-read ``cell`` if another process may have changed it; True if it had."""
        self._refresh_epoch()
        if cell.epoch == self._epoch:
            return False
        cell.epoch = self._epoch
        if self._store.version(cell.name, cell.object_id) == cell.version:
            return False
        cell.reset(*self._stored(cell))
        return True

    def poll(self, cell: _Cell) -> None:
        """Catch up with changes another process made to the same store."""
        if self._closed or cell.draining:
            return
        if self._catch_up(cell):
            for subscriber in list(cell.subscribers):
                subscriber.push_snapshot(cell.version, cell.state)

    async def _drain(self, cell: _Cell) -> None:
        # The operations of other callers ride on this drain, so it must not be
        # cancelled halfway. Its only suspension points are method bodies, which
        # run shielded whenever they suspend (see _run_body).
        try:
            while cell.queue:
                batch = [cell.queue.popleft() for _ in range(min(MAX_BATCH, len(cell.queue)))]
                try:
                    await self._run_batch(cell, batch)
                except Exception:
                    self._batch_failed(cell, batch)
        finally:
            cell.draining = False

    def _batch_failed(self, cell: _Cell, batch: list[Operation]) -> None:
        """A batch failed in a way no operation answers for (say, a state SQLite cannot
        store): forget the working state, so that the object is not left broken, and
        answer every operation, so that no caller waits forever."""
        logger.exception("a batch of %s %r failed", cell.name, cell.object_id)
        cell.reset(*self._stored(cell))
        failure = exc.ServerError("unexpected server failure; nothing was applied")
        _resolve(batch, [failure] * len(batch))

    async def _run_batch(self, cell: _Cell, batch: list[Operation]) -> None:
        for _ in range(MAX_RERUNS):
            if self._closed:
                break
            start = cell.version
            run = _Batch(self, cell)
            outcomes = [await run.apply(op) for op in batch]
            if not run.changes:
                # Nothing to commit, so no version check: make sure no other process
                # changed the object under these answers (a write is checked at commit).
                if self._catch_up(cell):
                    continue
                _resolve(batch, outcomes)
                return
            write = Write(run.version, run.state, run.remember)
            try:
                self._store.commit(cell.name, cell.object_id, start, write)
            except VersionMoved:
                cell.reset(*self._stored(cell))
                self._refresh_epoch()
                cell.epoch = self._epoch
                continue
            except sqlite3.Error as error:
                logger.exception("storing %s %r failed", cell.name, cell.object_id)
                cell.reset(*self._stored(cell))
                failure = exc.ServerError(f"storing the change failed: {error}")
                _resolve(batch, [failure] * len(batch))
                return
            self._committed(cell, run)
            self._publish(cell, run.changes)
            _resolve(batch, outcomes)
            return
        _resolve(
            batch, [exc.UnavailableError("the object is busy in another process")] * len(batch)
        )

    def _stored(self, cell: _Cell) -> tuple[int, dict[str, Any] | None]:
        stored = self._store.read(cell.name, cell.object_id)
        return stored.version, stored.state

    def _committed(self, cell: _Cell, run: _Batch) -> None:
        cell.version, cell.state = run.version, run.state
        recent, known = cell.recent, cell.known_ids
        for request_id, remembered in run.remember:
            recent[request_id] = remembered
            if known is not None:
                known.add(request_id)
        while len(recent) > RECENT_REPLIES:
            recent.popitem(last=False)
        if known is not None and len(known) > self._store.max_requests + 2000:
            cell.known_ids = None  # the store pruned; reload at the next lookup

    def _publish(self, cell: _Cell, changes: list[_Change]) -> None:
        if not cell.subscribers:
            return
        for change in changes:
            events = [
                proto.EventMessage(change.version, event_name(e), e.model_dump(mode="json"))
                for e in change.events
            ]
            for subscriber in list(cell.subscribers):
                subscriber.push_snapshot(change.version, change.state)
                if subscriber.frame.events:
                    for event in events:
                        subscriber.push(event)

    def remembered(self, cell: _Cell, request_id: str) -> Remembered | None:
        found = cell.recent.get(request_id)
        if found is not None:
            return found
        if cell.known_ids is None:
            cell.known_ids = self._store.request_ids(cell.name, cell.object_id)
        if request_id not in cell.known_ids:
            return None
        return self._store.remembered(cell.name, cell.object_id, request_id)


async def _run_body(body: Coroutine[Any, Any, Any]) -> Any:
    """Run a method body to its end, shielded from cancellation if it ever suspends.

    A body that finishes without suspending (the common case) cannot be
    cancelled, so it needs no cancel scope; one that suspends continues inside
    a shielded scope, entered before the event loop sees its first suspension.
    """
    try:
        suspended_on = body.send(None)
    except StopIteration as finished:
        return finished.value
    with anyio.CancelScope(shield=True):
        return await _resume(body, suspended_on)


@types.coroutine
def _resume(body: Coroutine[Any, Any, Any], suspended_on: Any) -> Generator[Any, Any, Any]:
    """Hand ``body``'s pending suspension to the event loop and keep driving it."""
    while True:
        thrown: BaseException | None = None
        sent: Any = None
        try:
            sent = yield suspended_on
        except BaseException as error:
            thrown = error
        try:
            suspended_on = body.send(sent) if thrown is None else body.throw(thrown)
        except StopIteration as finished:
            return finished.value


def _ignore(outcome: Outcome) -> None:  # pragma: no cover - replaced before use
    pass


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


def _resolve(batch: list[Operation], outcomes: list[Outcome]) -> None:
    for op, outcome in zip(batch, outcomes, strict=True):
        op.done(outcome)


class _Batch:
    """Runs one batch of operations against a working copy of a cell's state."""

    def __init__(self, host: Host, cell: _Cell) -> None:
        self.host = host
        self.cell = cell
        self.version = cell.version
        self.state = cell.state
        self.changes: list[_Change] = []
        self.remember: list[tuple[str, Remembered]] = []
        self._answered: dict[str, Remembered] = {}

    async def apply(self, op: Operation) -> Outcome:
        if op.request_id is not None:
            remembered = self._answered.get(op.request_id) or self.host.remembered(
                self.cell, op.request_id
            )
            if remembered is not None:
                return _replay(op.kind, remembered.reply)
        changes = len(self.changes)
        try:
            status, reply, _ = await (self._call(op) if op.kind == "call" else self._run(op))
        except exc.DurableError as error:
            return error
        if op.request_id is not None and len(self.changes) > changes:
            remembered = Remembered(status, reply.to_json())
            self._answered[op.request_id] = remembered
            self.remember.append((op.request_id, remembered))
        return reply

    async def _run(self, op: Operation) -> tuple[int, Reply, list[Event]]:
        if op.kind == "create":
            return self._create(op)
        if op.kind == "update":
            return self._update(op)
        return self._delete()

    def _change(self, state: dict[str, Any] | None, events: list[Event]) -> None:
        self.version += 1
        self.state = state
        self.changes.append(_Change(self.version, state, events))

    async def _call(self, op: Operation) -> tuple[int, Reply, list[Event]]:
        cell = self.cell
        method = cell.model.__durable_methods__.get(op.method)
        if method is None:
            raise exc.UnknownMethodError(f"{cell.name} has no remote method {op.method!r}")
        signature = method.signature
        arguments = signature.validate_arguments(op.args)
        live, before = cell.live_for(self.state)
        events: list[Event] = []
        cell.execution.events = events
        try:
            try:
                value = await _run_body(method.fn(live, **signature.keywords(arguments)))
            except Exception as error:
                raise _remote_error(cell, op.method, error) from error
            result = signature.dump_result(value)
            after = _dump(live)
        except BaseException:
            cell.live = None  # rebuilt from the last good state at the next call
            raise
        if after != before or events:
            cell.live_json = after
            if after != before:
                self._change(after, events)
            elif self.changes and self.changes[-1].version == self.version:
                self.changes[-1].events.extend(events)
            else:
                self.changes.append(_Change(self.version, self.state, events))
        return 200, proto.CallReply(result, self.version, self.state), events

    def _validated(self, fields: dict[str, Any]) -> dict[str, Any]:
        try:
            return _dump(self.cell.model.model_validate(fields))
        except pydantic.ValidationError as error:
            raise translate(error, f"invalid fields for {self.cell.name}") from error

    def _create(self, op: Operation) -> tuple[int, Reply, list[Event]]:
        if self.state is not None:
            raise exc.AlreadyExistsError(
                f"{self.cell.name} {self.cell.object_id!r} already has state "
                f"(version {self.version}); use update() or delete() it first"
            )
        self._change(self._validated(op.args), [])
        self.cell.live = None
        return 201, proto.StateReply(self.version, self.state), []

    def _update(self, op: Operation) -> tuple[int, Reply, list[Event]]:
        if op.if_version is not None and op.if_version != self.version:
            raise exc.ConflictError(
                f"{self.cell.name} {self.cell.object_id!r} is at version {self.version}, "
                f"not {op.if_version}; nothing was changed",
                details={"expected": op.if_version, "actual": self.version},
            )
        unknown = set(op.args) - set(self.cell.model.model_fields)
        if unknown:
            raise exc.ValidationError(
                f"{self.cell.name} has no field(s) {', '.join(sorted(unknown))}",
                details={
                    "errors": [
                        {"loc": [name], "msg": "unknown field", "type": "extra_forbidden"}
                        for name in sorted(unknown)
                    ]
                },
            )
        merged = {**(self.state or {}), **op.args}
        state = self._validated(merged)
        if state != self.state:
            self._change(state, [])
            self.cell.live = None
        return 200, proto.StateReply(self.version, self.state), []

    def _delete(self) -> tuple[int, Reply, list[Event]]:
        if self.state is None:
            return 200, proto.DeleteReply(False, self.version), []
        self._change(None, [])
        self.cell.live = None
        return 200, proto.DeleteReply(True, self.version), []


def _remote_error(cell: _Cell, method: str, error: Exception) -> exc.RemoteError:
    type_name = type(error).__name__
    text = str(error)
    return exc.RemoteError(
        f"{cell.name}.{method} raised {type_name}: {text}"
        if text
        else f"{cell.name}.{method} raised {type_name}",
        details={"type": type_name, "message": text},
    )


def _replay(kind: OpKind, body: dict[str, Any]) -> Reply:
    if kind == "call":
        return proto.read_call_reply(body)
    if kind == "delete":
        return proto.read_delete_reply(body)
    return proto.read_state_reply(body)

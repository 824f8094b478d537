"""The host runtime: ``Host`` serves ``DurableModel`` objects from one SQLite store.

It ties together the cells of its objects (``_objects``), their queues
(``_queue``), what each operation means (``_operations``) and the fan-out to
subscribers (``_fanout``). An operation a method body sends to this same host
(a handle used inside the body) is checked for re-entry into its chain of calls
and given a request id derived from the body's own.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable
from typing import Any, Final

import anyio
import anyio.lowlevel

from .. import _context
from .. import _exceptions as exc
from .. import _protocol as proto
from .._config import DEFAULT_TIMEOUT, store_path
from .._models import DurableModel, registered_models
from ._fanout import Change, Subscriber
from ._objects import Cell, Cells
from ._operations import Outcome, encoded_state, validated_state
from ._queue import Drain, Pending, Queue
from ._store import Store

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

    # -- lifecycle --------------------------------------------------------

    @property
    def store(self) -> Store:
        return self._store

    def close(self) -> None:
        if not self._closed:
            self._closed = self._queue.closed = True
            for cell in self._cells:
                for subscriber in list(cell.subscribers):
                    subscriber.close()
            self._store.close()

    async def __aenter__(self) -> Host:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()

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
        versions = self._store.create_many(model, texts)
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
        sink: Callable[[str], None] | None = None,
    ) -> Subscriber:
        """Register a subscriber; it holds the current snapshot first if it is newer.

        With ``sink``, frames are handed to it as text, synchronously, in order,
        instead of queueing as messages for ``receive()`` (a network connection's
        own outbox).
        """
        self._from_body(proto.Read(model, object_id))
        cell = self._cell(model, object_id)
        self._poll(cell)
        subscriber = Subscriber(
            frame,
            poll=lambda: self._poll(cell),
            poll_interval=self.poll_interval,
            detach=cell.subscribers.discard,
            sink=sink,
        )
        cell.subscribers.add(subscriber)
        _offer(cell, subscriber)
        return subscriber

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
                _offer(cell, subscriber)


def _read(cell: Cell, have: int | None) -> proto.Reply:
    """The object's state, or, when the reader holds an older version the history
    reaches, the fields changed since."""
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

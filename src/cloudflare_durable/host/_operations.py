"""What each operation means: call, create, update and delete, against a working
copy of one object's state. This file reads side by side with the Worker's
``worker/lib/src/object.ts``: the same rules, in the same order.

A :class:`Batch` applies the queued operations of one object in order. Each one
either fails (changing nothing) or answers, and may produce a *change*: fields
that differ, a delete of existing state, or a call that emitted events. Every
change is the object's next version. Nothing is stored here: the queue commits
the batch's end state (only the fields that changed), and the records of the
request ids it answered, in one transaction.

The state is kept as each field's JSON text. A method body's live instance
records which fields the body read or assigned; only those are compared and
encoded afterwards, so a small change to a large object costs what it changes.

A change also carries its events (logged with it) and what its call did to the
object's schedules (made, cancelled). A batch may also run schedules: the run
that succeeds removes its schedule in the same transaction as its change, and
one that fails records the attempt (the next one after a backoff, or the
schedule kept as failed), so each schedule runs exactly once.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, TypeAlias

import pydantic

from .. import _context
from .. import _exceptions as exc
from .. import _protocol as proto
from .._handles import Execution, binding, live_instance
from .._models import event_name
from .._pydantic import (
    Tracking,
    dump_event,
    dump_state,
    translate,
    unknown_fields,
    validate_wire_state,
)
from ._fanout import Change
from ._objects import join_state, state_bytes
from ._store import (
    AddSchedule,
    ClearSchedules,
    LoggedEvent,
    Remembered,
    RemoveSchedule,
    RetrySchedule,
    ScheduleOp,
    ScheduleRow,
)

if TYPE_CHECKING:
    from .._models import DurableModel
    from ._objects import Cell, Cells, Touched
    from ._queue import Pending

__all__ = ["Applied", "Batch", "Outcome", "retry_delay"]

logger = logging.getLogger("cloudflare_durable.host")

Outcome: TypeAlias = proto.Reply | exc.DurableError
Events: TypeAlias = list[tuple[str, dict[str, Any]]]

# An integer literal of 16 digits or more may be out of ±(2^53-1): only then is a
# text scanned (outside its strings) for one that is.
_LONG_DIGITS: Final = re.compile(r"\d{16}")
_INTEGER_LITERAL: Final = re.compile(r"-?\b\d{16,}\b(?![.eE])")
_STRING: Final = re.compile(r'"(?:[^"\\]|\\.)*"')
_SCALARS: Final = frozenset({int, float, str, bool, type(None)})
_NOTHING: Final = object()


@dataclass(slots=True)
class Applied:
    """What one operation of a batch did: its outcome, and its change if it made one."""

    outcome: Outcome
    change: Change | None = None


class Batch:
    """Runs one batch of operations against a working copy of a cell's state.

    The working copy is the cell's field texts plus what the batch changed: new
    texts (``written``, to store), their decoded values (to compare), the size in
    bytes, and one history entry per version the batch made.
    """

    def __init__(self, host: Any, cells: Cells, cell: Cell) -> None:
        self.host = host
        self.cells = cells
        self.cell = cell
        self.version = cell.version
        self.texts = cell.texts
        self.bytes = cell.bytes
        self.values: dict[str, Any] = {}
        self.written: dict[str, str] = {}
        self.clear = False
        self.entries: list[tuple[int, Touched]] = []
        self.remember: list[tuple[str, Remembered]] = []
        self.logged: list[LoggedEvent] = []
        self.schedule_ops: list[ScheduleOp] = []
        self.refused = cell.refused
        self._rewrite_all = cell.migrated  # the next change stores every field
        self._answered: dict[str, Remembered] = {}
        # What the batch did to schedules so far, by id: the row as it stands, or None
        # once removed (``_cleared``: the state was deleted, so every schedule went).
        self._schedules: dict[str, ScheduleRow | None] = {}
        self._cleared = False

    @property
    def changed(self) -> bool:
        return bool(self.entries)

    @property
    def bookkeeping(self) -> bool:
        """Whether there is something to store even without a change (schedules run)."""
        return bool(self.schedule_ops)

    @property
    def present(self) -> bool:
        return self.texts is not None

    def value(self, name: str) -> Any:
        """A field's current value as JSON (the state's, or the model default's)."""
        if name in self.values:
            return self.values[name]
        if self.texts is None:
            self.values.update(self.cell.default_values())
            return self.values[name]
        return self.cell.value(name)

    async def apply(self, pending: Pending) -> Applied:
        if pending.fire is not None:
            return await self._fire(pending, pending.fire)
        return await self._apply(pending)

    async def _apply(self, pending: Pending) -> Applied:
        op = pending.op
        request_id = pending.ticket.request_id
        try:
            if self.refused is not None and not isinstance(op, proto.Delete):
                refused = self.refused
                raise type(refused)(refused.message, details=refused.details)
            if request_id is not None:
                remembered = self._answered.get(request_id) or self.cells.remembered(
                    self.cell, request_id
                )
                if remembered is not None:
                    return Applied(self._replay(op, request_id, remembered))
            if isinstance(op, proto.Call):
                applied = await self._call(op, pending)
            elif isinstance(op, proto.Create):
                applied = self._create(op)
            elif isinstance(op, proto.Update):
                applied = self._update(op)
            else:
                applied = self._delete()
        except exc.DurableError as error:
            return Applied(error)
        if applied.change is not None and request_id is not None and not pending.ticket.local:
            record = _record(op, applied)
            remembered = Remembered(
                op.fingerprint(), applied.outcome.status, record, len(proto.dumps(record))
            )
            self._answered[request_id] = remembered
            self.remember.append((request_id, remembered))
        return applied

    def _replay(self, op: proto.Mutation, request_id: str, remembered: Remembered) -> proto.Reply:
        """The stored reply of a repeated request id (with the state only if the object
        is still at that version), or ``request_id_reused`` for another operation."""
        if remembered.digest is not None and remembered.digest != op.fingerprint():
            raise exc.RequestIdReusedError(
                f"request id {request_id!r} was already used for another operation "
                f"on {self.cell.name} {self.cell.object_id!r}"
            )
        record = remembered.reply
        version = int(record["version"])
        if op.kind == "delete":  # a delete's reply always says it left no state
            return proto.Reply(remembered.status, version, deleted=bool(record["deleted"]))
        current = version == self.version
        return proto.Reply(
            remembered.status,
            version,
            result=record.get("result"),
            has_state=current,
            state_text=self._state_text() if current else None,
        )

    # -- replies and changes ------------------------------------------------------

    def _state_text(self) -> str | None:
        return None if self.texts is None else join_state(self.texts)

    def _reply(
        self, op: proto.Mutation, status: int, result: Any = None, deleted: bool = False
    ) -> proto.Reply:
        """The reply to ``op`` at the current version: the state whole, or, when the
        client said which version it holds and the history reaches it, a patch."""
        have = op.have
        if have is not None and self.texts is not None:
            names = self._changed_since(have)
            if names is not None:
                fields = {name: self._fresh(name) for name in self.texts if name in names}
                patch = proto.Patch(have, fields)
                return proto.Reply(status, self.version, None, result, deleted, patch=patch)
        return proto.Reply(
            status, self.version, None, result, deleted, state_text=self._state_text()
        )

    def _fresh(self, name: str) -> Any:
        """A field's value as JSON that the reply may own (the receiver may change it):
        a scalar the batch already decoded, else decoded afresh from its text."""
        value = self.values.get(name, _NOTHING)
        if type(value) in _SCALARS:
            return value
        assert self.texts is not None
        return json.loads(self.texts[name])

    def _changed_since(self, version: int) -> set[str] | None:
        names: set[str] = set()
        for at, touched in reversed(self.entries):
            if at <= version:
                return names
            if touched is None:
                return None
            names |= touched
        if version > self.cell.version:
            return None
        rest = self.cell.changed_since(version)
        return None if rest is None else names | rest

    def _change(
        self,
        texts: dict[str, str] | None,
        touched: Touched,
        events: Events = [],  # noqa: B006 - never changed
        event_texts: list[str] = [],  # noqa: B006 - never changed
    ) -> Change:
        """Make the next version: ``texts`` are its fields (``touched``, those that
        changed; ``None``: all of them, the state was replaced), with its events (and
        their data's JSON texts, to log)."""
        self.version += 1
        if texts is None or touched is None or self._rewrite_all:
            touched = None
            self.clear = True
            self.written = dict(texts or {})
            self._rewrite_all = False
            self.refused = None
        else:
            self.written.update((name, texts[name]) for name in touched)
        self.texts = texts
        self.entries.append((self.version, touched))
        version, count = self.version, len(events)
        made = []
        for index, ((name, data), text) in enumerate(zip(events, event_texts, strict=True)):
            made.append(proto.EventMessage(version, name, data, index, count))
            size = len(text.encode()) + len(name.encode())
            self.logged.append(LoggedEvent(version, index, count, name, text, size))
        return Change(self.version, texts, touched, made)

    # -- schedules ----------------------------------------------------------------

    def schedule(self, schedule_id: str) -> ScheduleRow | None:
        """The object's schedule ``schedule_id`` as this batch leaves it so far."""
        if schedule_id in self._schedules:
            return self._schedules[schedule_id]
        if self._cleared:
            return None
        return self.cells.schedule(self.cell, schedule_id)

    def _schedule_exists(self, schedule_id: str) -> bool:
        return self.schedule(schedule_id) is not None

    def _take_schedules(self, execution: Execution) -> None:
        """Store what a call's body did to the object's schedules (with its change)."""
        for schedule_id, (at, method, args) in execution.scheduled.items():
            row = ScheduleRow(schedule_id, at, at, method, proto.dumps_text(args))
            self.schedule_ops.append(AddSchedule(row))
            self._schedules[schedule_id] = row
        for schedule_id in execution.cancelled:
            self.schedule_ops.append(RemoveSchedule(schedule_id))
            self._schedules[schedule_id] = None

    async def _fire(self, pending: Pending, schedule_id: str) -> Applied:
        """Run a schedule as a call (unless it is gone, or failed for good meanwhile): on
        success it is removed with the call's change; a failure is recorded."""
        row = self.schedule(schedule_id)
        if row is None or row.status != "pending":
            return Applied(exc.NotFoundError(f"schedule {schedule_id} is no longer pending"))
        applied = await self._apply(pending)
        outcome = applied.outcome
        where = f"{self.cell.name} {self.cell.object_id!r}"
        if isinstance(outcome, proto.Reply):
            logger.info("schedule %s ran %s.%s", schedule_id, where, row.method)
            self.schedule_ops.append(RemoveSchedule(schedule_id))
            self._schedules[schedule_id] = None
            return applied
        attempts = row.attempts + 1
        error = proto.dumps_text(proto.error_envelope(outcome)["error"])
        if attempts >= proto.SCHEDULE_ATTEMPTS:
            logger.error(
                "schedule %s of %s (%s) failed %d times, and is kept as failed: %s",
                schedule_id,
                where,
                row.method,
                attempts,
                outcome.message,
            )
            failed = RetrySchedule(schedule_id, attempts, row.due, "failed", error)
        else:
            due = int(time.time() * 1000 + retry_delay(attempts) * 1000)
            logger.warning(
                "schedule %s of %s (%s) failed (attempt %d of %d), tried again in %g s: %s",
                schedule_id,
                where,
                row.method,
                attempts,
                proto.SCHEDULE_ATTEMPTS,
                retry_delay(attempts),
                outcome.message,
            )
            failed = RetrySchedule(schedule_id, attempts, due, "pending", error)
        self.schedule_ops.append(failed)
        self._schedules[schedule_id] = ScheduleRow(
            schedule_id, failed.due, row.at, row.method, row.args, attempts, failed.status, error
        )
        return applied

    # -- call ------------------------------------------------------------------

    async def _call(self, op: proto.Call, pending: Pending) -> Applied:
        cell = self.cell
        method = cell.model.__durable_methods__.get(op.method)
        if method is None:
            raise exc.UnknownMethodError(f"{cell.name} has no remote method {op.method!r}")
        signature = method.signature
        keywords = signature.keywords(op.args)
        live = self._live()
        tracking = Tracking(live)
        execution = Execution(tracking=tracking, schedule_exists=self._schedule_exists)
        binding(live).execution = execution
        body = _context.Body(
            self.host, (*pending.chain, (cell.name, cell.object_id)), pending.ticket
        )
        try:
            try:
                with _context.running(body):
                    value = await method.fn(live, **keywords)
            except Exception as error:
                raise _remote_error(cell.name, op.method, error) from error
            finally:
                touched = tracking.finish()
            result = signature.dump_result(value)
            _check_result(cell.name, op.method, result)
            changed = self._compare(live, touched)
            events = [(event_name(event), dump_event(event)) for event in execution.events]
            if not changed and not events and not execution.schedules_changed:
                return Applied(self._reply(op, 200, result))
            # A schedule belongs to a state: one made on an object without state stores
            # its defaults (a delete then cancels it); events alone store nothing.
            texts, names, event_texts = self._texts_after(
                changed, events, virtual=not execution.schedules_changed
            )
        except BaseException:
            cell.live = None  # rebuilt from the last good state at the next call
            raise
        change = self._change(texts, names, events, event_texts)
        if execution.schedules_changed:
            self._take_schedules(execution)
        return Applied(self._reply(op, 200, result), change)

    def _live(self) -> Any:
        """The instance to run a body against, built from the working state if need be."""
        cell = self.cell
        if cell.live is None:
            state = None if self.texts is None else json.loads(join_state(self.texts))
            cell.live = live_instance(cell.model, cell.object_id, state, Execution())
        return cell.live

    def _compare(self, live: Any, touched: set[str]) -> dict[str, Any]:
        """The touched fields whose values differ now, as JSON."""
        if not touched:
            return {}
        after = dump_state(live, touched)
        return {name: value for name, value in after.items() if value != self.value(name)}

    def _texts_after(
        self, changed: dict[str, Any], events: Events, *, virtual: bool = True
    ) -> tuple[dict[str, str] | None, Touched, list[str]]:
        """The fields after a change, once they are known to fit the protocol's limits;
        which of them changed (``None``: all, the object had no state); and the JSON
        texts of the events' data."""
        model = self.cell.name
        new = {name: proto.dumps_text(value) for name, value in changed.items()}
        for name, text in new.items():
            _check_integers(text, f"{model}.{name}")
        event_texts = _check_events(events)
        if self.texts is None:
            if not new and virtual:  # only events: the object still has no stored state
                return None, None, event_texts
            texts = {**self.cell.defaults(), **new}
            size, touched = state_bytes(texts), None
        else:
            texts = {**self.texts, **new}
            size = self.bytes + sum(
                _field_bytes(name, text) - _field_bytes(name, self.texts[name])
                for name, text in new.items()
            )
            touched = frozenset(new)
        _check_size(model, size)
        self.bytes = size
        self.values.update(changed)
        return texts, touched, event_texts

    # -- create, update, delete -----------------------------------------------------

    def _validated(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        return validated_state(self.cell.model, fields)

    def _replace(self, state: dict[str, Any]) -> dict[str, str]:
        texts, self.bytes = encoded_state(self.cell.name, state)
        self.values = dict(state)
        return texts

    def _create(self, op: proto.Create) -> Applied:
        if self.texts is not None:
            raise exc.AlreadyExistsError(
                f"{self.cell.name} {self.cell.object_id!r} already has state "
                f"(version {self.version}); use update() or delete() it first"
            )
        texts = self._replace(self._validated(op.state))
        self.cell.live = None
        change = self._change(texts, None)
        return Applied(self._reply(op, 201), change)

    def _update(self, op: proto.Update) -> Applied:
        if op.if_version is not None and op.if_version != self.version:
            raise exc.ConflictError(
                f"{self.cell.name} {self.cell.object_id!r} is at version {self.version}, "
                f"not {op.if_version}; nothing was changed",
                details={"expected": op.if_version, "actual": self.version},
            )
        unknown = sorted(set(op.fields) - set(self.cell.model.model_fields))
        if unknown:
            raise unknown_fields(self.cell.name, unknown)
        current = {} if self.texts is None else json.loads(join_state(self.texts))
        state = self._validated({**current, **op.fields})
        if self.texts is not None:
            changed = {name: value for name, value in state.items() if value != current.get(name)}
            if not changed:
                return Applied(self._reply(op, 200))
            texts, touched, _ = self._texts_after(changed, [])
        else:
            texts, touched = self._replace(state), None
        self.cell.live = None
        change = self._change(texts, touched)
        return Applied(self._reply(op, 200), change)

    def _delete(self) -> Applied:
        if self.texts is None:
            return Applied(proto.Reply(200, self.version, None, deleted=False))
        self.cell.live = None
        self.values, self.bytes = {}, 0
        change = self._change(None, None)
        # The schedules the state made go with it.
        self.schedule_ops.append(ClearSchedules())
        self._schedules.clear()
        self._cleared = True
        return Applied(proto.Reply(200, self.version, None, deleted=True), change)


def validated_state(model: type[DurableModel], fields: Mapping[str, Any]) -> dict[str, Any]:
    """A whole state from fields given over the wire (missing ones take their defaults),
    validated by the wire's rules, as JSON."""
    name = model.__durable_name__
    try:
        text = proto.dumps_text(fields)
    except (TypeError, ValueError) as error:  # UnicodeEncodeError: a lone surrogate
        raise exc.ValidationError(f"the fields of {name} are not JSON text") from error
    try:
        instance = validate_wire_state(model, text)
    except pydantic.ValidationError as error:
        raise translate(error, f"invalid fields for {name}") from error
    return dump_state(instance)


def encoded_state(model: str, state: dict[str, Any]) -> tuple[dict[str, str], int]:
    """A state's fields as JSON texts, and its size, once it fits the protocol's limits."""
    texts = {name: proto.dumps_text(value) for name, value in state.items()}
    for name, text in texts.items():
        _check_integers(text, f"{model}.{name}")
    size = state_bytes(texts)
    _check_size(model, size)
    return texts, size


def _record(op: proto.Mutation, applied: Applied) -> dict[str, Any]:
    """What a repeat of ``op`` needs of its reply: never the state."""
    reply = applied.outcome
    assert isinstance(reply, proto.Reply)
    record: dict[str, Any] = {"version": reply.version}
    if op.kind == "call":
        record["result"] = reply.result
    elif op.kind == "delete":
        record["deleted"] = reply.deleted
    return record


def _field_bytes(name: str, text: str) -> int:
    return len(name.encode()) + 3 + len(text.encode())


def _check_size(model: str, size: int) -> None:
    if size > proto.MAX_STATE_BYTES:
        raise exc.StateTooLargeError(
            f"the state of {model} would take {size:,} bytes; "
            f"at most {proto.MAX_STATE_BYTES:,} are allowed. Nothing was changed"
        )


def retry_delay(attempts: int) -> float:
    """Seconds before a schedule that failed ``attempts`` times is tried again."""
    return min(proto.SCHEDULE_RETRY_MAX, proto.SCHEDULE_RETRY_FIRST * 2.0 ** (attempts - 1))


def _check_events(events: Events) -> list[str]:
    """The JSON texts of the events' data, once they fit the protocol's limits."""
    if not events:
        return []
    texts = [proto.dumps_text(data) for _, data in events]
    size = sum(
        len(text.encode()) + len(name) for text, (name, _) in zip(texts, events, strict=True)
    )
    if size > proto.MAX_EVENT_BYTES:
        raise exc.StateTooLargeError(
            f"the events of this change would take {size:,} bytes; at most "
            f"{proto.MAX_EVENT_BYTES:,} are allowed. Nothing was changed"
        )
    for text, (name, _) in zip(texts, events, strict=True):
        _check_integers(text, f"event {name}")
    return texts


def _check_result(model: str, method: str, result: Any) -> None:
    if result is None or isinstance(result, bool | float):
        return
    what = f"{model}.{method}()"
    if isinstance(result, int):
        if abs(result) > proto.MAX_SAFE_INTEGER:
            raise exc.InvalidResultError(f"{what} returned an integer outside ±(2^53-1)")
        return
    text = proto.dumps_text(result)
    if len(text) > proto.MAX_RESULT_BYTES // 4 and len(text.encode()) > proto.MAX_RESULT_BYTES:
        raise exc.InvalidResultError(
            f"{what} returned {len(text.encode()):,} bytes of JSON; at most "
            f"{proto.MAX_RESULT_BYTES:,} are allowed"
        )
    _check_integers(text, f"the result of {what}")


def _check_integers(text: str, what: str) -> None:
    """Refuse JSON holding an integer outside ±(2^53-1): it cannot travel exactly."""
    if _LONG_DIGITS.search(text) is None:
        return
    for literal in _INTEGER_LITERAL.findall(_STRING.sub('""', text)):
        if abs(int(literal)) > proto.MAX_SAFE_INTEGER:
            raise exc.InvalidResultError(
                f"{what} holds an integer outside ±(2^53-1), which JSON cannot carry exactly; "
                "nothing was changed"
            )


def _remote_error(model: str, method: str, error: Exception) -> exc.RemoteError:
    """The remote error a body's exception travels as. A remote error the body did not
    catch (a nested call that raised) keeps the type and message it was raised with."""
    if isinstance(error, exc.RemoteError):
        return exc.RemoteError(f"{model}.{method} failed: {error.message}", details=error.details)
    type_name = type(error).__name__
    text = str(error)
    return exc.RemoteError(
        f"{model}.{method} raised {type_name}" + (f": {text}" if text else ""),
        details={"type": type_name, "message": text},
    )

"""What each operation means: call, create, update and delete, against a working
copy of one object's state. This file reads side by side with the Worker's
``worker/src/lib/object.ts``: the same rules, in the same order.

A :class:`Batch` applies the queued operations of one object in order. Each one
either fails (changing nothing) or answers, and may produce a *change*: a state
that differs, a delete of existing state, or a call that emitted events. Every
change is the object's next version. Nothing is stored here: the queue commits
the batch's end state, and the records of the request ids it answered, in one
transaction.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, TypeAlias

import pydantic

from .. import _context
from .. import _exceptions as exc
from .. import _protocol as proto
from .._handles import Execution, binding, live_instance
from .._models import event_name
from .._pydantic import dump_event, dump_state, translate, unknown_fields, validate_wire_state
from ._fanout import Change
from ._store import Remembered

if TYPE_CHECKING:
    from ._objects import Cell, Cells
    from ._queue import Pending

__all__ = ["Batch", "Outcome"]

Outcome: TypeAlias = proto.Reply | exc.DurableError

# An integer literal of 16 digits or more may be out of ±(2^53-1): only then is a
# state or result scanned (outside its strings) for one that is.
_LONG_DIGITS: Final = re.compile(r"\d{16}")
_INTEGER_LITERAL: Final = re.compile(r"-?\b\d{16,}\b(?![.eE])")
_STRING: Final = re.compile(r'"(?:[^"\\]|\\.)*"')


@dataclass(slots=True)
class Applied:
    """What one operation of a batch did: its outcome, and its change if it made one."""

    outcome: Outcome
    change: Change | None = None


class Batch:
    """Runs one batch of operations against a working copy of a cell's state."""

    def __init__(self, host: Any, cells: Cells, cell: Cell) -> None:
        self.host = host
        self.cells = cells
        self.cell = cell
        self.version = cell.version
        self.state = cell.state
        self.state_text: str | None = None
        self.changed = False
        self.remember: list[tuple[str, Remembered]] = []
        self._answered: dict[str, Remembered] = {}

    async def apply(self, pending: Pending) -> Applied:
        op = pending.op
        request_id = pending.ticket.request_id
        try:
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
            remembered = Remembered(op.fingerprint(), applied.outcome.status, _record(op, applied))
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
        current = version == self.version
        return proto.Reply(
            remembered.status,
            version,
            self.state if current else None,
            record.get("result"),
            bool(record.get("deleted", False)),
            has_state=current and op.kind != "delete",
        )

    def _change(
        self,
        status: int,
        state: dict[str, Any] | None,
        result: Any,
        events: list[proto.EventMessage],
        *,
        deleted: bool = False,
    ) -> Applied:
        self.version += 1
        self.state = state
        self.changed = True
        reply = proto.Reply(status, self.version, state, result, deleted)
        return Applied(reply, Change(self.version, state, events))

    # -- call ------------------------------------------------------------------

    async def _call(self, op: proto.Call, pending: Pending) -> Applied:
        cell = self.cell
        method = cell.model.__durable_methods__.get(op.method)
        if method is None:
            raise exc.UnknownMethodError(f"{cell.name} has no remote method {op.method!r}")
        signature = method.signature
        keywords = signature.keywords(op.args)
        execution = Execution()
        live, before = self._live(execution)
        body = _context.Body(
            self.host, (*pending.chain, (cell.name, cell.object_id)), pending.ticket
        )
        try:
            try:
                with _context.running(body):
                    value = await method.fn(live, **keywords)
            except Exception as error:
                raise _remote_error(cell.name, op.method, error) from error
            result = signature.dump_result(value)
            _check_result(f"{cell.name}.{op.method}()", result)
            after = dump_state(live)
            events = [
                proto.EventMessage(self.version + 1, event_name(event), dump_event(event))
                for event in execution.events
            ]
            text = _check_change(cell.name, after, events) if (after != before or events) else None
        except BaseException:
            cell.live = None  # rebuilt from the last good state at the next call
            raise
        if text is None:
            return Applied(proto.Reply(200, self.version, self.state, result))
        cell.live_json = after
        self.state_text = text
        return self._change(200, after, result, events)

    def _live(self, execution: Execution) -> tuple[Any, dict[str, Any]]:
        """The instance to run a body against, built from the state unless still current."""
        cell = self.cell
        if cell.live is None or cell.live_json is None:
            cell.live = live_instance(cell.model, cell.object_id, self.state, execution)
            cell.live_json = self.state if self.state is not None else dump_state(cell.live)
        else:
            binding(cell.live).execution = execution
        return cell.live, cell.live_json

    # -- create, update, delete -----------------------------------------------------

    def _validated(self, fields: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
        cell = self.cell
        try:
            instance = validate_wire_state(cell.model, proto.dumps_text(fields))
        except pydantic.ValidationError as error:
            raise translate(error, f"invalid fields for {cell.name}") from error
        state = dump_state(instance)
        return state, _check_change(cell.name, state, [])

    def _create(self, op: proto.Create) -> Applied:
        if self.state is not None:
            raise exc.AlreadyExistsError(
                f"{self.cell.name} {self.cell.object_id!r} already has state "
                f"(version {self.version}); use update() or delete() it first"
            )
        state, self.state_text = self._validated(op.state)
        self.cell.live = None
        return self._change(201, state, None, [])

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
        state, text = self._validated({**(self.state or {}), **op.fields})
        if state == self.state:
            return Applied(proto.Reply(200, self.version, self.state))
        self.state_text = text
        self.cell.live = None
        return self._change(200, state, None, [])

    def _delete(self) -> Applied:
        if self.state is None:
            return Applied(proto.Reply(200, self.version, None, deleted=False))
        self.state_text = None
        self.cell.live = None
        return self._change(200, None, None, [], deleted=True)


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


def _check_change(model: str, state: dict[str, Any], events: list[proto.EventMessage]) -> str:
    """The state's JSON text, once it is known to fit the protocol's limits."""
    text = proto.dumps_text(state)
    if len(text) > proto.MAX_STATE_BYTES // 4 and len(text.encode()) > proto.MAX_STATE_BYTES:
        raise exc.StateTooLargeError(
            f"the state of {model} would take {len(text.encode()):,} bytes; "
            f"at most {proto.MAX_STATE_BYTES:,} are allowed. Nothing was changed"
        )
    if events:
        size = sum(len(proto.dumps(event.data)) + len(event.name) for event in events)
        if size > proto.MAX_EVENT_BYTES:
            raise exc.StateTooLargeError(
                f"the events of this change would take {size:,} bytes; at most "
                f"{proto.MAX_EVENT_BYTES:,} are allowed. Nothing was changed"
            )
        for event in events:
            _check_integers(proto.dumps_text(event.data), f"event {event.name}")
    _check_integers(text, f"the state of {model}")
    return text


def _check_result(what: str, result: Any) -> None:
    text = proto.dumps_text(result)
    if len(text) > proto.MAX_RESULT_BYTES // 4 and len(text.encode()) > proto.MAX_RESULT_BYTES:
        raise exc.InvalidResultError(
            f"{what} returned {len(text.encode()):,} bytes of JSON; at most "
            f"{proto.MAX_RESULT_BYTES:,} are allowed"
        )
    _check_integers(text, f"the result of {what}", result=True)


def _check_integers(text: str, what: str, *, result: bool = False) -> None:
    """Refuse JSON holding an integer outside ±(2^53-1): it cannot travel exactly."""
    if _LONG_DIGITS.search(text) is None:
        return
    for literal in _INTEGER_LITERAL.findall(_STRING.sub('""', text)):
        if abs(int(literal)) > proto.MAX_SAFE_INTEGER:
            message = f"{what} holds an integer outside ±(2^53-1), which JSON cannot carry exactly"
            if result:
                raise exc.InvalidResultError(message)
            raise exc.InvalidResultError(message + "; nothing was changed")


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

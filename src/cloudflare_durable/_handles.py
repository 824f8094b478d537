"""Handles, snapshots and live instances: what a model instance stands for.

A ``DurableModel`` instance is one of three things, told apart by its
*binding* (kept in a pydantic private attribute):

- a *handle* (``Model.get(id)``): names an object, holds the last state it saw,
  and turns remote method calls into operations for its client;
- a *snapshot* (from ``load``, ``update``, ``subscribe``): a handle that already
  holds state;
- a *live instance* inside a host, against which method bodies run (its binding
  carries the body's ``Execution``).

This module is the model side of every operation: it validates what users
give, turns it into protocol operations for the client, and applies replies
to handles. The client never sees a model class.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import pydantic

from . import _exceptions as exc
from . import _protocol as proto
from ._client import DurableClient, default_client
from ._pydantic import (
    Tracking,
    assign_fields,
    blank,
    clear_fields,
    copy_fields,
    dump_fields,
    get_private,
    set_private,
    shallow_copy,
    translate,
    validate_into,
)
from ._schema import check_models
from ._subscription import Subscription

if TYPE_CHECKING:
    from ._models import DurableModel, Event, RemoteMethod

__all__ = ["Binding", "Execution", "binding"]

M = TypeVar("M", bound="DurableModel")
E = TypeVar("E", bound="Event")

PRIVATE = "_durable"


@dataclass(slots=True)
class Execution:
    """What a method body sees while it runs inside a host: the events it emits, the
    schedules it makes and cancels, and (through ``tracking``) the fields it reads or
    assigns. ``schedule_exists`` tells whether the object has a schedule of that id
    (the host's view, with the earlier calls of the same batch)."""

    events: list[Event] = field(default_factory=list)
    tracking: Tracking | None = None
    scheduled: dict[str, tuple[int, str, dict[str, Any]]] = field(default_factory=dict)
    """New schedules by id: when (milliseconds since the epoch), method, arguments."""
    cancelled: list[str] = field(default_factory=list)
    schedule_exists: Callable[[str], bool] | None = None

    @property
    def schedules_changed(self) -> bool:
        return bool(self.scheduled or self.cancelled)


@dataclass(slots=True)
class Binding:
    """Which object an instance stands for, through which client, at which version."""

    object_id: str | None = None
    client: DurableClient | None = None
    version: int = 0
    loaded: bool = False
    execution: Execution | None = None


_UNBOUND = Binding()


def binding(obj: DurableModel) -> Binding:
    found: Binding | None = get_private(obj, PRIVATE)
    return found if found is not None else _UNBOUND


def unloaded(cls: type[M], bound: Binding) -> M:
    """A handle that has seen no state yet."""
    return blank(cls, {PRIVATE: bound})


def client_of(handle: DurableModel) -> DurableClient:
    bound = binding(handle)
    if bound.object_id is None:
        raise exc.UsageError(f"this {type(handle).__name__} is not bound to an object")
    return bound.client if bound.client is not None else default_client()


async def _perform(handle: DurableModel, op: proto.Operation) -> proto.Reply:
    """Perform ``op`` through the handle's client, after checking, the first time this
    client meets the handle's model, that the server serves the same model
    (``check_schema``)."""
    client = client_of(handle)
    if client._checks_schema and op.model not in client._schema_checked:
        check_models([type(handle)], await client._served_schema())
        client._schema_checked.add(op.model)
    return await client._perform(op)


def _have(handle: DurableModel) -> int | None:
    """The version the handle holds, to ask for a patch, if its server sends patches."""
    bound = binding(handle)
    if not bound.loaded:
        return None
    client = bound.client if bound.client is not None else default_client()
    return bound.version if client._patches else None


def object_id_of(handle: DurableModel) -> str:
    object_id = binding(handle).object_id
    if object_id is None:
        raise exc.UsageError(f"this {type(handle).__name__} is not bound to an object")
    return object_id


# -- operations ----------------------------------------------------------------


async def create(handle: M, fields: dict[str, Any]) -> M:
    cls = type(handle)
    try:
        state = cls.model_validate(fields).model_dump(mode="json")
    except pydantic.ValidationError as error:
        raise translate(error, f"invalid fields for {cls.__qualname__}") from error
    op = proto.Create(cls.__durable_name__, object_id_of(handle), state)
    apply(handle, await _perform(handle, op))
    return handle


async def create_many(
    cls: type[M], items: Mapping[str, Mapping[str, Any]], client: DurableClient | None
) -> list[M]:
    states: dict[str, dict[str, Any]] = {}
    for object_id, fields in items.items():
        proto.check_object_id(object_id)
        try:
            states[object_id] = cls.model_validate(dict(fields)).model_dump(mode="json")
        except pydantic.ValidationError as error:
            raise translate(
                error, f"invalid fields for {cls.__qualname__} {object_id!r}"
            ) from error
    chosen = client if client is not None else default_client()
    replies = await chosen._create_many(cls.__durable_name__, states)
    handles = []
    for object_id in states:
        handle = cls.get(object_id, client=client)
        apply(handle, replies[object_id])
        handles.append(handle)
    return handles


async def load(handle: M) -> M:
    op = proto.Read(type(handle).__durable_name__, object_id_of(handle), _have(handle))
    reply = await _perform(handle, op)
    return _answer(handle, reply)


async def update(handle: M, fields: dict[str, Any], if_version: int | None) -> M:
    cls = type(handle)
    payload = dump_fields(cls, fields)
    if if_version is not None and (type(if_version) is not int or if_version < 0):
        raise exc.UsageError(f"if_version must be a non-negative int, not {if_version!r}")
    op = proto.Update(
        cls.__durable_name__, object_id_of(handle), payload, if_version, have=_have(handle)
    )
    reply = await _perform(handle, op)
    if not reply.has_state:  # the replay of an update the object has moved past
        return await load(handle)
    return _answer(handle, reply)


async def delete(handle: DurableModel) -> bool:
    op = proto.Delete(type(handle).__durable_name__, object_id_of(handle))
    reply = await _perform(handle, op)
    apply(handle, reply)
    return reply.deleted


async def call(
    handle: DurableModel,
    method: RemoteMethod[Any, Any, Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    signature = method.signature
    payload = signature.bind(args, kwargs)
    name = type(handle).__durable_name__
    op = proto.Call(name, object_id_of(handle), method.wire_name, payload, have=_have(handle))
    reply = await _perform(handle, op)
    apply(handle, reply)
    return signature.load_result(reply.result)


async def schedules(handle: DurableModel) -> list[proto.Schedule]:
    query = proto.ListSchedules(type(handle).__durable_name__, object_id_of(handle))
    return proto.read_schedules(await client_of(handle)._query(query))


class ObjectIds:
    """The ids of a listing, fetched page by page as the iteration goes (nothing is held
    open between two pages)."""

    def __init__(
        self, model: str, prefix: str, limit: int | None, client: DurableClient | None
    ) -> None:
        self._model = model
        self._prefix = prefix
        self._left = limit
        self._client = client
        self._page: list[str] = []
        self._after: str | None = None
        self._done = limit == 0

    def __aiter__(self) -> ObjectIds:
        return self

    async def __anext__(self) -> str:
        while not self._page:
            if self._done:
                raise StopAsyncIteration
            await self._fetch()
        object_id = self._page.pop()
        if self._left is not None:
            self._left -= 1
            self._done = self._done or self._left <= 0
            if self._left <= 0:
                self._page.clear()
        return object_id

    async def _fetch(self) -> None:
        size = proto.MAX_LIST_LIMIT if self._left is None else min(self._left, proto.MAX_LIST_LIMIT)
        query = proto.ListObjects(self._model, self._prefix, self._after, size)
        client = self._client if self._client is not None else default_client()
        page = proto.read_object_page(await client._query(query))
        self._page = page.ids[::-1]
        self._after = page.next
        self._done = page.next is None


def list_ids(
    cls: type[DurableModel], prefix: str, limit: int | None, client: DurableClient | None
) -> ObjectIds:
    if not isinstance(prefix, str):
        raise exc.UsageError(f"the prefix must be a str, not {type(prefix).__name__}")
    if limit is not None and (type(limit) is not int or limit < 0):
        raise exc.UsageError(f"limit must be a non-negative int or None, not {limit!r}")
    return ObjectIds(cls.__durable_name__, prefix, limit, client)


def subscribe(handle: M) -> Subscription[M]:
    """Snapshots of ``handle``'s object: each made from the one before and the fields a
    patch set (they share the values of the fields that did not change)."""
    last: list[M] = []

    def convert(message: proto.Message) -> M | None:
        if isinstance(message, proto.Snapshot):
            apply_state(handle, message.version, message.state)
            made = snapshot(handle, message.version, message.state)
        elif isinstance(message, proto.PatchMessage) and last:
            apply_patch(handle, message.version, proto.Patch(message.since, message.fields))
            made = patched(last[0], message.version, message.fields)
        else:
            return None
        last[:] = [made]
        return made

    frame = proto.SubscribeFrame(None, snapshots=True, events=False, patches=True)
    return client_of(handle)._subscribe(
        type(handle).__durable_name__, object_id_of(handle), frame, convert
    )


def events(handle: DurableModel, types: tuple[type[E], ...]) -> Subscription[E]:
    by_name = {event_type.__durable_event_name__: event_type for event_type in types}

    def convert(message: proto.Message) -> E | None:
        if not isinstance(message, proto.EventMessage):
            return None
        event_type = by_name.get(message.name)
        if event_type is None:
            return None
        try:
            return event_type.model_validate(message.data)
        except pydantic.ValidationError as error:
            raise translate(error, f"event {message.name} does not validate") from error

    # The first connection asks for states too (as patches when it can): their versions
    # tell the subscription where to resume, so that the events it misses while away are
    # replayed. A connection that resumes from a version asks for events alone.
    frame = proto.SubscribeFrame(None, snapshots=True, events=True, patches=True)
    return client_of(handle)._subscribe(
        type(handle).__durable_name__,
        object_id_of(handle),
        frame,
        convert,
        states_to_start=True,
    )


@contextlib.asynccontextmanager
async def session(handle: M) -> AsyncIterator[M]:
    """A view of ``handle`` whose calls share one connection."""
    client = client_of(handle)
    async with client._session(type(handle).__durable_name__, object_id_of(handle)) as channel:
        bound = binding(handle)
        view = unloaded(
            type(handle), Binding(bound.object_id, channel, bound.version, bound.loaded)
        )
        if bound.loaded:
            copy_fields(handle, view)
        yield view


# -- state ---------------------------------------------------------------------


def validate_state(cls: type[M], state: dict[str, Any] | None) -> M:
    """``cls`` validated from a stored or received state (``None``: its defaults)."""
    try:
        return cls.model_validate(state or {})
    except pydantic.ValidationError as error:
        if state is None:
            raise exc.ObjectNotFoundError(
                f"{cls.__qualname__} has fields without defaults, so an object "
                "with no stored state cannot exist: create it first"
            ) from error
        raise translate(error, f"state of {cls.__qualname__} does not validate") from error


def apply(handle: DurableModel, reply: proto.Reply) -> None:
    if reply.patch is not None:
        apply_patch(handle, reply.version, reply.patch)
    elif reply.has_state:
        apply_state(handle, reply.version, reply.state)


def _answer(handle: M, reply: proto.Reply) -> M:
    """Apply ``reply`` to ``handle``, and return a snapshot of the state it carries."""
    apply(handle, reply)
    if reply.patch is None:
        return snapshot(handle, reply.version, reply.state)
    bound = binding(handle)
    if not bound.loaded or bound.version != reply.version:  # pragma: no cover - replies crossed
        raise exc.ConnectionLostError("the reply crossed another; load again", retryable=True)
    return patched(handle, reply.version, {})


def apply_patch(handle: DurableModel, version: int, patch: proto.Patch) -> None:
    """Take the fields a patch sets into ``handle``, if it holds a version the patch
    applies to (from ``patch.since`` up to ``version``); else leave it as it is."""
    bound = binding(handle)
    if not bound.loaded or not patch.since <= bound.version <= version:
        return
    try:
        assign_fields(handle, patch.fields)
    except pydantic.ValidationError as error:
        raise translate(error, f"state of {type(handle).__qualname__} does not validate") from error
    bound.version = version


def patched(source: M, version: int, fields: dict[str, Any]) -> M:
    """A new snapshot: ``source``'s fields, with ``fields`` (JSON) validated and set."""
    bound = binding(source)
    copy = shallow_copy(source, {PRIVATE: Binding(bound.object_id, bound.client, version, True)})
    try:
        assign_fields(copy, fields)
    except pydantic.ValidationError as error:
        raise translate(error, f"state of {type(source).__qualname__} does not validate") from error
    return copy


def apply_state(handle: DurableModel, version: int, state: dict[str, Any] | None) -> None:
    """Take newer state into ``handle`` (never older: replies may cross)."""
    bound = binding(handle)
    if bound.loaded and version < bound.version:
        return
    try:
        validate_into(handle, state or {})
    except pydantic.ValidationError as error:
        clear_fields(handle)
        bound.version, bound.loaded = version, False
        if state is None:
            return  # no state, and the model cannot default: nothing to show
        raise translate(error, f"state of {type(handle).__qualname__} does not validate") from error
    bound.version, bound.loaded = version, True


def snapshot(handle: M, version: int, state: dict[str, Any] | None) -> M:
    """A new instance holding ``state`` at ``version``, bound like ``handle``."""
    bound = binding(handle)
    copy = validate_state(type(handle), state)
    set_private(copy, PRIVATE, Binding(bound.object_id, bound.client, version, loaded=True))
    return copy


def live_instance(
    model: type[M], object_id: str, state: dict[str, Any] | None, execution: Execution
) -> M:
    """A model instance for a host to run method bodies against."""
    instance = validate_state(model, state)
    set_private(instance, PRIVATE, Binding(object_id, execution=execution))
    return instance

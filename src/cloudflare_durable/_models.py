"""``DurableModel``, ``@remote`` and ``Event``: typed classes mapped onto objects.

The class machinery (``DurableModelMeta``) collects the ``@remote`` methods of a
class when it is created, checks them, and registers the class by its wire name.
What an instance stands for (a handle, a snapshot, a live instance inside a
host) and how its operations travel is ``_handles``'s business.
"""

from __future__ import annotations

import builtins
import contextlib
import datetime
import functools
import importlib
import importlib.util
import inspect
import os
import sys
import time
import types
import uuid
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Generator, Mapping
from pathlib import Path
from types import ModuleType
from typing import (
    TYPE_CHECKING,
    Any,
    ClassVar,
    Concatenate,
    Generic,
    ParamSpec,
    Self,
    TypeVar,
    dataclass_transform,
    overload,
)

import pydantic

from . import _exceptions as exc
from . import _handles as handles
from . import _protocol as proto
from ._handles import Binding, binding
from ._pydantic import ModelMetaclass, Signature, build_signature

if TYPE_CHECKING:
    from ._client import DurableClient
    from ._subscription import Subscription

__all__ = ["DurableModel", "Event", "Migration", "RemoteMethod", "migration", "remote"]

P = ParamSpec("P")
R = TypeVar("R")
M = TypeVar("M", bound="DurableModel")
E = TypeVar("E", bound="Event")
E1 = TypeVar("E1", bound="Event")
E2 = TypeVar("E2", bound="Event")
E3 = TypeVar("E3", bound="Event")
E4 = TypeVar("E4", bound="Event")

RESERVED_PREFIX = "durable_"
#: Names a remote method may not take: they are the handle's own API.
RESERVED_NAMES = frozenset(
    {
        "get",
        "create",
        "load",
        "update",
        "delete",
        "subscribe",
        "events",
        "session",
        "emit",
        "list",
        "schedule",
        "schedules",
        "cancel_schedule",
    }
)
DEFAULT_SCHEMA_VERSION = 1
"""The schema version of a model that does not declare one."""


# -- events -------------------------------------------------------------------


class Event(pydantic.BaseModel):
    """Base class of the events a model emits (``self.emit(Joined(...))``).

    The class keyword ``name=`` sets the event's name on the wire (default: the
    class name). Events are immutable.
    """

    model_config = pydantic.ConfigDict(frozen=True, extra="forbid")

    __durable_event_name__: ClassVar[str] = "Event"

    def __init_subclass__(cls, *, name: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.__durable_event_name__ = proto.check_model_name(name or cls.__name__)


# -- remote methods -----------------------------------------------------------


class RemoteMethod(Generic[M, P, R]):
    """A method callable remotely; made by ``@remote``.

    Read on a handle, it is a coroutine function with the method's parameters
    that sends the call to the object; read on a live instance inside a host, it
    is the plain method.
    """

    def __init__(
        self, fn: Callable[Concatenate[M, P], Coroutine[Any, Any, R]], name: str | None
    ) -> None:
        if isinstance(fn, (staticmethod, classmethod)) or not inspect.isfunction(fn):
            raise exc.ModelDefinitionError(f"@remote applies to 'async def' methods, not to {fn!r}")
        if not inspect.iscoroutinefunction(fn):
            raise exc.ModelDefinitionError(
                f"@remote method {fn.__qualname__} must be declared 'async def'"
            )
        _check_parameters(fn)
        self.fn = fn
        self.attribute = fn.__name__
        self.wire_name = proto.check_method_name(name or fn.__name__)
        self._signature: Signature | None = None
        self.__doc__ = fn.__doc__
        self.__wrapped__ = fn

    def __set_name__(self, owner: type, attribute: str) -> None:
        if not isinstance(owner, DurableModelMeta):
            raise exc.ModelDefinitionError(
                f"@remote method {attribute!r} is on {owner.__qualname__}, "
                "which is not a DurableModel subclass"
            )
        self.attribute = attribute

    @property
    def signature(self) -> Signature:
        """Argument and result validators, built once (late, so forward references work)."""
        if self._signature is None:
            owner = self.fn.__qualname__.rsplit(".", 1)[0]
            self._signature = build_signature(owner, self.fn)
        return self._signature

    @overload
    def __get__(self, obj: None, owner: type[Any]) -> Self: ...
    @overload
    def __get__(self, obj: M, owner: type[Any]) -> Callable[P, Coroutine[object, object, R]]: ...
    def __get__(
        self, obj: M | None, owner: type[Any]
    ) -> Self | Callable[P, Coroutine[object, object, R]]:
        if obj is None:
            return self
        if binding(obj).execution is not None:
            return types.MethodType(self.fn, obj)
        return functools.partial(_call_remote, obj, self)

    if not TYPE_CHECKING:  # read it on an instance: the class attribute is not callable

        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            raise exc.ModelDefinitionError(
                f"@remote function {self.fn.__qualname__} is not a method of a DurableModel"
            )

    def __repr__(self) -> str:
        return f"<remote method {self.fn.__qualname__}>"


def _check_parameters(fn: Callable[..., Any]) -> None:
    params = list(inspect.signature(fn).parameters.values())
    if not params or params[0].kind not in (
        inspect.Parameter.POSITIONAL_ONLY,
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
    ):
        raise exc.ModelDefinitionError(
            f"@remote method {fn.__qualname__} must take 'self' as its first parameter"
        )
    for param in params[1:]:
        if param.kind is inspect.Parameter.POSITIONAL_ONLY:
            raise exc.ModelDefinitionError(
                f"@remote method {fn.__qualname__}: parameter {param.name!r} cannot be "
                "positional-only: arguments travel by name"
            )
        if param.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            raise exc.ModelDefinitionError(
                f"@remote method {fn.__qualname__} cannot take *{param.name} or **{param.name}: "
                "every argument needs a name and a type on the wire"
            )


@overload
def remote(fn: Callable[Concatenate[M, P], Coroutine[Any, Any, R]], /) -> RemoteMethod[M, P, R]: ...
@overload
def remote(
    *, name: str | None = None
) -> Callable[[Callable[Concatenate[M, P], Coroutine[Any, Any, R]]], RemoteMethod[M, P, R]]: ...
def remote(
    fn: Callable[Concatenate[M, P], Coroutine[Any, Any, R]] | None = None,
    /,
    *,
    name: str | None = None,
) -> (
    RemoteMethod[M, P, R]
    | Callable[[Callable[Concatenate[M, P], Coroutine[Any, Any, R]]], RemoteMethod[M, P, R]]
):
    """Mark an ``async def`` method of a ``DurableModel`` as callable remotely.

    Use it bare (``@remote``) or with options (``@remote(name="wire_name")``).
    Arguments and the result are validated from the signature on both sides.
    """
    if fn is None:
        return functools.partial(RemoteMethod, name=name)
    return RemoteMethod(fn, name)


class LocalMethod:
    """A plain ``async def`` method of a model (not ``@remote``).

    It runs where it is called: inside a method body, on the live object. On a
    handle or a snapshot it would run on a copy that may be stale and change
    nothing, so calling it there raises ``UsageError``.
    """

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn
        self.__doc__ = fn.__doc__
        self.__wrapped__ = fn

    def __get__(self, obj: DurableModel | None, owner: type[Any]) -> Any:
        if obj is None:
            return self.fn
        bound = binding(obj)
        if bound.object_id is not None and bound.execution is None:
            return functools.partial(_refuse_local, type(obj).__qualname__, self.fn.__name__)
        return types.MethodType(self.fn, obj)


def _refuse_local(owner: str, name: str, *args: Any, **kwargs: Any) -> Any:
    raise exc.UsageError(
        f"{owner}.{name} is not a @remote method: on a handle or a snapshot it would run "
        "locally, on state that may be stale, and change nothing. Mark it @remote, or "
        "call it from inside a @remote method"
    )


# -- migrations -----------------------------------------------------------------

MigrationFunction = Callable[[dict[str, Any]], dict[str, Any]]


class Migration:
    """A function from a model's stored state at schema version ``from_version`` (its
    JSON, as a dict) to the state at the next version; made by ``@migration``."""

    def __init__(self, fn: MigrationFunction, from_version: int) -> None:
        self.fn = fn
        self.from_version = from_version
        self.__doc__ = fn.__doc__
        self.__wrapped__ = fn

    def __get__(self, obj: object, owner: type[Any] | None = None) -> MigrationFunction:
        return self.fn

    def __call__(self, data: dict[str, Any]) -> dict[str, Any]:
        return self.fn(data)

    def __repr__(self) -> str:
        return f"<migration from schema version {self.from_version}: {self.fn!r}>"


def migration(
    *, from_version: int
) -> Callable[[MigrationFunction | staticmethod[[dict[str, Any]], dict[str, Any]]], Migration]:
    """Mark a static function of a model as the migration of its stored state from schema
    version ``from_version`` to the next (the class keyword ``schema_version=`` says the
    current one)::

        class Item(DurableModel, schema_version=2):
            name: str = ""

            @migration(from_version=1)
            @staticmethod
            def rename_title(data: dict[str, Any]) -> dict[str, Any]:
                data["name"] = data.pop("title")
                return data

    The function takes the stored state's JSON (a dict it may change) and returns the
    state at the next version. When an object stored by an older version is read, its
    migrations run in order; the result is validated, and stored at the next change.
    """
    if type(from_version) is not int or from_version < 1:
        raise exc.ModelDefinitionError(
            f"@migration(from_version=...) takes a schema version (1 or more), not {from_version!r}"
        )

    def decorate(
        fn: MigrationFunction | staticmethod[[dict[str, Any]], dict[str, Any]],
    ) -> Migration:
        function = fn.__func__ if isinstance(fn, staticmethod) else fn
        if isinstance(fn, classmethod) or not callable(function):
            raise exc.ModelDefinitionError(
                f"@migration applies to static functions of the stored state, not to {fn!r}"
            )
        return Migration(function, from_version)

    return decorate


def schema_version_of(model: type[DurableModel]) -> int:
    return model.__durable_schema_version__


def migrate_state(
    model: type[DurableModel], data: dict[str, Any], from_version: int
) -> dict[str, Any]:
    """``data``, a state stored by schema version ``from_version``, through the model's
    migrations up to its own version (a version without a migration changes nothing)."""
    for version in range(from_version, model.__durable_schema_version__):
        step = model.__durable_migrations__.get(version)
        if step is None:
            continue
        data = step.fn(data)
        if not isinstance(data, dict):
            raise TypeError(
                f"the migration from schema version {version} returned a "
                f"{type(data).__name__}, not a dict"
            )
    return data


def _collect_migrations(model: type[DurableModel]) -> dict[int, Migration]:
    found: dict[int, Migration] = {}
    current = model.__durable_schema_version__
    for klass in reversed(model.__mro__):
        for attribute, value in vars(klass).items():
            if not isinstance(value, Migration):
                continue
            where = f"{model.__qualname__}.{attribute}"
            if value.from_version >= current:
                raise exc.ModelDefinitionError(
                    f"{where} migrates from schema version {value.from_version}, but the "
                    f"model is at version {current} (class keyword schema_version=)"
                )
            if klass is model and value.from_version in found:
                raise exc.ModelDefinitionError(
                    f"{where}: two migrations from schema version {value.from_version}"
                )
            found[value.from_version] = value
    return found


# -- the class machinery ------------------------------------------------------

_registry: dict[str, type[DurableModel]] = {}


def registered_models() -> dict[str, type[DurableModel]]:
    """Every ``DurableModel`` subclass defined in this process, by wire name."""
    return dict(_registry)


@dataclass_transform(kw_only_default=True, field_specifiers=(pydantic.Field, pydantic.PrivateAttr))
class DurableModelMeta(ModelMetaclass):
    """Builds ``DurableModel`` classes: collects ``@remote`` methods and registers the class."""

    def __new__(
        mcs,
        cls_name: str,
        bases: tuple[type[Any], ...],
        namespace: dict[str, Any],
        **kwargs: Any,
    ) -> type:
        if namespace.get("__module__") == __name__ and cls_name == "DurableModel":
            return super().__new__(mcs, cls_name, bases, namespace, **kwargs)
        _check_field_names(cls_name, namespace.get("__annotations__", {}))
        for attribute, value in list(namespace.items()):
            if not attribute.startswith("__") and inspect.iscoroutinefunction(value):
                namespace[attribute] = LocalMethod(value)
        cls = super().__new__(mcs, cls_name, bases, namespace, **kwargs)
        model: type[DurableModel] = cls
        model.__durable_methods__ = _collect_methods(model)
        model.__durable_migrations__ = _collect_migrations(model)
        _register(model)
        return cls


def _check_field_names(cls_name: str, annotations: dict[str, Any]) -> None:
    for name in annotations:
        if name.startswith(RESERVED_PREFIX):
            raise exc.ModelDefinitionError(
                f"{cls_name}.{name}: field names starting with "
                f"{RESERVED_PREFIX!r} are reserved for cloudflare-durable"
            )


def _collect_methods(model: type[DurableModel]) -> dict[str, RemoteMethod[Any, Any, Any]]:
    methods: dict[str, RemoteMethod[Any, Any, Any]] = {}
    for klass in reversed(model.__mro__):
        for attribute, value in vars(klass).items():
            if isinstance(value, RemoteMethod):
                _check_method(model, attribute, value)
                methods = {k: v for k, v in methods.items() if v.attribute != attribute}
                methods[value.wire_name] = value
    for method in methods.values():
        try:
            method.signature  # noqa: B018 - build validators now to report errors early
        except NameError:
            pass  # a forward reference; resolved at the first call
        except pydantic.PydanticSchemaGenerationError as error:
            raise exc.ModelDefinitionError(
                f"{method.fn.__qualname__}: a parameter or the return type cannot be "
                f"validated or sent as JSON: {error}"
            ) from error
        except pydantic.PydanticUserError as error:
            raise exc.ModelDefinitionError(f"{method.fn.__qualname__}: {error}") from error
    return methods


def _check_method(
    model: type[DurableModel], attribute: str, method: RemoteMethod[Any, Any, Any]
) -> None:
    where = f"{model.__qualname__}.{attribute}"
    if attribute.startswith("_") or method.wire_name.startswith("_"):
        raise exc.ModelDefinitionError(f"{where}: remote methods cannot be private ('_' prefix)")
    for name in (attribute, method.wire_name):
        if name in RESERVED_NAMES or name.startswith(("model_", RESERVED_PREFIX)):
            raise exc.ModelDefinitionError(
                f"{where}: the name {name!r} is taken by the DurableModel API; choose another"
            )
        if name in model.model_fields:
            raise exc.ModelDefinitionError(f"{where}: {name!r} is also a field")


def _register(model: type[DurableModel]) -> None:
    name = model.__durable_name__
    previous = _registry.get(name)
    if previous is not None and (previous.__module__, previous.__qualname__) != (
        model.__module__,
        model.__qualname__,
    ):
        raise exc.ModelDefinitionError(
            f"two models are named {name!r}: {previous.__module__}.{previous.__qualname__} "
            f"and {model.__module__}.{model.__qualname__}; give one a name= class keyword"
        )
    _registry[name] = model


# -- the model ----------------------------------------------------------------


class DurableModel(pydantic.BaseModel, metaclass=DurableModelMeta):
    """Base class of typed durable objects.

    Subclass it with pydantic fields and ``@remote`` async methods. The class
    keyword ``name=`` sets the model's name on the wire (default: the class
    name). Field names starting with ``durable_`` are reserved.
    """

    model_config = pydantic.ConfigDict(
        extra="forbid",
        validate_assignment=True,
        ignored_types=(RemoteMethod, LocalMethod, Migration),
    )

    __durable_name__: ClassVar[str] = "DurableModel"
    __durable_methods__: ClassVar[dict[str, RemoteMethod[Any, Any, Any]]] = {}
    __durable_schema_version__: ClassVar[int] = DEFAULT_SCHEMA_VERSION
    __durable_migrations__: ClassVar[dict[int, Migration]] = {}

    _durable: Binding | None = pydantic.PrivateAttr(default=None)

    def __init_subclass__(
        cls, *, name: str | None = None, schema_version: int | None = None, **kwargs: Any
    ) -> None:
        super().__init_subclass__(**kwargs)
        cls.__durable_name__ = proto.check_model_name(name or cls.__name__)
        if schema_version is None:
            schema_version = DEFAULT_SCHEMA_VERSION
        if type(schema_version) is not int or not 1 <= schema_version <= proto.MAX_SAFE_INTEGER:
            raise exc.ModelDefinitionError(
                f"{cls.__qualname__}: schema_version must be an integer from 1, "
                f"not {schema_version!r}"
            )
        cls.__durable_schema_version__ = schema_version

    # -- identity ---------------------------------------------------------

    @property
    def durable_id(self) -> str:
        """The id of the object this handle or snapshot stands for."""
        return handles.object_id_of(self)

    @property
    def durable_version(self) -> int:
        """The object's version when this state was seen (0: never written)."""
        return binding(self).version

    @property
    def durable_loaded(self) -> bool:
        """Whether this handle has seen the object's state yet."""
        return binding(self).loaded

    @property
    def durable_client(self) -> DurableClient:
        """The client this handle talks through: the one it was given, else the default
        client (inside a method body, the host running it)."""
        return handles.client_of(self)

    # -- handles ----------------------------------------------------------

    @classmethod
    def get(cls, object_id: str, *, client: DurableClient | None = None) -> Self:
        """A handle on the object ``object_id``. No I/O: the id is only checked."""
        return handles.unloaded(cls, Binding(proto.check_object_id(object_id), client))

    @classmethod
    async def create(cls, object_id: str, /, **fields: Any) -> Self:
        """Initialise the object with ``fields``; ``AlreadyExistsError`` if it has state.

        Type checkers do not see the field names and types of ``**fields``: they
        are validated at run time (``ValidationError``).
        """
        return await handles.create(cls.get(object_id), fields)

    @classmethod
    async def create_many(
        cls, items: Mapping[str, Mapping[str, Any]], *, client: DurableClient | None = None
    ) -> list[Self]:
        """Initialise many objects at once: ``items`` maps object ids to their fields.

        On the embedded host it is one transaction: every object is created, or none
        (``AlreadyExistsError`` names those that already have state). Over the network
        each object is its own request (retried with its own request id), so an error
        leaves the others created. Returns a handle on each, in the order given.
        """
        return await handles.create_many(cls, items, client)

    async def _durable_create(self, fields: dict[str, Any]) -> Self:
        return await handles.create(self, fields)

    async def load(self) -> Self:
        """The object's current state, validated; the handle keeps it too."""
        return await handles.load(self)

    async def update(self, *, if_version: int | None = None, **fields: Any) -> Self:
        """Set the given fields, validated. With ``if_version``, only at that version.

        Type checkers do not see the field names and types of ``**fields``: they
        are validated at run time (``ValidationError``).
        """
        return await handles.update(self, fields, if_version)

    async def delete(self) -> bool:
        """Remove the object's state. Returns whether there was any."""
        return await handles.delete(self)

    def subscribe(self) -> Subscription[Self]:
        """Validated snapshots: the current one first, then one per change.

        Versions strictly increase and never repeat, across reconnects. Use as
        ``async for`` (optionally inside ``async with`` to close it promptly).
        """
        return handles.subscribe(self)

    @overload
    def events(self, type1: type[E1], /) -> Subscription[E1]: ...
    @overload
    def events(self, type1: type[E1], type2: type[E2], /) -> Subscription[E1 | E2]: ...
    @overload
    def events(
        self, type1: type[E1], type2: type[E2], type3: type[E3], /
    ) -> Subscription[E1 | E2 | E3]: ...
    @overload
    def events(
        self, type1: type[E1], type2: type[E2], type3: type[E3], type4: type[E4], /
    ) -> Subscription[E1 | E2 | E3 | E4]: ...
    @overload
    def events(self, type1: type[E], /, *types: type[E]) -> Subscription[E]: ...
    def events(self, *types: type[Event]) -> Subscription[Any]:
        """Validated events of the given types, in emission order, as they happen.

        Items are typed as the union of the types given (up to four; with more,
        as their common base class).
        """
        if not types:
            raise exc.UsageError("events() needs at least one Event subclass")
        for event_type in types:
            if not (isinstance(event_type, type) and issubclass(event_type, Event)):
                raise exc.UsageError(f"events() takes Event subclasses, not {event_type!r}")
        return handles.events(self, types)

    def session(self) -> contextlib.AbstractAsyncContextManager[Self]:
        """A handle whose calls share one connection, many in flight at once."""
        return handles.session(self)

    def emit(self, event: Event) -> None:
        """Inside a ``@remote`` method body: publish ``event`` once the call is stored."""
        execution = binding(self).execution
        if execution is None:
            raise exc.UsageError("emit() can only be called inside a @remote method on a host")
        if not isinstance(event, Event):
            raise exc.UsageError(f"emit() takes an Event instance, not {type(event).__name__}")
        execution.events.append(event)

    # -- schedules ------------------------------------------------------------

    def schedule(
        self,
        when: datetime.datetime | datetime.timedelta | float,
        method: Callable[P, Awaitable[object]],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> str:
        """Inside a ``@remote`` method body: call ``method`` (a remote method of ``self``,
        as ``self.method``) with these arguments at ``when`` (an aware ``datetime``, a
        ``timedelta`` from now, or seconds from now). Returns the schedule's id.

        The arguments are validated now, as a call's. The schedule is stored with this
        call's change (a call that raises schedules nothing), and runs once, at or after
        its time, as a call of its own on this object.
        """
        execution = binding(self).execution
        if execution is None:
            raise exc.UsageError("schedule() can only be called inside a @remote method on a host")
        remote_method = _remote_of(self, method)
        signature = remote_method.signature
        payload = signature.bind(args, kwargs)
        signature.keywords(payload)  # as the host checks it when the schedule runs
        schedule_id = uuid.uuid4().hex
        execution.scheduled[schedule_id] = (_due(when), remote_method.wire_name, payload)
        return schedule_id

    def cancel_schedule(self, schedule_id: str) -> bool:
        """Inside a ``@remote`` method body: cancel a pending (or failed) schedule of this
        object, with this call's change. Returns whether there was one."""
        execution = binding(self).execution
        if execution is None:
            raise exc.UsageError(
                "cancel_schedule() can only be called inside a @remote method on a host"
            )
        if execution.scheduled.pop(schedule_id, None) is not None:
            return True
        if schedule_id in execution.cancelled or execution.schedule_exists is None:
            return False
        if not execution.schedule_exists(schedule_id):
            return False
        execution.cancelled.append(schedule_id)
        return True

    async def schedules(self) -> builtins.list[proto.Schedule]:
        """The object's pending and failed schedules, by time."""
        return await handles.schedules(self)

    # -- machinery --------------------------------------------------------

    if not TYPE_CHECKING:

        def __getattr__(self, item: str) -> Any:
            tracking = binding(self).execution and binding(self).execution.tracking
            if tracking is not None and item in tracking.hidden:
                return tracking.reveal(item)
            if item in type(self).model_fields:
                raise exc.NotLoadedError(
                    f"{type(self).__name__}.get({binding(self).object_id!r}) has not seen the "
                    f"object's state yet, so it cannot tell {item!r}: "
                    "await handle.load() first"
                )
            return super().__getattr__(item)

        def __setattr__(self, name: str, value: Any) -> None:
            bound = binding(self)
            execution = bound.execution
            if execution is not None:
                if execution.tracking is not None and name in type(self).model_fields:
                    execution.tracking.assigned.add(name)
            elif bound.object_id is not None and name in type(self).model_fields:
                raise exc.UsageError(
                    f"cannot set {name!r} on a handle: use "
                    f"await handle.update({name}=...) or a @remote method"
                )
            super().__setattr__(name, value)

    # Inside a method body, what reads every field at once first brings back the
    # fields kept out of sight to see which ones the body touches (``Tracking``).

    def _durable_reveal_all(self) -> None:
        execution = binding(self).execution
        if execution is not None and execution.tracking is not None:
            execution.tracking.reveal_all()

    def model_dump(self, **kwargs: Any) -> dict[str, Any]:
        self._durable_reveal_all()
        return super().model_dump(**kwargs)

    def model_dump_json(self, **kwargs: Any) -> str:
        self._durable_reveal_all()
        return super().model_dump_json(**kwargs)

    def model_copy(self, **kwargs: Any) -> Self:
        self._durable_reveal_all()
        return super().model_copy(**kwargs)

    def __eq__(self, other: object) -> bool:
        self._durable_reveal_all()
        if isinstance(other, DurableModel):
            other._durable_reveal_all()
        return super().__eq__(other)

    __hash__ = None  # type: ignore[assignment]

    def __iter__(self) -> Any:
        self._durable_reveal_all()
        return super().__iter__()

    def __copy__(self) -> Self:
        self._durable_reveal_all()
        return super().__copy__()

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> Self:
        self._durable_reveal_all()
        return super().__deepcopy__(memo)

    def __getstate__(self) -> dict[Any, Any]:
        self._durable_reveal_all()
        return super().__getstate__()

    def __repr_args__(self) -> Any:
        self._durable_reveal_all()
        bound = binding(self)
        if bound.object_id is None or bound.execution is not None:
            yield from super().__repr_args__()
            return
        yield "durable_id", bound.object_id
        if not bound.loaded:
            yield "durable_loaded", False
            return
        yield "durable_version", bound.version
        yield from super().__repr_args__()

    # Last in the class body: below this point, the name ``list`` is this method.
    @classmethod
    def list(
        cls, prefix: str = "", limit: int | None = None, *, client: DurableClient | None = None
    ) -> AsyncIterator[str]:
        """The ids of this model's objects that have stored state, in the order of their
        UTF-8 bytes: those starting with ``prefix``, at most ``limit`` of them. Fetched
        page by page as the iteration goes."""
        return handles.list_ids(cls, prefix, limit, client)


def _call_remote(
    handle: DurableModel, method: RemoteMethod[Any, Any, Any], *args: Any, **kwargs: Any
) -> Coroutine[Any, Any, Any]:
    return RemoteCall(handles.call(handle, method, args, kwargs), handle, method)


class RemoteCall(Coroutine[Any, Any, R]):
    """A remote call not yet sent: awaiting it sends it.

    A coroutine (``asyncio.run``, ``create_task`` and ``gather`` take it) that,
    dropped without being awaited, warns naming the method: the call was never
    sent, which Python's own "coroutine was never awaited" would not make clear.
    """

    __slots__ = ("_coro", "_handle", "_method", "_started")

    def __init__(
        self,
        coro: Coroutine[Any, Any, R],
        handle: DurableModel,
        method: RemoteMethod[Any, Any, Any],
    ) -> None:
        self._coro = coro
        self._handle = handle
        self._method = method
        self._started = False

    def __await__(self) -> Generator[Any, None, R]:
        self._started = True
        return self._coro.__await__()

    def send(self, value: Any) -> Any:
        self._started = True
        return self._coro.send(value)

    def throw(self, *args: Any) -> Any:
        self._started = True
        return self._coro.throw(*args)

    def close(self) -> None:
        self._started = True
        self._coro.close()

    def __del__(self) -> None:
        if self._started:
            return
        self._coro.close()  # no second, generic warning
        with contextlib.suppress(Exception):  # the interpreter may be shutting down
            attribute = self._method.attribute
            warnings.warn(
                f"{type(self._handle).__qualname__}.{attribute}() on "
                f"{binding(self._handle).object_id!r} was called but never awaited, so the "
                f"call was never sent: write 'await handle.{attribute}(...)', or outside "
                f"async code 'cloudflare_durable.blocking.run(handle.{attribute}(...))'",
                RuntimeWarning,
                stacklevel=2,
            )


def _remote_of(instance: DurableModel, method: Callable[..., Any]) -> RemoteMethod[Any, Any, Any]:
    """The remote method ``method`` is, read on ``instance`` (``self.increment``)."""
    function = getattr(method, "__func__", None)
    if getattr(method, "__self__", None) is not instance or function is None:
        raise exc.UsageError(
            "schedule() takes a @remote method of the object itself, as self.method"
        )
    methods: dict[str, RemoteMethod[Any, Any, Any]] = type(instance).__durable_methods__
    for candidate in methods.values():
        if candidate.fn is function:
            return candidate
    raise exc.UsageError(
        f"{getattr(function, '__qualname__', function)!r} is not a @remote method of "
        f"{type(instance).__qualname__}"
    )


def _due(when: datetime.datetime | datetime.timedelta | float) -> int:
    """When a schedule is due, in milliseconds since the epoch."""
    if isinstance(when, datetime.datetime):
        if when.tzinfo is None or when.utcoffset() is None:
            raise exc.UsageError(
                "schedule() needs an aware datetime (with a time zone, such as "
                "datetime.now(timezone.utc)); a naive one does not say which time it is"
            )
        return proto.to_millis(when)
    if isinstance(when, datetime.timedelta):
        seconds = when.total_seconds()
    elif isinstance(when, int | float) and not isinstance(when, bool):
        seconds = float(when)
    else:
        raise exc.UsageError(
            f"schedule() takes a datetime, a timedelta or seconds, not {type(when).__name__}"
        )
    if seconds != seconds or abs(seconds) > 1e11:
        raise exc.UsageError(f"schedule() cannot wait {seconds!r} seconds")
    return -(-int(time.time() * 1_000_000 + seconds * 1_000_000) // 1000)


def models_in(module: ModuleType) -> list[type[DurableModel]]:
    """Every ``DurableModel`` subclass that ``module`` defines or imports."""
    return [
        value
        for value in vars(module).values()
        if isinstance(value, type) and issubclass(value, DurableModel) and value is not DurableModel
    ]


def events_in(module: ModuleType) -> list[type[Event]]:
    """Every ``Event`` subclass that ``module`` defines or imports."""
    return [
        value
        for value in vars(module).values()
        if isinstance(value, type) and issubclass(value, Event) and value is not Event
    ]


def load_module(target: str) -> ModuleType:
    """Import ``target``: a path to a ``.py`` file, or a dotted module name."""
    path = Path(target)
    if target.endswith(".py") or path.is_file():
        if not path.is_file():
            raise SystemExit(f"durable: no such file: {target}")
        sys.path.insert(0, str(path.resolve().parent))
        spec = importlib.util.spec_from_file_location(path.stem, path)
        if spec is None or spec.loader is None:
            raise SystemExit(f"durable: cannot import {target}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[path.stem] = module
        spec.loader.exec_module(module)
        return module
    sys.path.insert(0, os.getcwd())
    try:
        return importlib.import_module(target)
    except ImportError as error:
        raise SystemExit(f"durable: cannot import {target!r}: {error}") from error


def event_name(event: Event) -> str:
    return type(event).__durable_event_name__

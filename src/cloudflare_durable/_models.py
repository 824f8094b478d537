"""``DurableModel``, ``@remote`` and ``Event``: typed classes mapped onto objects.

A ``DurableModel`` instance is one of three things:

- a *handle* (``Model.get(id)``): names an object, holds the last state it saw,
  and turns remote method calls into requests;
- a *snapshot* (from ``load``, ``subscribe``): a handle that already holds state;
- a *live instance* inside a host, against which method bodies run.

The class machinery (``DurableModelMeta``) collects the ``@remote`` methods of a
class when it is created, checks them, and registers the class by its wire name.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import types
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import (
    TYPE_CHECKING,
    Any,
    ClassVar,
    Concatenate,
    Generic,
    ParamSpec,
    Self,
    TypeVar,
    overload,
)

import pydantic

from . import _exceptions as exc
from . import _protocol as proto
from ._pydantic import ModelMetaclass, Signature, build_signature, translate, validate_into

if TYPE_CHECKING:
    from ._client import DurableClient
    from ._subscription import Subscription

__all__ = ["DurableModel", "Event", "RemoteMethod", "remote"]

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
    {"get", "create", "load", "update", "delete", "subscribe", "events", "session", "emit"}
)


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
        if _binding(obj).execution is not None:
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


# -- per-instance binding -----------------------------------------------------


@dataclass(slots=True)
class Execution:
    """What a method body sees while it runs inside a host: the events it emits."""

    events: list[Event] = field(default_factory=list)


@dataclass(slots=True)
class Binding:
    """Which object an instance stands for, through which client, at which version."""

    object_id: str | None = None
    client: DurableClient | None = None
    version: int = 0
    loaded: bool = False
    execution: Execution | None = None


_UNBOUND = Binding()


def _binding(obj: DurableModel) -> Binding:
    private = object.__getattribute__(obj, "__pydantic_private__")
    binding = private.get("_durable") if private else None
    return binding if binding is not None else _UNBOUND


# -- the class machinery ------------------------------------------------------

_registry: dict[str, type[DurableModel]] = {}


def registered_models() -> dict[str, type[DurableModel]]:
    """Every ``DurableModel`` subclass defined in this process, by wire name."""
    return dict(_registry)


class DurableModelMeta(ModelMetaclass):
    """Builds ``DurableModel`` classes: collects ``@remote`` methods and registers the class."""

    def __new__(
        mcs,
        cls_name: str,
        bases: tuple[type[Any], ...],
        namespace: dict[str, Any],
        **kwargs: Any,
    ) -> type:
        _check_field_names(cls_name, namespace.get("__annotations__", {}))
        cls = super().__new__(mcs, cls_name, bases, namespace, **kwargs)
        if namespace.get("__module__") == __name__ and cls_name == "DurableModel":
            return cls
        model: type[DurableModel] = cls
        model.__durable_methods__ = _collect_methods(model)
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
        ignored_types=(RemoteMethod,),
    )

    __durable_name__: ClassVar[str] = "DurableModel"
    __durable_methods__: ClassVar[dict[str, RemoteMethod[Any, Any, Any]]] = {}

    _durable: Binding | None = pydantic.PrivateAttr(default=None)

    def __init_subclass__(cls, *, name: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.__durable_name__ = proto.check_model_name(name or cls.__name__)

    # -- identity ---------------------------------------------------------

    @property
    def durable_id(self) -> str:
        """The id of the object this handle or snapshot stands for."""
        object_id = _binding(self).object_id
        if object_id is None:
            raise exc.UsageError(f"this {type(self).__name__} is not bound to an object")
        return object_id

    @property
    def durable_version(self) -> int:
        """The object's version when this state was seen (0: never written)."""
        return _binding(self).version

    @property
    def durable_loaded(self) -> bool:
        """Whether this handle has seen the object's state yet."""
        return _binding(self).loaded

    # -- handles ----------------------------------------------------------

    @classmethod
    def get(cls, object_id: str, *, client: DurableClient | None = None) -> Self:
        """A handle on the object ``object_id``. No I/O: the id is only checked."""
        binding = Binding(proto.check_object_id(object_id), client)
        return cls._unloaded(binding)

    @classmethod
    async def create(cls, object_id: str, /, **fields: Any) -> Self:
        """Initialise the object with ``fields``; ``AlreadyExistsError`` if it has state.

        Type checkers do not see the field names and types of ``**fields``: they
        are validated at run time (``ValidationError``).
        """
        return await cls.get(object_id).durable_client.create_object(cls, object_id, fields)

    async def load(self) -> Self:
        """The object's current state, validated; the handle keeps it too."""
        reply = await self.durable_client.read(type(self), self.durable_id)
        self._durable_apply(reply.version, reply.state)
        return self._snapshot(reply.version, reply.state)

    async def update(self, *, if_version: int | None = None, **fields: Any) -> Self:
        """Set the given fields, validated. With ``if_version``, only at that version.

        Type checkers do not see the field names and types of ``**fields``: they
        are validated at run time (``ValidationError``).
        """
        client = self.durable_client
        reply = await client.update_object(type(self), self.durable_id, fields, if_version)
        self._durable_apply(reply.version, reply.state)
        return self._snapshot(reply.version, reply.state)

    async def delete(self) -> bool:
        """Remove the object's state. Returns whether there was any."""
        reply = await self.durable_client.delete_object(type(self), self.durable_id)
        self._durable_apply(reply.version, None)
        return reply.deleted

    def subscribe(self) -> Subscription[Self]:
        """Validated snapshots: the current one first, then one per change.

        Versions strictly increase and never repeat, across reconnects. Use as
        ``async for`` (optionally inside ``async with`` to close it promptly).
        """
        return self.durable_client.subscribe_snapshots(self)

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
        return self.durable_client.subscribe_events(self, types)

    def session(self) -> contextlib.AbstractAsyncContextManager[Self]:
        """A handle whose calls share one connection, many in flight at once."""
        return self.durable_client.open_session(self)

    def emit(self, event: Event) -> None:
        """Inside a ``@remote`` method body: publish ``event`` once the call is stored."""
        execution = _binding(self).execution
        if execution is None:
            raise exc.UsageError("emit() can only be called inside a @remote method on a host")
        if not isinstance(event, Event):
            raise exc.UsageError(f"emit() takes an Event instance, not {type(event).__name__}")
        execution.events.append(event)

    @property
    def durable_client(self) -> DurableClient:
        """The client this handle talks through (the default client if none was given)."""
        binding = _binding(self)
        if binding.object_id is None:
            raise exc.UsageError(f"this {type(self).__name__} is not bound to an object")
        if binding.client is None:
            from ._client import default_client

            return default_client()
        return binding.client

    # -- machinery --------------------------------------------------------

    @classmethod
    def _unloaded(cls, binding: Binding) -> Self:
        handle = cls.__new__(cls)
        object.__setattr__(handle, "__dict__", {})
        object.__setattr__(handle, "__pydantic_fields_set__", set())
        object.__setattr__(handle, "__pydantic_extra__", None)
        object.__setattr__(handle, "__pydantic_private__", {"_durable": binding})
        return handle

    @classmethod
    def _durable_validate(cls, state: dict[str, Any] | None) -> Self:
        try:
            return cls.model_validate(state or {})
        except pydantic.ValidationError as error:
            if state is None:
                raise exc.ObjectNotFoundError(
                    f"{cls.__qualname__} has fields without defaults, so an object "
                    "with no stored state cannot exist: create it first"
                ) from error
            raise translate(error, f"state of {cls.__qualname__} does not validate") from error

    def _durable_apply(self, version: int, state: dict[str, Any] | None) -> None:
        """Take newer state into this handle (never older: replies may cross)."""
        binding = _binding(self)
        if binding.loaded and version < binding.version:
            return
        try:
            validate_into(self, state or {})
        except pydantic.ValidationError as error:
            object.__setattr__(self, "__dict__", {})
            binding.version, binding.loaded = version, False
            if state is None:
                return  # no state, and the model cannot default: nothing to show
            raise translate(
                error, f"state of {type(self).__qualname__} does not validate"
            ) from error
        binding.version, binding.loaded = version, True

    def _snapshot(self, version: int, state: dict[str, Any] | None) -> Self:
        binding = _binding(self)
        snapshot = self._durable_validate(state)
        copy = Binding(binding.object_id, binding.client, version, loaded=True)
        object.__setattr__(snapshot, "__pydantic_private__", {"_durable": copy})
        return snapshot

    if not TYPE_CHECKING:

        def __getattr__(self, item: str) -> Any:
            if item in type(self).model_fields:
                binding = _binding(self)
                raise exc.NotLoadedError(
                    f"{type(self).__name__}.get({binding.object_id!r}) has not seen the "
                    f"object's state yet, so it cannot tell {item!r}: "
                    "await handle.load() first"
                )
            return super().__getattr__(item)

        def __setattr__(self, name: str, value: Any) -> None:
            binding = _binding(self)
            handle = binding.object_id is not None and binding.execution is None
            if handle and name in type(self).model_fields:
                raise exc.UsageError(
                    f"cannot set {name!r} on a handle: use "
                    f"await handle.update({name}=...) or a @remote method"
                )
            super().__setattr__(name, value)

    def __repr_args__(self) -> Any:
        binding = _binding(self)
        if binding.object_id is None or binding.execution is not None:
            yield from super().__repr_args__()
            return
        yield "durable_id", binding.object_id
        if not binding.loaded:
            yield "durable_loaded", False
            return
        yield "durable_version", binding.version
        yield from super().__repr_args__()


async def _call_remote(
    handle: DurableModel, method: RemoteMethod[Any, Any, Any], *args: Any, **kwargs: Any
) -> Any:
    signature = method.signature
    payload = signature.bind(args, kwargs)
    reply = await handle.durable_client.call_method(
        type(handle), handle.durable_id, method.wire_name, payload
    )
    handle._durable_apply(reply.version, reply.state)
    return signature.load_result(reply.result)


def live_instance(
    model: type[M], object_id: str, state: dict[str, Any] | None, execution: Execution
) -> M:
    """A model instance for a host to run method bodies against."""
    instance = model._durable_validate(state)
    binding = Binding(object_id, execution=execution)
    object.__setattr__(instance, "__pydantic_private__", {"_durable": binding})
    return instance


def event_name(event: Event) -> str:
    return type(event).__durable_event_name__

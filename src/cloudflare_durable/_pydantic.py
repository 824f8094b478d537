"""Everything that reaches into pydantic beyond its public API, in one place.

The model metaclass must derive from pydantic's private ``ModelMetaclass``;
handles are model instances whose fields are filled in place and whose private
attributes hold their binding; remote method signatures are turned into
validators. All of that touches pydantic's ``__pydantic_*__`` attributes, and
only this module does. If pydantic changes, this is the module to mend.

Values that travel are validated as pydantic does in strict mode on JSON input,
with unknown members refused at every level (``docs/protocol.md``).
"""

from __future__ import annotations

import datetime
import decimal
import enum
import inspect
import types
import typing
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final, TypeVar

import pydantic
from pydantic._internal._model_construction import ModelMetaclass
from pydantic_core import PydanticSerializationError

from . import _exceptions as exc
from . import _protocol as proto

__all__ = [
    "ModelMetaclass",
    "Signature",
    "blank",
    "build_signature",
    "dump_event",
    "dump_state",
    "get_private",
    "set_private",
    "translate",
    "validate_into",
    "validate_wire_state",
    "validation_details",
]

B = TypeVar("B", bound=pydantic.BaseModel)

#: How values from the wire are validated: strict JSON, nothing unknown anywhere.
WIRE: Final[dict[str, Any]] = {"strict": True, "extra": "forbid"}


def validation_details(error: pydantic.ValidationError) -> dict[str, Any]:
    """``{"errors": [{"loc", "msg", "type"}, ...]}``: names and list indexes in ``loc``."""
    errors = [
        {"loc": list(item["loc"]), "msg": item["msg"], "type": item["type"]}
        for item in error.errors(include_url=False, include_context=False, include_input=False)
    ]
    return {"errors": errors}


def translate(error: pydantic.ValidationError, what: str) -> exc.ValidationError:
    """Our ``ValidationError`` for pydantic's, with a one-line summary of each problem."""
    details = validation_details(error)
    summary = "; ".join(
        f"{'.'.join(map(str, item['loc'])) or '(root)'}: {item['msg']}"
        for item in details["errors"]
    )
    return exc.ValidationError(f"{what}: {summary}", details=details)


# -- instances ------------------------------------------------------------------


def blank(cls: type[B], private: dict[str, Any]) -> B:
    """An instance of ``cls`` with no fields set yet (a handle that has seen nothing)."""
    instance = cls.__new__(cls)
    object.__setattr__(instance, "__dict__", {})
    object.__setattr__(instance, "__pydantic_fields_set__", set())
    object.__setattr__(instance, "__pydantic_extra__", None)
    object.__setattr__(instance, "__pydantic_private__", private)
    return instance


def get_private(instance: pydantic.BaseModel, name: str) -> Any:
    private = object.__getattribute__(instance, "__pydantic_private__")
    return private.get(name) if private else None


def set_private(instance: pydantic.BaseModel, name: str, value: Any) -> None:
    object.__setattr__(instance, "__pydantic_private__", {name: value})


def clear_fields(instance: pydantic.BaseModel) -> None:
    object.__setattr__(instance, "__dict__", {})


def copy_fields(source: pydantic.BaseModel, target: pydantic.BaseModel) -> None:
    object.__setattr__(target, "__dict__", dict(source.__dict__))


def validate_into(instance: pydantic.BaseModel, data: dict[str, Any]) -> None:
    """Validate ``data`` (JSON from a server) as ``instance``'s model and make it
    ``instance``'s fields, in place (its private attributes stay as they are)."""
    private = instance.__pydantic_private__
    type(instance).__pydantic_validator__.validate_python(data, self_instance=instance)
    object.__setattr__(instance, "__pydantic_private__", private)


def validate_wire_state(cls: type[B], text: str) -> B:
    """``cls`` from JSON text that came over the wire (strict, nothing unknown)."""
    return cls.model_validate_json(text, **WIRE)


def dump_state(instance: pydantic.BaseModel, names: Iterable[str] | None = None) -> dict[str, Any]:
    """An instance's fields (or those of ``names``) as JSON, refusing values that do not
    match their types."""
    try:
        dumped: dict[str, Any] = type(instance).__pydantic_serializer__.to_python(
            instance,
            mode="json",
            include=None if names is None else set(names),
            warnings="error",
        )
    except PydanticSerializationError as error:
        raise exc.InvalidResultError(
            f"the method left a state {type(instance).__qualname__}'s fields reject; "
            "nothing was changed"
        ) from error
    return dumped


def dump_event(event: pydantic.BaseModel) -> dict[str, Any]:
    dumped: dict[str, Any] = event.model_dump(mode="json")
    return dumped


_field_adapters: dict[tuple[type[pydantic.BaseModel], str], pydantic.TypeAdapter[Any]] = {}


def dump_fields(cls: type[pydantic.BaseModel], fields: dict[str, Any]) -> dict[str, Any]:
    """Validate a partial update field by field (client side) and turn it into JSON."""
    unknown = sorted(set(fields) - set(cls.model_fields))
    if unknown:
        raise unknown_fields(cls.__qualname__, unknown)
    payload: dict[str, Any] = {}
    for name, value in fields.items():
        adapter = _field_adapters.get((cls, name))
        if adapter is None:
            adapter = pydantic.TypeAdapter(cls.model_fields[name].rebuild_annotation())
            _field_adapters[(cls, name)] = adapter
        try:
            payload[name] = adapter.dump_python(adapter.validate_python(value), mode="json")
        except pydantic.ValidationError as error:
            raise translate(error, f"invalid value for {cls.__qualname__}.{name}") from error
    return payload


def unknown_fields(owner: str, names: list[str]) -> exc.ValidationError:
    return exc.ValidationError(
        f"{owner} has no field(s) {', '.join(names)}",
        details={
            "errors": [
                {"loc": [name], "msg": "Extra inputs are not permitted", "type": "extra_forbidden"}
                for name in names
            ]
        },
    )


# -- what a method body touches ----------------------------------------------------

_IMMUTABLE: Final = (
    str,
    int,
    float,
    bool,
    bytes,
    type(None),
    enum.Enum,
    datetime.date,
    datetime.time,
    datetime.timedelta,
    decimal.Decimal,
    uuid.UUID,
)
_mutable_fields: dict[type[pydantic.BaseModel], tuple[str, ...]] = {}


def mutable_fields(cls: type[pydantic.BaseModel]) -> tuple[str, ...]:
    """The fields of ``cls`` whose values can change in place (lists, dicts, models...):
    only assignment can change the others."""
    found = _mutable_fields.get(cls)
    if found is None:
        found = tuple(
            name for name, info in cls.model_fields.items() if not _immutable(info.annotation)
        )
        _mutable_fields[cls] = found
    return found


def _immutable(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _immutable(typing.get_args(annotation)[0])
    if origin is typing.Literal:
        return True
    if origin in (typing.Union, types.UnionType):
        return all(_immutable(arg) for arg in typing.get_args(annotation))
    if origin in (tuple, frozenset):
        return all(arg is Ellipsis or _immutable(arg) for arg in typing.get_args(annotation))
    if origin is not None:
        return False
    if isinstance(annotation, type):
        if issubclass(annotation, pydantic.BaseModel):
            return bool(annotation.model_config.get("frozen")) and not mutable_fields(annotation)
        return issubclass(annotation, _IMMUTABLE)
    return False


class Tracking:
    """Which fields a method body reads or assigns.

    While a body runs, the fields whose values can change in place are kept out of
    the live instance's ``__dict__``; reading one brings it back (``reveal``) and
    marks it touched. Assigned fields are marked too. Afterwards only the touched
    fields need comparing: a field the body never reached did not change.
    """

    __slots__ = ("assigned", "hidden", "instance")

    def __init__(self, instance: pydantic.BaseModel) -> None:
        self.instance = instance
        self.assigned: set[str] = set()
        fields = instance.__dict__
        self.hidden = {name: fields.pop(name) for name in mutable_fields(type(instance))}

    def reveal(self, name: str) -> Any:
        value = self.hidden.pop(name)
        self.instance.__dict__[name] = value
        return value

    def reveal_all(self) -> None:
        self.instance.__dict__.update(self.hidden)
        self.hidden.clear()

    def finish(self) -> set[str]:
        """Put every field back; return the ones the body touched."""
        fields = self.instance.__dict__
        touched = self.assigned | (set(mutable_fields(type(self.instance))) - set(self.hidden))
        fields.update(self.hidden)
        self.hidden.clear()
        return touched


def assign_fields(instance: pydantic.BaseModel, values: dict[str, Any]) -> None:
    """Validate ``values`` (JSON from a server) into some of ``instance``'s fields."""
    validator = type(instance).__pydantic_validator__
    private = instance.__pydantic_private__
    for name, value in values.items():
        validator.validate_assignment(instance, name, value)
    object.__setattr__(instance, "__pydantic_private__", private)


def shallow_copy(source: B, private: dict[str, Any]) -> B:
    """A new instance sharing ``source``'s field values, with its own private attributes."""
    copy = blank(type(source), private)
    object.__setattr__(copy, "__dict__", dict(source.__dict__))
    object.__setattr__(copy, "__pydantic_fields_set__", set(source.__pydantic_fields_set__))
    return copy


# -- remote method signatures ----------------------------------------------------


@dataclass(slots=True)
class Signature:
    """Validators for one remote method: its arguments by name, and its result."""

    name: str
    signature: inspect.Signature
    arguments: type[pydantic.BaseModel]
    result: pydantic.TypeAdapter[Any]
    _positional: tuple[str, ...] | None = None

    def bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        """Arguments given positionally or by keyword, as JSON by name (client side)."""
        names = self.positional
        if len(args) > len(names):
            raise exc.ValidationError(
                f"{self.name}() takes {len(names)} positional argument(s) "
                f"but {len(args)} were given"
            )
        data = dict(zip(names, args, strict=False))
        for key, value in kwargs.items():
            if key in data:
                raise exc.ValidationError(f"{self.name}() got multiple values for argument {key!r}")
            data[key] = value
        try:
            model = self.arguments.__pydantic_validator__.validate_python(data)
        except pydantic.ValidationError as error:
            raise translate(error, f"invalid arguments for {self.name}()") from error
        dumped: dict[str, Any] = self.arguments.__pydantic_serializer__.to_python(
            model, mode="json", exclude_unset=True
        )
        return dumped

    @property
    def positional(self) -> tuple[str, ...]:
        """Names of the parameters that may be given positionally, in order."""
        if self._positional is None:
            self._positional = tuple(
                p.name
                for p in self.signature.parameters.values()
                if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
            )
        return self._positional

    def keywords(self, args: dict[str, Any]) -> dict[str, Any]:
        """The keyword arguments of a body, from JSON arguments (host side, wire rules)."""
        try:
            text = proto.dumps(args)
        except (TypeError, ValueError) as error:  # UnicodeEncodeError: a lone surrogate
            raise exc.ValidationError(
                f"the arguments of {self.name}() cannot be carried as JSON text"
            ) from error
        try:
            model = self.arguments.__pydantic_validator__.validate_json(text, **WIRE)
        except pydantic.ValidationError as error:
            raise translate(error, f"invalid arguments for {self.name}()") from error
        return dict(model.__dict__)  # an arguments model has its fields, and only them, there

    def dump_result(self, value: Any) -> Any:
        """Check what a method body returned against its annotation and turn it into
        JSON (host side): serialising with ``warnings="error"`` refuses any value
        whose type does not match."""
        try:
            return self.result.serializer.to_python(value, mode="json", warnings="error")
        except (pydantic.ValidationError, PydanticSerializationError) as error:
            raise exc.InvalidResultError(
                f"{self.name}() returned a {type(value).__name__}, "
                f"which does not match its return annotation"
            ) from error

    def load_result(self, value: Any) -> Any:
        """Validate a result received from the wire (client side)."""
        try:
            return self.result.validate_python(value)
        except pydantic.ValidationError as error:
            raise translate(error, f"result of {self.name}() does not validate") from error


def build_signature(owner: str, fn: Callable[..., Any]) -> Signature:
    """Validators for ``fn``'s parameters after ``self`` and for its return type."""
    signature = inspect.signature(fn)
    params = list(signature.parameters.values())[1:]
    hints = typing.get_type_hints(fn, include_extras=True)
    fields: dict[str, Any] = {}
    for param in params:
        annotation = hints.get(param.name, Any)
        default = ... if param.default is inspect.Parameter.empty else param.default
        fields[param.name] = (annotation, default)
    arguments = pydantic.create_model(
        f"{owner}.{fn.__name__}.arguments",
        __config__=pydantic.ConfigDict(extra="forbid", arbitrary_types_allowed=False),
        **fields,
    )
    result: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(hints.get("return", Any))
    qualified = f"{owner}.{fn.__name__}"
    return Signature(qualified, signature.replace(parameters=params), arguments, result)

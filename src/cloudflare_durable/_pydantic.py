"""Everything that reaches into pydantic beyond its public API, in one place.

The model metaclass must derive from pydantic's private ``ModelMetaclass``, and
remote method signatures are turned into validators here. If pydantic changes,
this is the module to mend.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pydantic
from pydantic._internal._model_construction import ModelMetaclass
from pydantic_core import PydanticSerializationError

from . import _exceptions as exc

__all__ = [
    "ModelMetaclass",
    "PydanticSerializationError",
    "Signature",
    "dump_state",
    "translate",
    "validation_details",
]


def validation_details(error: pydantic.ValidationError) -> dict[str, Any]:
    errors = [
        {"loc": [str(part) for part in item["loc"]], "msg": item["msg"], "type": item["type"]}
        for item in error.errors(include_url=False, include_context=False, include_input=False)
    ]
    return {"errors": errors}


def translate(error: pydantic.ValidationError, what: str) -> exc.ValidationError:
    """Our ``ValidationError`` for pydantic's, with a one-line summary of each problem."""
    details = validation_details(error)
    summary = "; ".join(
        f"{'.'.join(item['loc']) or '(root)'}: {item['msg']}" for item in details["errors"]
    )
    return exc.ValidationError(f"{what}: {summary}", details=details)


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
        return self.dump_arguments(self.validate_arguments(data))

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

    def validate_arguments(self, data: dict[str, Any]) -> pydantic.BaseModel:
        try:
            model: pydantic.BaseModel = self.arguments.__pydantic_validator__.validate_python(data)
        except pydantic.ValidationError as error:
            raise translate(error, f"invalid arguments for {self.name}()") from error
        return model

    def dump_arguments(self, model: pydantic.BaseModel) -> dict[str, Any]:
        dumped: dict[str, Any] = self.arguments.__pydantic_serializer__.to_python(
            model, mode="json", exclude_unset=True
        )
        return dumped

    def keywords(self, model: pydantic.BaseModel) -> dict[str, Any]:
        return dict(model.__dict__)  # an arguments model has its fields, and only them, there

    def dump_result(self, value: Any) -> Any:
        """Check what a method body returned against its annotation and turn it into
        JSON (host side): serialising with ``warnings="error"`` refuses any value
        whose type does not match."""
        try:
            return self.result.serializer.to_python(value, mode="json", warnings="error")
        except (pydantic.ValidationError, PydanticSerializationError) as error:
            raise exc.InvalidResultError(
                f"{self.name}() returned {type(value).__name__} {str(value)[:100]!r}, "
                f"which does not match its return annotation: {error}"
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


def dump_state(instance: pydantic.BaseModel) -> dict[str, Any]:
    """An instance's fields as JSON, refusing values that do not match their types."""
    try:
        dumped: dict[str, Any] = type(instance).__pydantic_serializer__.to_python(
            instance, mode="json", warnings="error"
        )
    except PydanticSerializationError as error:
        raise exc.ValidationError(
            f"the state of {type(instance).__qualname__} no longer matches its fields: {error}"
        ) from error
    return dumped


def validate_into(instance: pydantic.BaseModel, data: dict[str, Any]) -> None:
    """Validate ``data`` as ``instance``'s model and make it ``instance``'s fields, in place
    (its private attributes stay as they are)."""
    private = instance.__pydantic_private__
    type(instance).__pydantic_validator__.validate_python(data, self_instance=instance)
    object.__setattr__(instance, "__pydantic_private__", private)

"""What of a model the Worker cannot check as pydantic does.

The generated TypeScript checks what JSON Schema says. Some of what pydantic
does is not in JSON Schema: validator functions, string transformations, bounds
on datetimes, and types whose checks differ (tuples, sets, decimals, bytes,
times, URLs...). This walks pydantic's core schemas (public TypedDicts of
``pydantic_core.core_schema``) and reports each such place: types the Worker
cannot check are errors, Python-only behaviour is a warning.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from .._models import DurableModel, Event

__all__ = ["Findings", "inspect_models"]

#: Core schema types the Worker checks exactly as pydantic does.
_SUPPORTED: Final = frozenset(
    {"int", "float", "str", "bool", "none", "any", "literal", "enum", "datetime", "date", "uuid"}
)
_CONTAINERS: Final = frozenset(
    {"model", "model-fields", "default", "nullable", "list", "dict", "union", "tagged-union"}
)
_STR_TRANSFORMS: Final = ("strip_whitespace", "to_lower", "to_upper")
_TEMPORAL_BOUNDS: Final = (
    "le",
    "lt",
    "ge",
    "gt",
    "now_op",
    "tz_constraint",
    "microseconds_precision",
)


@dataclass(slots=True)
class Findings:
    """``errors``: the Worker cannot check these; ``warnings``: it checks less than Python."""

    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def inspect_models(models: Iterable[type[DurableModel]], events: Iterable[type[Event]]) -> Findings:
    """Findings for the state, the parameters and results of the methods, and the events."""
    findings = Findings()
    for model in models:
        name = model.__durable_name__
        _Walker(findings, name).walk(model.__pydantic_core_schema__, "")
        for wire, method in model.__durable_methods__.items():
            signature = method.signature
            where = f"{name}.{wire}()"
            _Walker(findings, where).walk(signature.arguments.__pydantic_core_schema__, "")
            _Walker(findings, f"{where} result").walk(signature.result.core_schema, "")
    for event in events:
        _Walker(findings, f"event {event.__durable_event_name__}").walk(
            event.__pydantic_core_schema__, ""
        )
    return findings


class _Walker:
    def __init__(self, findings: Findings, owner: str) -> None:
        self.findings = findings
        self.owner = owner
        self.definitions: dict[str, Any] = {}
        self.seen: set[str] = set()

    def where(self, path: str) -> str:
        return f"{self.owner}{path}" if path else self.owner

    def walk(self, schema: Mapping[str, Any], path: str) -> None:
        kind = schema["type"]
        if kind == "definitions":
            for definition in schema["definitions"]:
                self.definitions[definition["ref"]] = definition
            self.walk(schema["schema"], path)
        elif kind == "definition-ref":
            ref = schema["schema_ref"]
            if ref not in self.seen and ref in self.definitions:
                self.seen.add(ref)
                self.walk(self.definitions[ref], path)
        elif kind.startswith("function-"):
            self.findings.warnings.append(
                f"{self.where(path)}: a validator function runs in Python only; "
                "the Worker does not run it"
            )
            if "schema" in schema:
                self.walk(schema["schema"], path)
        elif kind in ("lax-or-strict",):
            self.walk(schema["strict_schema"], path)
        elif kind == "json-or-python":
            self.walk(schema["json_schema"], path)
        elif kind in _CONTAINERS:
            self.container(schema, path)
        elif kind in _SUPPORTED:
            self.scalar(schema, path)
        else:
            self.findings.errors.append(
                f"{self.where(path)}: the Worker cannot check a {kind} as pydantic does; "
                "use str, int, float, bool, datetime, date, UUID, Literal, an Enum, a list, "
                "a dict with str keys or a model"
            )

    def container(self, schema: Mapping[str, Any], path: str) -> None:
        kind = schema["type"]
        if kind == "model":
            if schema.get("root_model"):
                self.findings.errors.append(f"{self.where(path)}: RootModel is not supported")
            self.walk(schema["schema"], path)
        elif kind == "model-fields":
            for name, member in schema["fields"].items():
                self.walk(member["schema"], f"{path}.{name}")
        elif kind in ("default", "nullable"):
            self.walk(schema["schema"], path)
        elif kind == "list":
            self.walk(schema.get("items_schema", {"type": "any"}), f"{path}[]")
        elif kind == "dict":
            keys = schema.get("keys_schema", {"type": "str"})
            if keys["type"] != "str" or any(k in keys for k in ("pattern", "max_length")):
                self.findings.errors.append(f"{self.where(path)}: dict keys other than str")
            self.walk(schema.get("values_schema", {"type": "any"}), f"{path}[*]")
        elif kind == "union":
            for choice in schema["choices"]:
                self.walk(choice[0] if isinstance(choice, tuple) else choice, path)
        elif kind == "tagged-union":
            for choice in schema["choices"].values():
                self.walk(choice, path)

    def scalar(self, schema: Mapping[str, Any], path: str) -> None:
        kind = schema["type"]
        if kind == "str" and any(schema.get(k) for k in _STR_TRANSFORMS):
            self.findings.warnings.append(
                f"{self.where(path)}: strip_whitespace, to_lower and to_upper change strings "
                "in Python only"
            )
        precision = schema.get("microseconds_precision", "truncate")
        if kind in ("datetime", "date") and (
            any(k in schema for k in _TEMPORAL_BOUNDS) or precision != "truncate"
        ):
            self.findings.warnings.append(
                f"{self.where(path)}: bounds on a {kind} are checked in Python only"
            )

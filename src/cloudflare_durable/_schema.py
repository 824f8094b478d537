"""The schema document: every served model's contract, as JSON Schema.

One document describes the models of an application: for each model its wire
name, the JSON Schema of its state (defaults and constraints included), each
remote method's parameters and result, and the events the application defines.
``durable schema`` prints it, both servers serve it at ``GET /v1/models``, the
TypeScript code generator reads it, and ``durable check`` compares two of them.

The document is deterministic: the same models give the same JSON text
(``schema_json``), byte for byte, on every host.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Final

from pydantic.json_schema import GenerateJsonSchema, JsonSchemaMode, JsonSchemaValue
from pydantic_core import core_schema, to_jsonable_python

from . import _exceptions as exc
from ._protocol import PROTOCOL_VERSION

if TYPE_CHECKING:
    from ._models import DurableModel, Event

__all__ = [
    "DEFAULT_SCHEMA_VERSION",
    "check_models",
    "check_schema",
    "compare_documents",
    "schema_document",
    "schema_json",
    "validate_document",
]

#: The ``schema_version`` of a model that does not declare one.
DEFAULT_SCHEMA_VERSION: Final = 1

_REF_PREFIX: Final = "#/$defs/"


class _DurableJsonSchema(GenerateJsonSchema):
    """pydantic's JSON Schema, with a default for constant default factories and
    no titles on fields (their names say it)."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False

    def default_schema(self, schema: core_schema.WithDefaultSchema) -> JsonSchemaValue:
        factory = schema.get("default_factory")
        if factory is not None and not schema.get("default_factory_takes_data"):
            constant = _constant_default(factory)
            if constant is not _NO_DEFAULT:
                schema = {**schema, "default": constant}
                schema.pop("default_factory", None)
        return super().default_schema(schema)


_NO_DEFAULT: Final = object()


def _constant_default(factory: Any) -> Any:
    """The value of a factory that gives equal values on every call, else ``_NO_DEFAULT``."""
    try:
        first, second = factory(), factory()
        encoded = to_jsonable_python(first)
    except Exception:
        return _NO_DEFAULT
    return first if encoded == to_jsonable_python(second) else _NO_DEFAULT


def schema_document(
    models: Iterable[type[DurableModel]], events: Iterable[type[Event]] = ()
) -> dict[str, Any]:
    """The schema document of ``models`` and ``events`` (see the module docstring).

    Models, methods, events and shared definitions (``$defs``) are ordered by
    name; fields and parameters keep their declaration order.
    """
    by_model = _by_name({m.__durable_name__: m for m in models})
    by_event = _by_name({e.__durable_event_name__: e for e in events})
    inputs: list[tuple[tuple[str, ...], JsonSchemaMode, core_schema.CoreSchema]] = []
    for name, model in by_model.items():
        inputs.append((("state", name), "validation", model.__pydantic_core_schema__))
        for wire, method in sorted(model.__durable_methods__.items()):
            signature = method.signature
            core = signature.arguments.__pydantic_core_schema__
            inputs.append((("parameters", name, wire), "validation", core))
            inputs.append((("result", name, wire), "validation", signature.result.core_schema))
    for name, event in by_event.items():
        inputs.append((("event", name), "validation", event.__pydantic_core_schema__))
    generator = _DurableJsonSchema(ref_template=_REF_PREFIX + "{model}")
    schemas, definitions = generator.generate_definitions(inputs)
    found = {key: schema for (key, _mode), schema in schemas.items()}
    document: dict[str, Any] = {"protocol": PROTOCOL_VERSION, "models": {}, "events": {}}
    for name, model in by_model.items():
        methods: dict[str, Any] = {}
        for wire in sorted(model.__durable_methods__):
            methods[wire] = {
                "parameters": found["parameters", name, wire],
                "result": found["result", name, wire],
            }
        document["models"][name] = {
            "schema_version": getattr(model, "__durable_schema_version__", DEFAULT_SCHEMA_VERSION),
            "state": found["state", name],
            "methods": methods,
        }
    for name in by_event:
        document["events"][name] = found["event", name]
    document["$defs"] = {key: definitions[key] for key in sorted(definitions)}
    _inline_single_use(document)
    _forbid_unknown_members(document)
    return document


def _by_name(named: dict[str, Any]) -> dict[str, Any]:
    return {name: named[name] for name in sorted(named)}


def _refs(node: Any, counts: dict[str, int]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(_REF_PREFIX):
            key = ref[len(_REF_PREFIX) :]
            counts[key] = counts.get(key, 0) + 1
        for value in node.values():
            _refs(value, counts)
    elif isinstance(node, list):
        for value in node:
            _refs(value, counts)


def _inline_single_use(document: dict[str, Any]) -> None:
    """Put a definition used once, as a whole top-level schema, in that place."""
    definitions: dict[str, Any] = document["$defs"]
    counts: dict[str, int] = {}
    _refs(document, counts)
    places = [(document["models"][m], "state") for m in document["models"]]
    places += [(document["events"], e) for e in document["events"]]
    for model in document["models"].values():
        for method in model["methods"].values():
            places += [(method, "parameters"), (method, "result")]
    for holder, key in places:
        schema = holder[key]
        ref = schema.get("$ref") if isinstance(schema, dict) else None
        if not isinstance(ref, str) or len(schema) != 1:
            continue
        name = ref[len(_REF_PREFIX) :]
        if counts.get(name) == 1 and name in definitions:
            holder[key] = definitions.pop(name)
    for model in document["models"].values():
        for method in model["methods"].values():
            method["parameters"].pop("title", None)  # the arguments model's name says nothing
    if not definitions:
        del document["$defs"]


def _forbid_unknown_members(node: Any) -> None:
    """Every object schema with declared properties refuses others (the wire rule)."""
    if isinstance(node, dict):
        if node.get("type") == "object" and "properties" in node:
            node.setdefault("additionalProperties", False)
        for value in node.values():
            _forbid_unknown_members(value)
    elif isinstance(node, list):
        for value in node:
            _forbid_unknown_members(value)


def schema_json(document: dict[str, Any]) -> str:
    """The document as compact JSON text: what ``GET /v1/models`` answers on every host."""
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


# -- comparing documents --------------------------------------------------------


def compare_documents(local: dict[str, Any], remote: dict[str, Any]) -> list[str]:
    """The differences between two schema documents, one line each, for people.

    ``local`` is what this side expects, ``remote`` what the server serves.
    Models are compared as a whole when one side lacks them; otherwise field
    by field, method by method (parameters and result) and event by event,
    with ``$ref`` resolved on each side, so a renamed shared definition is not a
    difference but a changed one is reported where it is used.
    """
    differences: list[str] = []
    local_models: dict[str, Any] = local.get("models", {})
    remote_models: dict[str, Any] = remote.get("models", {})
    for name in sorted(local_models.keys() - remote_models.keys()):
        differences.append(f"model {name}: missing on the server")
    for name in sorted(remote_models.keys() - local_models.keys()):
        differences.append(f"model {name}: served but not defined locally")
    for name in sorted(local_models.keys() & remote_models.keys()):
        differences += _compare_model(name, local, remote)
    local_events: dict[str, Any] = local.get("events", {})
    remote_events: dict[str, Any] = remote.get("events", {})
    for name in sorted(local_events.keys() - remote_events.keys()):
        differences.append(f"event {name}: missing on the server")
    for name in sorted(remote_events.keys() - local_events.keys()):
        differences.append(f"event {name}: served but not defined locally")
    for name in sorted(local_events.keys() & remote_events.keys()):
        differences += _compare_object(
            f"event {name}",
            _Resolved(local, local_events[name]),
            _Resolved(remote, remote_events[name]),
            "field",
        )
    return differences


class _Resolved:
    """A schema with ``$ref`` resolved against the document it came from."""

    def __init__(self, document: dict[str, Any], schema: Any) -> None:
        self.document = document
        self.schema = self._resolve(schema, set())

    def _resolve(self, schema: Any, seen: set[str]) -> Any:
        if isinstance(schema, list):
            return [self._resolve(item, seen) for item in schema]
        if not isinstance(schema, dict):
            return schema
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith(_REF_PREFIX):
            key = ref[len(_REF_PREFIX) :]
            if key in seen:
                return {"$recursive": key}
            target = self.document.get("$defs", {}).get(key, {})
            rest = {k: v for k, v in schema.items() if k != "$ref"}
            return self._resolve({**target, **rest}, seen | {key})
        return {key: self._resolve(value, seen) for key, value in schema.items()}


def _compare_model(name: str, local: dict[str, Any], remote: dict[str, Any]) -> list[str]:
    mine, theirs = local["models"][name], remote["models"][name]
    differences: list[str] = []
    if mine.get("schema_version") != theirs.get("schema_version"):
        differences.append(
            f"model {name}: schema_version is {theirs.get('schema_version')} on the server, "
            f"{mine.get('schema_version')} locally"
        )
    differences += _compare_object(
        f"model {name}",
        _Resolved(local, mine.get("state", {})),
        _Resolved(remote, theirs.get("state", {})),
        "field",
    )
    local_methods: dict[str, Any] = mine.get("methods", {})
    remote_methods: dict[str, Any] = theirs.get("methods", {})
    for method in sorted(local_methods.keys() - remote_methods.keys()):
        differences.append(f"model {name}: method {method} missing on the server")
    for method in sorted(remote_methods.keys() - local_methods.keys()):
        differences.append(f"model {name}: method {method} served but not defined locally")
    for method in sorted(local_methods.keys() & remote_methods.keys()):
        where = f"model {name}: method {method}"
        differences += _compare_object(
            where,
            _Resolved(local, local_methods[method].get("parameters", {})),
            _Resolved(remote, remote_methods[method].get("parameters", {})),
            "parameter",
        )
        mine_result = _Resolved(local, local_methods[method].get("result", {})).schema
        theirs_result = _Resolved(remote, remote_methods[method].get("result", {})).schema
        if _strip(mine_result) != _strip(theirs_result):
            differences.append(
                f"{where}: result type changed: server {_describe(theirs_result)}, "
                f"local {_describe(mine_result)}"
            )
    return differences


def _compare_object(where: str, local: _Resolved, remote: _Resolved, member: str) -> list[str]:
    mine = local.schema.get("properties", {}) if isinstance(local.schema, dict) else {}
    theirs = remote.schema.get("properties", {}) if isinstance(remote.schema, dict) else {}
    mine_required = (
        set(local.schema.get("required", [])) if isinstance(local.schema, dict) else set()
    )
    theirs_required = (
        set(remote.schema.get("required", [])) if isinstance(remote.schema, dict) else set()
    )
    differences: list[str] = []
    for key in mine:
        if key not in theirs:
            differences.append(f"{where}: {member} {key} missing on the server")
    for key in theirs:
        if key not in mine:
            differences.append(f"{where}: {member} {key} served but not defined locally")
    for key in mine.keys() & theirs.keys():
        a, b = _strip(mine[key]), _strip(theirs[key])
        if a != b:
            differences.append(
                f"{where}: {member} {key} changed: server {_describe(b)}, local {_describe(a)}"
            )
        elif (key in mine_required) != (key in theirs_required):
            state = "required" if key in theirs_required else "optional"
            differences.append(f"{where}: {member} {key} is {state} on the server")
    return differences


_NOISE: Final = frozenset({"title", "description", "examples"})


def _strip(schema: Any) -> Any:
    """A schema without the keys that do not change what validates."""
    if isinstance(schema, list):
        return [_strip(item) for item in schema]
    if isinstance(schema, dict):
        return {key: _strip(value) for key, value in schema.items() if key not in _NOISE}
    return schema


def _describe(schema: Any) -> str:
    return json.dumps(schema, sort_keys=True, separators=(",", ":"))[:200]


def check_schema(local: dict[str, Any], remote: dict[str, Any]) -> None:
    """Raise ``SchemaMismatchError`` naming every difference between the two documents
    that matters to a client of ``local``'s models.

    Only the models (and events) ``local`` declares are checked: a server may
    serve more models than a client knows about.
    """
    served_models = {k: v for k, v in remote.get("models", {}).items() if k in local["models"]}
    served_events = {k: v for k, v in remote.get("events", {}).items() if k in local["events"]}
    relevant = {**remote, "models": served_models, "events": served_events}
    differences = compare_documents(local, relevant)
    if differences:
        raise exc.SchemaMismatchError(
            "the server's models differ from this client's: " + "; ".join(differences),
            details={"differences": differences},
        )


def check_models(
    models: Iterable[type[DurableModel]],
    served: dict[str, Any],
    events: Iterable[type[Event]] = (),
) -> None:
    """Raise ``SchemaMismatchError`` if any of ``models`` (or ``events``) is missing from
    ``served`` (a ``GET /v1/models`` document) or differs from it.

    What a client calls at first contact with a server, with the models it is
    about to use; ``ProtocolError`` if ``served`` is not a schema document.
    """
    check_schema(schema_document(models, events), validate_document(served))


def validate_document(data: Any) -> dict[str, Any]:
    """``data`` if it looks like a schema document, else ``ProtocolError``."""
    if not isinstance(data, dict) or not isinstance(data.get("models"), dict):
        raise exc.ProtocolError("the server's /v1/models reply is not a schema document")
    return data

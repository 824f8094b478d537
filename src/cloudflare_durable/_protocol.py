"""The wire protocol, version 1, without I/O (see ``docs/protocol.md``).

Shared by the client's transports and the network host: it validates names and
ids, routes raw paths, parses and builds bodies and WebSocket frames, and maps
errors to and from their JSON envelopes. Nothing here touches a socket, so it is
tested by feeding it data.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Final, Literal, TypeAlias
from urllib.parse import quote, unquote

from . import _exceptions as exc

PROTOCOL_VERSION: Final = 1
PROTOCOL_HEADER: Final = "durable-protocol"
MAX_BODY_BYTES: Final = 1_048_576
MAX_FRAME_BYTES: Final = 1_048_576
MAX_OBJECT_ID_BYTES: Final = 256
SUBSCRIBER_BACKLOG: Final = 1_000
CLOSE_LAGGING: Final = 4008
IDEMPOTENCY_TTL_SECONDS: Final = 3600.0
IDEMPOTENCY_MAX_PER_OBJECT: Final = 10_000

JSON: TypeAlias = Any
State: TypeAlias = dict[str, Any] | None

_MODEL_RE: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,127}")
_METHOD_RE: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
_REQUEST_ID_RE: Final = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
_CONTROL_RE: Final = re.compile(r"[\x00-\x1f\x7f-\x9f]")


# -- names and ids ------------------------------------------------------------


def check_model_name(name: str) -> str:
    if not isinstance(name, str) or not _MODEL_RE.fullmatch(name):
        raise exc.InvalidIdError(
            f"invalid model name {name!r}: use letters, digits, '_', '.', '-' "
            "(at most 128, not starting with a digit)"
        )
    return name


def check_method_name(name: str) -> str:
    if not isinstance(name, str) or not _METHOD_RE.fullmatch(name):
        raise exc.InvalidIdError(f"invalid method name {name!r}")
    return name


def check_object_id(object_id: str) -> str:
    if not isinstance(object_id, str):
        raise exc.InvalidIdError(f"object id must be a str, not {type(object_id).__name__}")
    if not object_id:
        raise exc.InvalidIdError("object id must not be empty")
    if len(object_id.encode("utf-8", "surrogatepass")) > MAX_OBJECT_ID_BYTES:
        raise exc.InvalidIdError(
            f"object id is longer than {MAX_OBJECT_ID_BYTES} bytes of UTF-8: {object_id[:40]!r}..."
        )
    if _CONTROL_RE.search(object_id):
        raise exc.InvalidIdError(f"object id contains a control character: {object_id!r}")
    if object_id in (".", ".."):
        # URLs treat these segments as dot segments even percent-encoded: no path can carry them.
        raise exc.InvalidIdError(f"object id {object_id!r} is reserved: URLs cannot carry it")
    try:
        object_id.encode("utf-8")
    except UnicodeEncodeError:
        raise exc.InvalidIdError(f"object id is not valid Unicode: {object_id!r}") from None
    return object_id


def check_request_id(request_id: object) -> str | None:
    if request_id is None:
        return None
    if not isinstance(request_id, str) or not _REQUEST_ID_RE.fullmatch(request_id):
        raise exc.InvalidIdError(
            f"invalid request id {request_id!r}: 1 to 128 characters of [A-Za-z0-9_.:-]"
        )
    return request_id


def check_protocol_header(value: str | None) -> None:
    """Refuse a peer that announces another protocol version (absent means 1)."""
    if value is not None and value.strip() != str(PROTOCOL_VERSION):
        raise UnsupportedProtocol(
            f"this server speaks protocol {PROTOCOL_VERSION}, the request announced {value!r}"
        )


class UnsupportedProtocol(exc.BadRequestError):
    code = "unsupported_protocol"


class SubscriberLagged(exc.ConnectionLostError):
    """The server dropped a subscriber that fell too far behind; resume at once."""


class PayloadTooLarge(exc.BadRequestError):
    code = "payload_too_large"
    status = 413


class UnsupportedMediaType(exc.BadRequestError):
    code = "unsupported_media_type"
    status = 415


class MethodNotAllowed(exc.BadRequestError):
    code = "method_not_allowed"
    status = 405


# -- paths --------------------------------------------------------------------


def object_path(model: str, object_id: str, *rest: str) -> str:
    segments = ["v1", "objects", quote(model, safe=""), quote(object_id, safe="")]
    segments.extend(quote(part, safe="") for part in rest)
    return "/" + "/".join(segments)


RouteKind: TypeAlias = Literal["health", "state", "call", "ws"]


@dataclass(frozen=True, slots=True)
class Route:
    kind: RouteKind
    model: str = ""
    object_id: str = ""
    method: str = ""


def parse_path(raw_path: str) -> Route:
    """Route a raw (still percent-encoded) path; ids are decoded after splitting."""
    parts = raw_path.split("?", 1)[0].split("/")
    if parts[:2] != ["", "v1"]:
        raise exc.NotFoundError(f"no endpoint at {raw_path[:100]!r}")
    rest = parts[2:]
    if rest == ["health"]:
        return Route("health")
    if len(rest) < 3 or rest[0] != "objects":
        raise exc.NotFoundError(f"no endpoint at {raw_path[:100]!r}")
    model = check_model_name(_decode(rest[1]))
    object_id = check_object_id(_decode(rest[2]))
    tail = rest[3:]
    if not tail:
        return Route("state", model, object_id)
    if tail == ["ws"]:
        return Route("ws", model, object_id)
    if len(tail) == 2 and tail[0] == "call":
        return Route("call", model, object_id, check_method_name(_decode(tail[1])))
    raise exc.NotFoundError(f"no endpoint at {raw_path[:100]!r}")


def _decode(segment: str) -> str:
    try:
        return unquote(segment, errors="strict")
    except UnicodeDecodeError:
        raise exc.InvalidIdError("path segment is not valid percent-encoded UTF-8") from None


def allowed_methods(kind: RouteKind) -> frozenset[str]:
    return _ALLOWED[kind]


_ALLOWED: Final[dict[RouteKind, frozenset[str]]] = {
    "health": frozenset({"GET"}),
    "state": frozenset({"GET", "PUT", "PATCH", "DELETE"}),
    "call": frozenset({"POST"}),
    "ws": frozenset({"GET"}),
}


# -- JSON ---------------------------------------------------------------------


_ENCODER: Final = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def dumps_text(value: JSON) -> str:
    """Compact JSON text; NaN and infinities are refused (they are not JSON)."""
    return _ENCODER.encode(value)


def dumps(value: JSON) -> bytes:
    return _ENCODER.encode(value).encode()


def loads_object(data: bytes | str, what: str = "body") -> dict[str, Any]:
    """Decode a JSON object, or raise ``BadRequestError`` saying what was wrong."""
    try:
        value = json.loads(data, parse_constant=_no_constants)
    except (ValueError, RecursionError) as error:
        raise exc.BadRequestError(f"{what} is not valid JSON: {error}") from None
    if not isinstance(value, dict):
        raise exc.BadRequestError(f"{what} must be a JSON object, not {type(value).__name__}")
    return value


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def check_content_type(value: str | None) -> None:
    if value is None or value.split(";", 1)[0].strip().lower() != "application/json":
        raise UnsupportedMediaType(f"send the body as application/json, not {value!r}")


# -- request bodies -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CallBody:
    args: dict[str, Any]
    request_id: str | None


@dataclass(frozen=True, slots=True)
class CreateBody:
    state: dict[str, Any]
    request_id: str | None


@dataclass(frozen=True, slots=True)
class UpdateBody:
    fields: dict[str, Any]
    if_version: int | None
    request_id: str | None


@dataclass(frozen=True, slots=True)
class DeleteBody:
    request_id: str | None


def _only(body: dict[str, Any], allowed: set[str], what: str) -> None:
    unknown = set(body) - allowed
    if unknown:
        raise exc.BadRequestError(f"unknown member(s) in {what}: {', '.join(sorted(unknown))}")


def _object_member(body: dict[str, Any], name: str, *, required: bool) -> dict[str, Any]:
    if name not in body and not required:
        return {}
    value = body.get(name)
    if not isinstance(value, dict):
        raise exc.BadRequestError(f"'{name}' must be a JSON object")
    return value


def parse_call_body(body: dict[str, Any]) -> CallBody:
    _only(body, {"args", "request_id"}, "call body")
    return CallBody(
        _object_member(body, "args", required=False), check_request_id(body.get("request_id"))
    )


def parse_create_body(body: dict[str, Any]) -> CreateBody:
    _only(body, {"state", "request_id"}, "create body")
    return CreateBody(
        _object_member(body, "state", required=False), check_request_id(body.get("request_id"))
    )


def parse_update_body(body: dict[str, Any]) -> UpdateBody:
    _only(body, {"fields", "if_version", "request_id"}, "update body")
    if_version = body.get("if_version")
    if if_version is not None and (type(if_version) is not int or if_version < 0):
        raise exc.BadRequestError("'if_version' must be a non-negative integer or null")
    return UpdateBody(
        _object_member(body, "fields", required=True),
        if_version,
        check_request_id(body.get("request_id")),
    )


def parse_delete_body(body: dict[str, Any]) -> DeleteBody:
    _only(body, {"request_id"}, "delete body")
    return DeleteBody(check_request_id(body.get("request_id")))


# -- replies ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StateReply:
    """An object's state at a version; ``state`` is ``None`` when nothing is stored."""

    version: int
    state: State

    def to_json(self) -> dict[str, Any]:
        return {"version": self.version, "state": self.state}


@dataclass(frozen=True, slots=True)
class CallReply:
    result: JSON
    version: int
    state: State

    def to_json(self) -> dict[str, Any]:
        return {"result": self.result, "version": self.version, "state": self.state}


@dataclass(frozen=True, slots=True)
class DeleteReply:
    deleted: bool
    version: int

    def to_json(self) -> dict[str, Any]:
        return {"deleted": self.deleted, "version": self.version, "state": None}


def _version(body: dict[str, Any]) -> int:
    version = body.get("version")
    if type(version) is not int or version < 0:
        raise exc.ProtocolError(f"reply has no valid version: {str(body)[:200]}")
    return version


def _state(body: dict[str, Any]) -> State:
    state = body.get("state")
    if state is not None and not isinstance(state, dict):
        raise exc.ProtocolError("reply state must be an object or null")
    return state


def read_state_reply(body: dict[str, Any]) -> StateReply:
    return StateReply(_version(body), _state(body))


def read_call_reply(body: dict[str, Any]) -> CallReply:
    if "result" not in body:
        raise exc.ProtocolError("call reply has no result")
    return CallReply(body["result"], _version(body), _state(body))


def read_delete_reply(body: dict[str, Any]) -> DeleteReply:
    deleted = body.get("deleted")
    if not isinstance(deleted, bool):
        raise exc.ProtocolError("delete reply has no 'deleted' flag")
    return DeleteReply(deleted, _version(body))


# -- errors -------------------------------------------------------------------

_CODES: Final[dict[str, type[exc.DurableError]]] = {
    cls.code: cls
    for cls in (
        exc.BadRequestError,
        UnsupportedProtocol,
        PayloadTooLarge,
        UnsupportedMediaType,
        MethodNotAllowed,
        exc.UnauthorizedError,
        exc.NotFoundError,
        exc.UnknownModelError,
        exc.UnknownMethodError,
        exc.ObjectNotFoundError,
        exc.ConflictError,
        exc.AlreadyExistsError,
        exc.ValidationError,
        exc.RemoteError,
        exc.InvalidResultError,
        exc.ServerError,
        exc.OverloadedError,
        exc.UnavailableError,
    )
}


def error_envelope(error: exc.DurableError) -> dict[str, Any]:
    """The JSON envelope of an error, as a server sends it."""
    return {
        "error": {
            "code": error.code,
            "message": error.message,
            "retryable": error.retryable,
            "details": error.details,
        }
    }


def error_status(error: exc.DurableError) -> int:
    return error.status if 400 <= error.status <= 599 else 500


def error_from_envelope(status: int, body: object) -> exc.DurableError:
    """Rebuild the exception a server sent; unknown codes map by status and flag."""
    payload = body.get("error") if isinstance(body, dict) else None
    if not isinstance(payload, dict):
        return exc.ProtocolError(f"HTTP {status} without an error envelope: {str(body)[:200]}")
    code = payload.get("code")
    message = payload.get("message")
    message = message if isinstance(message, str) else f"HTTP {status}"
    details = payload.get("details")
    details = details if isinstance(details, dict) else {}
    retryable = payload.get("retryable")
    retryable = retryable if isinstance(retryable, bool) else None
    cls = _CODES.get(code) if isinstance(code, str) else None
    if cls is None:
        cls = _class_for_status(status, retryable)
    return cls(message, details=details, retryable=retryable)


def _class_for_status(status: int, retryable: bool | None) -> type[exc.DurableError]:
    if status == 401:
        return exc.UnauthorizedError
    if status == 404:
        return exc.NotFoundError
    if status == 409:
        return exc.ConflictError
    if status == 422:
        return exc.ValidationError
    if 400 <= status < 500:
        return exc.BadRequestError
    return exc.ServerError if retryable is not False else exc.ProtocolError


# -- WebSocket frames ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SubscribeFrame:
    since: int | None = None
    snapshots: bool = True
    events: bool = True

    def to_json(self) -> dict[str, Any]:
        return {
            "type": "subscribe",
            "since": self.since,
            "snapshots": self.snapshots,
            "events": self.events,
        }


@dataclass(frozen=True, slots=True)
class CallFrame:
    id: int
    method: str
    args: dict[str, Any] = field(default_factory=dict)
    request_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        frame: dict[str, Any] = {
            "type": "call",
            "id": self.id,
            "method": self.method,
            "args": self.args,
        }
        if self.request_id is not None:
            frame["request_id"] = self.request_id
        return frame


@dataclass(frozen=True, slots=True)
class PingFrame:
    pass


ClientFrame: TypeAlias = SubscribeFrame | CallFrame | PingFrame

PING_TEXT: Final = '{"type":"ping"}'
PONG_TEXT: Final = '{"type":"pong"}'


class FrameError(exc.BadRequestError):
    """A client frame the server cannot accept; ``call_id`` is set when it could be read."""

    def __init__(self, message: str, call_id: int | None = None) -> None:
        super().__init__(message)
        self.call_id = call_id


def parse_client_frame(text: str) -> ClientFrame:
    """Parse one client frame, raising ``FrameError`` (with the call id, if known)."""
    try:
        frame = loads_object(text, "frame")
    except exc.BadRequestError as error:
        raise FrameError(error.message) from None
    kind = frame.get("type")
    if kind == "call":
        return _parse_call_frame(frame)
    if kind == "subscribe":
        return _parse_subscribe_frame(frame)
    if kind == "ping":
        return PingFrame()
    raise FrameError(f"unknown frame type {kind!r}: expected subscribe, call or ping")


def _parse_call_frame(frame: dict[str, Any]) -> CallFrame:
    call_id = frame.get("id")
    if type(call_id) is not int:
        raise FrameError("a call frame needs an integer 'id'")
    try:
        _only(frame, {"type", "id", "method", "args", "request_id"}, "call frame")
        method = frame.get("method")
        if not isinstance(method, str):
            raise exc.BadRequestError("a call frame needs a string 'method'")
        return CallFrame(
            call_id,
            check_method_name(method),
            _object_member(frame, "args", required=False),
            check_request_id(frame.get("request_id")),
        )
    except exc.DurableError as error:
        raise FrameError(error.message, call_id) from None


def _parse_subscribe_frame(frame: dict[str, Any]) -> SubscribeFrame:
    try:
        _only(frame, {"type", "since", "snapshots", "events"}, "subscribe frame")
    except exc.BadRequestError as error:
        raise FrameError(error.message) from None
    since = frame.get("since")
    if since is not None and (type(since) is not int or since < 0):
        raise FrameError("'since' must be a non-negative integer or null")
    snapshots = frame.get("snapshots", True)
    events = frame.get("events", True)
    if not isinstance(snapshots, bool) or not isinstance(events, bool):
        raise FrameError("'snapshots' and 'events' must be booleans")
    return SubscribeFrame(since, snapshots, events)


def snapshot_frame(version: int, state: State) -> dict[str, Any]:
    return {"type": "snapshot", "version": version, "state": state}


def event_frame(version: int, name: str, data: dict[str, Any]) -> dict[str, Any]:
    return {"type": "event", "version": version, "name": name, "data": data}


def result_frame(call_id: int, reply: CallReply) -> dict[str, Any]:
    return {"type": "result", "id": call_id, **reply.to_json()}


def error_frame(call_id: int | None, error: exc.DurableError) -> dict[str, Any]:
    return {"type": "error", "id": call_id, **error_envelope(error)}


@dataclass(frozen=True, slots=True)
class Snapshot:
    version: int
    state: State


@dataclass(frozen=True, slots=True)
class EventMessage:
    version: int
    name: str
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Result:
    id: int
    reply: CallReply


@dataclass(frozen=True, slots=True)
class ErrorMessage:
    id: int | None
    error: exc.DurableError


@dataclass(frozen=True, slots=True)
class Pong:
    pass


ServerMessage: TypeAlias = Snapshot | EventMessage | Result | ErrorMessage | Pong


def parse_server_frame(text: str | bytes) -> ServerMessage:
    """Parse one server frame on the client side, raising ``ProtocolError``."""
    try:
        frame = loads_object(text, "server frame")
    except exc.BadRequestError as error:
        raise exc.ProtocolError(error.message) from None
    kind = frame.get("type")
    if kind == "snapshot":
        return Snapshot(_version(frame), _state(frame))
    if kind == "event":
        name, data = frame.get("name"), frame.get("data")
        if not isinstance(name, str) or not isinstance(data, dict):
            raise exc.ProtocolError("event frame needs a string 'name' and an object 'data'")
        return EventMessage(_version(frame), name, data)
    if kind == "result":
        return Result(_frame_id(frame), read_call_reply(frame))
    if kind == "error":
        call_id = frame.get("id")
        return ErrorMessage(
            call_id if type(call_id) is int else None, error_from_envelope(400, frame)
        )
    if kind == "pong":
        return Pong()
    raise exc.ProtocolError(f"unknown server frame type {kind!r}")


def _frame_id(frame: dict[str, Any]) -> int:
    call_id = frame.get("id")
    if type(call_id) is not int:
        raise exc.ProtocolError("result frame has no integer id")
    return call_id

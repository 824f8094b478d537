"""The wire protocol, version 1, without I/O (see ``docs/protocol.md``).

Shared by the client's transports and the network host. It checks names and
ids, routes raw paths, decodes JSON with the protocol's limits, turns the five
operations into HTTP requests and call frames and back, builds and reads
replies and WebSocket frames, and maps errors to and from their envelopes.
Nothing here touches a socket, so it is tested by feeding it data.
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Any, ClassVar, Final, Literal, TypeAlias
from urllib.parse import quote, unquote

from . import _exceptions as exc

PROTOCOL_VERSION: Final = 1
PROTOCOL_HEADER: Final = "durable-protocol"
PROTOCOL_VALUE: Final = str(PROTOCOL_VERSION)
FEATURES_HEADER: Final = "durable-features"
PATCH_FEATURE: Final = "patch"
"""A server that announces ``Durable-Features: patch`` answers requests that say which
version the client holds (``have``) with the fields changed since, and sends
subscribers that ask for them (``patches``) the changed fields of each version."""

MAX_BODY_BYTES: Final = 1_048_576
"""Largest request body a server accepts (``413 payload_too_large``)."""
MAX_FRAME_BYTES: Final = 1_048_576
"""Largest frame a client may send (close ``1009``)."""
MAX_REPLY_BYTES: Final = 4 * 1_048_576
"""Largest reply body or server frame a client accepts."""
MAX_STATE_BYTES: Final = 1_048_576
"""Largest encoded state an object may store (``413 state_too_large``)."""
MAX_EVENT_BYTES: Final = 256 * 1024
"""Largest encoded events of one change together (``413 state_too_large``)."""
MAX_RESULT_BYTES: Final = 1_048_576
"""Largest encoded result of a call (``500 invalid_result``)."""
MAX_DEPTH: Final = 64
"""Deepest nesting of arrays and objects in a body or frame (the body itself is 1)."""
MAX_SAFE_INTEGER: Final = 2**53 - 1
"""Integers travel exactly only within this range (I-JSON, RFC 7493)."""
MAX_OBJECT_ID_BYTES: Final = 256
MAX_CALLS_IN_FLIGHT: Final = 256
"""Unanswered calls one WebSocket may have; more are answered ``overloaded``."""
SUBSCRIBER_BACKLOG: Final = 1_000
"""Frames a server sends on one WebSocket since the client's last ping before it
closes it with 4008 (the client did not read them)."""
SUBSCRIBER_BACKLOG_BYTES: Final = 8 * 1_048_576
"""... or bytes."""
ACKNOWLEDGE_EVERY: Final = 100
"""Frames a client reads before it pings, to say it read them ..."""
ACKNOWLEDGE_BYTES: Final = 1_048_576
"""... or bytes."""
CLOSE_GOING_AWAY: Final = 1001
CLOSE_LAGGING: Final = 4008
IDEMPOTENCY_TTL_SECONDS: Final = 3600.0
IDEMPOTENCY_MAX_PER_OBJECT: Final = 10_000
LIST_LIMIT: Final = 100
"""Ids a listing page holds when the request does not say (``limit``)."""
MAX_LIST_LIMIT: Final = 1000
"""Most ids one listing page may hold."""
EVENT_LOG_EVENTS: Final = 1000
"""Events an object's log keeps (the oldest versions' events are dropped first)..."""
EVENT_LOG_BYTES: Final = 1_048_576
"""... the bytes they may take together (each event: its name and its data's JSON)..."""
EVENT_LOG_SECONDS: Final = 24 * 3600.0
"""... and how long an event is kept."""
SCHEDULE_ATTEMPTS: Final = 10
"""Times a schedule's call is tried before the schedule is kept as failed."""
SCHEDULE_RETRY_FIRST: Final = 1.0
"""Seconds before the first retry of a failed schedule; each later one waits twice as long..."""
SCHEDULE_RETRY_MAX: Final = 300.0
"""... up to this."""
SCHEDULE_REQUEST_PREFIX: Final = "schedule:"
"""The request id of a schedule's call is this and the schedule's id."""

JSON: TypeAlias = Any
State: TypeAlias = dict[str, Any] | None

_MODEL_RE: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,127}")
_METHOD_RE: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
_REQUEST_ID_RE: Final = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
_CONTROL_RE: Final = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_BAD_ESCAPE_RE: Final = re.compile(r"%(?![0-9A-Fa-f]{2})")


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
    if value is not None and value.strip() != PROTOCOL_VALUE:
        raise exc.UnsupportedProtocolError(
            f"this server speaks protocol {PROTOCOL_VERSION}, the request announced {value!r}"
        )


def check_version(value: object, what: str) -> int | None:
    """A version member (``if_version``, ``since``): a non-negative integer or null."""
    if value is not None and (type(value) is not int or value < 0):
        raise exc.BadRequestError(f"{what!r} must be a non-negative integer or null")
    return value


def has_patch_feature(header: str | None) -> bool:
    """Whether a ``Durable-Features`` header value announces patches."""
    return header is not None and PATCH_FEATURE in (part.strip() for part in header.split(","))


def request_headers(token: str | None) -> dict[str, str]:
    """The headers every request and WebSocket handshake carries."""
    headers = {"Durable-Protocol": PROTOCOL_VALUE}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return headers


# -- paths --------------------------------------------------------------------


MODELS_PATH: Final = "/v1/models"


@functools.lru_cache(maxsize=4096)
def object_path(model: str, object_id: str, *rest: str) -> str:
    segments = ["v1", "objects", quote(model, safe=""), quote(object_id, safe="")]
    segments.extend(quote(part, safe="") for part in rest)
    return "/" + "/".join(segments)


RouteKind: TypeAlias = Literal["health", "models", "list", "state", "call", "ws", "schedules"]


@dataclass(frozen=True, slots=True)
class Route:
    kind: RouteKind
    model: str = ""
    object_id: str = ""
    method: str = ""


def parse_path(raw_path: str) -> Route:
    """Route a raw (still percent-encoded) path; each segment is decoded once, after
    splitting, and dot segments are never resolved."""
    parts = raw_path.split("?", 1)[0].split("/")
    if parts[:2] != ["", "v1"]:
        raise exc.NotFoundError(f"no endpoint at {raw_path[:100]!r}")
    rest = parts[2:]
    if rest == ["health"]:
        return Route("health")
    if rest == ["models"]:
        return Route("models")
    if len(rest) == 2 and rest[0] == "objects":
        return Route("list", check_model_name(_decode(rest[1])))
    if len(rest) < 3 or rest[0] != "objects":
        raise exc.NotFoundError(f"no endpoint at {raw_path[:100]!r}")
    model = check_model_name(_decode(rest[1]))
    object_id = check_object_id(_decode(rest[2]))
    tail = rest[3:]
    if not tail:
        return Route("state", model, object_id)
    if tail == ["ws"]:
        return Route("ws", model, object_id)
    if tail == ["schedules"]:
        return Route("schedules", model, object_id)
    if len(tail) == 2 and tail[0] == "call":
        return Route("call", model, object_id, check_method_name(_decode(tail[1])))
    raise exc.NotFoundError(f"no endpoint at {raw_path[:100]!r}")


def _decode(segment: str) -> str:
    if _BAD_ESCAPE_RE.search(segment):
        raise exc.InvalidIdError("path segment holds a malformed percent-escape")
    try:
        return unquote(segment, errors="strict")
    except UnicodeDecodeError:
        raise exc.InvalidIdError("path segment is not valid percent-encoded UTF-8") from None


def allowed_methods(kind: RouteKind) -> frozenset[str]:
    return _ALLOWED[kind]


_ALLOWED: Final[dict[RouteKind, frozenset[str]]] = {
    "health": frozenset({"GET"}),
    "models": frozenset({"GET"}),
    "list": frozenset({"GET"}),
    "state": frozenset({"GET", "PUT", "PATCH", "DELETE"}),
    "call": frozenset({"POST"}),
    "ws": frozenset({"GET"}),
    "schedules": frozenset({"GET"}),
}


# -- JSON ---------------------------------------------------------------------


_ENCODER: Final = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)
_SORTED_ENCODER: Final = json.JSONEncoder(
    separators=(",", ":"), ensure_ascii=False, allow_nan=False, sort_keys=True
)
# A \u escape of a UTF-16 surrogate (U+D800 to U+DFFF): paired, it is one character;
# alone, it is a string no UTF-8 can carry, so nothing holding it can be stored.
_SURROGATE_ESCAPE: Final = re.compile(r"\\u[dD][89a-fA-F]")
_STRING: Final = re.compile(r'"(?:[^"\\]|\\.)*"')
_NOT_BRACKET: Final = re.compile(r"[^\[\]{}]+")
_DEPTH_STEP: Final = {"[": 1, "{": 1, "]": -1, "}": -1}


def dumps_text(value: JSON) -> str:
    """Compact JSON text; NaN and infinities are refused (they are not JSON)."""
    return _ENCODER.encode(value)


def dumps(value: JSON) -> bytes:
    return _ENCODER.encode(value).encode()


def digest(value: JSON) -> str:
    """A digest of ``value``'s canonical JSON (sorted keys): equal values, equal digests."""
    return hashlib.sha256(
        _SORTED_ENCODER.encode(value).encode("utf-8", "surrogatepass")
    ).hexdigest()


class _OutOfRange(ValueError):
    pass


def _int(text: str) -> int:
    value = int(text)
    if -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
        return value
    raise _OutOfRange(text)


def _float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"the number {text[:40]} is too large to be finite")
    return value


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def loads(data: bytes | str, what: str = "body") -> JSON:
    """Decode JSON sent by a client, under the protocol's limits on hostile values.

    Malformed JSON, non-finite numbers, nesting deeper than ``MAX_DEPTH`` and
    strings holding an unpaired surrogate are ``BadRequestError``; an integer
    outside ±(2^53-1) anywhere is ``ValidationError`` (it cannot travel exactly).
    """
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
    except UnicodeDecodeError:
        raise exc.BadRequestError(f"{what} is not valid UTF-8") from None
    _check_depth(text, what)
    try:
        value = json.loads(text, parse_int=_int, parse_float=_float, parse_constant=_no_constants)
    except _OutOfRange:
        raise _out_of_range(text, what) from None
    except (ValueError, RecursionError) as error:
        raise exc.BadRequestError(f"{what} is not valid JSON: {error}") from None
    if _SURROGATE_ESCAPE.search(text) is not None:
        try:
            dumps(value)
        except UnicodeEncodeError:
            raise exc.BadRequestError(
                f"{what} holds an unpaired surrogate (\\ud800 to \\udfff), which is not text"
            ) from None
    return value


def loads_object(data: bytes | str, what: str = "body") -> dict[str, Any]:
    value = loads(data, what)
    if not isinstance(value, dict):
        raise exc.BadRequestError(f"{what} must be a JSON object, not {type(value).__name__}")
    return value


def _check_depth(text: str, what: str) -> None:
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    if brackets and max(accumulate(map(_DEPTH_STEP.__getitem__, brackets))) > MAX_DEPTH:
        raise exc.BadRequestError(f"{what} nests arrays and objects deeper than {MAX_DEPTH} levels")


class _Big(int):
    """An integer literal out of range, kept only to find where it was."""


def _marked(literal: str) -> int:
    value = int(literal)
    return value if abs(value) <= MAX_SAFE_INTEGER else _Big(value)


def out_of_range(value: Any) -> list[list[str | int]]:
    """Where, in a value parsed by ``loads_marked``, integers out of range sit."""
    found: list[list[str | int]] = []

    def walk(item: Any, loc: list[str | int]) -> None:
        if isinstance(item, _Big):
            found.append(loc)
        elif isinstance(item, dict):
            for key, member in item.items():
                walk(member, [*loc, key])
        elif isinstance(item, list):
            for index, member in enumerate(item):
                walk(member, [*loc, index])

    walk(value, [])
    return found


def loads_marked(text: str) -> Any:
    """Decode JSON that ``loads`` refused for an integer out of range, marking such
    integers, so that a caller can tell where they are (and read the rest)."""
    return json.loads(text, parse_int=_marked, parse_float=_float, parse_constant=_no_constants)


def _out_of_range(text: str, what: str) -> exc.ValidationError:
    return range_error(out_of_range(loads_marked(text)), what)


def range_error(locations: list[list[str | int]], what: str) -> exc.ValidationError:
    errors = [
        {
            "loc": loc,
            "msg": f"integers travel exactly only within ±{MAX_SAFE_INTEGER}",
            "type": "int_out_of_range",
        }
        for loc in locations
    ]
    return exc.ValidationError(
        f"{what} holds an integer outside ±(2^53-1), which JSON cannot carry exactly",
        details={"errors": errors},
    )


def check_content_type(value: str | None) -> None:
    if value is None or value.split(";", 1)[0].strip().lower() != "application/json":
        raise exc.UnsupportedMediaTypeError(f"send the body as application/json, not {value!r}")


def encode(value: Any, limit: int = MAX_BODY_BYTES) -> bytes:
    """A body or frame the client sends, as JSON bytes; values JSON cannot carry are
    ``ValidationError``, and bodies over ``limit`` ``PayloadTooLargeError``."""
    try:
        data = dumps(value)
    except (TypeError, ValueError) as error:
        raise exc.ValidationError(f"the request cannot be sent as JSON: {error}") from error
    if len(data) > limit:
        raise exc.PayloadTooLargeError(
            f"the request is {len(data):,} bytes; the protocol allows at most {limit:,}"
        )
    return data


# -- operations -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Call:
    """Call the remote method ``method`` with ``args`` (by parameter name)."""

    kind: ClassVar[Literal["call"]] = "call"
    model: str
    object_id: str
    method: str
    args: dict[str, Any] = field(default_factory=dict)
    request_id: str | None = None
    have: int | None = None
    """The version of the state the client holds: the reply may carry a patch."""

    def fingerprint(self) -> str:
        return digest(["call", self.method, self.args])


@dataclass(frozen=True, slots=True)
class Read:
    """Read the object's state and version."""

    kind: ClassVar[Literal["read"]] = "read"
    model: str
    object_id: str
    have: int | None = None
    request_id: ClassVar[None] = None


@dataclass(frozen=True, slots=True)
class Create:
    """Store ``state`` (missing fields take their defaults) unless the object has state."""

    kind: ClassVar[Literal["create"]] = "create"
    model: str
    object_id: str
    state: dict[str, Any] = field(default_factory=dict)
    request_id: str | None = None
    have: int | None = None

    def fingerprint(self) -> str:
        return digest(["create", self.state])


@dataclass(frozen=True, slots=True)
class Update:
    """Set ``fields``, keeping the others; with ``if_version``, only at that version."""

    kind: ClassVar[Literal["update"]] = "update"
    model: str
    object_id: str
    fields: dict[str, Any]
    if_version: int | None = None
    request_id: str | None = None
    have: int | None = None

    def fingerprint(self) -> str:
        return digest(["update", self.fields, self.if_version])


@dataclass(frozen=True, slots=True)
class Delete:
    """Remove the object's stored state."""

    kind: ClassVar[Literal["delete"]] = "delete"
    model: str
    object_id: str
    request_id: str | None = None
    have: ClassVar[None] = None

    def fingerprint(self) -> str:
        return digest(["delete"])


Mutation: TypeAlias = Call | Create | Update | Delete
Operation: TypeAlias = Call | Read | Create | Update | Delete
MUTATIONS: Final = (Call, Create, Update, Delete)
OperationKind: TypeAlias = Literal["call", "read", "create", "update", "delete"]


@dataclass(frozen=True, slots=True)
class Patch:
    """The fields of a state that changed after version ``since`` (their new values)."""

    since: int
    fields: dict[str, Any]


class Reply:
    """What an operation answered: its HTTP ``status``, the object's ``version`` and
    state after it, and a call's ``result`` or a delete's ``deleted`` flag.

    The state travels whole (``state``) or, when the client said which version it
    holds, as a ``patch`` of the fields changed since. ``has_state`` is False for
    the replay of an operation the object has moved past: no state at all then.
    A host may give the state as its JSON text (``state_text``): it is decoded only
    if someone reads ``state``, and sent as it is.
    """

    __slots__ = (
        "_state",
        "deleted",
        "has_state",
        "patch",
        "result",
        "state_text",
        "status",
        "version",
    )

    def __init__(
        self,
        status: int,
        version: int,
        state: State = None,
        result: JSON = None,
        deleted: bool = False,
        *,
        has_state: bool = True,
        patch: Patch | None = None,
        state_text: str | None = None,
    ) -> None:
        self.status = status
        self.version = version
        self._state = state
        self.result = result
        self.deleted = deleted
        self.has_state = has_state
        self.patch = patch
        self.state_text = state_text

    @property
    def state(self) -> State:
        if self._state is None and self.state_text is not None:
            self._state = json.loads(self.state_text)
        return self._state

    def _key(self) -> tuple[Any, ...]:
        return (
            self.status,
            self.version,
            self.state,
            self.result,
            self.deleted,
            self.has_state,
            self.patch,
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Reply) and self._key() == other._key()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Reply{self._key()!r}"

    def to_json(self, kind: OperationKind) -> dict[str, Any]:
        body: dict[str, Any] = {}
        if kind == "call":
            body["result"] = self.result
        elif kind == "delete":
            body["deleted"] = self.deleted
        body["version"] = self.version
        if self.patch is not None:
            body["patch"] = {"since": self.patch.since, "set": self.patch.fields}
        elif self.has_state:
            body["state"] = self.state
        return body

    def encode(self, kind: OperationKind) -> bytes:
        """The reply's JSON body; a state the host gave as text is sent as it is."""
        if self.state_text is None or self.patch is not None or not self.has_state:
            return dumps(self.to_json(kind))
        state, self._state = self._state, None
        try:
            head = {k: v for k, v in self.to_json(kind).items() if k != "state"}
        finally:
            self._state = state
        return f'{dumps_text(head)[:-1]},"state":{self.state_text}}}'.encode()


def read_reply(kind: OperationKind, body: dict[str, Any], status: int = 200) -> Reply:
    """A reply body received from a server (client side); ``ProtocolError`` if malformed."""
    version = body.get("version")
    if type(version) is not int or version < 0:
        raise exc.ProtocolError(f"reply has no valid version: {str(body)[:200]}")
    patch = _read_patch(body.get("patch")) if "patch" in body else None
    has_state = "state" in body or patch is not None
    state = body.get("state")
    if state is not None and not isinstance(state, dict):
        raise exc.ProtocolError("reply state must be an object or null")
    if kind == "call":
        if "result" not in body:
            raise exc.ProtocolError("call reply has no result")
        return Reply(status, version, state, body["result"], has_state=has_state, patch=patch)
    if kind == "delete":
        deleted = body.get("deleted")
        if not isinstance(deleted, bool):
            raise exc.ProtocolError("delete reply has no 'deleted' flag")
        return Reply(status, version, None, deleted=deleted)
    return Reply(status, version, state, has_state=has_state, patch=patch)


def _read_patch(value: object) -> Patch:
    if not isinstance(value, dict):
        raise exc.ProtocolError("a patch must be an object")
    since, fields = value.get("since"), value.get("set")
    if type(since) is not int or since < 0 or not isinstance(fields, dict):
        raise exc.ProtocolError("a patch needs an integer 'since' and an object 'set'")
    return Patch(since, fields)


# -- operations over HTTP ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HttpRequest:
    method: str
    path: str
    body: bytes | None


def http_request(op: Operation) -> HttpRequest:
    """The HTTP request that carries ``op`` (client side)."""
    path = object_path(op.model, op.object_id)
    if isinstance(op, Read):
        return HttpRequest("GET", path if op.have is None else f"{path}?have={op.have}", None)
    body: dict[str, Any]
    if isinstance(op, Call):
        path = object_path(op.model, op.object_id, "call", op.method)
        body, method = {"args": op.args}, "POST"
    elif isinstance(op, Create):
        body, method = {"state": op.state}, "PUT"
    elif isinstance(op, Update):
        body, method = {"fields": op.fields, "if_version": op.if_version}, "PATCH"
    else:
        if op.request_id is None:
            return HttpRequest("DELETE", path, None)
        body, method = {}, "DELETE"
    if op.request_id is not None:
        body["request_id"] = op.request_id
    if op.have is not None:
        body["have"] = op.have
    return HttpRequest(method, path, encode(body))


def http_operation(route: Route, method: str, body: dict[str, Any], query: str = "") -> Operation:
    """The operation an HTTP request asks for (server side); ``body`` is ``{}`` if empty."""
    model, object_id = route.model, route.object_id
    if route.kind == "call":
        _only(body, {"args", "request_id", "have"}, "call body")
        return Call(
            model,
            object_id,
            route.method,
            _object_member(body, "args", required=False),
            check_request_id(body.get("request_id")),
            check_version(body.get("have"), "have"),
        )
    if method == "GET":
        return Read(model, object_id, _have_of_query(query))
    if method == "PUT":
        _only(body, {"state", "request_id", "have"}, "create body")
        state = _object_member(body, "state", required=False)
        return Create(
            model,
            object_id,
            state,
            check_request_id(body.get("request_id")),
            check_version(body.get("have"), "have"),
        )
    if method == "PATCH":
        _only(body, {"fields", "if_version", "request_id", "have"}, "update body")
        return Update(
            model,
            object_id,
            _object_member(body, "fields", required=True),
            check_version(body.get("if_version"), "if_version"),
            check_request_id(body.get("request_id")),
            check_version(body.get("have"), "have"),
        )
    _only(body, {"request_id"}, "delete body")
    return Delete(model, object_id, check_request_id(body.get("request_id")))


def _have_of_query(query: str) -> int | None:
    """``have`` from a query string (``have=3``); other parameters are ignored."""
    for part in query.split("&"):
        name, _, value = part.partition("=")
        if name == "have":
            if not value.isdigit() or len(value) > 16:
                raise exc.BadRequestError("'have' must be a non-negative integer")
            return int(value)
    return None


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


# Statuses a proxy in front of the server (Cloudflare's edge, a load balancer)
# answers with when it cannot reach the server; such replies carry no protocol
# header and no envelope, and trying again later may well succeed.
GATEWAY_STATUSES: Final = frozenset({502, 503, 504})


def reply_error(status: int, headers_ok: bool, content: bytes) -> exc.DurableError:
    """The exception for a reply that is not a success (or not of this protocol)."""
    if not headers_ok:
        if status in GATEWAY_STATUSES:
            return exc.UnavailableError(f"HTTP {status} from a proxy in front of the server")
        return exc.ProtocolError(
            f"HTTP {status} reply without 'Durable-Protocol: {PROTOCOL_VALUE}': "
            "the URL does not point at a cloudflare-durable server of this protocol version"
        )
    try:
        body = json.loads(content)
    except ValueError:
        return exc.ProtocolError(f"HTTP {status} reply is not JSON: {content[:200]!r}")
    return error_from_envelope(status, body)


def read_reply_body(content: bytes) -> dict[str, Any]:
    """A successful reply's JSON object (client side)."""
    try:
        body = json.loads(content)
    except ValueError:
        raise exc.ProtocolError(f"reply is not JSON: {content[:200]!r}") from None
    if not isinstance(body, dict):
        raise exc.ProtocolError(f"reply is not a JSON object: {content[:200]!r}")
    return body


# -- queries: listing objects, and an object's schedules ------------------------


@dataclass(frozen=True, slots=True)
class ListObjects:
    """The ids of the objects of ``model`` that have stored state, in the order of their
    UTF-8 bytes: those starting with ``prefix``, after ``after`` (exclusive), at most
    ``limit``."""

    kind: ClassVar[Literal["list"]] = "list"
    model: str
    prefix: str = ""
    after: str | None = None
    limit: int = LIST_LIMIT


@dataclass(frozen=True, slots=True)
class ListSchedules:
    """The pending and failed schedules of one object."""

    kind: ClassVar[Literal["schedules"]] = "schedules"
    model: str
    object_id: str


Query: TypeAlias = ListObjects | ListSchedules


@dataclass(frozen=True, slots=True)
class ObjectPage:
    """One page of a listing: ``next`` is the id to list after for the next page
    (``None``: this was the last)."""

    ids: list[str]
    next: str | None

    def to_json(self) -> dict[str, Any]:
        return {"ids": self.ids, "next": self.next}


@dataclass(frozen=True, slots=True)
class Schedule:
    """A call of ``method`` with ``args`` (JSON, by parameter name) that an object made to
    itself for ``when``: ``pending`` until it runs, ``failed`` once every attempt failed.

    ``attempts`` counts the failed runs so far; ``error`` is the last one's error
    envelope (``{"code", "message", ...}``), or ``None``.
    """

    id: str
    when: datetime.datetime
    method: str
    args: dict[str, Any]
    attempts: int = 0
    status: Literal["pending", "failed"] = "pending"
    error: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "when": format_time(to_millis(self.when)),
            "method": self.method,
            "args": self.args,
            "attempts": self.attempts,
            "status": self.status,
            "error": self.error,
        }


_EPOCH: Final = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)


def to_millis(when: datetime.datetime) -> int:
    """Milliseconds since the Unix epoch of an aware datetime, rounded up (so that a
    time kept to the millisecond is never before the one given)."""
    delta = when - _EPOCH
    micros = (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds
    return -(-micros // 1000)


def from_millis(millis: int) -> datetime.datetime:
    return _EPOCH + datetime.timedelta(milliseconds=millis)


def format_time(millis: int) -> str:
    """RFC 3339 in UTC, to the millisecond: ``2026-12-01T12:00:00.000Z``."""
    when = from_millis(millis)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{millis % 1000:03d}Z"


def parse_time(text: object) -> datetime.datetime:
    """An RFC 3339 time with an offset, as an aware datetime (``ProtocolError`` if not)."""
    if not isinstance(text, str):
        raise exc.ProtocolError(f"a time must be an RFC 3339 string, not {text!r}")
    try:
        when = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise exc.ProtocolError(f"not an RFC 3339 time: {text[:40]!r}") from None
    if when.tzinfo is None:
        raise exc.ProtocolError(f"a time without an offset: {text[:40]!r}")
    return when.astimezone(datetime.UTC)


def query_params(query: str) -> dict[str, str]:
    """The parameters of a query string (the first of each name), values still encoded."""
    found: dict[str, str] = {}
    for part in query.split("&"):
        name, _, value = part.partition("=")
        if name and name not in found:
            found[name] = value
    return found


def list_query(route: Route, query: str) -> ListObjects:
    """The listing a ``GET /v1/objects/{model}?prefix=&after=&limit=`` asks for (server
    side). ``prefix`` and ``after`` are percent-decoded once; ``+`` is a plus sign."""
    params = query_params(query)
    prefix = _decode(params.get("prefix", ""))
    after = _decode(params.get("after", "")) or None
    limit = LIST_LIMIT
    if "limit" in params:
        text = params["limit"]  # as written: 1 to 16 ASCII digits, as for ``have``
        if not (1 <= len(text) <= 16 and text.isascii() and text.isdigit()) or not (
            1 <= int(text) <= MAX_LIST_LIMIT
        ):
            raise exc.BadRequestError(f"'limit' must be an integer from 1 to {MAX_LIST_LIMIT}")
        limit = int(text)
    return ListObjects(route.model, prefix, after, limit)


def query_path(query: Query) -> str:
    """The path (and query string) of a ``GET`` that asks ``query`` (client side)."""
    if isinstance(query, ListSchedules):
        return object_path(query.model, query.object_id, "schedules")
    params = [f"limit={query.limit}"]
    if query.prefix:
        params.append(f"prefix={quote(query.prefix, safe='')}")
    if query.after is not None:
        params.append(f"after={quote(query.after, safe='')}")
    return f"/v1/objects/{quote(query.model, safe='')}?" + "&".join(params)


def read_object_page(body: dict[str, Any]) -> ObjectPage:
    """A listing reply (client side); ``ProtocolError`` if malformed."""
    ids, after = body.get("ids"), body.get("next")
    if not isinstance(ids, list) or not all(isinstance(item, str) for item in ids):
        raise exc.ProtocolError("a listing reply needs 'ids', a list of strings")
    if after is not None and not isinstance(after, str):
        raise exc.ProtocolError("a listing reply's 'next' must be a string or null")
    return ObjectPage(ids, after)


def read_schedules(body: dict[str, Any]) -> list[Schedule]:
    """A schedules reply (client side); ``ProtocolError`` if malformed."""
    entries = body.get("schedules")
    if not isinstance(entries, list):
        raise exc.ProtocolError("a schedules reply needs 'schedules', a list")
    found = []
    for entry in entries:
        if not isinstance(entry, dict):
            raise exc.ProtocolError("each schedule must be an object")
        schedule_id, method, args = entry.get("id"), entry.get("method"), entry.get("args")
        attempts, status, error = entry.get("attempts"), entry.get("status"), entry.get("error")
        if (
            not isinstance(schedule_id, str)
            or not isinstance(method, str)
            or not isinstance(args, dict)
            or type(attempts) is not int
            or status not in ("pending", "failed")
            or not (error is None or isinstance(error, dict))
        ):
            raise exc.ProtocolError(f"malformed schedule: {str(entry)[:200]}")
        when = parse_time(entry.get("when"))
        found.append(Schedule(schedule_id, when, method, args, attempts, status, error))
    return found


# -- errors -------------------------------------------------------------------


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
    cls = exc.ERRORS.get(code) if isinstance(code, str) else None
    if cls is None:
        cls = _class_for_status(status, retryable)
    return cls(message, details=details, retryable=retryable)


def _class_for_status(status: int, retryable: bool | None) -> type[exc.DurableError]:
    if status == 401:
        return exc.UnauthorizedError
    if status == 403:
        return exc.ForbiddenError
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
    patches: bool = False
    """Send a version's changed fields (a ``patch`` frame) to a subscriber that has the
    version before it, instead of the whole state (servers with the patch feature)."""

    def to_json(self) -> dict[str, Any]:
        frame: dict[str, Any] = {
            "type": "subscribe",
            "since": self.since,
            "snapshots": self.snapshots,
            "events": self.events,
        }
        if self.patches:
            frame["patches"] = True
        return frame


@dataclass(frozen=True, slots=True)
class CallFrame:
    id: int
    method: str
    args: dict[str, Any] = field(default_factory=dict)
    request_id: str | None = None
    have: int | None = None

    def operation(self, model: str, object_id: str) -> Call:
        return Call(model, object_id, self.method, self.args, self.request_id, self.have)


def call_frame(call_id: int, op: Call) -> dict[str, Any]:
    frame: dict[str, Any] = {"type": "call", "id": call_id, "method": op.method, "args": op.args}
    if op.request_id is not None:
        frame["request_id"] = op.request_id
    if op.have is not None:
        frame["have"] = op.have
    return frame


@dataclass(frozen=True, slots=True)
class PingFrame:
    pass


ClientFrame: TypeAlias = SubscribeFrame | CallFrame | PingFrame

PING_TEXT: Final = '{"type":"ping"}'
PONG_TEXT: Final = '{"type":"pong"}'


class FrameError(Exception):
    """Carries the answer to a client frame the server cannot accept: ``error`` (a
    ``BadRequestError``, ``InvalidIdError`` or ``ValidationError``) and the frame's
    ``call_id`` when it could be read. Only servers see it."""

    def __init__(self, error: exc.DurableError, call_id: int | None = None) -> None:
        super().__init__(error.message)
        self.error = error
        self.call_id = call_id


def parse_client_frame(text: str) -> ClientFrame:
    """Parse one client frame, raising ``FrameError`` (with the call id, if known)."""
    try:
        frame = loads_object(text, "frame")
    except exc.ValidationError:
        raise _range_frame_error(text) from None
    except exc.DurableError as error:
        raise FrameError(error) from None
    kind = frame.get("type")
    if kind == "call":
        return _parse_call_frame(frame)
    if kind == "subscribe":
        return _parse_subscribe_frame(frame)
    if kind == "ping":
        _frame_members(frame, {"type"}, None)
        return PingFrame()
    unknown = exc.BadRequestError(f"unknown frame type {kind!r}: expected subscribe, call or ping")
    raise FrameError(unknown)


def _range_frame_error(text: str) -> FrameError:
    """The answer to a frame holding an integer out of range: inside a call's arguments,
    a validation error of that call; in the frame itself (its id, ``since``...), a
    malformed frame."""
    frame = loads_marked(text)
    locations = out_of_range(frame)
    if any(loc[:1] != ["args"] for loc in locations):
        return FrameError(
            exc.BadRequestError("the frame's own integers must be within 0 and 2^53-1")
        )
    call_id = frame.get("id") if isinstance(frame, dict) else None
    readable = type(call_id) is int and not isinstance(call_id, _Big) and call_id >= 0
    return FrameError(range_error(locations, "the frame"), call_id if readable else None)


def _frame_members(frame: dict[str, Any], allowed: set[str], call_id: int | None) -> None:
    try:
        _only(frame, allowed, f"{frame.get('type')} frame")
    except exc.BadRequestError as error:
        raise FrameError(error, call_id) from None


def _parse_call_frame(frame: dict[str, Any]) -> CallFrame:
    call_id = frame.get("id")
    if type(call_id) is not int or not 0 <= call_id <= MAX_SAFE_INTEGER:
        raise FrameError(exc.BadRequestError("a call frame needs an integer 'id' from 0 to 2^53-1"))
    _frame_members(frame, {"type", "id", "method", "args", "request_id", "have"}, call_id)
    try:
        method = frame.get("method")
        if not isinstance(method, str):
            raise exc.BadRequestError("a call frame needs a string 'method'")
        return CallFrame(
            call_id,
            check_method_name(method),
            _object_member(frame, "args", required=False),
            check_request_id(frame.get("request_id")),
            check_version(frame.get("have"), "have"),
        )
    except exc.DurableError as error:
        raise FrameError(error, call_id) from None


def _parse_subscribe_frame(frame: dict[str, Any]) -> SubscribeFrame:
    _frame_members(frame, {"type", "since", "snapshots", "events", "patches"}, None)
    try:
        since = check_version(frame.get("since"), "since")
    except exc.BadRequestError as error:
        raise FrameError(error) from None
    flags = [frame.get("snapshots", True), frame.get("events", True), frame.get("patches", False)]
    if not all(isinstance(flag, bool) for flag in flags):
        raise FrameError(exc.BadRequestError("'snapshots', 'events' and 'patches' are booleans"))
    return SubscribeFrame(since, *flags)


def snapshot_frame(version: int, state: State) -> dict[str, Any]:
    return {"type": "snapshot", "version": version, "state": state}


def patch_frame(version: int, since: int, fields: dict[str, Any]) -> dict[str, Any]:
    return {"type": "patch", "version": version, "since": since, "set": fields}


def event_frame(
    version: int, name: str, data: dict[str, Any], index: int = 0, count: int = 1
) -> dict[str, Any]:
    """Event ``index`` of the ``count`` events the change to ``version`` emitted."""
    return {
        "type": "event",
        "version": version,
        "index": index,
        "count": count,
        "name": name,
        "data": data,
    }


def gap_frame(since: int, until: int) -> dict[str, Any]:
    """Events of versions ``since + 1`` to ``until`` may be missing: the object's event
    log no longer holds them all."""
    return {"type": "gap", "since": since, "until": until}


def result_frame(call_id: int, reply: Reply) -> dict[str, Any]:
    return {"type": "result", "id": call_id, **reply.to_json("call")}


def result_text(call_id: int, reply: Reply) -> str:
    """``result_frame`` as text, with the reply's state text as the host gave it."""
    return f'{{"type":"result","id":{call_id},' + reply.encode("call").decode()[1:]


def error_frame(call_id: int | None, error: exc.DurableError) -> dict[str, Any]:
    return {"type": "error", "id": call_id, **error_envelope(error)}


@dataclass(frozen=True, slots=True)
class Snapshot:
    version: int
    state: State


@dataclass(frozen=True, slots=True)
class PatchMessage:
    """The state at ``version``: the one at ``since`` with ``fields`` set."""

    version: int
    since: int
    fields: dict[str, Any]


@dataclass(frozen=True, slots=True)
class EventMessage:
    """An event of the change to ``version``: the ``index``-th of its ``count`` events
    (``None`` from a server that does not say; they do not take part in equality)."""

    version: int
    name: str
    data: dict[str, Any]
    index: int | None = field(default=None, compare=False)
    count: int | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class GapMessage:
    """Events of versions ``since + 1`` to ``until`` may be missing (the log dropped them)."""

    since: int
    until: int


Message: TypeAlias = Snapshot | PatchMessage | EventMessage | GapMessage


@dataclass(frozen=True, slots=True)
class Result:
    id: int
    reply: Reply


@dataclass(frozen=True, slots=True)
class ErrorMessage:
    id: int | None
    error: exc.DurableError


@dataclass(frozen=True, slots=True)
class Pong:
    pass


ServerMessage: TypeAlias = (
    Snapshot | PatchMessage | EventMessage | GapMessage | Result | ErrorMessage | Pong
)


def parse_server_frame(text: str | bytes) -> ServerMessage:
    """Parse one server frame on the client side, raising ``ProtocolError``."""
    try:
        frame = json.loads(text)
    except ValueError as error:
        raise exc.ProtocolError(f"server frame is not valid JSON: {error}") from None
    if not isinstance(frame, dict):
        raise exc.ProtocolError("server frame is not a JSON object")
    kind = frame.get("type")
    if kind == "snapshot":
        reply = read_reply("read", frame)
        return Snapshot(reply.version, reply.state)
    if kind == "patch":
        patch = _read_patch({"since": frame.get("since"), "set": frame.get("set")})
        version = frame.get("version")
        if type(version) is not int or version <= patch.since:
            raise exc.ProtocolError("patch frame has no valid version")
        return PatchMessage(version, patch.since, patch.fields)
    if kind == "event":
        name, data, version = frame.get("name"), frame.get("data"), frame.get("version")
        if not isinstance(name, str) or not isinstance(data, dict):
            raise exc.ProtocolError("event frame needs a string 'name' and an object 'data'")
        if type(version) is not int or version < 0:
            raise exc.ProtocolError("event frame has no valid version")
        index, count = frame.get("index"), frame.get("count")
        if index is None and count is None:
            return EventMessage(version, name, data)
        if type(index) is not int or type(count) is not int or not 0 <= index < count:
            raise exc.ProtocolError("event frame has no valid index and count")
        return EventMessage(version, name, data, index, count)
    if kind == "gap":
        since, until = frame.get("since"), frame.get("until")
        if type(since) is not int or type(until) is not int or not 0 <= since < until:
            raise exc.ProtocolError("gap frame needs integers 'since' < 'until'")
        return GapMessage(since, until)
    if kind == "result":
        call_id = frame.get("id")
        if type(call_id) is not int:
            raise exc.ProtocolError("result frame has no integer id")
        return Result(call_id, read_reply("call", frame))
    if kind == "error":
        call_id = frame.get("id")
        return ErrorMessage(
            call_id if type(call_id) is int else None, error_from_envelope(400, frame)
        )
    if kind == "pong":
        return Pong()
    raise exc.ProtocolError(f"unknown server frame type {kind!r}")

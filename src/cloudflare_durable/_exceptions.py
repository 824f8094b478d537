"""The exceptions raised by cloudflare-durable, and the table of wire error codes.

Every error the library raises derives from one root::

    DurableError                      root of everything raised here
    ├── UsageError                    the library was used wrongly (closed client, bad handle)
    │   ├── NotLoadedError            a handle's field was read before any state was seen
    │   └── ReentrancyError           a call re-entered an object already running in its chain
    ├── ModelDefinitionError          a DurableModel or Event class is ill-formed (class creation)
    ├── InvalidIdError                an object id, model, method or request id is malformed
    ├── ValidationError               arguments, fields or state do not validate
    │   └── StateTooLargeError        the change would store more than the byte limits allow
    ├── RemoteError                   the remote method raised; carries its type name and message
    ├── InvalidResultError            the method returned, or left, what its declaration rejects
    ├── NotFoundError                 no such endpoint, model, method, or object state
    │   ├── UnknownModelError         the server serves no model of that name
    │   ├── UnknownMethodError        the model has no remote method of that name
    │   └── ObjectNotFoundError       the object has no state and cannot default it
    ├── ConflictError                 an ``if_version`` did not match; nothing changed
    │   ├── AlreadyExistsError        ``create`` on an object that already has state
    │   └── RequestIdReusedError      a request id came back with a different operation
    ├── UnauthorizedError             the token is missing or wrong
    ├── ForbiddenError                the request's Origin or Host is not allowed
    ├── OverloadedError               the server or object is overloaded; not retried
    ├── ServerError                   the server failed unexpectedly; nothing applied (retryable)
    ├── ProtocolError                 the peer broke the wire protocol (bad reply, other version)
    │   ├── BadRequestError           the server rejected a request as malformed
    │   │   ├── UnsupportedProtocolError  the server speaks another protocol version
    │   │   ├── MethodNotAllowedError     a known endpoint, another HTTP method
    │   │   ├── PayloadTooLargeError      the body is over the size limit
    │   │   └── UnsupportedMediaTypeError the body was not sent as application/json
    │   └── SchemaMismatchError       the server's models differ from the client's (schema check)
    └── TransportError                the request may not have reached its end (``retryable``)
        ├── ConnectError              no connection could be made
        ├── TimeoutError              no reply within the configured timeout
        ├── ConnectionLostError       the connection dropped mid-request or mid-stream
        │   └── EventsLostError       events a subscriber missed are no longer kept to replay
        └── UnavailableError          the server answered that it cannot serve now

A server-side failure reaches the client as the same class it was raised as on
the server: the wire carries a stable code, and :data:`ERRORS` maps each code to
its class, whose ``status`` and ``default_retryable`` are the code's HTTP status
and retry flag (``docs/protocol.md`` has the same table). Exceptions of
third-party libraries are translated at the boundary (``raise ... from exc``), so
callers only ever catch ``DurableError``.
"""

from __future__ import annotations

import builtins
from typing import Any, ClassVar, Final

__all__ = [
    "ERRORS",
    "AlreadyExistsError",
    "BadRequestError",
    "ConflictError",
    "ConnectError",
    "ConnectionLostError",
    "DurableError",
    "EventsLostError",
    "ForbiddenError",
    "InvalidIdError",
    "InvalidResultError",
    "MethodNotAllowedError",
    "ModelDefinitionError",
    "NotFoundError",
    "NotLoadedError",
    "ObjectNotFoundError",
    "OverloadedError",
    "PayloadTooLargeError",
    "ProtocolError",
    "ReentrancyError",
    "RemoteError",
    "RequestIdReusedError",
    "SchemaMismatchError",
    "ServerError",
    "StateTooLargeError",
    "TimeoutError",
    "TransportError",
    "UnauthorizedError",
    "UnavailableError",
    "UnknownMethodError",
    "UnknownModelError",
    "UnsupportedMediaTypeError",
    "UnsupportedProtocolError",
    "UsageError",
    "ValidationError",
]


class DurableError(Exception):
    """Root of every exception raised by cloudflare-durable.

    ``code`` is the stable wire code (``docs/protocol.md``), ``status`` the HTTP
    status that carries it, ``retryable`` whether repeating the same request
    (with the same request id) may succeed, ``details`` extra JSON data.
    """

    code: ClassVar[str] = "internal"
    status: ClassVar[int] = 500
    default_retryable: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        details: dict[str, Any] | None = None,
        retryable: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = details or {}
        self.retryable = self.default_retryable if retryable is None else retryable


class UsageError(DurableError):
    """The library was used in a way it does not support."""

    code = "usage_error"


class NotLoadedError(UsageError, AttributeError):
    """A handle's field was read before the handle saw any state (``await handle.load()``)."""


class ReentrancyError(UsageError):
    """A method called, directly or through other objects, an object already running a
    method in the same chain of calls (A calling A, or A calling B calling A). Raised at
    once instead of waiting forever; the message shows the chain."""


class ModelDefinitionError(DurableError, TypeError):
    """A ``DurableModel`` or ``Event`` subclass is ill-formed; raised when the class is created."""

    code = "model_definition"


class InvalidIdError(DurableError, ValueError):
    """An object id, model name, method name or request id is malformed."""

    code = "invalid_id"
    status = 400


class ValidationError(DurableError, ValueError):
    """Arguments, fields or state do not validate against the model.

    ``details["errors"]`` lists the problems: ``loc`` (names and list indexes),
    ``msg`` and ``type`` (pydantic's error type name).
    """

    code = "validation_error"
    status = 422


class StateTooLargeError(ValidationError):
    """The change would store a state over 1 MiB, or events over 256 KiB; nothing changed."""

    code = "state_too_large"
    status = 413


class RemoteError(DurableError):
    """The remote method raised.

    ``type_name`` is the exception's class name on the server and
    ``remote_message`` its own message (``details["type"]`` and
    ``details["message"]`` on the wire); ``message`` is a one-line summary.
    """

    code = "remote_error"
    status = 422

    @property
    def type_name(self) -> str:
        return str(self.details.get("type", "Exception"))

    @property
    def remote_message(self) -> str:
        return str(self.details.get("message", ""))


class InvalidResultError(DurableError):
    """The method returned a value its annotation rejects (or over 1 MiB), or left a
    state its fields reject; nothing changed."""

    code = "invalid_result"
    status = 500


class NotFoundError(DurableError, LookupError):
    """Something named by the request does not exist."""

    code = "not_found"
    status = 404


class UnknownModelError(NotFoundError):
    """No model of that name is served."""

    code = "unknown_model"


class UnknownMethodError(NotFoundError, AttributeError):
    """The model has no remote method of that name."""

    code = "unknown_method"


class ObjectNotFoundError(NotFoundError):
    """The object has no stored state and its model has fields without defaults."""

    code = "object_not_found"


class ConflictError(DurableError):
    """A conditional update's ``if_version`` did not match; nothing changed.

    ``details`` holds ``expected`` and ``actual`` versions.
    """

    code = "conflict"
    status = 409


class AlreadyExistsError(ConflictError):
    """``create`` was called on an object that already has state."""

    code = "already_exists"


class RequestIdReusedError(ConflictError):
    """A request id the object remembers came back with a different operation."""

    code = "request_id_reused"


class UnauthorizedError(DurableError):
    """The server needs a token and the one sent (if any) is wrong."""

    code = "unauthorized"
    status = 401


class ForbiddenError(DurableError):
    """The server refused the request's ``Origin`` or ``Host``."""

    code = "forbidden"
    status = 403


class OverloadedError(DurableError):
    """The server or the object is overloaded. Not retried automatically."""

    code = "overloaded"
    status = 503


class ServerError(DurableError):
    """The server failed unexpectedly; nothing was applied, so a retry is safe."""

    code = "internal"
    status = 500
    default_retryable = True


class ProtocolError(DurableError):
    """The peer does not speak this protocol version, or sent something malformed."""

    code = "protocol_error"
    status = 502


class BadRequestError(ProtocolError):
    """The server rejected the request as malformed (a client bug or a version mismatch)."""

    code = "bad_request"
    status = 400


class UnsupportedProtocolError(BadRequestError):
    """The server does not speak the protocol version the request announced."""

    code = "unsupported_protocol"


class MethodNotAllowedError(BadRequestError):
    """The endpoint exists, but not for that HTTP method."""

    code = "method_not_allowed"
    status = 405


class PayloadTooLargeError(BadRequestError):
    """The request body is over the protocol's size limit."""

    code = "payload_too_large"
    status = 413


class UnsupportedMediaTypeError(BadRequestError):
    """The request body was not sent as ``application/json``."""

    code = "unsupported_media_type"
    status = 415


class SchemaMismatchError(ProtocolError):
    """The server's schema document (``GET /v1/models``) differs from the local models.

    Raised at first contact when the client checks schemas (``check_schema``).
    The message names every difference; ``details["differences"]`` lists them.
    """

    code = "schema_mismatch"


class TransportError(DurableError):
    """The request or stream failed in transit; ``retryable`` says whether to try again."""

    code = "transport_error"
    status = 503
    default_retryable = True


class ConnectError(TransportError):
    """No connection to the server could be made."""


class TimeoutError(TransportError, builtins.TimeoutError):
    """No reply arrived within the configured timeout."""


class ConnectionLostError(TransportError):
    """The connection dropped while a request or stream was in progress."""


class EventsLostError(ConnectionLostError):
    """Events of versions ``since + 1`` to ``until`` may have been emitted while the
    subscriber was away, and the object's event log no longer holds them all (it keeps
    the last 1,000 events, 1 MiB, 24 hours). Not retried: the subscription can be
    iterated again after it, and goes on with the events that follow."""

    def __init__(self, message: str, *, since: int, until: int) -> None:
        super().__init__(message, details={"since": since, "until": until}, retryable=False)
        self.since = since
        self.until = until


class UnavailableError(TransportError):
    """The server answered that it cannot serve right now (shutting down, restarting)."""

    code = "unavailable"


class SubscriberLagged(ConnectionLostError):
    """The server dropped a subscriber that fell too far behind (close 4008): the
    subscription resumes at once, without backoff. Private: never reaches users."""


#: Every error code of the wire protocol and the class it travels as; each class
#: carries the code's HTTP ``status`` and ``default_retryable`` flag.
ERRORS: Final[dict[str, type[DurableError]]] = {
    cls.code: cls
    for cls in (
        BadRequestError,
        InvalidIdError,
        UnsupportedProtocolError,
        UnauthorizedError,
        ForbiddenError,
        NotFoundError,
        UnknownModelError,
        UnknownMethodError,
        ObjectNotFoundError,
        MethodNotAllowedError,
        ConflictError,
        AlreadyExistsError,
        RequestIdReusedError,
        PayloadTooLargeError,
        StateTooLargeError,
        UnsupportedMediaTypeError,
        ValidationError,
        RemoteError,
        InvalidResultError,
        ServerError,
        OverloadedError,
        UnavailableError,
    )
}

"""Typed Python models on Cloudflare Durable Objects.

Subclass :class:`DurableModel` with pydantic fields and :func:`remote` async
methods; ``await Counter.get("c1").increment(1)`` calls the object, wherever it
lives: the embedded in-process host (the default), a Python network host
(``durable serve``), or Cloudflare's runtime through the Worker in ``worker/``.
"""

from ._client import DurableClient
from ._exceptions import (
    AlreadyExistsError,
    BadRequestError,
    ConflictError,
    ConnectError,
    ConnectionLostError,
    DurableError,
    EventsLostError,
    ForbiddenError,
    InvalidIdError,
    InvalidResultError,
    MethodNotAllowedError,
    ModelDefinitionError,
    NotFoundError,
    NotLoadedError,
    ObjectNotFoundError,
    OverloadedError,
    PayloadTooLargeError,
    ProtocolError,
    ReentrancyError,
    RemoteError,
    RequestIdReusedError,
    SchemaMismatchError,
    ServerError,
    StateTooLargeError,
    TimeoutError,
    TransportError,
    UnauthorizedError,
    UnavailableError,
    UnknownMethodError,
    UnknownModelError,
    UnsupportedMediaTypeError,
    UnsupportedProtocolError,
    UsageError,
    ValidationError,
)
from ._models import DurableModel, Event, RemoteMethod, migration, remote
from ._protocol import Schedule
from ._subscription import Subscription
from ._telemetry import attach
from ._tickets import issue_ticket
from ._transports import local as _local  # noqa: F401  (installs the embedded host)

__version__ = "0.1.0"

__all__ = [
    "AlreadyExistsError",
    "BadRequestError",
    "ConflictError",
    "ConnectError",
    "ConnectionLostError",
    "DurableClient",
    "DurableError",
    "DurableModel",
    "Event",
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
    "RemoteMethod",
    "RequestIdReusedError",
    "Schedule",
    "SchemaMismatchError",
    "ServerError",
    "StateTooLargeError",
    "Subscription",
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
    "__version__",
    "attach",
    "issue_ticket",
    "migration",
    "remote",
]

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
    InvalidIdError,
    InvalidResultError,
    ModelDefinitionError,
    NotFoundError,
    NotLoadedError,
    ObjectNotFoundError,
    OverloadedError,
    ProtocolError,
    RemoteError,
    SchemaMismatchError,
    ServerError,
    TimeoutError,
    TransportError,
    UnauthorizedError,
    UnavailableError,
    UnknownMethodError,
    UnknownModelError,
    UsageError,
    ValidationError,
)
from ._models import DurableModel, Event, RemoteMethod, remote
from ._subscription import Subscription
from ._telemetry import attach

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
    "InvalidIdError",
    "InvalidResultError",
    "ModelDefinitionError",
    "NotFoundError",
    "NotLoadedError",
    "ObjectNotFoundError",
    "OverloadedError",
    "ProtocolError",
    "RemoteError",
    "RemoteMethod",
    "SchemaMismatchError",
    "ServerError",
    "Subscription",
    "TimeoutError",
    "TransportError",
    "UnauthorizedError",
    "UnavailableError",
    "UnknownMethodError",
    "UnknownModelError",
    "UsageError",
    "ValidationError",
    "__version__",
    "attach",
    "remote",
]

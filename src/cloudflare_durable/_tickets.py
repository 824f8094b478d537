"""Tickets: short-lived, signed permissions on one object, for browsers.

A page must not hold the server's bearer token (anyone who opens it could then
do anything). Instead the application, which knows its user, issues a ticket
for one object and a few operations, valid for a minute or so; the page
presents it, and both servers check the signature, the expiry and the scope.
Sans-I/O: this module only encodes, signs and checks.

Format (``docs/protocol.md``)::

    t1.<base64url(payload)>.<base64url(HMAC-SHA256(key, "t1." + base64url(payload)))>
    key     = HMAC-SHA256(UTF-8(token), "cloudflare-durable ticket v1")
    payload = {"model": str, "id": str, "allow": [str, ...], "exp": unix seconds}

``allow`` names operations: ``load`` (read the state, open a WebSocket and
subscribe), ``create``, ``update``, ``delete``, or a remote method's name.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

from . import _exceptions as exc
from . import _protocol as proto

__all__ = [
    "Ticket",
    "issue_ticket",
    "operation_name",
    "read_ticket",
    "ticket_from_subprotocols",
    "ticket_key",
]

PREFIX: Final = "t1"
KEY_CONTEXT: Final = b"cloudflare-durable ticket v1"
MAX_TICKET_SECONDS: Final = 3600
"""The longest validity a server accepts (from now): tickets are short-lived."""
CLOCK_SKEW_SECONDS: Final = 60
MAX_ALLOW: Final = 8
"""At most this many operations in one ticket."""
OPERATIONS: Final = frozenset({"load", "create", "update", "delete"})
SUBPROTOCOL: Final = "durable.v1"
"""The WebSocket subprotocol a browser offers; the server selects it."""
TICKET_SUBPROTOCOL_PREFIX: Final = "durable.ticket."
"""A browser offers ``durable.ticket.<ticket>`` beside ``durable.v1``: its ticket."""
TICKET_SCHEME: Final = "ticket"
"""``Authorization: Ticket <ticket>`` carries a ticket over HTTP."""


@dataclass(frozen=True, slots=True)
class Ticket:
    """What a valid ticket allows: operations ``allow`` on one object, until ``expires``."""

    model: str
    object_id: str
    allow: frozenset[str]
    expires: int

    def permits(self, model: str, object_id: str, operation: str) -> bool:
        return model == self.model and object_id == self.object_id and operation in self.allow


def ticket_key(token: str) -> bytes:
    """The key tickets are signed with, derived from the bearer token."""
    return hmac.new(token.encode("utf-8"), KEY_CONTEXT, hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def issue_ticket(
    token: str,
    model: type[Any] | str,
    object_id: str,
    *,
    allow: Iterable[str] = ("load",),
    ttl: float = 60.0,
    now: float | None = None,
) -> str:
    """A ticket for ``object_id`` of ``model`` (a ``DurableModel`` class or its wire
    name), signed with the server's bearer ``token``, valid for ``ttl`` seconds.

    ``allow`` names what it permits: ``"load"`` (read, subscribe), ``"create"``,
    ``"update"``, ``"delete"``, or remote method names. Give it to a page; the
    browser module presents it (never in a URL).
    """
    if not token:
        raise exc.UsageError("a ticket is signed with the server's token: give a non-empty one")
    name = model if isinstance(model, str) else getattr(model, "__durable_name__", None)
    if not isinstance(name, str):
        raise exc.UsageError(f"model must be a DurableModel class or a model name, not {model!r}")
    operations = sorted(set(allow))
    if not operations or len(operations) > MAX_ALLOW:
        raise exc.UsageError(f"allow names 1 to {MAX_ALLOW} operations, not {len(operations)}")
    for operation in operations:
        proto.check_method_name(operation)
    if not 0 < ttl <= MAX_TICKET_SECONDS:
        raise exc.UsageError(f"ttl must be in (0, {MAX_TICKET_SECONDS}] seconds, not {ttl!r}")
    payload = {
        "model": proto.check_model_name(name),
        "id": proto.check_object_id(object_id),
        "allow": operations,
        "exp": int((time.time() if now is None else now) + ttl),
    }
    body = f"{PREFIX}.{_b64(proto.dumps(payload))}"
    signature = hmac.new(ticket_key(token), body.encode("ascii"), hashlib.sha256).digest()
    return f"{body}.{_b64(signature)}"


def read_ticket(ticket: str, key: bytes, *, now: float | None = None) -> Ticket:
    """The scope of ``ticket`` if it was signed with ``key`` (``ticket_key(token)``)
    and is current; else ``UnauthorizedError`` (saying no more than that)."""
    refused = exc.UnauthorizedError("the ticket is invalid or has expired")
    prefix, _, rest = ticket.partition(".")
    encoded, _, signature = rest.partition(".")
    if prefix != PREFIX or not encoded or not signature:
        raise refused
    body = f"{PREFIX}.{encoded}".encode("ascii", "replace")
    expected = hmac.new(key, body, hashlib.sha256).digest()
    try:
        presented = _unb64(signature)
        payload = json.loads(_unb64(encoded))
    except (ValueError, binascii.Error):
        raise refused from None
    if not hmac.compare_digest(expected, presented):
        raise refused
    scope = _scope(payload)
    moment = time.time() if now is None else now
    latest = moment + MAX_TICKET_SECONDS + CLOCK_SKEW_SECONDS
    if scope is None or not moment < scope.expires <= latest:
        raise refused
    return scope


def _scope(payload: Any) -> Ticket | None:
    if not isinstance(payload, dict) or set(payload) != {"model", "id", "allow", "exp"}:
        return None
    model, object_id, allow, expires = (payload[k] for k in ("model", "id", "allow", "exp"))
    if not (isinstance(model, str) and isinstance(object_id, str) and type(expires) is int):
        return None
    if not isinstance(allow, list) or not all(isinstance(name, str) for name in allow):
        return None
    return Ticket(model, object_id, frozenset(allow), expires)


def operation_name(route_kind: str, http_method: str, method: str = "") -> str:
    """The name a ticket or an ``authorize`` hook knows a request by (a WebSocket
    handshake is ``load``: it reads the state; its calls are checked one by one)."""
    if route_kind == "call":
        return method
    if route_kind == "ws":
        return "load"
    return {"GET": "load", "PUT": "create", "PATCH": "update", "DELETE": "delete"}.get(
        http_method, "load"
    )


def ticket_from_subprotocols(offered: Iterable[str]) -> str | None:
    """The ticket a browser offered as a WebSocket subprotocol, if any."""
    for value in offered:
        if value.startswith(TICKET_SUBPROTOCOL_PREFIX):
            return value[len(TICKET_SUBPROTOCOL_PREFIX) :]
    return None

"""Which method body, if any, the running code belongs to.

A host sets the body context while a ``@remote`` method runs; the code the body
runs (and the tasks it starts) sees it. Handles, the default client and nested
calls use it to resolve to the host running the body, to refuse re-entering an
object already in the chain of calls, and to derive the request ids of nested
calls from the outer call's.
"""

from __future__ import annotations

import hashlib
import uuid
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Body", "Ticket", "current", "running"]

Key = tuple[str, str]  # (model name, object id)


@dataclass(slots=True)
class Ticket:
    """The request id of a queued operation, kept across every run of its body."""

    request_id: str | None
    local: bool = False
    """Whether the id was made up by the host (no client will repeat the request)."""


@dataclass(slots=True)
class Body:
    """A method body while it runs: where, in which chain of calls, for which request."""

    host: Any
    """The host running the body (its nested operations go there)."""
    chain: tuple[Key, ...]
    """The objects whose bodies are running in this chain of calls, outermost first."""
    ticket: Ticket
    """The request id of the body's operation; nested calls derive theirs from it."""
    made: dict[Key, int] = field(default_factory=dict)
    """How many nested operations the body has sent to each object so far."""

    def describe(self, target: Key) -> str:
        return " -> ".join(f"{model}({object_id!r})" for model, object_id in (*self.chain, target))

    def nested_request_id(self, target: Key) -> str:
        """The request id of the body's next operation on ``target``: the same on every
        run of the same body for the same outer request, so a repeated run is answered
        from the records its first run left."""
        ticket = self.ticket
        if ticket.request_id is None:
            ticket.request_id, ticket.local = f"local:{uuid.uuid4().hex}", True
        number = self.made.get(target, 0)
        self.made[target] = number + 1
        text = "\0".join((ticket.request_id, target[0], target[1], str(number)))
        return "n:" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:40]


_current: ContextVar[Body | None] = ContextVar("cloudflare_durable_body", default=None)


def current() -> Body | None:
    """The body the running code belongs to, or None outside any method body."""
    return _current.get()


class running:  # a function to its callers: ``with running(body):``
    """Run the block as part of ``body`` (a plain class: it is on every call's path)."""

    __slots__ = ("_body", "_token")

    def __init__(self, body: Body) -> None:
        self._body = body

    def __enter__(self) -> Body:
        self._token = _current.set(self._body)
        return self._body

    def __exit__(self, *exc_info: object) -> None:
        _current.reset(self._token)

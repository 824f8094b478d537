"""Subscribers of an object, and the fan-out of its changes to them.

A subscriber receives the object's snapshot (when newer than the version it
says it has seen), then every change in order: the snapshot of the new version
and, if it asked for them, the events of that version. Only versions greater
than its ``since`` reach it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import anyio

from .. import _exceptions as exc
from .. import _protocol as proto

__all__ = ["Change", "Subscriber", "publish"]

Sink = Callable[[proto.Message], None]


@dataclass(slots=True)
class Change:
    """One new version of an object: its state and the events that made it."""

    version: int
    state: dict[str, Any] | None
    events: list[proto.EventMessage]


class Subscriber:
    """One subscriber's ordered inbox of snapshots and events.

    With a ``sink`` (a network connection's outbox) messages are handed over
    synchronously, in order. Without one they queue for ``receive()``; a
    subscriber more than ``SUBSCRIBER_BACKLOG`` messages behind is cut off:
    ``receive`` raises ``SubscriberLagged`` and the client resumes from the last
    version it saw, so it skips ahead but never repeats.
    """

    def __init__(
        self,
        frame: proto.SubscribeFrame,
        *,
        poll: Callable[[], None],
        poll_interval: float,
        detach: Callable[[Subscriber], None],
        sink: Sink | None = None,
    ) -> None:
        self.frame = frame
        self._poll = poll
        self._poll_interval = poll_interval
        self._detach = detach
        self._sink = sink
        self._inbox: deque[proto.Message] = deque()
        self._wakeup = anyio.Event()
        self._lagged = False
        self._closed = False
        self.last_version = frame.since if frame.since is not None else -1

    def _push(self, message: proto.Message) -> None:
        if self._closed or self._lagged:
            return
        if self._sink is not None:
            self._sink(message)
            return
        if len(self._inbox) >= proto.SUBSCRIBER_BACKLOG:
            self._lagged = True
            self._inbox.clear()
        else:
            self._inbox.append(message)
        self._wakeup.set()

    def offer(self, version: int, state: dict[str, Any] | None) -> None:
        """The object is at ``version``: send its snapshot if this subscriber has not seen it."""
        if version > self.last_version:
            self.last_version = version
            if self.frame.snapshots:
                self._push(proto.Snapshot(version, state))

    def deliver(self, change: Change) -> None:
        if change.version <= self.last_version:
            return
        self.offer(change.version, change.state)
        if self.frame.events:
            for event in change.events:
                self._push(event)

    async def receive(self) -> proto.Message:
        while not self._inbox:
            if self._lagged:
                raise exc.SubscriberLagged("the subscriber fell behind; resume from its version")
            if self._closed:
                raise exc.ConnectionLostError("the subscription is closed", retryable=False)
            with anyio.move_on_after(self._poll_interval):
                await self._wakeup.wait()
            if not self._wakeup.is_set():
                self._poll()
                continue
            self._wakeup = anyio.Event()
        return self._inbox.popleft()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._wakeup.set()
            self._detach(self)


def publish(subscribers: Iterable[Subscriber], change: Change) -> None:
    """Hand one change to every subscriber, in order."""
    for subscriber in list(subscribers):
        subscriber.deliver(change)

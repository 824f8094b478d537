"""Subscribers of an object, and the fan-out of its changes to them.

A subscriber receives the object's state (when newer than the version it says
it has seen), then every change in order: the new version's state and, if it
asked for them, the events of that version. Only versions greater than its
``since`` reach it. A subscriber that asked for patches and holds the version
just before a change receives only the fields that change set. A subscriber
that resumes (``since``) and asked for events first gets the logged events it
missed (``replay``), after a gap frame if the log no longer holds them all;
replayed frames do not count toward its backlog.

Each change is encoded once: every network subscriber gets the same frame text,
and every in-process subscriber the same message (the frames and messages of a
change are made the first time one is asked for).
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol, TypeVar

import anyio

from .. import _exceptions as exc
from .. import _protocol as proto
from ._store import LoggedEvent

__all__ = ["Change", "Subscriber", "TextSink", "publish"]

T = TypeVar("T")


class TextSink(Protocol):
    """Where a network subscriber's frames go, as text, in order (``replay``: a frame
    of a replay, which does not count toward the connection's backlog)."""

    def __call__(self, text: str, /, *, replay: bool = False) -> None: ...


class Change:
    """One version of an object as subscribers see it: its fields' JSON texts (``None``:
    no state), the fields it set (``None``: the whole state was replaced) and its events.
    """

    __slots__ = ("_frames", "events", "set", "texts", "version")

    def __init__(
        self,
        version: int,
        texts: dict[str, str] | None,
        changed: Iterable[str] | None,
        events: list[proto.EventMessage],
    ) -> None:
        self.version = version
        self.texts = texts
        self.set = None if changed is None else frozenset(changed)
        self.events = events
        self._frames: dict[Any, Any] = {}

    def _made(self, key: Any, make: Callable[[], T]) -> T:
        found: T | None = self._frames.get(key)
        if found is None:
            found = self._frames[key] = make()
        return found

    def snapshot_text(self) -> str:
        return self._made("snapshot text", lambda: snapshot_text(self.version, self.texts))

    def snapshot(self) -> proto.Snapshot:
        return self._made("snapshot", lambda: proto.Snapshot(self.version, self.state()))

    def patch_text(self, since: int, names: frozenset[str]) -> str:
        return self._made(("patch text", since, names), lambda: patch_text(self, since, names))

    def patch(self, since: int, names: frozenset[str]) -> proto.PatchMessage:
        return self._made(
            ("patch", since, names),
            lambda: proto.PatchMessage(self.version, since, self.fields(names)),
        )

    def event_texts(self) -> list[str]:
        return self._made(
            "event texts",
            lambda: [
                proto.dumps_text(
                    proto.event_frame(e.version, e.name, e.data, index, len(self.events))
                )
                for index, e in enumerate(self.events)
            ],
        )

    def state(self) -> dict[str, Any] | None:
        if self.texts is None:
            return None
        return {name: json.loads(text) for name, text in self.texts.items()}

    def fields(self, names: Iterable[str]) -> dict[str, Any]:
        assert self.texts is not None
        return {name: json.loads(self.texts[name]) for name in names}


def snapshot_text(version: int, texts: dict[str, str] | None) -> str:
    state = "null" if texts is None else _join(texts, texts)
    return f'{{"type":"snapshot","version":{version},"state":{state}}}'


def patch_text(change: Change, since: int, names: frozenset[str]) -> str:
    assert change.texts is not None
    fields = _join(change.texts, [name for name in change.texts if name in names])
    return f'{{"type":"patch","version":{change.version},"since":{since},"set":{fields}}}'


def _join(texts: dict[str, str], names: Iterable[str]) -> str:
    return "{" + ",".join(f"{proto.dumps_text(name)}:{texts[name]}" for name in names) + "}"


def _event_message(event: LoggedEvent) -> Callable[[], proto.EventMessage]:
    return lambda: proto.EventMessage(
        event.version, event.name, json.loads(event.data), event.index, event.count
    )


def _event_text(event: LoggedEvent) -> Callable[[], str]:
    return lambda: logged_event_text(event)


def logged_event_text(event: LoggedEvent) -> str:
    """The event frame of a logged event (its data's JSON text as stored)."""
    return (
        f'{{"type":"event","version":{event.version},"index":{event.index},'
        f'"count":{event.count},"name":{proto.dumps_text(event.name)},"data":{event.data}}}'
    )


class Subscriber:
    """One subscriber's ordered inbox of snapshots, patches and events.

    With a ``sink`` (a network connection's outbox) frames are handed over as
    text, synchronously, in order. Without one, messages queue for ``receive()``;
    a subscriber more than ``SUBSCRIBER_BACKLOG`` messages behind is cut off:
    once it has read what was queued, ``receive`` raises ``SubscriberLagged`` and
    the client resumes from what it has (newer state, and the events it missed
    from the log), so it skips states ahead but never repeats.
    """

    def __init__(
        self,
        frame: proto.SubscribeFrame,
        *,
        poll: Callable[[], None],
        poll_interval: float,
        detach: Callable[[Subscriber], None],
        sink: TextSink | None = None,
    ) -> None:
        self.frame = frame
        self._poll = poll
        self._poll_interval = poll_interval
        self._detach = detach
        self._sink = sink
        self._inbox: deque[proto.Message] = deque()
        self._replayed = 0  # replayed messages in the inbox, beyond the backlog's bound
        self._wakeup = anyio.Event()
        self._lagged = False
        self._closed = False
        self.last_version = frame.since if frame.since is not None else -1

    def _push(
        self,
        message: Callable[[], proto.Message],
        text: Callable[[], str],
        *,
        replay: bool = False,
    ) -> None:
        """Hand over one message: as text to a sink, or as a message to the inbox (each
        made only if needed, once for all subscribers)."""
        if self._closed or self._lagged:
            return
        if self._sink is not None:
            self._sink(text(), replay=replay)
            return
        if replay:
            self._replayed += 1
        elif len(self._inbox) >= proto.SUBSCRIBER_BACKLOG + self._replayed:
            # Cut off: what is queued is still read, then ``receive`` says so.
            self._lagged = True
            self._wakeup.set()
            return
        self._inbox.append(message())
        self._wakeup.set()

    def replay(self, gap: tuple[int, int] | None, events: Sequence[LoggedEvent]) -> None:
        """Logged events this subscriber missed, oldest first, after a gap frame if some
        are no longer logged."""
        if not self.frame.events:
            return
        if gap is not None:
            since, until = gap
            self._push(
                lambda: proto.GapMessage(since, until),
                lambda: proto.dumps_text(proto.gap_frame(since, until)),
                replay=True,
            )
        for event in events:
            self._push(_event_message(event), _event_text(event), replay=True)

    def _push_events(self, change: Change) -> None:
        for index, event in enumerate(change.events):
            # Both are called (at most one of them) before the next iteration.
            self._push(lambda: event, lambda: change.event_texts()[index])  # noqa: B023

    def offer(self, change: Change, changed_since: Callable[[int], set[str] | None]) -> None:
        """The object is at ``change``'s version (a new subscriber, or a catch-up): send
        its state if this subscriber has not seen it, as a patch when it can."""
        since = self.last_version
        if change.version <= since:
            return
        self.last_version = change.version
        if not self.frame.snapshots:
            return
        names = changed_since(since) if self.frame.patches and since >= 0 else None
        if names is not None and change.texts is not None:
            fields = frozenset(names)
            self._push(
                lambda: change.patch(since, fields), lambda: change.patch_text(since, fields)
            )
        else:
            self._push(change.snapshot, change.snapshot_text)

    def deliver(self, change: Change) -> None:
        """A new version: its state (whole, or the fields it set), then its events."""
        since = self.last_version
        if change.version <= since:
            return
        self.last_version = change.version
        if self.frame.snapshots:
            names = change.set
            if (
                self.frame.patches
                and since == change.version - 1
                and names is not None
                and change.texts is not None
            ):
                self._push(
                    lambda: change.patch(since, names), lambda: change.patch_text(since, names)
                )
            else:
                self._push(change.snapshot, change.snapshot_text)
        if self.frame.events and change.events:
            self._push_events(change)

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
        if self._replayed:
            self._replayed -= 1
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

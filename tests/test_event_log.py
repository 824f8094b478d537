"""Events that survive reconnects: each change's events are logged with it (the last
1,000 events, 1 MiB, 24 hours per object); a subscriber that resumes with ``since``
gets the events it missed, in order, before live ones, after a ``gap`` frame if the
log no longer holds them all; clients drop what they already had."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import anyio
import pytest

from cloudflare_durable import DurableClient, EventsLostError
from cloudflare_durable import _protocol as proto
from cloudflare_durable._transports.base import MessageStream

from .models import Ledger, Noted

pytestmark = pytest.mark.anyio


async def open_stream(
    client: DurableClient, object_id: str, since: int | None, *, snapshots: bool = True
) -> MessageStream:
    frame = proto.SubscribeFrame(since, snapshots=snapshots, events=True)
    return await client._transport.stream("test.Ledger", object_id, frame)


async def frames(stream: MessageStream, count: int) -> list[proto.Message]:
    with anyio.fail_after(10):
        return [await stream.receive() for _ in range(count)]


def event(version: int, text: str, index: int = 0, count: int = 1) -> proto.EventMessage:
    return proto.EventMessage(version, "test.Noted", {"text": text}, index, count)


def positions(messages: list[proto.Message]) -> list[tuple[int, int | None, int | None]]:
    return [(m.version, m.index, m.count) for m in messages if isinstance(m, proto.EventMessage)]


async def test_a_resuming_subscriber_gets_the_events_it_missed_in_order(
    py_client: DurableClient, oid: str
) -> None:
    ledger = py_client.get(Ledger, oid)
    await ledger.note("one")  # version 1
    await ledger.note_many(["two", "three", "four"])  # version 2: three events
    await ledger.add("five", 5)  # version 3: a state change and an event
    await ledger.note_many([])  # no event, nothing changed: no version
    stream = await open_stream(py_client, oid, since=1)
    try:
        got = await frames(stream, 5)
        assert isinstance(got[0], proto.Snapshot)
        assert got[0].version == 3
        assert got[1:] == [event(2, "two"), event(2, "three"), event(2, "four"), event(3, "five")]
        assert positions(got) == [(2, 0, 3), (2, 1, 3), (2, 2, 3), (3, 0, 1)]
        await ledger.note("six")  # live, after the replay
        assert await frames(stream, 2) == [proto.Snapshot(4, got[0].state), event(4, "six")]
    finally:
        await stream.aclose()
    events_only = await open_stream(py_client, oid, since=3, snapshots=False)
    try:
        assert await frames(events_only, 1) == [event(4, "six")]
    finally:
        await events_only.aclose()


async def test_a_new_subscriber_gets_no_old_event(py_client: DurableClient, oid: str) -> None:
    ledger = py_client.get(Ledger, oid)
    await ledger.note("old")
    stream = await open_stream(py_client, oid, since=None)
    try:
        await ledger.note("new")
        got = await frames(stream, 3)
        assert [type(m).__name__ for m in got] == ["Snapshot", "Snapshot", "EventMessage"]
        assert got[2] == event(2, "new")
    finally:
        await stream.aclose()


async def test_a_gap_says_which_versions_may_be_missing(py_client: DurableClient, oid: str) -> None:
    """1,100 events in eleven versions: the log keeps the newest ten versions' 1,000."""
    ledger = py_client.get(Ledger, oid)
    for batch in range(11):
        await ledger.note_many([f"{batch}-{n}" for n in range(100)])
    stream = await open_stream(py_client, oid, since=0, snapshots=False)
    try:
        got = await frames(stream, 2)
        assert got == [proto.GapMessage(0, 1), event(2, "1-0", 0, 100)]
    finally:
        await stream.aclose()
    held = await open_stream(py_client, oid, since=1, snapshots=False)  # nothing missing
    try:
        assert await frames(held, 1) == [event(2, "1-0", 0, 100)]
    finally:
        await held.aclose()


async def test_the_log_is_bounded_in_bytes(py_client: DurableClient, oid: str) -> None:
    ledger = py_client.get(Ledger, oid)
    big = "x" * 200_000
    for n in range(6):  # 1.2 MB of events: the oldest version goes
        await ledger.note(f"{n}{big}")
    stream = await open_stream(py_client, oid, since=0, snapshots=False)
    try:
        gap, first = await frames(stream, 2)
        assert gap == proto.GapMessage(0, 1)
        assert isinstance(first, proto.EventMessage)
        assert first.version == 2
    finally:
        await stream.aclose()


async def test_events_survive_a_subscriber_falling_behind(tmp_path: Path) -> None:
    """An in-process subscriber that does not read while 600 changes are made falls more
    than 1,000 messages behind and is cut off; it resumes, and the replay gives it every
    event exactly once, in order."""
    async with DurableClient(store=str(tmp_path / "s.sqlite3")) as client:
        ledger = client.get(Ledger, "behind")
        async with ledger.events(Noted) as events:
            for n in range(600):
                await ledger.note(f"{n}")
            with anyio.fail_after(10):
                got = [(await anext(events)).text for _ in range(600)]
            assert events.reconnects >= 1
            assert got == [str(n) for n in range(600)]
            await ledger.note("after")
            assert (await anext(events)).text == "after"


async def test_events_lost_is_raised_once_and_the_subscription_goes_on(tmp_path: Path) -> None:
    async with DurableClient(store=str(tmp_path / "s.sqlite3")) as client:
        ledger = client.get(Ledger, "lost")
        async with ledger.events(Noted) as events:
            # The subscriber falls behind (its first 500 changes queued, two messages each),
            # and the log holds the last 1,000 events.
            for n in range(2000):
                await ledger.note(f"{n}")
            got: list[int] = []
            lost: list[EventsLostError] = []
            with anyio.fail_after(10):
                while not got or got[-1] != 1999:
                    try:
                        got.append(int((await anext(events)).text))
                    except EventsLostError as error:
                        lost.append(error)
        assert len(lost) == 1
        assert not lost[0].retryable
        assert got == sorted(set(got))  # in order, no repeat
        missing = set(range(2000)) - set(got)
        assert missing
        # What was not received lies in the versions the gap named (version n + 1: event n).
        assert all(lost[0].since < n + 1 <= lost[0].until for n in missing)
        assert got[-1000:] == list(range(1000, 2000))


async def test_old_events_are_not_replayed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(proto, "EVENT_LOG_SECONDS", 0.3)
    async with DurableClient(store=str(tmp_path / "s.sqlite3")) as client:
        ledger = client.get(Ledger, "aged")
        await ledger.note("old")
        await anyio.sleep(0.4)
        await ledger.note("new")
        stream = await open_stream(client, "aged", since=0, snapshots=False)
        try:
            assert await frames(stream, 2) == [proto.GapMessage(0, 1), event(2, "new")]
        finally:
            await stream.aclose()
        await ledger.note("newer")  # drops the old one from the store
        assert logged(tmp_path) == ([2, 3], 1)
        await anyio.sleep(0.4)
        client._transport.host.store.sweep()  # type: ignore[attr-defined]
        assert logged(tmp_path) == ([], 3)


def logged(folder: Path) -> tuple[list[int], int]:
    """The versions of the logged events, and the greatest version whose events are gone."""
    with sqlite3.connect(folder / "s.sqlite3") as db:
        versions = [row[0] for row in db.execute("SELECT version FROM durable_events")]
        dropped = db.execute("SELECT events_dropped FROM durable_objects").fetchone()[0]
    return versions, dropped


async def test_another_process_s_events_reach_a_subscriber(tmp_path: Path) -> None:
    """Two hosts on one store file: a subscriber of one sees the other's events (it polls
    the file, and replays the log)."""
    store = str(tmp_path / "shared.sqlite3")
    async with (
        DurableClient(store=store) as mine,
        DurableClient(store=store) as theirs,
        mine.get(Ledger, "shared").events(Noted) as events,
    ):
        for n in range(3):
            await theirs.get(Ledger, "shared").note(f"theirs {n}")
        with anyio.fail_after(10):
            assert [(await anext(events)).text for _ in range(3)] == [
                "theirs 0",
                "theirs 1",
                "theirs 2",
            ]


async def test_an_upgraded_store_says_older_events_are_gone(tmp_path: Path) -> None:
    """A store of format 2 logged no event: resuming from a version it wrote is a gap."""
    store = tmp_path / "old.sqlite3"
    with sqlite3.connect(store) as db:
        db.executescript(
            """
            CREATE TABLE durable_objects (model TEXT NOT NULL, object_id TEXT NOT NULL,
                version INTEGER NOT NULL, present INTEGER NOT NULL,
                schema_version INTEGER NOT NULL DEFAULT 1,
                PRIMARY KEY (model, object_id)) WITHOUT ROWID;
            CREATE TABLE durable_fields (model TEXT NOT NULL, object_id TEXT NOT NULL,
                field TEXT NOT NULL, value TEXT NOT NULL,
                PRIMARY KEY (model, object_id, field)) WITHOUT ROWID;
            CREATE TABLE durable_requests (model TEXT NOT NULL, object_id TEXT NOT NULL,
                request_id TEXT NOT NULL, status INTEGER NOT NULL, reply TEXT NOT NULL,
                created REAL NOT NULL, digest TEXT,
                PRIMARY KEY (model, object_id, request_id)) WITHOUT ROWID;
            INSERT INTO durable_objects VALUES ('test.Ledger', 'up', 5, 1, 1);
            INSERT INTO durable_fields VALUES ('test.Ledger', 'up', 'total', '7');
            PRAGMA user_version = 2;
            """
        )
    async with DurableClient(store=str(store)) as client:
        await client.get(Ledger, "up").note("new")
        stream = await open_stream(client, "up", since=3, snapshots=False)
        try:
            assert await frames(stream, 2) == [proto.GapMessage(3, 5), event(6, "new")]
        finally:
            await stream.aclose()
        assert (await client.get(Ledger, "up").load()).total == 7

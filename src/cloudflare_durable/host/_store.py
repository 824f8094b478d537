"""SQLite persistence for the host: object state, versions, idempotency records, each
object's log of recent events, and its schedules.

An object's state is stored one row per field (its JSON text), so a change
writes only the fields it changed: a small change to a large object costs what
the change costs, not what the object holds. A change that emits no event and
makes or runs no schedule touches neither of their tables.

One connection per host, used from the event loop's thread. Each batch of
changes to one object is one ``BEGIN IMMEDIATE`` transaction that first checks
the stored version, so two processes sharing a file never lose or double an
update: the loser sees a newer version, rolls back, and the host re-runs the
batch on the fresh state.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeAlias

from .. import _exceptions as exc
from .. import _protocol as proto

SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS durable_objects (
    model TEXT NOT NULL,
    object_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    present INTEGER NOT NULL,
    schema_version INTEGER NOT NULL DEFAULT 1,
    events_dropped INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (model, object_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS durable_fields (
    model TEXT NOT NULL,
    object_id TEXT NOT NULL,
    field TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (model, object_id, field)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS durable_requests (
    model TEXT NOT NULL,
    object_id TEXT NOT NULL,
    request_id TEXT NOT NULL,
    status INTEGER NOT NULL,
    reply TEXT NOT NULL,
    created REAL NOT NULL,
    digest TEXT,
    PRIMARY KEY (model, object_id, request_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS durable_events (
    model TEXT NOT NULL,
    object_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    count INTEGER NOT NULL,
    name TEXT NOT NULL,
    data TEXT NOT NULL,
    size INTEGER NOT NULL,
    created REAL NOT NULL,
    PRIMARY KEY (model, object_id, version, idx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS durable_schedules (
    model TEXT NOT NULL,
    object_id TEXT NOT NULL,
    id TEXT NOT NULL,
    due INTEGER NOT NULL,
    at INTEGER NOT NULL,
    method TEXT NOT NULL,
    args TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL DEFAULT 'pending',
    error TEXT,
    PRIMARY KEY (model, object_id, id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS durable_schedules_due ON durable_schedules (due)
    WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS durable_events_created ON durable_events (created);
"""
FORMAT: Final = 3
"""The store's format (``PRAGMA user_version``). 0: before request ids were bound to
their operation (no ``digest`` column); 1: each object's state in one JSON text;
2: before event logs and schedules (``events_dropped``, ``durable_events``,
``durable_schedules``)."""
SWEEP_INTERVAL: Final = 60.0
PRUNE_SLACK: Final = 1000
"""How far past ``max_requests`` an object's records may grow before they are pruned."""
MAX_TRACKED: Final = 100_000
"""Objects whose record counts are tracked at once; past that, counts are re-read."""

BUSY_TIMEOUT_MS: Final = 10_000

logger = logging.getLogger("cloudflare_durable.host")


@dataclass(frozen=True, slots=True)
class Stored:
    """An object as stored: its version, its fields' JSON texts (``None``: no state), and
    the schema version of the code that wrote them."""

    version: int
    fields: dict[str, str] | None
    schema_version: int = 1


@dataclass(frozen=True, slots=True)
class LoggedEvent:
    """One event of a change, as its object's event log keeps it (``data``: JSON text;
    ``size``: the bytes it counts for in the log's bound)."""

    version: int
    index: int
    count: int
    name: str
    data: str
    size: int


@dataclass(frozen=True, slots=True)
class ScheduleRow:
    """A schedule as stored: times in milliseconds since the epoch (``at``: the time it
    was made for; ``due``: its next attempt), ``args`` and ``error`` as JSON text."""

    id: str
    due: int
    at: int
    method: str
    args: str
    attempts: int = 0
    status: str = "pending"
    error: str | None = None


@dataclass(frozen=True, slots=True)
class AddSchedule:
    row: ScheduleRow


@dataclass(frozen=True, slots=True)
class RemoveSchedule:
    """A schedule cancelled, or run."""

    id: str


@dataclass(frozen=True, slots=True)
class ClearSchedules:
    """Every schedule of the object (its state was deleted)."""


@dataclass(frozen=True, slots=True)
class RetrySchedule:
    """A schedule whose run failed: tried again at ``due``, or kept as ``failed``."""

    id: str
    attempts: int
    due: int
    status: str
    error: str


ScheduleOp: TypeAlias = AddSchedule | RemoveSchedule | ClearSchedules | RetrySchedule


@dataclass(frozen=True, slots=True)
class Remembered:
    """What a repeat of a request id needs: the operation's digest (to refuse the same
    id for another operation), the reply's status, and its body without the state
    (``version``, and ``result`` or ``deleted``)."""

    digest: str | None
    status: int
    reply: dict[str, Any]
    size: int = 0
    """About how many bytes the record takes in memory."""


@dataclass(frozen=True, slots=True)
class Write:
    """What one batch changed: the new version; whether the object has state after it;
    the fields to store (JSON texts), after removing every field first if ``clear``;
    the replies of the request ids it answered; the events its changes emitted, and the
    versions whose logged events to drop (up to ``drop_events_through``); what it did to
    the object's schedules. ``changed`` is False when only schedules' bookkeeping is
    stored (a run that changed nothing, a failed one): the version stays."""

    version: int
    present: bool
    fields: dict[str, str]
    clear: bool
    replies: list[tuple[str, Remembered]]
    schema_version: int = 1
    events: Sequence[LoggedEvent] = ()
    drop_events_through: int = 0
    schedules: Sequence[ScheduleOp] = ()
    changed: bool = True
    logged_at: float = 0.0
    """When the events were logged (seconds since the epoch; 0: now)."""


class VersionMoved(Exception):
    """Another writer changed the object since it was read; re-run on fresh state."""


class Store:
    """Objects and idempotency records in one SQLite database."""

    def __init__(
        self,
        path: str,
        *,
        request_ttl: float = proto.IDEMPOTENCY_TTL_SECONDS,
        max_requests: int = proto.IDEMPOTENCY_MAX_PER_OBJECT,
    ) -> None:
        self.path = path
        self.request_ttl = request_ttl
        self.max_requests = max_requests
        try:
            if path != ":memory:":
                _create_private(path)
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            if path != ":memory:":
                self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = FULL")
            self._upgrade()
        except (OSError, sqlite3.Error) as error:
            raise exc.UsageError(f"cannot open the store {path!r}: {error}") from error
        self._next_sweep = time.monotonic() + SWEEP_INTERVAL
        # Per object: an upper bound of the request ids stored (counted at the first
        # write of this process, then kept up to date), so pruning needs no query.
        self._held: dict[tuple[str, str], int] = {}
        self._data_version = self._read_data_version()

    def close(self) -> None:
        self._db.close()

    def _upgrade(self) -> None:
        """Create the tables, or bring a store of an older format up to this one."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            found = int(db.execute("PRAGMA user_version").fetchone()[0])
            if found > FORMAT:
                raise exc.UsageError(
                    f"the store was written by a newer version of cloudflare-durable "
                    f"(format {found}, this one reads up to {FORMAT})"
                )
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
            if found == 0 and "durable_requests" in tables:
                db.execute("ALTER TABLE durable_requests ADD COLUMN digest TEXT")
            if found < 2 and "durable_objects" in tables:
                db.execute("ALTER TABLE durable_objects RENAME TO durable_objects_1")
            if found == 2:
                db.execute(
                    "ALTER TABLE durable_objects "
                    "ADD COLUMN events_dropped INTEGER NOT NULL DEFAULT 0"
                )
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)
            if found < 2 and "durable_objects" in tables:
                self._split_states()
            if found < FORMAT and "durable_objects" in tables:
                # No event of the versions written so far was kept: a subscriber that
                # resumes from one of them is told so.
                db.execute("UPDATE durable_objects SET events_dropped = version")
            db.execute(f"PRAGMA user_version = {FORMAT}")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def _split_states(self) -> None:
        """Format 1 to 2: each object's state, one JSON text, into one row per field."""
        db = self._db
        rows = db.execute("SELECT model, object_id, version, state FROM durable_objects_1")
        for model, object_id, version, state in rows.fetchall():
            db.execute(
                "INSERT INTO durable_objects (model, object_id, version, present) "
                "VALUES (?, ?, ?, ?)",
                (model, object_id, version, state is not None),
            )
            fields = json.loads(state) if state is not None else {}
            db.executemany(
                "INSERT INTO durable_fields (model, object_id, field, value) VALUES (?, ?, ?, ?)",
                [
                    (model, object_id, name, proto.dumps_text(value))
                    for name, value in fields.items()
                ],
            )
        db.execute("DROP TABLE durable_objects_1")

    def _read_data_version(self) -> int:
        return int(self._db.execute("PRAGMA data_version").fetchone()[0])

    def changed_elsewhere(self) -> bool:
        """Whether another connection (another process) committed since the last check.

        ``PRAGMA data_version`` costs no disk access; it moves only on other
        connections' commits, so a single process never pays for re-reading.
        """
        if self.path == ":memory:":
            return False
        version = self._read_data_version()
        changed, self._data_version = version != self._data_version, version
        return changed

    def read(self, model: str, object_id: str) -> Stored:
        row = self._db.execute(
            "SELECT version, present, schema_version FROM durable_objects "
            "WHERE model = ? AND object_id = ?",
            (model, object_id),
        ).fetchone()
        if row is None:
            return Stored(0, None)
        if not row[1]:
            return Stored(row[0], None, row[2])
        rows = self._db.execute(
            "SELECT field, value FROM durable_fields WHERE model = ? AND object_id = ?",
            (model, object_id),
        )
        return Stored(row[0], dict(rows.fetchall()), row[2])

    def version(self, model: str, object_id: str) -> int:
        row = self._db.execute(
            "SELECT version FROM durable_objects WHERE model = ? AND object_id = ?",
            (model, object_id),
        ).fetchone()
        return 0 if row is None else int(row[0])

    def request_ids(self, model: str, object_id: str) -> set[str]:
        """Every request id stored for one object (at most ``max_requests`` plus slack)."""
        rows = self._db.execute(
            "SELECT request_id FROM durable_requests WHERE model = ? AND object_id = ?",
            (model, object_id),
        )
        return {row[0] for row in rows}

    def remembered(self, model: str, object_id: str, request_id: str) -> Remembered | None:
        row = self._db.execute(
            "SELECT digest, status, reply, created FROM durable_requests "
            "WHERE model = ? AND object_id = ? AND request_id = ?",
            (model, object_id, request_id),
        ).fetchone()
        if row is None or row[3] < time.time() - self.request_ttl:
            return None
        return Remembered(row[0], row[1], json.loads(row[2]))

    def commit(self, model: str, object_id: str, expected: int, write: Write) -> None:
        """Store ``write`` if the object is still at version ``expected``."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            if self.version(model, object_id) != expected:
                raise VersionMoved
            if write.changed:
                self._write(model, object_id, write)
            if write.events:
                self._log(model, object_id, write.events, write.logged_at or time.time())
            if write.drop_events_through:
                self._drop_events(model, object_id, write.drop_events_through)
            if write.schedules:
                self._schedule(model, object_id, write.schedules)
            self._remember(model, object_id, write.replies)
            db.execute("COMMIT")
        except sqlite3.IntegrityError:
            db.execute("ROLLBACK")
            self._held.pop((model, object_id), None)
            raise VersionMoved from None  # another process stored one of these request ids
        except BaseException:
            db.execute("ROLLBACK")
            self._held.pop((model, object_id), None)
            raise
        if time.monotonic() >= self._next_sweep:
            try:
                self.sweep()
            except sqlite3.Error:  # the change is stored: a sweep can wait for the next one
                logger.warning("sweeping old request ids and events failed", exc_info=True)

    def create_many(
        self, model: str, states: dict[str, dict[str, str]], schema_version: int = 1
    ) -> dict[str, int]:
        """Store every state of ``states`` (fields' texts by object id) in one transaction,
        each object at its next version; all or nothing. Returns the versions, or raises
        ``AlreadyExistsError`` naming the objects that already have state."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            found = self._versions(model, list(states))
            taken = sorted(object_id for object_id, (_, present) in found.items() if present)
            if taken:
                shown = ", ".join(map(repr, taken[:5])) + (" ..." if len(taken) > 5 else "")
                raise exc.AlreadyExistsError(
                    f"{len(taken)} of these {model} objects already have state: {shown}; "
                    "nothing was created",
                    details={"object_ids": taken[:100]},
                )
            versions = {}
            for object_id, texts in states.items():
                version = found.get(object_id, (0, False))[0] + 1
                write = Write(version, True, texts, True, [], schema_version)
                self._write(model, object_id, write)
                versions[object_id] = version
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return versions

    def _versions(self, model: str, object_ids: list[str]) -> dict[str, tuple[int, bool]]:
        found: dict[str, tuple[int, bool]] = {}
        for start in range(0, len(object_ids), 500):
            chunk = object_ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                "SELECT object_id, version, present FROM durable_objects "
                f"WHERE model = ? AND object_id IN ({marks})",
                (model, *chunk),
            )
            found.update((row[0], (row[1], bool(row[2]))) for row in rows)
        return found

    def _write(self, model: str, object_id: str, write: Write) -> None:
        db = self._db
        db.execute(
            "INSERT INTO durable_objects (model, object_id, version, present, schema_version) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (model, object_id) "
            "DO UPDATE SET version = excluded.version, present = excluded.present, "
            "schema_version = excluded.schema_version",
            (model, object_id, write.version, write.present, write.schema_version),
        )
        if write.clear:
            db.execute(
                "DELETE FROM durable_fields WHERE model = ? AND object_id = ?",
                (model, object_id),
            )
        if write.fields:
            db.executemany(
                "INSERT INTO durable_fields (model, object_id, field, value) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (model, object_id, field) "
                "DO UPDATE SET value = excluded.value",
                [(model, object_id, name, text) for name, text in write.fields.items()],
            )

    # -- event logs -------------------------------------------------------------

    def _log(self, model: str, object_id: str, events: Sequence[LoggedEvent], now: float) -> None:
        self._db.executemany(
            "INSERT INTO durable_events "
            "(model, object_id, version, idx, count, name, data, size, created) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (model, object_id, e.version, e.index, e.count, e.name, e.data, e.size, now)
                for e in events
            ],
        )

    def _drop_events(self, model: str, object_id: str, through: int) -> None:
        """Drop the logged events of versions up to ``through``, and remember that they are
        gone (a subscriber resuming from before them is told so)."""
        self._db.execute(
            "DELETE FROM durable_events WHERE model = ? AND object_id = ? AND version <= ?",
            (model, object_id, through),
        )
        self._db.execute(
            "UPDATE durable_objects SET events_dropped = max(events_dropped, ?) "
            "WHERE model = ? AND object_id = ?",
            (through, model, object_id),
        )

    def log_summary(self, model: str, object_id: str) -> list[tuple[int, int, int, float]]:
        """The object's event log by version, oldest first: (version, events, bytes, time)."""
        rows = self._db.execute(
            "SELECT version, COUNT(*), SUM(size), MIN(created) FROM durable_events "
            "WHERE model = ? AND object_id = ? GROUP BY version ORDER BY version",
            (model, object_id),
        )
        return [(row[0], row[1], row[2], row[3]) for row in rows]

    def logged_events(
        self, model: str, object_id: str, after: int, until: int, max_age: float
    ) -> tuple[list[LoggedEvent], int]:
        """The logged events of versions ``after + 1`` to ``until`` younger than ``max_age``
        seconds, in order; and the greatest version whose events are gone (dropped, or
        too old), 0 if none."""
        db = self._db
        row = db.execute(
            "SELECT events_dropped FROM durable_objects WHERE model = ? AND object_id = ?",
            (model, object_id),
        ).fetchone()
        dropped = 0 if row is None else int(row[0])
        rows = db.execute(
            "SELECT version, idx, count, name, data, size, created FROM durable_events "
            "WHERE model = ? AND object_id = ? AND version > ? AND version <= ? "
            "ORDER BY version, idx",
            (model, object_id, after, until),
        ).fetchall()
        oldest = time.time() - max_age
        events = []
        for version, index, count, name, data, size, created in rows:
            if created < oldest:
                dropped = max(dropped, version)
            else:
                events.append(LoggedEvent(version, index, count, name, data, size))
        return [e for e in events if e.version > dropped], dropped

    # -- schedules ------------------------------------------------------------------

    def _schedule(self, model: str, object_id: str, ops: Sequence[ScheduleOp]) -> None:
        db = self._db
        for op in ops:
            if isinstance(op, AddSchedule):
                row = op.row
                db.execute(
                    "INSERT INTO durable_schedules "
                    "(model, object_id, id, due, at, method, args, attempts, status, error) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (model, object_id, *dataclasses.astuple(row)),
                )
            elif isinstance(op, RemoveSchedule):
                db.execute(
                    "DELETE FROM durable_schedules WHERE model = ? AND object_id = ? AND id = ?",
                    (model, object_id, op.id),
                )
            elif isinstance(op, ClearSchedules):
                db.execute(
                    "DELETE FROM durable_schedules WHERE model = ? AND object_id = ?",
                    (model, object_id),
                )
            else:
                db.execute(
                    "UPDATE durable_schedules SET attempts = ?, due = ?, status = ?, error = ? "
                    "WHERE model = ? AND object_id = ? AND id = ?",
                    (op.attempts, op.due, op.status, op.error, model, object_id, op.id),
                )

    def schedule(self, model: str, object_id: str, schedule_id: str) -> ScheduleRow | None:
        row = self._db.execute(
            "SELECT id, due, at, method, args, attempts, status, error FROM durable_schedules "
            "WHERE model = ? AND object_id = ? AND id = ?",
            (model, object_id, schedule_id),
        ).fetchone()
        return None if row is None else ScheduleRow(*row)

    def schedules(self, model: str, object_id: str) -> list[ScheduleRow]:
        """The object's schedules, by time then id."""
        rows = self._db.execute(
            "SELECT id, due, at, method, args, attempts, status, error FROM durable_schedules "
            "WHERE model = ? AND object_id = ? ORDER BY at, id",
            (model, object_id),
        )
        return [ScheduleRow(*row) for row in rows]

    def due_schedules(
        self, now: int, limit: int, models: Sequence[str]
    ) -> list[tuple[str, str, ScheduleRow]]:
        """Pending schedules of ``models`` due at ``now`` (milliseconds), earliest first."""
        if not models:
            return []
        rows = self._db.execute(
            "SELECT model, object_id, id, due, at, method, args, attempts, status, error "
            "FROM durable_schedules WHERE status = 'pending' AND due <= ? "
            f"AND model IN ({','.join('?' * len(models))}) ORDER BY due LIMIT ?",
            (now, *models, limit),
        )
        return [(row[0], row[1], ScheduleRow(*row[2:])) for row in rows]

    def next_due(self, models: Sequence[str] | None = None, after: int = -1) -> int | None:
        """When the earliest pending schedule (of ``models``; after ``after``) is due, in
        milliseconds, if there is one."""
        sql = "SELECT MIN(due) FROM durable_schedules WHERE status = 'pending' AND due > ?"
        params: list[Any] = [after]
        if models is not None:
            if not models:
                return None
            sql += f" AND model IN ({','.join('?' * len(models))})"
            params.extend(models)
        row = self._db.execute(sql, params).fetchone()
        return None if row[0] is None else int(row[0])

    # -- listing and migrating --------------------------------------------------------

    def list_ids(self, model: str, prefix: str, after: str | None, limit: int) -> list[str]:
        """Ids of objects of ``model`` with state, in the order of their UTF-8 bytes."""
        clauses, params = ["model = ?", "present = 1"], [model]
        if after is not None:
            clauses.append("object_id > ?")
            params.append(after)
        if prefix:
            clauses.append("object_id >= ?")
            params.append(prefix)
            end = prefix_end(prefix)
            if end is not None:
                clauses.append("object_id < ?")
                params.append(end)
        rows = self._db.execute(
            f"SELECT object_id FROM durable_objects WHERE {' AND '.join(clauses)} "
            "ORDER BY object_id LIMIT ?",
            (*params, limit),
        )
        return [row[0] for row in rows if row[0].startswith(prefix)]

    def older_states(
        self, model: str, schema_version: int, after: str | None, limit: int
    ) -> list[str]:
        """Ids of objects of ``model`` whose state an older schema version wrote."""
        rows = self._db.execute(
            "SELECT object_id FROM durable_objects WHERE model = ? AND present = 1 "
            "AND schema_version < ? AND object_id > ? ORDER BY object_id LIMIT ?",
            (model, schema_version, after or "", limit),
        )
        return [row[0] for row in rows]

    def count_older_states(self, model: str, schema_version: int) -> int:
        row = self._db.execute(
            "SELECT COUNT(*) FROM durable_objects WHERE model = ? AND present = 1 "
            "AND schema_version < ?",
            (model, schema_version),
        ).fetchone()
        return int(row[0])

    def rewrite(
        self, model: str, object_id: str, version: int, texts: dict[str, str], schema_version: int
    ) -> None:
        """Store every field of a state anew under ``schema_version``, keeping its version,
        if the object is still at ``version`` (else ``VersionMoved``)."""
        write = Write(version, True, texts, True, [], schema_version)
        self.commit(model, object_id, version, write)

    def _remember(
        self, model: str, object_id: str, replies: Iterable[tuple[str, Remembered]]
    ) -> None:
        now = time.time()
        rows = [
            (
                model,
                object_id,
                request_id,
                item.status,
                proto.dumps_text(item.reply),
                now,
                item.digest,
            )
            for request_id, item in replies
        ]
        if not rows:
            return
        key = (model, object_id)
        held = self._held.get(key)
        if held is None:
            if len(self._held) >= MAX_TRACKED:
                self._held.clear()
            held = self._count_requests(model, object_id)
        held += len(rows)
        if held > self.max_requests + PRUNE_SLACK:
            self._prune(model, object_id)
            held = self.max_requests + len(rows)
        self._held[key] = held
        if rows:
            self._db.executemany(
                "INSERT INTO durable_requests "
                "(model, object_id, request_id, status, reply, created, digest) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (model, object_id, request_id) DO UPDATE SET "
                "status = excluded.status, reply = excluded.reply, created = excluded.created, "
                "digest = excluded.digest "
                f"WHERE durable_requests.created < {now - self.request_ttl!r}",
                rows,
            )

    def _count_requests(self, model: str, object_id: str) -> int:
        row = self._db.execute(
            "SELECT COUNT(*) FROM durable_requests WHERE model = ? AND object_id = ?",
            (model, object_id),
        ).fetchone()
        return int(row[0])

    def _prune(self, model: str, object_id: str) -> None:
        """Keep only the newest ``max_requests`` request ids of one object (in a transaction)."""
        self._db.execute(
            "DELETE FROM durable_requests WHERE model = ? AND object_id = ? AND request_id NOT IN ("
            " SELECT request_id FROM durable_requests WHERE model = ? AND object_id = ?"
            " ORDER BY created DESC LIMIT ?)",
            (model, object_id, model, object_id, self.max_requests),
        )

    def sweep(self) -> None:
        """Forget request ids older than the time to live, and events older than the event
        log keeps them (at most once a minute)."""
        self._next_sweep = time.monotonic() + SWEEP_INTERVAL
        db = self._db
        db.execute(
            "DELETE FROM durable_requests WHERE created < ?", (time.time() - self.request_ttl,)
        )
        oldest = time.time() - proto.EVENT_LOG_SECONDS
        db.execute("BEGIN IMMEDIATE")
        try:
            aged = db.execute(
                "SELECT model, object_id, MAX(version) FROM durable_events WHERE created < ? "
                "GROUP BY model, object_id",
                (oldest,),
            ).fetchall()
            if aged:
                db.executemany(
                    "UPDATE durable_objects SET events_dropped = max(events_dropped, ?) "
                    "WHERE model = ? AND object_id = ?",
                    [(version, model, object_id) for model, object_id, version in aged],
                )
                db.execute("DELETE FROM durable_events WHERE created < ?", (oldest,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def count_requests(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM durable_requests").fetchone()[0])


def prefix_end(prefix: str) -> str | None:
    """The least string greater than every string starting with ``prefix`` (in code point
    order, which is UTF-8 byte order), or ``None`` if there is none."""
    chars = list(prefix)
    while chars:
        last = ord(chars.pop())
        if last == 0x10FFFF:
            continue
        following = last + 1 if last + 1 != 0xD800 else 0xE000
        return "".join(chars) + chr(following)
    return None


def _create_private(path: str) -> None:
    """Create the store's file readable and writable by its owner only (mode 0600)."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))

"""The objects a host holds in memory: one cell per object, cached and evicted.

A cell keeps what the host knows of one object: its model, version and stored
fields (each field's JSON text, decoded on demand), the recent history of which
fields each version changed (to answer with patches), the live instance method
bodies run against, its queue of operations, its subscribers, and the replies
of recent request ids. Idle cells are dropped once too many are held, or they
hold too many bytes (their state is in the store); a cell is re-read when
another process sharing the store may have changed its object.
"""

from __future__ import annotations

import itertools
import json
from collections import OrderedDict, deque
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Final

import pydantic

from .. import _exceptions as exc
from .. import _protocol as proto
from .._handles import validate_state
from .._models import DurableModel, migrate_state, schema_version_of
from .._pydantic import dump_state, translate, validate_wire_state
from ._store import LoggedEvent, Remembered, ScheduleRow, Store, Stored

if TYPE_CHECKING:
    from ._fanout import Subscriber
    from ._queue import Pending

__all__ = [
    "CACHED_BYTES",
    "CACHED_OBJECTS",
    "HISTORY",
    "RECENT_REPLIES",
    "Cell",
    "Cells",
    "EventLog",
]

CACHED_OBJECTS: Final = 4096
"""Idle objects (no queued operation, no subscriber) kept in memory; older ones are dropped."""
CACHED_BYTES: Final = 64 * 1_048_576
"""Bytes of state idle objects may hold in memory together."""
RECENT_REPLIES: Final = 1000
"""Replies of recent request ids kept in memory per object (all are in the store)..."""
RECENT_REPLY_BYTES: Final = 1_048_576
"""... and the bytes they may take together."""
HISTORY: Final = 64
"""Versions whose changed fields a cell remembers, to send patches instead of states."""

Touched = frozenset[str] | None
"""The fields a version changed; ``None``: the state was replaced whole (create, delete)."""


class Cell:
    __slots__ = (
        "bytes",
        "draining",
        "epoch",
        "held",
        "history",
        "known_ids",
        "live",
        "log",
        "migrated",
        "model",
        "name",
        "object_id",
        "queue",
        "recent",
        "recent_bytes",
        "refused",
        "subscribers",
        "texts",
        "values",
        "version",
    )

    def __init__(
        self, model: type[DurableModel], object_id: str, version: int, texts: dict[str, str] | None
    ) -> None:
        self.model = model
        self.name = model.__durable_name__
        self.object_id = object_id
        self.version = version
        self.texts: dict[str, str] | None = None
        self.migrated = False
        """The state was migrated from an older schema version when it was read: the next
        change stores every field (and the schema version)."""
        self.refused: exc.DurableError | None = None
        """Why the stored state cannot be used (a newer schema version wrote it)."""
        self.log: EventLog | None = None  # what the store's event log holds, once read
        self.values: dict[str, Any] = {}
        self.bytes = 0
        self.history: deque[tuple[int, Touched]] = deque(maxlen=HISTORY)
        self.live: DurableModel | None = None
        self.queue: deque[Pending] = deque()
        self.draining = False
        self.subscribers: set[Subscriber] = set()
        self.recent: OrderedDict[str, Remembered] = OrderedDict()
        self.recent_bytes = 0
        # Request ids the store holds for this object, loaded at the first lookup,
        # so that the common case, a new id, costs no query.
        self.known_ids: set[str] | None = None
        self.held: int | None = None  # request ids stored for this object, once counted
        self.epoch = 0
        self.set_texts(texts)

    @property
    def idle(self) -> bool:
        return not (self.draining or self.queue or self.subscribers)

    @property
    def present(self) -> bool:
        return self.texts is not None

    def set_texts(self, texts: dict[str, str] | None) -> None:
        """Take ``texts`` as the stored fields, in the model's field order."""
        self.values = {}
        if texts is None:
            self.texts, self.bytes = None, 0
            return
        order = self.model.model_fields
        ordered = {name: texts[name] for name in order if name in texts}
        ordered.update((name, text) for name, text in texts.items() if name not in order)
        self.texts = ordered
        self.bytes = state_bytes(ordered)

    def reset(self, version: int, texts: dict[str, str] | None) -> None:
        """Forget everything derived from the stored state (it changed, or a batch failed)."""
        self.version = version
        self.set_texts(texts)
        self.history.clear()
        self.live = None
        self.recent.clear()
        self.recent_bytes = 0
        self.known_ids = None
        self.held = None
        self.log = None
        self.migrated = False
        self.refused = None

    def take(self, stored: Stored) -> None:
        """Take the state as stored, migrated to the model's schema version if older."""
        texts, self.migrated, self.refused = upgraded(self.model, self.object_id, stored)
        self.set_texts(texts)

    # -- reading the state ------------------------------------------------------

    def value(self, name: str) -> Any:
        """One stored field's value as JSON (decoded once, then kept)."""
        try:
            return self.values[name]
        except KeyError:
            assert self.texts is not None
            value = self.values[name] = json.loads(self.texts[name])
            return value

    def state_field(self, name: str) -> Any:
        """One stored field as JSON, freshly decoded: the caller may keep it and change it."""
        assert self.texts is not None
        return json.loads(self.texts[name])

    def state_text(self) -> str | None:
        return None if self.texts is None else join_state(self.texts)

    def defaults(self) -> dict[str, str]:
        """The texts of the model's defaults (for an object with no state: its defaults)."""
        return {name: proto.dumps_text(value) for name, value in self.default_values().items()}

    def default_values(self) -> dict[str, Any]:
        return dump_state(validate_state(self.model, None))

    # -- history ----------------------------------------------------------------

    def changed_since(self, version: int) -> set[str] | None:
        """The fields changed after ``version`` up to the current one; ``None`` if the
        history does not reach back that far, or the state was replaced meanwhile."""
        if version > self.version:
            return None
        changed: set[str] = set()
        reached = version == self.version
        for at, touched in reversed(self.history):
            if at <= version:
                reached = True
                break
            if touched is None:
                return None
            changed |= touched
            if at == version + 1:
                reached = True
                break
        return changed if reached else None

    # -- replies of request ids ---------------------------------------------------

    def remember(self, replies: list[tuple[str, Remembered]], max_requests: int) -> None:
        recent, known = self.recent, self.known_ids
        for request_id, remembered in replies:
            recent[request_id] = remembered
            self.recent_bytes += remembered.size
            if known is not None:
                known.add(request_id)
        while len(recent) > RECENT_REPLIES or self.recent_bytes > RECENT_REPLY_BYTES:
            _, forgotten = recent.popitem(last=False)
            self.recent_bytes -= forgotten.size
        if known is not None and len(known) > max_requests + 2000:
            self.known_ids = None  # the store pruned; reload at the next lookup


class EventLog:
    """What an object's event log in the store holds, by version, oldest first (events
    and bytes of each version, and when it was stored): enough to keep the log within
    its bounds without asking the store."""

    __slots__ = ("bytes", "events", "versions")

    def __init__(self, rows: Iterable[tuple[int, int, int, float]]) -> None:
        self.versions = deque(rows)
        self.events = sum(row[1] for row in self.versions)
        self.bytes = sum(row[2] for row in self.versions)

    @staticmethod
    def entries(added: list[LoggedEvent], now: float) -> list[tuple[int, int, int, float]]:
        by_version: dict[int, list[int]] = {}
        for event in added:
            found = by_version.setdefault(event.version, [0, 0])
            found[0] += 1
            found[1] += event.size
        return [(version, n, size, now) for version, (n, size) in by_version.items()]

    def to_drop(self, added: list[tuple[int, int, int, float]], now: float) -> tuple[int, int]:
        """How many of the oldest versions to drop once ``added`` is logged so that the
        log keeps within its bounds (events, bytes, age), and the last one dropped."""
        events = self.events + sum(entry[1] for entry in added)
        size = self.bytes + sum(entry[2] for entry in added)
        oldest = now - proto.EVENT_LOG_SECONDS
        dropped, through = 0, 0
        for version, count, weight, created in itertools.chain(self.versions, added):
            if (
                events <= proto.EVENT_LOG_EVENTS
                and size <= proto.EVENT_LOG_BYTES
                and created >= oldest
            ):
                break
            events, size = events - count, size - weight
            dropped, through = dropped + 1, version
        return dropped, through

    def update(self, added: list[tuple[int, int, int, float]], dropped: int) -> None:
        """The store now holds ``added`` and dropped the ``dropped`` oldest versions."""
        self.versions.extend(added)
        self.events += sum(entry[1] for entry in added)
        self.bytes += sum(entry[2] for entry in added)
        for _ in range(dropped):
            _, count, weight, _ = self.versions.popleft()
            self.events -= count
            self.bytes -= weight


def upgraded(
    model: type[DurableModel], object_id: str, stored: Stored
) -> tuple[dict[str, str] | None, bool, exc.DurableError | None]:
    """A stored state's fields under the model's schema version: migrated if an older
    version wrote them (then True), refused (an error) if a newer one did."""
    texts = stored.fields
    known = schema_version_of(model)
    if texts is None or stored.schema_version == known:
        return texts, False, None
    name = model.__durable_name__
    if stored.schema_version > known:
        message = (
            f"{name} {object_id!r} is stored by schema version {stored.schema_version}, "
            f"this code knows up to {known}"
        )
        error = {"loc": [], "msg": message, "type": "schema_version_newer"}
        return texts, False, exc.ValidationError(message, details={"errors": [error]})
    data = {field: json.loads(text) for field, text in texts.items()}
    try:
        data = migrate_state(model, data, stored.schema_version)
        instance = validate_wire_state(model, proto.dumps_text(data))
    except pydantic.ValidationError as error:
        return (
            texts,
            False,
            translate(
                error,
                f"{name} {object_id!r} stored by schema version {stored.schema_version} "
                f"does not validate after its migrations to {known}",
            ),
        )
    except Exception as error:
        message = (
            f"migrating {name} {object_id!r} from schema version {stored.schema_version} "
            f"failed: {type(error).__name__}: {error}"
        )
        failure = {"loc": [], "msg": message, "type": "migration_failed"}
        return texts, False, exc.ValidationError(message, details={"errors": [failure]})
    state = dump_state(instance)
    return {field: proto.dumps_text(value) for field, value in state.items()}, True, None


def join_state(texts: dict[str, str]) -> str:
    """A state's JSON text from its fields' texts."""
    return "{" + ",".join(f"{proto.dumps_text(name)}:{text}" for name, text in texts.items()) + "}"


def state_bytes(texts: dict[str, str]) -> int:
    """The size in UTF-8 bytes of the state ``join_state`` makes of ``texts``."""
    total = 1 + max(len(texts) - 1, 0) + 1  # braces and commas
    for name, text in texts.items():
        total += len(name.encode()) + 3 + len(text.encode())
    return total


class Cells:
    """The cells of one host, keyed by (model name, object id)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._cells: dict[tuple[str, str], Cell] = {}
        self._evict_at = 2 * CACHED_OBJECTS
        self._evict_bytes = 2 * CACHED_BYTES
        self._loaded_bytes = 0  # state bytes of the cells loaded since the last eviction
        self._epoch = 0  # grows when another process commits to the store

    def __len__(self) -> int:
        return len(self._cells)

    def __iter__(self) -> Any:
        return iter(self._cells.values())

    def get(self, model: type[DurableModel], object_id: str) -> Cell:
        key = (model.__durable_name__, object_id)
        cell = self._cells.get(key)
        if cell is None:
            proto.check_object_id(object_id)
            if len(self._cells) >= self._evict_at or self._loaded_bytes >= self._evict_bytes:
                self._evict()
            self.refresh_epoch()
            stored = self._store.read(key[0], object_id)
            cell = Cell(model, object_id, stored.version, None)
            cell.take(stored)
            cell.epoch = self._epoch
            self._cells[key] = cell
            self._loaded_bytes += cell.bytes
        return cell

    def cached(self, model: str, object_id: str) -> Cell | None:
        return self._cells.get((model, object_id))

    def forget(self, model: str, object_id: str) -> None:
        """Drop an idle cell (its object changed in the store behind it)."""
        cell = self._cells.get((model, object_id))
        if cell is not None and cell.idle:
            del self._cells[(model, object_id)]

    def _evict(self) -> None:
        """Drop the oldest idle cells (their state is in the store) until at most
        ``CACHED_OBJECTS`` remain, holding at most ``CACHED_BYTES`` of state.

        Cells with queued operations, a running drain or subscribers stay. If too
        many are busy to get there, the next attempt waits until twice as many.
        """
        held = sum(cell.bytes for cell in self._cells.values())
        for key, cell in list(self._cells.items()):
            if len(self._cells) <= CACHED_OBJECTS and held <= CACHED_BYTES:
                break
            if cell.idle:
                held -= cell.bytes
                del self._cells[key]
        self._evict_at = max(2 * CACHED_OBJECTS, 2 * len(self._cells))
        self._evict_bytes = max(CACHED_BYTES, held)
        self._loaded_bytes = 0

    def refresh_epoch(self) -> None:
        if self._store.changed_elsewhere():
            self._epoch += 1

    def reload(self, cell: Cell) -> None:
        """Re-read ``cell`` from the store."""
        stored = self._store.read(cell.name, cell.object_id)
        cell.reset(stored.version, None)
        cell.take(stored)
        cell.epoch = self._epoch

    def catch_up(self, cell: Cell) -> bool:
        """Re-read ``cell`` if another process may have changed it; True if it had."""
        self.refresh_epoch()
        if cell.epoch == self._epoch:
            return False
        cell.epoch = self._epoch
        if self._store.version(cell.name, cell.object_id) == cell.version:
            return False
        self.reload(cell)
        return True

    def schedule(self, cell: Cell, schedule_id: str) -> ScheduleRow | None:
        return self._store.schedule(cell.name, cell.object_id, schedule_id)

    def remembered(self, cell: Cell, request_id: str) -> Remembered | None:
        """The stored reply of ``request_id`` on ``cell``'s object, if any."""
        found = cell.recent.get(request_id)
        if found is not None:
            return found
        if cell.known_ids is None:
            cell.known_ids = self._store.request_ids(cell.name, cell.object_id)
        if request_id not in cell.known_ids:
            return None
        return self._store.remembered(cell.name, cell.object_id, request_id)

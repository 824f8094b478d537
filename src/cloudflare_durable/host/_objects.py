"""The objects a host holds in memory: one cell per object, cached and evicted.

A cell keeps what the host knows of one object: its model, version and stored
state, the live instance method bodies run against, its queue of operations,
its subscribers, and the replies of recent request ids. Idle cells are dropped
once too many are held (their state is in the store); a cell is re-read when
another process sharing the store may have changed its object.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from typing import TYPE_CHECKING, Any, Final

from .. import _protocol as proto
from .._models import DurableModel
from ._store import Remembered, Store

if TYPE_CHECKING:
    from ._fanout import Subscriber
    from ._queue import Pending

__all__ = ["CACHED_OBJECTS", "RECENT_REPLIES", "Cell", "Cells"]

CACHED_OBJECTS: Final = 4096
"""Idle objects (no queued operation, no subscriber) kept in memory; older ones are dropped."""
RECENT_REPLIES: Final = 1000
"""Replies of recent request ids kept in memory per object (all are in the store)."""


class Cell:
    __slots__ = (
        "draining",
        "epoch",
        "known_ids",
        "live",
        "live_json",
        "model",
        "name",
        "object_id",
        "queue",
        "recent",
        "state",
        "subscribers",
        "version",
    )

    def __init__(
        self, model: type[DurableModel], object_id: str, version: int, state: dict[str, Any] | None
    ) -> None:
        self.model = model
        self.name = model.__durable_name__
        self.object_id = object_id
        self.version = version
        self.state = state
        self.live: DurableModel | None = None
        self.live_json: dict[str, Any] | None = None
        self.queue: deque[Pending] = deque()
        self.draining = False
        self.subscribers: set[Subscriber] = set()
        self.recent: OrderedDict[str, Remembered] = OrderedDict()
        # Request ids the store holds for this object, loaded at the first lookup,
        # so that the common case, a new id, costs no query.
        self.known_ids: set[str] | None = None
        self.epoch = 0

    @property
    def idle(self) -> bool:
        return not (self.draining or self.queue or self.subscribers)

    def reset(self, version: int, state: dict[str, Any] | None) -> None:
        """Forget everything derived from the stored state (it changed, or a batch failed)."""
        self.version, self.state = version, state
        self.live = self.live_json = None
        self.recent.clear()
        self.known_ids = None

    def remember(self, replies: list[tuple[str, Remembered]], max_requests: int) -> None:
        recent, known = self.recent, self.known_ids
        for request_id, remembered in replies:
            recent[request_id] = remembered
            if known is not None:
                known.add(request_id)
        while len(recent) > RECENT_REPLIES:
            recent.popitem(last=False)
        if known is not None and len(known) > max_requests + 2000:
            self.known_ids = None  # the store pruned; reload at the next lookup


class Cells:
    """The cells of one host, keyed by (model name, object id)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._cells: dict[tuple[str, str], Cell] = {}
        self._evict_at = 2 * CACHED_OBJECTS
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
            if len(self._cells) >= self._evict_at:
                self._evict()
            self.refresh_epoch()
            stored = self._store.read(key[0], object_id)
            cell = Cell(model, object_id, stored.version, stored.state)
            cell.epoch = self._epoch
            self._cells[key] = cell
        return cell

    def _evict(self) -> None:
        """Drop the oldest idle cells (their state is in the store) down to ``CACHED_OBJECTS``.

        Cells with queued operations, a running drain or subscribers stay. If too
        many are busy to get there, the next attempt waits until twice as many.
        """
        idle = [key for key, cell in self._cells.items() if cell.idle]
        for key in idle[: max(0, len(self._cells) - CACHED_OBJECTS)]:
            del self._cells[key]
        self._evict_at = max(2 * CACHED_OBJECTS, 2 * len(self._cells))

    def refresh_epoch(self) -> None:
        if self._store.changed_elsewhere():
            self._epoch += 1

    def reload(self, cell: Cell) -> None:
        """Re-read ``cell`` from the store."""
        stored = self._store.read(cell.name, cell.object_id)
        cell.reset(stored.version, stored.state)
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

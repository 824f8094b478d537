"""Upgrading the stored objects of a model to its schema version, all at once.

Objects stored by an older schema version are migrated when they are read, and
stored migrated at their next change. ``migrate_objects`` does it eagerly for
every object of a model (``durable migrate``): each state is read, run through
the model's migrations and validated, then stored whole under the current
schema version, keeping its version (the state is the one readers already
see). A state another writer changes meanwhile is left to that writer (which
stores it migrated); one that does not migrate is reported, and left as it is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from .._models import DurableModel, schema_version_of
from ._objects import upgraded
from ._store import VersionMoved

if TYPE_CHECKING:
    from ._runtime import Host

__all__ = ["MigrationReport", "migrate_objects"]

PAGE: Final = 500

Progress = Callable[[int, int], None]
"""Called with (objects done, objects to do) as the work goes."""


@dataclass(slots=True)
class MigrationReport:
    """What ``migrate_objects`` found and did."""

    model: str
    schema_version: int
    total: int = 0
    """Objects stored by an older schema version when it started."""
    migrated: int = 0
    """Objects stored migrated (with ``dry_run``: that would be)."""
    moved: int = 0
    """Objects another writer changed meanwhile (it stores them migrated)."""
    failed: dict[str, str] = field(default_factory=dict)
    """Objects whose state does not migrate, by id: why."""
    dry_run: bool = False


def migrate_objects(
    host: Host,
    model: type[DurableModel] | str,
    *,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> MigrationReport:
    """Store every object of ``model`` written by an older schema version migrated to
    the model's version (``dry_run``: only check that each one migrates)."""
    model_class = host.model(model) if isinstance(model, str) else model
    name = model_class.__durable_name__
    version = schema_version_of(model_class)
    store = host.store
    total = store.count_older_states(name, version)
    report = MigrationReport(name, version, total, dry_run=dry_run)
    done = 0
    after: str | None = None
    while True:
        ids = store.older_states(name, version, after, PAGE)
        if not ids:
            break
        after = ids[-1]
        for object_id in ids:
            _migrate_one(host, model_class, object_id, report)
            done += 1
            if progress is not None:
                progress(done, max(report.total, done))
    return report


def _migrate_one(
    host: Host, model: type[DurableModel], object_id: str, report: MigrationReport
) -> None:
    store = host.store
    stored = store.read(report.model, object_id)
    texts, migrated, refused = upgraded(model, object_id, stored)
    if refused is not None:
        report.failed[object_id] = refused.message
        return
    if not migrated or texts is None:
        return  # changed meanwhile: already current
    if not report.dry_run:
        try:
            store.rewrite(report.model, object_id, stored.version, texts, report.schema_version)
        except VersionMoved:
            report.moved += 1
            return
        host.forget(report.model, object_id)
    report.migrated += 1

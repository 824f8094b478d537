"""``durable ls``, ``export``, ``import`` and ``migrate``: many objects at once.

``export`` writes one JSON line per object (``model``, ``id``, ``version``,
``schema_version``, ``state``) and ``import`` reads them back, so objects move
between the embedded store, the network host and the Worker. ``migrate`` works
on an embedded store's file directly.
"""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Final

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from .. import _exceptions as exc
from .. import _protocol as proto
from .._client import DurableClient
from .._config import DEFAULT_STORE
from .._models import DurableModel, load_module, migrate_state, models_in
from ._common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    Output,
    Target,
    connection_options,
    json_option,
    run_async,
)

__all__ = ["export", "import_", "ls", "migrate"]

PAGE: Final = 1000
"""Ids asked for per listing request (the protocol's largest page)."""

BATCH: Final = 500
"""Objects created per ``create_many`` by ``import``."""

EXPORT_MEMBERS: Final = ("model", "id", "version", "schema_version", "state")


async def all_ids(client: DurableClient, model: str, prefix: str) -> AsyncIterator[str]:
    """Every id of ``model`` with stored state starting with ``prefix``, page by page."""
    after: str | None = None
    while True:
        page = await client._query(proto.ListObjects(model, prefix, after, PAGE))
        ids: list[str] = page["ids"]
        for object_id in ids:
            yield object_id
        if page["next"] is None or not ids:
            return
        after = page["next"]


async def schema_version(client: DurableClient, target: Target, model: str) -> int:
    """The schema version the target host runs ``model`` at."""
    loaded = target.model(model)
    if target.embedded:
        if loaded is None:
            raise exc.UsageError(f"the embedded host needs --models to know {model!r}")
        return loaded.__durable_schema_version__
    served = (await client._served_schema()).get("models", {})
    if model not in served:
        raise exc.UnknownModelError(f"the server serves no model {model!r}")
    version: int = served[model]["schema_version"]
    return version


@contextmanager
def progress_bar(output: Output, what: str, total: int | None) -> Iterator[Callable[[int], None]]:
    """A progress bar on stderr while the work goes (only when stderr is a terminal)."""
    if not output.err.is_terminal:
        yield lambda advance: None
        return
    columns = (TextColumn(what), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=output.err, transient=True) as bar:
        task = bar.add_task(what, total=total)
        yield lambda advance: bar.advance(task, advance)


@click.command(
    epilog="""\b
Examples:
  durable ls Counter --models examples/counter.py
  durable ls Auction --prefix 2026- --url http://127.0.0.1:8787
  durable ls Counter --json --models examples/counter.py | jq -r .
"""
)
@click.argument("model")
@click.option("--prefix", default="", help="Only ids starting with this text.")
@click.option("--limit", type=click.IntRange(min=1), help="At most this many ids.")
@connection_options
@json_option
def ls(
    model: str,
    prefix: str,
    limit: int | None,
    target: Target,
    as_json: bool,
) -> int:
    """List the ids of MODEL's objects that have stored state, one per line.

    Ids come in the order of their UTF-8 bytes, fetched page by page, so a
    listing of any length starts at once and holds one page in memory. With
    --json each line is the id as a JSON string (ids may hold any character).
    """
    name = target.model_name(model)
    output = Output(as_json)

    async def work() -> int:
        shown = 0
        async with target.client() as client:
            async for object_id in all_ids(client, name, prefix):
                if as_json:
                    output.json(object_id)
                else:
                    click.echo(object_id)
                shown += 1
                if limit is not None and shown >= limit:
                    break
        output.note(f"{shown:,} {name} objects")
        return EXIT_OK

    return run_async(output, work)


@click.command(
    epilog="""\b
Examples:
  durable export Counter --models examples/counter.py > counters.jsonl
  durable export Auction Wallet --url http://127.0.0.1:8787 > all.jsonl
"""
)
@click.argument("models", nargs=-1, required=True, metavar="MODEL...")
@click.option("--prefix", default="", help="Only objects whose ids start with this text.")
@click.option(
    "--out",
    type=click.File("w", encoding="utf-8", lazy=True),
    default="-",
    help="Write here instead of stdout.",
)
@connection_options
def export(
    models: tuple[str, ...],
    prefix: str,
    out: IO[str],
    target: Target,
) -> int:
    """Write every object of each MODEL with stored state as one JSON line.

    Each line is {"model", "id", "version", "schema_version", "state"}: the
    state as the host's code reads it (migrated to its schema version). Objects
    are read one by one while the listing goes, so each line is that object's
    state at the moment it was read; objects created meanwhile may be missed.
    `durable import` reads the file back into any host.
    """
    names = [target.model_name(model) for model in models]
    output = Output(False)

    async def work() -> int:
        written = 0
        async with target.client() as client:
            for name in names:
                version = await schema_version(client, target, name)
                with progress_bar(output, f"export {name}", None) as advance:
                    async for object_id in all_ids(client, name, prefix):
                        reply = await client._perform(proto.Read(name, object_id))
                        if reply.state is None:
                            continue  # deleted since it was listed
                        line = {
                            "model": name,
                            "id": object_id,
                            "version": reply.version,
                            "schema_version": version,
                            "state": reply.state,
                        }
                        out.write(json.dumps(line, ensure_ascii=False, separators=(",", ":")))
                        out.write("\n")
                        written += 1
                        advance(1)
        out.flush()
        output.note(f"{written:,} objects exported")
        return EXIT_OK

    return run_async(output, work)


class _Line:
    """One line of an export file, checked."""

    def __init__(self, number: int, text: str) -> None:
        try:
            value = json.loads(text)
        except ValueError as error:
            raise click.ClickException(f"line {number}: not JSON ({error})") from None
        if not isinstance(value, dict) or set(value) != set(EXPORT_MEMBERS):
            raise click.ClickException(
                f"line {number}: an export line has exactly the members {', '.join(EXPORT_MEMBERS)}"
            )
        model, object_id, version, schema, state = (value[m] for m in EXPORT_MEMBERS)
        if not isinstance(model, str) or not isinstance(object_id, str):
            raise click.ClickException(f"line {number}: 'model' and 'id' must be strings")
        if type(schema) is not int or schema < 1 or type(version) is not int:
            raise click.ClickException(
                f"line {number}: 'version' and 'schema_version' must be integers"
            )
        if not isinstance(state, dict):
            raise click.ClickException(f"line {number}: 'state' must be an object")
        self.number, self.model, self.id = number, model, object_id
        self.schema_version, self.state = schema, state


def _read_lines(source: IO[str]) -> list[_Line]:
    lines = [_Line(n, text) for n, text in enumerate(source, start=1) if text.strip()]
    seen: set[tuple[str, str]] = set()
    for line in lines:
        key = (line.model, line.id)
        if key in seen:
            raise click.ClickException(f"line {line.number}: {line.model} {line.id!r} twice")
        seen.add(key)
    return lines


@click.command(
    "import",
    epilog="""\b
Examples:
  durable import counters.jsonl --models examples/counter.py --store copy.sqlite3
  durable export Counter --store a.sqlite3 --models m.py | durable import - --url $URL
""",
)
@click.argument("source", type=click.File("r", encoding="utf-8"), metavar="FILE")
@click.option(
    "--existing",
    type=click.Choice(["fail", "skip", "replace"]),
    default="fail",
    show_default=True,
    help="What to do with an object that already has state.",
)
@connection_options
@json_option
def import_(
    source: IO[str],
    existing: str,
    target: Target,
    as_json: bool,
) -> int:
    """Create the objects of FILE (written by `durable export`; - for stdin).

    Each object is created with its state; its version starts again at 1 on
    the target (versions belong to the host that made them). State of an older
    schema version than the target's is migrated first, which needs the
    model's migrations (--models); state of a newer one is refused. An object
    that already has state fails its line (--existing fail), is left as it is
    (skip), or gets the exported fields (replace). Every line is tried; the
    status is 1 if any failed.
    """
    lines = _read_lines(source)
    output = Output(as_json)

    async def work() -> int:
        counts = {"created": 0, "replaced": 0, "skipped": 0, "failed": 0}
        failures: list[dict[str, Any]] = []

        def failed(line: _Line, error: exc.DurableError) -> None:
            counts["failed"] += 1
            failures.append(
                {
                    "line": line.number,
                    "model": line.model,
                    "id": line.id,
                    "error": proto.error_envelope(error)["error"],
                }
            )

        async with target.client() as client:
            versions: dict[str, int] = {}
            ready: dict[str, list[tuple[_Line, dict[str, Any]]]] = {}
            for line in lines:
                name = target.model_name(line.model)
                try:
                    if name not in versions:
                        versions[name] = await schema_version(client, target, name)
                    state = _upgraded(line, target.model(name), versions[name])
                except exc.DurableError as error:
                    failed(line, error)
                    continue
                ready.setdefault(name, []).append((line, state))
            with progress_bar(output, "import", len(lines)) as advance:
                for name, items in ready.items():
                    for start in range(0, len(items), BATCH):
                        batch = items[start : start + BATCH]
                        await _import_batch(client, name, batch, existing, counts, failed)
                        advance(len(batch))
        summary = {**counts, "failures": failures}
        if as_json:
            output.json(summary)
        else:
            for failure in failures[:20]:
                output.err.print(
                    f"line {failure['line']}: {failure['model']} {failure['id']!r}: "
                    f"{failure['error']['message']}",
                    highlight=False,
                    markup=False,
                )
            output.note(
                ", ".join(f"{count:,} {what}" for what, count in counts.items() if count)
                or "nothing to import"
            )
        return EXIT_FAILED if counts["failed"] else EXIT_OK

    return run_async(output, work)


def _upgraded(line: _Line, model: type[DurableModel] | None, target_version: int) -> dict[str, Any]:
    """The line's state at the target's schema version."""
    if line.schema_version == target_version:
        return line.state
    if line.schema_version > target_version:
        raise exc.ValidationError(
            f"stored by schema version {line.schema_version}; the target knows up to "
            f"{target_version}"
        )
    if model is None or model.__durable_schema_version__ != target_version:
        raise exc.ValidationError(
            f"stored by schema version {line.schema_version}, the target is at "
            f"{target_version}: give --models with the model's migrations"
        )
    try:
        return migrate_state(model, dict(line.state), line.schema_version)
    except Exception as error:
        raise exc.ValidationError(f"its migration failed: {error!r}") from error


async def _import_batch(
    client: DurableClient,
    name: str,
    batch: list[tuple[_Line, dict[str, Any]]],
    existing: str,
    counts: dict[str, int],
    failed: Callable[[_Line, exc.DurableError], None],
) -> None:
    """Create a batch at once; if that fails, each object on its own, to say which."""
    try:
        await client._create_many(name, {line.id: state for line, state in batch})
    except exc.DurableError:
        pass
    else:
        counts["created"] += len(batch)
        return
    for line, state in batch:
        try:
            await client._perform(proto.Create(name, line.id, state))
            counts["created"] += 1
        except exc.AlreadyExistsError as error:
            if existing == "skip":
                counts["skipped"] += 1
            elif existing == "replace":
                try:
                    await client._perform(proto.Update(name, line.id, state))
                    counts["replaced"] += 1
                except exc.DurableError as refused:
                    failed(line, refused)
            else:
                failed(line, error)
        except exc.DurableError as error:
            failed(line, error)


@click.command(
    epilog="""\b
Examples:
  durable migrate myapp.models Item --store state.sqlite3 --dry-run
  durable migrate myapp/models.py Item --store state.sqlite3
"""
)
@click.argument("module")
@click.argument("model")
@click.option(
    "--store",
    default=DEFAULT_STORE,
    show_default=True,
    metavar="PATH",
    help="The embedded store (SQLite file) to migrate.",
)
@click.option("--dry-run", is_flag=True, help="Only check that every object migrates.")
@json_option
def migrate(module: str, model: str, store: str, dry_run: bool, as_json: bool) -> int:
    """Store every object of MODEL written by an older schema version migrated.

    MODULE (a dotted name or a .py file) defines MODEL (its class name or wire
    name) with its schema_version= and @migration functions. Objects are
    migrated anyway when read; this does them all now, keeping each version. An
    object whose migration fails is reported and left as it is (status 1). A
    server's store is migrated by stopping it and running this on its file.
    """
    from ..host import Host
    from ..host._migrate import migrate_objects

    output = Output(as_json)
    try:
        models = models_in(load_module(module))
    except SystemExit as refused:
        raise click.BadParameter(str(refused.code), param_hint="MODULE") from None
    chosen = [m for m in models if model in (m.__name__, m.__durable_name__)]
    if len(chosen) != 1:
        output.err.print(f"durable: {module} defines no model {model!r}", highlight=False)
        sys.exit(EXIT_USAGE)
    if store != ":memory:" and not Path(store).exists():
        raise click.BadParameter(f"{store} does not exist", param_hint="--store")
    host = Host(store, models=models)
    try:
        with progress_bar(output, f"migrate {chosen[0].__durable_name__}", None) as advance:
            done = 0

            def progress(now: int, total: int) -> None:
                nonlocal done
                advance(now - done)
                done = now

            report = migrate_objects(host, chosen[0], dry_run=dry_run, progress=progress)
    finally:
        host.close()
    failures = dict(list(report.failed.items())[:100])
    if as_json:
        output.json(
            {
                "model": report.model,
                "schema_version": report.schema_version,
                "total": report.total,
                "migrated": report.migrated,
                "moved": report.moved,
                "failed": failures,
                "dry_run": dry_run,
            }
        )
    else:
        verb = "would be migrated" if dry_run else "migrated"
        click.echo(
            f"{report.model}: {report.total:,} objects stored by a schema version older than "
            f"{report.schema_version}; {report.migrated:,} {verb}, {len(report.failed):,} "
            f"failed, {report.moved:,} changed meanwhile"
        )
        for object_id, reason in list(report.failed.items())[:20]:
            output.err.print(f"  {object_id!r}: {reason}", highlight=False, markup=False)
    return EXIT_FAILED if report.failed else EXIT_OK

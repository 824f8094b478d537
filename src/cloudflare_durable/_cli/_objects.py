"""``durable call``, ``get`` and ``watch``: one object, from the shell.

They speak operations (``_protocol``), not model classes, so they work against
a server whose models are not importable here. With ``--models``, the loaded
classes let ``call`` read ``name=value`` arguments by their declared types, and
let the embedded host run the methods.
"""

from __future__ import annotations

import json
from typing import Any

import click
import pydantic
from rich.table import Table

from .. import _exceptions as exc
from .. import _protocol as proto
from .._models import DurableModel
from ._common import (
    EXIT_OK,
    Output,
    Target,
    connection_options,
    json_option,
    run_async,
)

__all__ = ["call", "get", "watch"]


def parse_arguments(
    pairs: tuple[str, ...], args_json: str | None, model: type[DurableModel] | None, method: str
) -> dict[str, Any]:
    """``--args`` JSON, then ``name=value`` pairs over it. A value is JSON when it parses
    as JSON (and, with the model known, when its parameter accepts that), else a string."""
    args: dict[str, Any] = {}
    if args_json is not None:
        try:
            args = json.loads(args_json)
        except ValueError as error:
            raise click.BadParameter(f"not JSON: {error}", param_hint="--args") from None
        if not isinstance(args, dict):
            raise click.BadParameter("must be a JSON object", param_hint="--args")
    types = _parameter_types(model, method)
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"{pair!r} is not NAME=VALUE", param_hint="arguments")
        args[name] = _value(raw, types.get(name))
    return args


def _parameter_types(model: type[DurableModel] | None, method: str) -> dict[str, Any]:
    remote = None if model is None else model.__durable_methods__.get(method)
    if remote is None:
        return {}
    return {
        name: field.annotation for name, field in remote.signature.arguments.model_fields.items()
    }


def _value(raw: str, annotation: Any) -> Any:
    try:
        parsed = json.loads(raw)
    except ValueError:
        return raw
    if annotation is None:
        return parsed
    adapter: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(annotation)
    try:
        adapter.validate_json(raw, strict=True)
    except pydantic.ValidationError:
        try:
            adapter.validate_python(raw, strict=True)
        except pydantic.ValidationError:
            return parsed  # neither fits: let the host say why
        return raw  # a str parameter given "42": keep the text
    return parsed


@click.command(
    epilog="""\b
Examples:
  durable call Counter c1 increment by=2 --models examples/counter.py
  durable call Auction a1 bid bidder=ann amount=12 --url http://127.0.0.1:8787
  durable call Document d1 join --args '{"editor_id": "ann", "name": "Ann"}' --json
"""
)
@click.argument("model")
@click.argument("object_id", metavar="ID")
@click.argument("method")
@click.argument("arguments", nargs=-1, metavar="[NAME=VALUE]...")
@click.option("--args", "args_json", metavar="JSON", help="Arguments as one JSON object.")
@connection_options
@json_option
def call(
    model: str,
    object_id: str,
    method: str,
    arguments: tuple[str, ...],
    args_json: str | None,
    target: Target,
    as_json: bool,
) -> int:
    """Call METHOD of the object ID of MODEL and print its result.

    Each NAME=VALUE is an argument: VALUE is read as JSON when it parses
    (2, true, [1,2], {"a":1}, "quoted"), else as a string. With --models, a
    parameter declared `str` keeps the text as given (id=42 stays "42").
    """
    name = target.model_name(model)
    args = parse_arguments(arguments, args_json, target.model(name), method)
    output = Output(as_json)

    async def work() -> int:
        async with target.client() as client:
            reply = await client._perform(proto.Call(name, object_id, method, args))
        if as_json:
            output.json(reply.to_json("call"))
        else:
            output.pretty(reply.result)
            output.note(f"{name} {object_id!r} at version {reply.version}")
        return EXIT_OK

    return run_async(output, work)


@click.command(
    epilog="""\b
Examples:
  durable get Counter c1 --models examples/counter.py
  durable get Auction a1 --url http://127.0.0.1:8787 --json | jq .state.highest_bid
"""
)
@click.argument("model")
@click.argument("object_id", metavar="ID")
@connection_options
@json_option
def get(
    model: str,
    object_id: str,
    target: Target,
    as_json: bool,
) -> int:
    """Print the state and version of the object ID of MODEL.

    An object that was never written has version 0 and no stored state
    (it behaves as its model's defaults).
    """
    name = target.model_name(model)
    output = Output(as_json)

    async def work() -> int:
        async with target.client() as client:
            reply = await client._perform(proto.Read(name, object_id))
        if as_json:
            output.json(
                {"model": name, "id": object_id, "version": reply.version, "state": reply.state}
            )
        else:
            _show_state(output, name, object_id, reply)
        return EXIT_OK

    return run_async(output, work)


def _show_state(output: Output, model: str, object_id: str, reply: proto.Reply) -> None:
    title = f"{model} {object_id!r} · version {reply.version}"
    if reply.state is None:
        output.out.print(f"{title}: no stored state (it holds its defaults)", highlight=False)
        return
    table = Table(title=title, title_justify="left", show_header=True, header_style="bold")
    table.add_column("field", style="cyan", no_wrap=True)
    table.add_column("value", overflow="fold")
    for field, value in reply.state.items():
        table.add_row(field, json.dumps(value, ensure_ascii=False))
    output.out.print(table)


@click.command(
    epilog="""\b
Examples:
  durable watch Counter c1 --url http://127.0.0.1:8787
  durable watch Auction a1 --count 5 | jq -c 'select(.type == "event")'
"""
)
@click.argument("model")
@click.argument("object_id", metavar="ID")
@click.option(
    "--since",
    type=click.IntRange(min=0),
    help="Only what comes after this version (default: start with the current snapshot).",
)
@click.option(
    "--count", type=click.IntRange(min=1), help="Stop after this many lines (default: never)."
)
@connection_options
@json_option
def watch(
    model: str,
    object_id: str,
    since: int | None,
    count: int | None,
    target: Target,
    as_json: bool,
) -> int:
    """Print one JSON line per snapshot and event of the object ID, until interrupted.

    Lines look like the wire frames:
    {"type":"snapshot","version":3,"state":{...}} and
    {"type":"event","version":3,"name":"BidPlaced","data":{...}}. The current
    snapshot comes first; after a disconnect it reconnects and resumes from the
    last version printed (no line repeats, versions never go back), with the
    events emitted meanwhile; a {"type":"gap","since":S,"until":U} line says the
    object's event log no longer held all of them. Ctrl-C ends
    it with status 0. --json is accepted for symmetry; the lines are JSON anyway.
    """
    name = target.model_name(model)
    output = Output(as_json)

    async def work() -> int:
        printed = 0
        frame = proto.SubscribeFrame(since, snapshots=True, events=True)
        async with (
            target.client() as client,
            client._subscribe(name, object_id, frame, _as_line) as lines,
        ):
            while True:
                try:
                    async for line in lines:
                        output.json(line)
                        printed += 1
                        if count is not None and printed >= count:
                            return EXIT_OK
                except exc.EventsLostError as lost:  # say so, and go on with what follows
                    output.json({"type": "gap", "since": lost.since, "until": lost.until})
                    printed += 1
                    if count is None or printed < count:
                        continue
                return EXIT_OK

    try:
        return run_async(output, work)
    except KeyboardInterrupt:
        return EXIT_OK


def _as_line(message: proto.Message) -> dict[str, Any] | None:
    if isinstance(message, proto.Snapshot):
        return proto.snapshot_frame(message.version, message.state)
    if isinstance(message, proto.EventMessage):
        return proto.event_frame(message.version, message.name, message.data)
    return None  # patches are not asked for: every change comes as a whole snapshot

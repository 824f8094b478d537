"""What the verbs share: exit statuses, output, and where to find the host.

Output is for people by default (Rich: tables, colour when stdout is a
terminal, ``NO_COLOR`` respected) and JSON with ``--json``. Failures go to
stderr as one line; with ``--json`` the error envelope of the wire protocol is
also printed to stdout, so scripts read one JSON document either way.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, ParamSpec, TypeVar

import anyio
import click
from rich.console import Console
from rich.markup import escape

from .. import _exceptions as exc
from .. import _protocol as proto
from .._client import DurableClient
from .._config import ENV_STORE, ENV_TOKEN, ENV_TOKEN_FALLBACK, ENV_URL, Settings
from .._models import DurableModel, load_module, models_in, registered_models

__all__ = [
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_USAGE",
    "Output",
    "Target",
    "connection_options",
    "json_option",
    "read_token",
]

EXIT_OK: Final = 0
"""The command did what it was asked."""
EXIT_FAILED: Final = 1
"""The operation failed: the host refused it, the method raised, the host was unreachable."""
EXIT_USAGE: Final = 2
"""The command line was wrong: unknown verb or option, bad value, missing ``--models``."""

P = ParamSpec("P")
R = TypeVar("R")


class Output:
    """Where a verb writes: people get Rich output, scripts (``--json``) get JSON."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        self.out = Console(soft_wrap=True)
        self.err = Console(stderr=True, soft_wrap=True)

    def json(self, value: Any) -> None:
        """One JSON document on one line of stdout."""
        click.echo(json.dumps(value, ensure_ascii=False, separators=(",", ":")))

    def pretty(self, value: Any) -> None:
        """A JSON value for people: indented and highlighted on a terminal."""
        if self.out.is_terminal:
            self.out.print_json(data=value)
        else:
            click.echo(json.dumps(value, ensure_ascii=False, indent=2))

    def note(self, text: str) -> None:
        """A line for people on stderr (never mixed into what a script reads)."""
        self.err.print(f"[dim]{escape(text)}[/dim]", highlight=False)

    def failed(self, error: exc.DurableError) -> int:
        self.err.print(f"[bold red]durable: {escape(error.code)}:[/] {escape(error.message)}")
        if self.as_json:
            self.json(proto.error_envelope(error))
        return EXIT_FAILED


def json_option(fn: Callable[P, R]) -> Callable[P, R]:
    return click.option(
        "--json", "as_json", is_flag=True, help="Print JSON (one document or one line per item)."
    )(fn)


def read_token(token: str | None, token_file: Path | None) -> str | None:
    """The token given on the command line (``None``: not given); refuses an empty one."""
    if token is not None and token_file is not None:
        raise click.UsageError("give --token or --token-file, not both")
    if token_file is not None:
        try:
            token = token_file.read_text(encoding="utf-8").strip()
        except OSError as error:
            raise click.BadParameter(str(error), param_hint="--token-file") from None
        if not token:
            raise click.BadParameter(f"{token_file} is empty", param_hint="--token-file")
    if token is not None and not token.strip():
        raise click.BadParameter(
            "the token is empty; omit --token to serve none", param_hint="--token"
        )
    return token


def connection_options(fn: Callable[..., R]) -> Callable[..., R]:
    """``--url``, ``--token``, ``--token-file``, ``--store`` and ``--models``, given
    to the command as one ``target`` (a :class:`Target`)."""

    @functools.wraps(fn)
    def command(
        *,
        url: str | None,
        token: str | None,
        token_file: Path | None,
        store: str | None,
        modules: tuple[str, ...],
        **params: Any,
    ) -> R:
        return fn(target=Target.from_options(url, token, token_file, store, modules), **params)

    options = [
        click.option(
            "--models",
            "modules",
            multiple=True,
            metavar="MODULE",
            help="Module (dotted name or .py file) defining the models; repeatable. "
            "Needed on the embedded host, which runs the methods.",
        ),
        click.option(
            "--store",
            metavar="PATH",
            help=f"Use the embedded host on this SQLite file (${ENV_STORE}; ':memory:' "
            "keeps nothing). The default when no URL is set.",
        ),
        click.option(
            "--token-file",
            type=click.Path(dir_okay=False, path_type=Path),
            help="Read the bearer token from this file.",
        ),
        click.option(
            "--token",
            metavar="TOKEN",
            help=f"Bearer token (default ${ENV_TOKEN}, else ${ENV_TOKEN_FALLBACK}).",
        ),
        click.option("--url", metavar="URL", help=f"A server's URL (default ${ENV_URL})."),
    ]
    return functools.reduce(lambda f, option: option(f), options, command)


@dataclass(frozen=True, slots=True)
class Target:
    """The host a verb talks to, from the connection options and the environment."""

    url: str | None
    token: str | None
    store: str | None
    models: dict[str, type[DurableModel]]

    @classmethod
    def from_options(
        cls,
        url: str | None,
        token: str | None,
        token_file: Path | None,
        store: str | None,
        modules: tuple[str, ...],
    ) -> Target:
        if url is not None and store is not None:
            raise click.UsageError("give --url (a server) or --store (the embedded host), not both")
        loaded: dict[str, type[DurableModel]] = {}
        for module in modules:
            try:
                found = models_in(load_module(module))
            except SystemExit as refused:
                raise click.BadParameter(str(refused.code), param_hint="--models") from None
            if not found:
                raise click.BadParameter(f"{module} defines no DurableModel", param_hint="--models")
            loaded.update({model.__durable_name__: model for model in found})
        return cls(url, read_token(token, token_file), store, loaded)

    @property
    def embedded(self) -> bool:
        return self.store is not None or (self.url is None and Settings.from_env().url is None)

    def model_name(self, given: str) -> str:
        """The wire name of ``given``: a wire name, or the class name of a loaded model."""
        if given in self.models:
            return given
        by_class = [m for m in self.models.values() if m.__name__ == given]
        if len(by_class) == 1:
            return by_class[0].__durable_name__
        if self.embedded and given not in registered_models():
            served = ", ".join(sorted(self.models)) or "none: give --models MODULE"
            raise click.UsageError(
                f"the embedded host does not know the model {given!r} (models loaded: {served})"
            )
        return given

    def model(self, name: str) -> type[DurableModel] | None:
        return self.models.get(name)

    def client(self) -> DurableClient:
        if self.store is not None:
            return DurableClient(store=self.store)
        return DurableClient(self.url, self.token)  # None: from the environment


def run_async(output: Output, work: Callable[[], Awaitable[int]]) -> int:
    """Run ``work`` in an event loop; a ``DurableError`` becomes a failure line and exit 1."""

    async def guarded() -> int:
        try:
            return await work()
        except exc.UsageError as error:
            raise click.UsageError(error.message) from None
        except exc.DurableError as error:
            return output.failed(error)

    return anyio.run(guarded)

"""``durable schema``, ``check``, ``codegen typescript`` and ``init worker``: the model
contract. The work is done by ``_codegen.commands``; these are its command line."""

from __future__ import annotations

import click

from .._codegen import commands
from .._config import ENV_TOKEN, ENV_URL

__all__ = ["check", "codegen", "init", "schema"]

_MODULES = "MODULE..."


@click.command(
    epilog="""\b
Example:
  durable schema myapp.models > schema.json
"""
)
@click.argument("modules", nargs=-1, required=True, metavar=_MODULES)
@click.option("--compact", is_flag=True, help="Exactly what GET /v1/models serves.")
def schema(modules: tuple[str, ...], compact: bool) -> int:
    """Print the schema document of the models and events MODULE defines (JSON)."""
    return commands.schema_command(modules, compact=compact)


@click.command(
    epilog="""\b
Example:
  durable check myapp.models --url https://durable.example.workers.dev

\b
Exit status: 0 the server serves the models as defined here, 1 they differ
(each difference is listed), 2 the server could not be asked.
"""
)
@click.argument("modules", nargs=-1, required=True, metavar=_MODULES)
@click.option("--url", metavar="URL", help=f"The server (default ${ENV_URL}).")
@click.option("--token", metavar="TOKEN", help=f"Bearer token (default ${ENV_TOKEN}).")
def check(modules: tuple[str, ...], url: str | None, token: str | None) -> int:
    """Compare the models of MODULE with what a server's GET /v1/models serves."""
    return commands.check_command(modules, url, token)


@click.group()
def codegen() -> None:
    """Generate code from the models."""


@codegen.command(
    epilog="""\b
Example:
  durable codegen typescript myapp/models.py --out src/generated --stubs src/models
"""
)
@click.argument("modules", nargs=-1, required=True, metavar=_MODULES)
@click.option("--out", required=True, metavar="DIR", help="Folder of the generated files.")
@click.option(
    "--implementations",
    default="../models",
    show_default=True,
    metavar="PATH",
    help="Where worker.ts imports the hand-written objects from, relative to --out.",
)
@click.option("--no-worker", is_flag=True, help="Do not write worker.ts.")
@click.option("--stubs", metavar="DIR", help="Write a stub here for each model without one.")
@click.option("--library", metavar="DIR", help="Refresh this copy of the TypeScript library.")
def typescript(
    modules: tuple[str, ...],
    out: str,
    implementations: str,
    no_worker: bool,
    stubs: str | None,
    library: str | None,
) -> int:
    """Generate the TypeScript the Worker needs (schemas, types, an interface per model)."""
    return commands.codegen_typescript_command(
        modules,
        out,
        implementations=None if no_worker else implementations,
        stubs=stubs,
        library=library,
    )


@click.group()
def init() -> None:
    """Create a project."""


@init.command(
    epilog="""\b
Example:
  durable init worker my-worker --models myapp/models.py
  cd my-worker && npm install && npm run dev
"""
)
@click.argument("directory")
@click.argument("more_modules", nargs=-1, metavar="[MODULE]...")
@click.option(
    "--models",
    "modules",
    multiple=True,
    required=True,
    metavar="MODULE",
    help="Module whose models the Worker serves (repeatable; more may follow DIRECTORY).",
)
def worker(directory: str, more_modules: tuple[str, ...], modules: tuple[str, ...]) -> int:
    """Create a Cloudflare Worker project in DIRECTORY (absent or empty) serving the models."""
    return commands.init_worker_command(directory, [*modules, *more_modules])

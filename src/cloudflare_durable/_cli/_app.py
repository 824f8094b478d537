"""The ``durable`` group: every verb, shell completion, and exit statuses.

Exit statuses: 0 success; 1 the operation failed (the host refused it, the
method raised, the server could not be reached; ``check`` also uses 1 for
"the models differ"); 2 the command line was wrong (Click's usage errors, a
missing ``--models``, a refused ``serve`` configuration).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import click
from click.shell_completion import get_completion_class

from ._collections import export, import_, ls, migrate
from ._common import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from ._contract import check, codegen, init, schema
from ._objects import call, get, watch
from ._serve import serve

__all__ = ["cli", "run"]

PROG: str = "durable"
COMPLETE_VAR: str = "_DURABLE_COMPLETE"
SHELLS = ("bash", "zsh", "fish")


@click.group(
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog="""\b
Examples:
  durable serve myapp.models --token-file token.txt
  durable call Counter c1 increment by=2 --url http://127.0.0.1:8787
  durable get Counter c1 --json
  durable watch Counter c1
  durable ls Counter
  durable export Counter > counters.jsonl && durable import counters.jsonl --url URL

\b
Exit status: 0 ok, 1 the operation failed, 2 usage error.
The host: --url (or $CLOUDFLARE_WORKER_URL) for a server, else the embedded
host on --store (or $CLOUDFLARE_DURABLE_STORE, default durable.sqlite3).
""",
)
@click.version_option(package_name="cloudflare-durable", prog_name=PROG)
def cli() -> None:
    """Serve, call, inspect and watch durable objects; generate the Worker's code."""


@click.command(
    epilog="""\b
Examples:
  eval "$(durable completion bash)"         # in ~/.bashrc
  durable completion zsh > ~/.zfunc/_durable
  durable completion fish > ~/.config/fish/completions/durable.fish
"""
)
@click.argument("shell", required=False, type=click.Choice(SHELLS))
@click.pass_context
def completion(ctx: click.Context, shell: str | None) -> int:
    """Print the shell completion script for SHELL (default: from $SHELL)."""
    shell = shell or os.path.basename(os.environ.get("SHELL", ""))
    if shell not in SHELLS:
        raise click.UsageError(f"name the shell: one of {', '.join(SHELLS)}")
    completer = get_completion_class(shell)
    assert completer is not None
    root = ctx.find_root().command
    click.echo(completer(root, {}, PROG, COMPLETE_VAR).source())
    return EXIT_OK


for command in (
    serve,
    call,
    get,
    watch,
    ls,
    export,
    import_,
    migrate,
    schema,
    check,
    codegen,
    init,
    completion,
):
    cli.add_command(command)


def run(argv: Sequence[str] | None = None) -> int:
    """Run the group and turn every outcome into an exit status."""
    try:
        result: Any = cli.main(
            args=None if argv is None else list(argv),
            prog_name=PROG,
            complete_var=COMPLETE_VAR,
            standalone_mode=False,
        )
    except click.ClickException as error:
        error.show()
        return error.exit_code
    except click.Abort:
        click.echo("Aborted!", err=True)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130
    if isinstance(result, int):
        return result
    return EXIT_OK if result is None else EXIT_USAGE

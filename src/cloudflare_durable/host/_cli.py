"""The ``durable`` command: ``durable serve MODULE`` runs the network host; ``durable
migrate MODULE MODEL`` upgrades stored objects to the model's schema version."""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
from pathlib import Path

from .._config import DEFAULT_STORE, ENV_TOKEN, ENV_URL, token_from_env
from .._models import load_module, models_in

logger = logging.getLogger("cloudflare_durable.host")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="durable", description="cloudflare-durable tools")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser(
        "serve", help="serve the DurableModels of a module over the network"
    )
    serve.add_argument("module", help="a dotted module name (myapp.models) or a file (models.py)")
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)"
    )
    serve.add_argument(
        "--port", type=int, default=8787, help="port (default 8787; 0 picks a free one)"
    )
    serve.add_argument(
        "--store", default=DEFAULT_STORE, help=f"SQLite file (default {DEFAULT_STORE})"
    )
    serve.add_argument("--token", default=None, help=f"bearer token (default: ${ENV_TOKEN})")
    serve.add_argument("--token-file", default=None, help="read the bearer token from this file")
    serve.add_argument(
        "--allow-anonymous",
        action="store_true",
        help="serve without a token on an address other machines can reach",
    )
    serve.add_argument(
        "--allow-origin",
        action="append",
        default=[],
        metavar="URL",
        help="an origin whose web pages may call the host (repeatable)",
    )
    serve.add_argument(
        "--request-timeout",
        type=float,
        default=10.0,
        help="seconds a request's head and body may take to arrive (default 10)",
    )
    serve.add_argument("--log-level", default="warning", help="uvicorn log level (default warning)")
    migrate = commands.add_parser(
        "migrate",
        help="store every object of a model written by an older schema version migrated",
    )
    migrate.add_argument("module", help="a dotted module name or a file defining the model")
    migrate.add_argument("model", help="the model's class name or wire name")
    migrate.add_argument(
        "--store", default=DEFAULT_STORE, help=f"SQLite file (default {DEFAULT_STORE})"
    )
    migrate.add_argument(
        "--dry-run", action="store_true", help="only check that every object migrates"
    )
    _add_contract_commands(commands)
    args = parser.parse_args(argv)
    if args.command == "serve":
        return serve_command(args)
    if args.command == "migrate":
        return migrate_command(args)
    return _run_contract_command(args)


def migrate_command(args: argparse.Namespace) -> int:
    from . import Host
    from ._migrate import migrate_objects

    models = models_in(load_module(args.module))
    chosen = [m for m in models if args.model in (m.__name__, m.__durable_name__)]
    if len(chosen) != 1:
        print(f"durable: {args.module} defines no model {args.model!r}", file=sys.stderr)
        return 2
    model = chosen[0]

    def progress(done: int, total: int) -> None:
        if done == total or done % 100 == 0:
            print(f"\r{done:,} of {total:,}", end="", file=sys.stderr, flush=True)

    host = Host(args.store, models=models)
    try:
        report = migrate_objects(host, model, dry_run=args.dry_run, progress=progress)
    finally:
        host.close()
    if report.total:
        print(file=sys.stderr)
    verb = "would be migrated" if args.dry_run else "migrated"
    print(
        f"durable: {report.model}: {report.total:,} objects stored by a schema version older "
        f"than {report.schema_version}; {report.migrated:,} {verb}, "
        f"{len(report.failed):,} failed, {report.moved:,} changed meanwhile"
    )
    for object_id, reason in list(report.failed.items())[:20]:
        print(f"  {object_id!r}: {reason}", file=sys.stderr)
    return 1 if report.failed else 0


def _add_contract_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``schema``, ``codegen typescript``, ``init worker`` and ``check``: the model contract."""
    modules_help = "modules (dotted names or .py files) whose models and events to use"
    schema = commands.add_parser("schema", help="print the schema document of the models (JSON)")
    schema.add_argument("modules", nargs="+", help=modules_help)
    schema.add_argument("--compact", action="store_true", help="exactly what GET /v1/models serves")

    codegen = commands.add_parser("codegen", help="generate code from the models")
    languages = codegen.add_subparsers(dest="language", required=True)
    typescript = languages.add_parser("typescript", help="TypeScript for the Worker")
    typescript.add_argument("modules", nargs="+", help=modules_help)
    typescript.add_argument("--out", required=True, help="folder of the generated files")
    typescript.add_argument(
        "--implementations",
        default="../models",
        help="where worker.ts imports the hand-written objects from, relative to --out "
        "(default ../models)",
    )
    typescript.add_argument("--no-worker", action="store_true", help="do not write worker.ts")
    typescript.add_argument("--stubs", help="write a stub here for each model without one")
    typescript.add_argument("--library", help="refresh this copy of the TypeScript library")

    init = commands.add_parser("init", help="create a project")
    kinds = init.add_subparsers(dest="kind", required=True)
    worker = kinds.add_parser("worker", help="a Cloudflare Worker serving the models")
    worker.add_argument("directory", help="the new project's folder (absent or empty)")
    worker.add_argument("--models", nargs="+", required=True, help=modules_help)

    check = commands.add_parser("check", help="compare the models with a server's GET /v1/models")
    check.add_argument("modules", nargs="+", help=modules_help)
    check.add_argument("--url", help=f"the server (default ${ENV_URL})")
    check.add_argument("--token", help=f"bearer token (default ${ENV_TOKEN})")


def _run_contract_command(args: argparse.Namespace) -> int:
    from .._codegen import commands

    if args.command == "schema":
        return commands.schema_command(args.modules, compact=args.compact)
    if args.command == "codegen":
        implementations = None if args.no_worker else args.implementations
        return commands.codegen_typescript_command(
            args.modules,
            args.out,
            implementations=implementations,
            stubs=args.stubs,
            library=args.library,
        )
    if args.command == "init":
        return commands.init_worker_command(args.directory, args.models)
    return commands.check_command(args.modules, args.url, args.token)


def serve_command(args: argparse.Namespace) -> int:
    try:
        from ._serve import serve
    except ImportError:
        print(
            "durable serve needs the server extra: pip install 'cloudflare-durable[server]'",
            file=sys.stderr,
        )
        return 2
    from .._config import Settings, is_loopback
    from . import Host
    from .asgi import create_app

    token = _token(args)
    if token is None and not is_loopback(args.host) and not args.allow_anonymous:
        print(
            f"durable: refusing to serve {args.host} without a token: anyone who can reach "
            "it could call every method. Give a token (--token-file, or "
            f"${ENV_TOKEN}), or pass --allow-anonymous",
            file=sys.stderr,
        )
        return 2
    module = load_module(args.module)
    models = models_in(module)
    if not models:
        print(f"durable: {args.module} defines no DurableModel subclass", file=sys.stderr)
        return 2
    host = Host(args.store, models=models, call_timeout=Settings.from_env().timeout)
    app = create_app(
        host,
        token=token,
        allowed_origins=args.allow_origin,
        request_timeout=args.request_timeout,
    )
    # IPPROTO_TCP explicitly: asyncio only turns Nagle off (TCP_NODELAY) on accepted
    # sockets whose protocol says TCP, and Nagle plus delayed ACKs costs 40 ms a reply.
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    sock.listen(2048)  # before announcing the URL, so a client may connect at once
    port = sock.getsockname()[1]
    names = ", ".join(sorted(m.__durable_name__ for m in models))
    shown = f"[{args.host}]" if ":" in args.host else args.host
    if token is None:
        print(
            f"durable: WARNING: no token configured (--token-file or ${ENV_TOKEN}); "
            "serving WITHOUT authentication",
            file=sys.stderr,
            flush=True,
        )
    print(f"durable: serving {names} from {args.store} at http://{shown}:{port}", flush=True)
    try:
        serve(app, sock, log_level=args.log_level, request_timeout=args.request_timeout)
    finally:
        host.close()
    return 0


def _token(args: argparse.Namespace) -> str | None:
    """The token from --token, --token-file or the environment; an empty one is an error."""
    if args.token is not None and args.token_file is not None:
        raise SystemExit("durable: give --token or --token-file, not both")
    if args.token_file is not None:
        try:
            token: str | None = Path(args.token_file).read_text().strip()
        except OSError as error:
            raise SystemExit(f"durable: cannot read the token file: {error}") from None
    elif args.token is not None:
        token = args.token
    else:
        return token_from_env(os.environ)
    if not token or not token.strip():
        raise SystemExit(
            "durable: the token is empty (is the variable it comes from unset?); "
            "give a real token, or none to serve only this machine"
        )
    return token


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())

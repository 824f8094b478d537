"""``durable serve MODULE``: the network host on uvicorn, with safe defaults.

Without a token it serves loopback only: a non-loopback ``--host`` is refused
unless ``--allow-anonymous`` says so. An empty token is an error, never "no
token". The token is never printed.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import click

from .._config import (
    DEFAULT_STORE,
    ENV_TOKEN,
    ENV_TOKEN_FALLBACK,
    Settings,
    is_loopback,
    token_from_env,
)
from .._models import load_module, models_in
from ._common import EXIT_OK, EXIT_USAGE, read_token

__all__ = ["serve"]


@click.command(
    epilog=f"""\b
Examples:
  durable serve myapp.models --token-file /run/secrets/durable
  durable serve models.py --port 0 --store :memory:
  CLOUDFLARE_DURABLE_TOKEN=... durable serve myapp.models --host 0.0.0.0 \\
      --allow-origin https://app.example.com

\b
The token comes from --token, --token-file, ${ENV_TOKEN}, else
${ENV_TOKEN_FALLBACK}. Prefer the file or the environment: a --token value
is visible to other users of the machine in the process list.
"""
)
@click.argument("module")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8787,
    show_default=True,
    help="Port (0 picks a free one).",
)
@click.option("--store", default=DEFAULT_STORE, show_default=True, help="SQLite file.")
@click.option("--token", metavar="TOKEN", help="Bearer token every request must carry.")
@click.option(
    "--token-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Read the bearer token from this file.",
)
@click.option(
    "--allow-anonymous",
    is_flag=True,
    help="Serve without a token on a non-loopback address (anyone who reaches it may use it).",
)
@click.option(
    "--allow-origin",
    "allowed_origins",
    multiple=True,
    metavar="URL",
    help="A browser origin allowed to call (e.g. https://app.example.com); repeatable.",
)
@click.option(
    "--call-timeout",
    type=click.FloatRange(min=0, min_open=True),
    metavar="SECONDS",
    help="Seconds a method body waits for each call it makes to another object "
    "(default: the client timeout, $CLOUDFLARE_DURABLE_TIMEOUT, 30 s).",
)
@click.option(
    "--request-timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=10.0,
    show_default=True,
    metavar="SECONDS",
    help="Seconds a request's head and body may take to arrive (slow clients are cut off).",
)
@click.option(
    "--log-level",
    type=click.Choice(["critical", "error", "warning", "info", "debug", "trace"]),
    default="warning",
    show_default=True,
    help="uvicorn's log level.",
)
def serve(
    module: str,
    host: str,
    port: int,
    store: str,
    token: str | None,
    token_file: Path | None,
    allow_anonymous: bool,
    allowed_origins: tuple[str, ...],
    call_timeout: float | None,
    request_timeout: float,
    log_level: str,
) -> int:
    """Serve the DurableModels of MODULE (a dotted name or a .py file) over HTTP and WebSocket."""
    try:
        from ..host._serve import serve as run_server
    except ImportError:
        raise click.UsageError(
            "durable serve needs the server extra: pip install 'cloudflare-durable[server]'"
        ) from None
    token = read_token(token, token_file)
    if token is None:
        token = token_from_env(os.environ)
    if token is None and not is_loopback(host) and not allow_anonymous:
        raise click.UsageError(
            f"refusing to serve {host} without a token: anyone who reaches it could read and "
            f"change every object. Set ${ENV_TOKEN} or --token-file, or pass --allow-anonymous"
        )
    try:
        models = models_in(load_module(module))
    except SystemExit as refused:
        click.echo(str(refused.code), err=True)
        return EXIT_USAGE
    if not models:
        click.echo(f"durable: {module} defines no DurableModel subclass", err=True)
        return EXIT_USAGE
    if call_timeout is None:
        call_timeout = Settings.from_env().timeout
    from ..host import Host
    from ..host.asgi import create_app

    sock = _listen(host, port)  # before announcing the URL, so a client may connect at once
    runtime = Host(store, models=models, call_timeout=call_timeout)
    app = create_app(
        runtime,
        token=token,
        allowed_origins=list(allowed_origins),
        request_timeout=request_timeout,
    )
    names = ", ".join(sorted(m.__durable_name__ for m in models))
    shown = f"[{host}]" if ":" in host else host
    if token is None:
        click.echo(
            f"durable: WARNING: no token configured (--token-file or ${ENV_TOKEN}); "
            "serving WITHOUT authentication",
            err=True,
        )
    click.echo(f"durable: serving {names} from {store} at http://{shown}:{sock.getsockname()[1]}")
    try:
        run_server(app, sock, log_level=log_level, request_timeout=request_timeout)
    finally:
        runtime.close()
    return EXIT_OK


def _listen(host: str, port: int) -> socket.socket:
    # IPPROTO_TCP explicitly: asyncio only turns Nagle off (TCP_NODELAY) on accepted
    # sockets whose protocol says TCP, and Nagle plus delayed ACKs costs 40 ms a reply.
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise click.UsageError(f"cannot listen on {host}:{port}: {error.strerror}") from None
    sock.listen(2048)
    return sock

"""The ``durable`` verbs of the model contract: ``schema``, ``codegen typescript``,
``init worker`` and ``check``. Each takes plain values and returns an exit status,
so any command-line front end can call it."""

from __future__ import annotations

import ipaddress
import json
import os
import shlex
import sys
import urllib.parse
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, TextIO

import httpx

from .. import _exceptions as exc
from .._config import Settings
from .._models import DurableModel, Event, events_in, load_module, models_in
from .._protocol import PROTOCOL_HEADER, PROTOCOL_VERSION
from .._schema import compare_documents, schema_document, schema_json
from . import write_files
from .fidelity import inspect_models
from .scaffold import VENDOR, copy_library, missing_bindings, scaffold, write_stubs
from .typescript import UnsupportedSchemaError, generate, namings

__all__ = [
    "check_command",
    "codegen_typescript_command",
    "contract_of",
    "document_of",
    "fetch_schema_document",
    "init_worker_command",
    "schema_command",
]


def contract_of(
    modules: Sequence[ModuleType],
) -> tuple[list[type[DurableModel]], list[type[Event]]]:
    """Every model and event the modules define or import."""
    models: dict[type[DurableModel], None] = {}
    events: dict[type[Event], None] = {}
    for module in modules:
        models.update(dict.fromkeys(models_in(module)))
        events.update(dict.fromkeys(events_in(module)))
    return list(models), list(events)


def document_of(modules: Sequence[ModuleType]) -> dict[str, Any]:
    """The schema document of every model and event the modules define or import."""
    return schema_document(*contract_of(modules))


def _worker_document(modules: Sequence[ModuleType]) -> dict[str, Any] | None:
    """The document to generate TypeScript from, after reporting what the Worker cannot
    check as Python does (warnings); None when it cannot check some type at all."""
    models, events = contract_of(modules)
    findings = inspect_models(models, events)
    for warning in findings.warnings:
        print(f"durable: warning: {warning}", file=sys.stderr)
    for error in findings.errors:
        print(f"durable: {error}", file=sys.stderr)
    return None if findings.errors else schema_document(models, events)


def _load(targets: Sequence[str]) -> list[ModuleType]:

    modules = [load_module(target) for target in targets]
    if not any(models_in(module) for module in modules):
        raise SystemExit(f"durable: {', '.join(targets)} define(s) no DurableModel subclass")
    return modules


def schema_command(
    targets: Sequence[str], *, compact: bool = False, out: TextIO = sys.stdout
) -> int:
    """``durable schema MODULE...``: print the schema document."""
    document = document_of(_load(targets))
    text = schema_json(document) if compact else json.dumps(document, indent=2, ensure_ascii=False)
    print(text, file=out)
    return 0


def codegen_typescript_command(
    targets: Sequence[str],
    out: str,
    *,
    implementations: str | None = "../models",
    stubs: str | None = None,
    library: str | None = None,
) -> int:
    """``durable codegen typescript MODULE... --out DIR``: write the generated TypeScript.

    ``implementations`` is where the generated ``worker.ts`` imports the
    hand-written objects from (relative to ``out``); ``stubs`` is a folder
    where a stub is written for each model with methods that has no
    implementation yet; ``library`` refreshes a project's copy of the library.
    """
    document = _worker_document(_load(targets))
    if document is None:
        return 2
    out_dir = Path(out)
    try:
        files = generate(document, worker=implementations)
    except UnsupportedSchemaError as error:
        print(f"durable: {error.message}", file=sys.stderr)
        return 2
    changed = write_files(out_dir, files)
    if library is not None:
        copy_library(Path(library))
    created = write_stubs(Path(stubs), document) if stubs is not None else []
    for path in created:
        print(f"durable: wrote a stub to fill in: {path}", file=sys.stderr)
    print(f"durable: {len(files)} files in {out_dir}, {len(changed)} changed", file=sys.stderr)
    return _report_wrangler(out_dir, document)


def _report_wrangler(out_dir: Path, document: dict[str, Any]) -> int:
    """Warn about models that wrangler.jsonc (if the project has one) does not bind."""
    for folder in [out_dir.resolve(), *out_dir.resolve().parents]:
        config = folder / "wrangler.jsonc"
        if config.is_file():
            problems = missing_bindings(config.read_text(encoding="utf-8"), namings(document))
            for problem in problems:
                print(f"durable: {config}: {problem}", file=sys.stderr)
            return 1 if problems else 0
    return 0


def init_worker_command(directory: str, targets: Sequence[str]) -> int:
    """``durable init worker DIR --models MODULE...``: scaffold a Worker project."""
    document = _worker_document(_load(targets))
    if document is None:
        return 2
    project = Path(directory)
    generate_command = _generate_command(project, targets)
    try:
        files = generate(document)
        scaffold(project, document, generate_command)
    except (UnsupportedSchemaError, FileExistsError) as error:
        print(f"durable: {error}", file=sys.stderr)
        return 2
    write_files(project / "src" / "generated", files)
    write_stubs(project / "src" / "models", document)
    print(f"durable: a Worker for {', '.join(document['models'])} is in {project}")
    print(f"next: cd {shlex.quote(str(project))} && npm install && npm run dev")
    return 0


def _generate_command(project: Path, targets: Sequence[str]) -> str:
    """The ``npm run generate`` script (module files relative to the project)."""
    shown = []
    for target in targets:
        path = Path(target)
        if target.endswith(".py") or path.is_file():
            relative = os.path.relpath(path.resolve(), project.resolve())
            shown.append(str(path.resolve()) if relative.startswith("..") else relative)
        else:
            shown.append(target)
    modules = " ".join(shlex.quote(item) for item in shown)
    return (
        f"durable codegen typescript {modules} --out src/generated "
        f"--stubs src/models --library {VENDOR}"
    )


def fetch_schema_document(url: str, token: str | None, *, timeout: float = 30.0) -> dict[str, Any]:
    """``GET {url}/v1/models`` as a schema document; ``DurableError`` subclasses on failure."""
    _refuse_plain_http_token(url, token)
    headers = {PROTOCOL_HEADER: str(PROTOCOL_VERSION)}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        reply = httpx.get(url.rstrip("/") + "/v1/models", headers=headers, timeout=timeout)
    except httpx.HTTPError as error:
        raise exc.ConnectError(f"cannot reach {url}: {error}") from error
    if reply.status_code == 401:
        raise exc.UnauthorizedError("the server refused the token")
    if reply.status_code != 200:
        raise exc.ProtocolError(f"GET /v1/models answered {reply.status_code}: {reply.text[:200]}")
    try:
        data = reply.json()
    except ValueError as error:
        raise exc.ProtocolError("GET /v1/models did not answer JSON") from error
    if not isinstance(data, dict) or not isinstance(data.get("models"), dict):
        raise exc.ProtocolError("GET /v1/models did not answer a schema document")
    return data


def _refuse_plain_http_token(url: str, token: str | None) -> None:
    parts = urllib.parse.urlsplit(url)
    if not token or parts.scheme != "http":
        return
    host = parts.hostname or ""
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        raise exc.UsageError(f"refusing to send a token over plain http:// to {host}; use https://")


def check_command(
    targets: Sequence[str], url: str | None, token: str | None, *, out: TextIO = sys.stdout
) -> int:
    """``durable check MODULE... --url URL``: compare the local models with the server's.

    Exit status 0 when they match, 1 listing every difference, 2 when the
    server could not be asked.
    """
    settings = Settings.from_env()
    url = url or settings.url
    if not url:
        print("durable: give --url or set CLOUDFLARE_WORKER_URL", file=sys.stderr)
        return 2
    local = document_of(_load(targets))
    try:
        remote = fetch_schema_document(url, token or settings.token)
    except exc.DurableError as error:
        print(f"durable: {error.message}", file=sys.stderr)
        return 2
    differences = compare_documents(local, remote)
    if not differences:
        print(f"durable: {url} serves these models as defined here", file=out)
        return 0
    print(
        f"durable: {len(differences)} difference(s) between the local models and {url}:", file=out
    )
    for line in differences:
        print(f"  {line}", file=out)
    return 1

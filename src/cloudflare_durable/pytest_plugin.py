"""pytest fixtures for code built on cloudflare-durable.

Installed with the package and registered through the ``pytest11`` entry point:
nothing to import. Three fixtures, each on a real host:

``durable_client``
    A fresh in-memory embedded host for one test, installed as the default
    client: ``Counter.get("c1")`` with no ``client=`` uses it, and method bodies
    run on it. An async fixture: mark the test ``@pytest.mark.anyio`` (anyio's
    plugin comes with anyio) or use pytest-asyncio in auto mode.
``durable_server``
    ``durable serve`` in a child process on 127.0.0.1 and a free port, for the
    session, with a random token: ``.url``, ``.token``, ``.client()``,
    ``.restart()``, ``.kill()`` (a :class:`cloudflare_durable.testing.NetworkHost`).
    It serves the module named by the ``durable_models`` ini option, or by
    overriding the ``durable_models`` fixture.
``durable_worker``
    The Worker on workerd (Miniflare) for the session, with the same token
    (a :class:`cloudflare_durable.testing.WorkerHost`). It runs the project in
    the ``durable_worker_dir`` ini option (default: the current directory, a
    project made by ``durable init worker``; in a checkout of cloudflare-durable,
    its ``worker/``). Skipped, saying why, when Node or
    the project's ``node_modules`` is missing.

The servers are shared by the session (starting one takes a moment): give each
test its own object ids. ``durable_token`` (session) is the token both use;
override it to choose one.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import AsyncIterator, Iterator

import pytest

from ._client import DurableClient, install_default
from .testing import NetworkHost, WorkerHost, default_worker_dir

__all__ = [
    "durable_client",
    "durable_models",
    "durable_server",
    "durable_token",
    "durable_worker",
    "pytest_addoption",
]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        "durable_models",
        "module durable_server serves: a dotted name, or a .py file relative to the rootdir",
        default="",
    )
    parser.addini(
        "durable_worker_dir",
        "Worker project durable_worker runs, relative to the rootdir (default: current folder)",
        default="",
    )


@pytest.fixture
async def durable_client() -> AsyncIterator[DurableClient]:
    """A fresh in-memory embedded host, the default client for the test."""
    async with DurableClient(store=":memory:") as client:
        undo = install_default(client)
        try:
            yield client
        finally:
            undo()


@pytest.fixture(scope="session")
def durable_token() -> str:
    """The bearer token of ``durable_server`` and ``durable_worker`` (random by default)."""
    return secrets.token_urlsafe(24)


@pytest.fixture(scope="session")
def durable_models(pytestconfig: pytest.Config) -> str:
    """The module ``durable_server`` serves (the ``durable_models`` ini option)."""
    value = str(pytestconfig.getini("durable_models")).strip()
    if not value:
        raise pytest.UsageError(
            "durable_server needs the module to serve: set the ini option durable_models "
            "(e.g. durable_models = myapp.models, or myapp/models.py), or override the "
            "durable_models fixture"
        )
    if value.endswith(".py"):
        return str(pytestconfig.rootpath / value)
    return value


@pytest.fixture(scope="session")
def durable_server(
    durable_models: str,
    durable_token: str,
    pytestconfig: pytest.Config,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[NetworkHost]:
    """``durable serve`` on 127.0.0.1, storing in a temporary SQLite file."""
    store = tmp_path_factory.mktemp("durable-server") / "state.sqlite3"
    path = os.pathsep.join(filter(None, [str(pytestconfig.rootpath), os.environ.get("PYTHONPATH")]))
    with NetworkHost(
        durable_models, store=store, token=durable_token, env={"PYTHONPATH": path}
    ) as server:
        yield server


@pytest.fixture(scope="session")
def durable_worker(
    durable_token: str, pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerHost]:
    """The Worker project on workerd, persisting to a temporary folder."""
    configured = str(pytestconfig.getini("durable_worker_dir")).strip()
    project = pytestconfig.rootpath / configured if configured else default_worker_dir()
    if shutil.which("node") is None:
        pytest.skip("durable_worker needs Node.js (no 'node' on PATH) to run the Worker on workerd")
    if not (project / "wrangler.jsonc").is_file():
        pytest.skip(
            f"durable_worker: {project} is not a Worker project (no wrangler.jsonc); "
            "set the ini option durable_worker_dir"
        )
    if not (project / "node_modules").is_dir():
        pytest.skip(f"durable_worker: run 'npm install' in {project} first (no node_modules)")
    persist = tmp_path_factory.mktemp("durable-worker")
    with WorkerHost(persist, token=durable_token, worker_dir=project) as worker:
        yield worker

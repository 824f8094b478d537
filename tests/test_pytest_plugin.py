"""The pytest plugin (``cloudflare_durable.pytest_plugin``, entry point ``pytest11``):
used by this suite itself, by the example project, and by a project whose
cloudflare-durable comes from a built wheel rather than this checkout."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import cloudflare_durable
from cloudflare_durable import DurableClient
from cloudflare_durable.testing import NetworkHost, WorkerHost

from .conftest import ROOT, TOKEN
from .models import Auction, Counter, Wallet


@pytest.mark.anyio
async def test_durable_client_is_the_default_client(durable_client: DurableClient) -> None:
    counter = Counter.get("c")
    assert counter.durable_client is durable_client
    assert await counter.increment(2) == 2
    assert durable_client.settings.store == ":memory:"


@pytest.mark.anyio
async def test_each_test_gets_a_fresh_host(durable_client: DurableClient) -> None:
    assert await Counter.get("c").increment(1) == 1  # nothing left by the test above


@pytest.mark.anyio
async def test_method_bodies_run_on_it(durable_client: DurableClient) -> None:
    await Wallet.get("ann").deposit(50)
    auction = Auction.get("a")
    await auction.update(item="a teapot")
    assert await auction.bid("ann", 12) == 1  # the auction calls the wallet
    assert (await Wallet.get("ann").load()).holds == {"a": 12}


@pytest.mark.anyio
async def test_durable_server(durable_server: NetworkHost, oid: str) -> None:
    assert durable_server.token == TOKEN  # this suite's conftest overrides durable_token
    async with durable_server.client(timeout=10) as client:
        assert await client.get(Counter, oid).increment(3) == 3


@pytest.mark.anyio
async def test_durable_worker(durable_worker: WorkerHost, oid: str) -> None:
    async with durable_worker.client(timeout=10) as client:
        assert await client.get(Counter, oid).increment(4) == 4


def _pytest(
    folder: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("CLOUDFLARE_", "PYTEST_"))}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", *args],
        cwd=folder,
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_example_project() -> None:
    result = _pytest(ROOT / "examples" / "testing")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "10 passed" in result.stdout


USER_TESTS = """
import os

import pytest

import cloudflare_durable
from models import Tally

pytestmark = pytest.mark.anyio


def test_the_package_is_the_installed_one() -> None:
    assert cloudflare_durable.__file__.startswith(os.environ["INSTALLED"])


async def test_client(durable_client) -> None:
    assert await Tally.get("t").add(2) == 2


async def test_server(durable_server, anyio_backend) -> None:
    async with durable_server.client() as client:
        assert await client.get(Tally, anyio_backend).add(3) == 3


async def test_worker(durable_worker) -> None:
    async with durable_worker.client() as client:
        assert await client.get(Tally, "t").increment(1) >= 1
"""

USER_MODELS = """
from cloudflare_durable import DurableModel, remote


class Tally(DurableModel, name="Counter"):  # served by the Worker in worker/ too
    value: int = 0

    @remote
    async def increment(self, by: int = 1) -> int:
        self.value += by
        return self.value

    @remote
    async def add(self, by: int) -> int:
        return await self.increment(by)
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """cloudflare-durable installed from a freshly built wheel, in a folder of its own."""
    folder = tmp_path_factory.mktemp("wheel")
    pip = [sys.executable, "-m", "pip"]
    subprocess.run(
        [*pip, "wheel", "-q", "--no-deps", "-w", str(folder), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    [wheel] = folder.glob("cloudflare_durable-*.whl")
    target = folder / "site"
    subprocess.run(
        [*pip, "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return target


def _user_project(root: Path, worker_dir: Path | None) -> Path:
    root.mkdir()
    (root / "models.py").write_text(USER_MODELS)
    (root / "test_models.py").write_text(textwrap.dedent(USER_TESTS))
    ini = "[pytest]\npythonpath = .\ndurable_models = models.py\n"
    if worker_dir is not None:
        ini += f"durable_worker_dir = {worker_dir}\n"
    (root / "pytest.ini").write_text(ini)
    return root


def test_an_installed_package_provides_the_fixtures(installed: Path, tmp_path: Path) -> None:
    """A project outside this checkout, with the worker project it deploys (here worker/,
    whose Counter has the same methods); the plugin comes from the wheel's entry point."""
    worker_dir = ROOT / "worker"
    if not WorkerHost.available(worker_dir):
        pytest.skip("worker/ has no node_modules (npm ci)")
    project = _user_project(tmp_path / "user", worker_dir)
    env = {"PYTHONPATH": str(installed), "INSTALLED": str(installed)}
    result = _pytest(project, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "7 passed" in result.stdout  # one plain test, three on asyncio and on trio


def test_without_node_the_worker_fixture_skips_saying_why(tmp_path: Path) -> None:
    project = _user_project(tmp_path / "user", None)
    python_only = tmp_path / "bin"
    python_only.mkdir()
    (python_only / "python").symlink_to(sys.executable)
    assert shutil.which("node", path=str(python_only)) is None
    result = _pytest(project, "-k", "worker", env={"PATH": str(python_only)})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "needs Node.js" in result.stdout


def test_without_models_the_server_fixture_says_what_to_set(tmp_path: Path) -> None:
    project = _user_project(tmp_path / "user", None)
    (project / "pytest.ini").write_text("[pytest]\npythonpath = .\n")
    result = _pytest(project, "-k", "server")
    assert result.returncode != 0
    assert "durable_models" in result.stdout


def test_the_plugin_is_registered_by_entry_point(pytestconfig: pytest.Config) -> None:
    plugin = pytestconfig.pluginmanager.get_plugin("cloudflare_durable")
    assert plugin is not None
    assert plugin.__name__ == "cloudflare_durable.pytest_plugin"
    assert Path(cloudflare_durable.__file__).parent in Path(plugin.__file__).parents

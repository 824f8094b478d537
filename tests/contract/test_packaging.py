"""The wheel carries the TypeScript library: an installed package (not a source
checkout) scaffolds Worker projects and runs them on workerd."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from .conftest import TOKEN, Project, tool_env

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.worker, pytest.mark.slow]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The package installed from a freshly built wheel, in a folder of its own."""
    folder = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(folder), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    [wheel] = folder.glob("cloudflare_durable-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "cloudflare_durable/_worker/package.json" in names
    assert "cloudflare_durable/_worker/src/index.ts" in names
    assert "cloudflare_durable/_worker/scripts/serve.mjs" in names
    assert not [n for n in names if "node_modules" in n or "/test/" in n]
    target = folder / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return target


def run_installed(site: Path, code: str, cwd: Path) -> str:
    """Run ``code`` with the installed package ahead of this checkout on the path."""
    env = {**tool_env(), "PYTHONPATH": str(site)}
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_an_installed_package_finds_its_own_library(installed: Path, tmp_path: Path) -> None:
    out = run_installed(
        installed,
        """
        import cloudflare_durable
        from cloudflare_durable._codegen import library_dir
        print(cloudflare_durable.__file__)
        print(library_dir())
        """,
        tmp_path,
    )
    package, library = out.split()
    assert package.startswith(str(installed))
    assert library == str(installed / "cloudflare_durable" / "_worker")


def test_an_installed_package_scaffolds_and_serves_a_project(
    installed: Path, project: Project, tmp_path: Path
) -> None:
    root = tmp_path / "from-wheel"
    run_installed(
        installed,
        f"""
        from cloudflare_durable._cli import main
        argv = ["init", "worker", {str(root)!r}, "--models", {str(project.module)!r}]
        raise SystemExit(main(argv))
        """,
        tmp_path,
    )
    vendored = root / "vendor" / "cloudflare-durable" / "src" / "types.ts"
    assert (
        vendored.read_text() == (installed / "cloudflare_durable/_worker/src/types.ts").read_text()
    )
    (root / "src" / "models" / "game.ts").write_text(
        (project.root / "src/models/game.ts").read_text()
    )
    os.symlink(project.root / "node_modules", root / "node_modules")
    out = run_installed(
        installed,
        f"""
        import httpx
        from cloudflare_durable.testing import WorkerHost
        state = {str(tmp_path / "state")!r}
        with WorkerHost(state, token={TOKEN!r}, worker_dir={str(root)!r}) as worker:
            assert "_worker/scripts/serve.mjs" in " ".join(worker.command())
            reply = httpx.post(worker.url + "/v1/objects/contract.Game/g/call/score",
                               json={{"args": {{"player": "ann", "points": 2}}}},
                               headers={{"Authorization": "Bearer {TOKEN}"}}, timeout=10)
            print(reply.status_code, reply.json()["result"])
        """,
        tmp_path,
    )
    assert out.split()[-2:] == ["200", "2"]

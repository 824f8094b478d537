"""A Worker project made by ``durable init worker`` from ``models.py``, in a temporary
folder outside the repository: installed, typechecked, its stubs filled in, and
served on workerd for the whole session."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from cloudflare_durable.testing import NetworkHost, WorkerHost

HERE = Path(__file__).resolve().parent
TOKEN = "contract-token"

#: The bodies of contract.Game's remote methods, as a user would write them.
GAME_TS = """import { ValueError, type Json } from "cloudflare-durable";
import { GameBase } from "../generated/game";
import type { Point } from "../generated/types";

export class Game extends GameBase {
  override score(player: string, points: number): number {
    if (points <= 0) throw new ValueError("points must be positive");
    const total = (this.state.scores[player] ?? 0) + points;
    this.state.scores[player] = total;
    this.emit("contract.Scored", { player, points });
    return total;
  }

  override leader(): string | null {
    const players = Object.keys(this.state.scores);
    if (players.length === 0) return null;
    return players.reduce((a, b) => (this.state.scores[b]! > this.state.scores[a]! ? b : a));
  }

  override probe(
    count: number, when: string, point: Point, tags: string[], mode: "a" | "b", extra: Json,
  ): boolean {
    void [count, when, point, tags, mode, extra];
    return true;
  }
}
"""


def tool_env() -> dict[str, str]:
    """The environment for npm and ``durable``: this interpreter's scripts first on PATH."""
    env = {**os.environ, "WRANGLER_SEND_METRICS": "false"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def run(*argv: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        list(argv), cwd=cwd, env=tool_env(), capture_output=True, text=True, timeout=300
    )
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def durable(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run(sys.executable, "-m", "cloudflare_durable._cli", *args, cwd=cwd, check=check)


def npm_available() -> bool:
    if shutil.which("node") and shutil.which("npm"):
        return True
    if os.environ.get("CI"):
        pytest.fail("node and npm are needed for the Worker project tests")
    return False


@dataclass
class Project:
    """A scaffolded, installed Worker project and the module it was made from."""

    root: Path
    module: Path
    timings: dict[str, float]


@pytest.fixture(scope="session")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    if not npm_available():
        pytest.skip("node and npm are not installed")
    base = tmp_path_factory.mktemp("outside")
    module = base / "game_models.py"
    shutil.copy(HERE / "models.py", module)
    root = base / "game"
    timings: dict[str, float] = {}
    started = time.perf_counter()
    durable("init", "worker", str(root), "--models", str(module), cwd=base)
    timings["init"] = time.perf_counter() - started
    (root / "src" / "models" / "game.ts").write_text(GAME_TS)
    mark = time.perf_counter()
    run("npm", "install", "--no-audit", "--no-fund", "--prefer-offline", cwd=root)
    timings["npm install"] = time.perf_counter() - mark
    mark = time.perf_counter()
    run("npm", "run", "typecheck", cwd=root)
    timings["typecheck"] = time.perf_counter() - mark
    timings["since init"] = time.perf_counter() - started
    return Project(root, module, timings)


@pytest.fixture(scope="session")
def project_worker(
    project: Project, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerHost]:
    mark = time.perf_counter()
    with WorkerHost(
        tmp_path_factory.mktemp("game-state"), token=TOKEN, worker_dir=project.root
    ) as server:
        project.timings["serve"] = time.perf_counter() - mark
        project.timings["init to served"] = project.timings["since init"] + project.timings["serve"]
        yield server


@pytest.fixture(scope="session")
def contract_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NetworkHost]:
    """``durable serve`` on the same models, for the same tests."""
    store = tmp_path_factory.mktemp("contract-host") / "state.sqlite3"
    with NetworkHost(HERE / "models.py", store=store, token=TOKEN) as server:
        yield server

"""``durable init worker`` end to end: a project scaffolded outside the repository from
a Python module, installed, typechecked, run on workerd and driven from Python."""

from __future__ import annotations

import datetime
import json
import os
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from cloudflare_durable import (
    ConflictError,
    DurableClient,
    ObjectNotFoundError,
    RemoteError,
    ValidationError,
)
from cloudflare_durable._codegen import GENERATED_MARK, library_dir
from cloudflare_durable._codegen.scaffold import VENDOR, toolchain
from cloudflare_durable._models import events_in, models_in
from cloudflare_durable._schema import schema_document, schema_json
from cloudflare_durable.testing import WorkerHost

from . import models
from .conftest import TOKEN, Project, durable, run
from .models import Everything, Game, Point, Profile, Scored

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.worker, pytest.mark.anyio]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def client(project_worker: WorkerHost) -> AsyncIterator[DurableClient]:
    async with DurableClient(project_worker.url, token=TOKEN, timeout=15.0) as c:
        yield c


def test_the_project_has_bindings_generated_code_stubs_and_the_library(project: Project) -> None:
    root = project.root
    config = (root / "wrangler.jsonc").read_text()
    for cls, binding in (("Everything", "EVERYTHING"), ("Game", "GAME"), ("Profile", "PROFILE")):
        assert f'{{ "name": "{binding}", "class_name": "{cls}" }}' in config
    assert '{ "name": "DURABLE_INDEX", "class_name": "DurableIndex" }' in config
    assert '"new_sqlite_classes": ["Everything", "Game", "Profile", "DurableIndex"]' in config
    manifest = json.loads((root / "package.json").read_text())
    assert manifest["devDependencies"] == toolchain()
    assert manifest["dependencies"] == {"cloudflare-durable": f"file:{VENDOR}"}
    assert set(manifest["scripts"]) >= {"generate", "dev", "typecheck", "test", "deploy"}
    assert str(project.module) in manifest["scripts"]["generate"]
    generated = sorted(p.name for p in (root / "src" / "generated").iterdir())
    assert generated == [
        "everything.ts",
        "game.ts",
        "profile.ts",
        "schema.ts",
        "types.ts",
        "worker.ts",
    ]
    for path in (root / "src" / "generated").iterdir():
        assert path.read_text().startswith(GENERATED_MARK)
    assert sorted(p.name for p in (root / "src" / "models").iterdir()) == ["game.ts"]
    assert (root / VENDOR / "src" / "index.ts").read_text() == (
        library_dir() / "src" / "index.ts"
    ).read_text()


def test_the_repository_worker_uses_the_same_toolchain() -> None:
    worker = json.loads((ROOT / "worker" / "package.json").read_text())
    assert worker["devDependencies"] == toolchain()


def test_stubs_answer_not_implemented_until_written(project: Project, tmp_path: Path) -> None:
    stub = (project.root / "src" / "models" / "game.ts").read_text()
    assert "override score" in stub  # the test replaced the stub; a fresh one is checked below
    fresh = tmp_path / "fresh"
    durable("init", "worker", str(fresh), "--models", str(project.module), cwd=tmp_path)
    text = (fresh / "src" / "models" / "game.ts").read_text()
    assert 'throw new NotImplementedError("contract.Game.score is not implemented' in text
    assert "override probe(count: number, when: string, point: Point, tags: string[]" in text


def test_init_refuses_a_folder_that_is_not_empty(project: Project) -> None:
    result = durable(
        "init", "worker", str(project.root), "--models", str(project.module), cwd=project.root,
        check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert "is not empty" in result.stderr


async def test_a_state_only_model_runs_from_generated_code_alone(client: DurableClient) -> None:
    handle = client.get(Everything, "e-1")
    snapshot = await handle.load()
    assert (snapshot.count, snapshot.point, snapshot.durable_version) == (0, Point(x=0), 0)
    at = datetime.datetime(2024, 5, 1, 12, 30, tzinfo=datetime.UTC)
    created = await client.create(Everything, "e-2", count=4, at=at, tags=["x"])
    assert (created.count, created.at, created.durable_version) == (4, at, 1)
    with pytest.raises(ValidationError) as caught:
        await client.create(Everything, "e-3", count=3)
    assert caught.value.details["errors"][0]["type"] == "multiple_of"
    updated = await client.get(Everything, "e-2").update(name="zed", if_version=1)
    assert (updated.name, updated.count, updated.durable_version) == ("zed", 4, 2)
    with pytest.raises(ConflictError):
        await client.get(Everything, "e-2").update(name="old", if_version=1)
    with pytest.raises(ValidationError):
        await client.get(Everything, "e-2").update(name="Zed")  # the pattern wants a-z first
    async with client.get(Everything, "e-2").subscribe() as snapshots:
        seen = [await anext(snapshots)]
        await client.get(Everything, "e-2").update(flag=True)
        seen.append(await anext(snapshots))
    assert [(s.durable_version, s.flag) for s in seen] == [(2, False), (3, True)]
    assert await client.get(Everything, "e-2").delete() is True
    gone = await client.get(Everything, "e-2").load()
    assert (gone.count, gone.durable_version) == (0, 4)


async def test_a_model_with_a_required_field_must_be_created(client: DurableClient) -> None:
    with pytest.raises(ObjectNotFoundError):
        await client.get(Profile, "p-1").load()
    with pytest.raises(ValidationError):
        await client.create(Profile, "p-1", email="x")
    profile = await client.create(Profile, "p-1", email="ann@example.com")
    assert (profile.email, profile.age) == ("ann@example.com", 0)


async def test_a_model_with_methods_runs_once_its_bodies_are_written(client: DurableClient) -> None:
    game = client.get(Game, "g-1")
    async with game.events(Scored) as events:
        assert await game.score("ann", 3) == 3
        assert await game.score("bob") == 1
        assert await game.leader() == "ann"
        first = await anext(events)
        assert first == Scored(player="ann", points=3)
    with pytest.raises(RemoteError) as caught:
        await game.score("ann", -1)
    assert (caught.value.type_name, caught.value.details["message"]) == (
        "ValueError",
        "points must be positive",
    )
    snapshot = await game.load()
    assert snapshot.scores == {"ann": 3, "bob": 1}
    when = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)
    assert await game.probe(2, when, Point(x=1)) is True
    with pytest.raises(ValidationError):
        await game.probe(3, when, Point(x=1))


async def test_durable_check_finds_the_project_worker_in_step(
    project: Project, project_worker: WorkerHost, tmp_path: Path
) -> None:
    same = durable("check", str(project.module), "--url", project_worker.url, "--token", TOKEN,
                   cwd=tmp_path, check=False)  # fmt: skip
    assert same.returncode == 0, same.stdout + same.stderr
    drifted = tmp_path / "drifted_models.py"
    text = project.module.read_text()
    text = text.replace(
        "    rounds: int = Field(default=0, ge=0)\n", "    rounds: int = Field(default=0, ge=1)\n"
    )
    text = text.replace(
        "    email: str = Field(min_length=3)\n",
        "    email: str = Field(min_length=3)\n    phone: str = ''\n",
    )
    drifted.write_text(text)
    result = durable("check", str(drifted), "--url", project_worker.url, "--token", TOKEN,
                     cwd=tmp_path, check=False)  # fmt: skip
    assert result.returncode == 1
    assert "model contract.Game: field rounds changed" in result.stdout
    assert "model contract.Profile: field phone missing on the server" in result.stdout
    refused = durable("check", str(project.module), "--url", project_worker.url, "--token", "no",
                      cwd=tmp_path, check=False)  # fmt: skip
    assert refused.returncode == 2


def test_the_worker_serves_the_document_of_its_module(project_worker: WorkerHost) -> None:
    reply = httpx.get(
        f"{project_worker.url}/v1/models", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10
    )
    assert reply.status_code == 200
    assert reply.text == schema_json(schema_document(models_in(models), events_in(models)))


def test_npm_test_passes_in_the_project(project: Project) -> None:
    result = run("npm", "test", cwd=project.root, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def test_a_python_change_breaks_typecheck_until_the_typescript_follows(
    project: Project, tmp_path: Path
) -> None:
    module = tmp_path / "drift_models.py"
    shutil.copy(project.module, module)
    root = tmp_path / "drift"
    durable("init", "worker", str(root), "--models", str(module), cwd=tmp_path)
    (root / "src" / "models" / "game.ts").write_text(
        (project.root / "src" / "models" / "game.ts").read_text()
    )
    os.symlink(project.root / "node_modules", root / "node_modules")
    run("npm", "run", "typecheck", cwd=root)

    text = module.read_text()
    added = text.replace(
        "    @remote\n    async def leader(self)",
        "    @remote\n    async def extend(self, rounds: int) -> int:\n        return rounds\n\n"
        "    @remote\n    async def leader(self)",
    )
    module.write_text(added)
    run("npm", "run", "generate", cwd=root)
    assert (root / "src" / "models" / "game.ts").read_text() == (
        project.root / "src" / "models" / "game.ts"
    ).read_text()  # generate never touches an implementation
    failed = run("npm", "run", "typecheck", cwd=root, check=False)
    assert failed.returncode != 0
    assert "does not implement inherited abstract member extend" in failed.stdout

    module.write_text(
        text.replace(
            "player: str, points: int = 1", "player: str, points: int = 1, bonus: bool = False"
        )
    )
    run("npm", "run", "generate", cwd=root)
    failed = run("npm", "run", "typecheck", cwd=root, check=False)
    assert failed.returncode != 0
    assert re.search(
        r"contract\.Game\.score\(player: string, points: number, bonus: boolean\)", failed.stdout
    )

    module.write_text(
        text.replace(
            'class Scored(Event, name="contract.Scored"):',
            'class Scored(Event, name="contract.Points"):',
        )
    )
    run("npm", "run", "generate", cwd=root)
    failed = run("npm", "run", "typecheck", cwd=root, check=False)
    assert failed.returncode != 0
    assert '"contract.Scored"' in failed.stdout


def test_time_from_init_to_a_served_worker(project: Project, project_worker: WorkerHost) -> None:
    timings = project.timings
    served = timings["init"] + timings["npm install"] + timings["serve"]
    print(
        "\ndurable init worker -> served Worker: "
        + ", ".join(f"{k} {v:.2f} s" for k, v in timings.items())
        + f"; init + npm install + serve = {served:.2f} s"
    )
    assert served < 180

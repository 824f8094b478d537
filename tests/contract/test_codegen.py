"""``durable codegen typescript``: the checked-in example code is current, types the
Worker cannot check as pydantic does are refused, Python-only behaviour is reported."""

from __future__ import annotations

import datetime
import decimal
import re
from pathlib import Path
from typing import Annotated

import pytest
from pydantic import AfterValidator, BaseModel, Field, StringConstraints

from cloudflare_durable import DurableModel, remote
from cloudflare_durable._codegen import generate, stale_files, write_files
from cloudflare_durable._codegen.fidelity import inspect_models
from cloudflare_durable._codegen.typescript import RESERVED_METHODS, UnsupportedSchemaError
from cloudflare_durable._schema import schema_document

from . import models
from ._support import ROOT, examples_document
from .conftest import durable

GENERATED = ROOT / "worker" / "src" / "generated"


def test_the_checked_in_example_code_is_what_the_examples_generate() -> None:
    files = generate(examples_document())
    on_disk = {path.name: path.read_text() for path in GENERATED.glob("*.ts")}
    assert sorted(on_disk) == sorted(files)
    for name, text in files.items():
        assert on_disk[name] == text, (
            f"worker/src/generated/{name} is out of date: run durable codegen typescript "
            "examples/counter.py examples/chat_room.py examples/collaborative_document.py "
            "examples/bank.py examples/auction.py --out worker/src/generated"
        )


def test_codegen_and_the_worker_library_reserve_the_same_method_names() -> None:
    """``durable codegen`` refuses the names the Worker's base class refuses."""
    source = (ROOT / "worker" / "lib" / "src" / "object.ts").read_text()
    found = re.search(r"const RESERVED = new Set\(\[(.*?)\]\);", source, re.S)
    assert found is not None
    assert set(re.findall(r'"([^"]+)"', found.group(1))) == RESERVED_METHODS


def test_the_test_workers_code_is_what_its_models_generate() -> None:
    """``worker/test/app`` serves test models of ``tests/models.py`` on workerd."""
    from cloudflare_durable._codegen.commands import document_of
    from cloudflare_durable._models import load_module

    app = ROOT / "worker" / "test" / "app"
    files = generate(document_of([load_module(str(app / "app_models.py"))]))
    on_disk = {path.name: path.read_text() for path in (app / "src" / "generated").glob("*.ts")}
    assert on_disk == files, (
        "worker/test/app/src/generated is out of date: run durable codegen typescript "
        "worker/test/app/app_models.py --out worker/test/app/src/generated"
    )


def test_the_cli_writes_the_same_files(tmp_path: Path) -> None:
    examples = [
        str(ROOT / "examples" / f)
        for f in (
            "counter.py",
            "chat_room.py",
            "collaborative_document.py",
            "bank.py",
            "auction.py",
        )
    ]
    out = tmp_path / "generated"
    durable("codegen", "typescript", *examples, "--out", str(out), cwd=tmp_path)
    assert {p.name: p.read_text() for p in out.iterdir()} == {
        p.name: p.read_text() for p in GENERATED.iterdir()
    }


def test_regenerating_removes_generated_files_and_keeps_others(tmp_path: Path) -> None:
    files = generate(schema_document([models.Everything]), worker=None)
    write_files(tmp_path, {**files, "old.ts": files["types.ts"]})
    (tmp_path / "mine.ts").write_text("export const mine = 1;\n")
    changed = write_files(tmp_path, files)
    assert changed == [tmp_path / "old.ts"]
    assert not (tmp_path / "old.ts").exists()
    assert (tmp_path / "mine.ts").exists()
    assert stale_files(tmp_path, files) == []
    (tmp_path / "types.ts").write_text("// mine now\n")
    with pytest.raises(FileExistsError):
        write_files(tmp_path, files)


def test_every_feature_of_the_contract_models_generates() -> None:
    files = generate(schema_document([models.Everything, models.Game], [models.Scored]))
    everything = files["everything.ts"]
    for line in (
        "count: t.int.with({ ge: 0, le: 1000, multipleOf: 2 }).default(0),",
        "ratio: t.float.with({ gt: 0, lt: 1 }).default(0.5),",
        'name: t.str.with({ minLength: 1, maxLength: 8, pattern: "^[a-z]" }).default("a"),',
        "tags: t.list(t.str, { maxLength: 3 }).default([]),",
        'mode: t.literal("a", "b", 1).default("a"),',
        'kind: Kind.default("small"),',
        'either: t.union([t.int, t.str], ["int", "str"]).default(0),',
        'shape: t.nullable(t.tagged("kind", { "circle": Circle, "square": Square }))',
        "at: t.nullable(t.datetime).default(null),",
        "uid: t.nullable(t.uuid).default(null),",
        "anything: t.json.default(null),",
    ):
        assert line in everything
    assert (
        "export class Everything extends ModelBase<EverythingState>(EverythingSpec)" in everything
    )
    game = files["game.ts"]
    assert "abstract score(player: string, points: number): Awaitable<number>;" in game
    assert "abstract leader(): Awaitable<string | null>;" in game
    assert 'export type Kind = "small" | "large";' in files["types.ts"]
    assert '"contract.Scored": Scored;' in files["types.ts"]


class WithTuple(DurableModel, name="codegen.WithTuple"):
    pair: tuple[int, int] = (0, 0)


class WithDecimal(DurableModel, name="codegen.WithDecimal"):
    price: decimal.Decimal = decimal.Decimal(0)


class WithSet(DurableModel, name="codegen.WithSet"):
    tags: set[str] = set()


class Stamp(BaseModel):
    at: Annotated[datetime.datetime, Field(gt=datetime.datetime(2020, 1, 1))]


class WithPythonOnly(DurableModel, name="codegen.WithPythonOnly"):
    word: Annotated[str, AfterValidator(str.lower)] = ""
    stamps: list[Stamp] = []

    @remote
    async def touch(
        self, note: Annotated[str, StringConstraints(strip_whitespace=True)] = ""
    ) -> None:
        pass


def test_types_the_worker_cannot_check_are_refused_by_name() -> None:
    findings = inspect_models([WithTuple, WithDecimal, WithSet], [])
    assert [line.split(":")[0] for line in findings.errors] == [
        "codegen.WithTuple.pair",
        "codegen.WithDecimal.price",
        "codegen.WithSet.tags",
    ]
    assert "cannot check a tuple" in findings.errors[0]
    with pytest.raises(UnsupportedSchemaError, match="tuples are not supported"):
        generate(schema_document([WithTuple]))


def test_python_only_behaviour_is_reported_as_warnings() -> None:
    findings = inspect_models([WithPythonOnly], [])
    assert findings.errors == []
    assert [line.split(":")[0] for line in findings.warnings] == [
        "codegen.WithPythonOnly.word",
        "codegen.WithPythonOnly.stamps[].at",
        "codegen.WithPythonOnly.touch().note",
    ]


def test_the_cli_refuses_unsupported_models_and_prints_warnings(tmp_path: Path) -> None:
    module = tmp_path / "odd.py"
    module.write_text(
        "import decimal\nfrom typing import Annotated\nfrom pydantic import AfterValidator\n"
        "from cloudflare_durable import DurableModel\n\n"
        "class Odd(DurableModel):\n    price: decimal.Decimal = decimal.Decimal(0)\n\n"
        "class Shouty(DurableModel):\n    word: Annotated[str, AfterValidator(str.upper)] = ''\n"
    )
    result = durable(
        "codegen", "typescript", str(module), "--out", "gen", cwd=tmp_path, check=False
    )
    assert result.returncode == 2
    assert "Odd.price: the Worker cannot check a decimal" in result.stderr
    assert "warning: Shouty.word: a validator function runs in Python only" in result.stderr
    assert not (tmp_path / "gen").exists()


def test_a_method_name_the_worker_base_class_uses_is_refused() -> None:
    class Clash(DurableModel, name="codegen.Clash"):
        @remote
        async def dispatch(self) -> None:
            pass

    with pytest.raises(UnsupportedSchemaError, match="base class uses the name 'dispatch'"):
        generate(schema_document([Clash]))

"""The schema document: its content for the example models, its determinism, and the
comparison behind ``durable check`` and ``SchemaMismatchError``."""

from __future__ import annotations

import copy
import datetime
import enum
import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Annotated, Any, Literal

import pytest
from pydantic import BaseModel, Field

import cloudflare_durable
from cloudflare_durable import DurableModel, Event, SchemaMismatchError, remote
from cloudflare_durable._models import events_in, models_in
from cloudflare_durable._schema import (
    check_models,
    check_schema,
    compare_documents,
    schema_document,
    schema_json,
)
from tests.contract._support import examples_document

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = [
    ROOT / "examples" / name
    for name in ("counter.py", "chat_room.py", "collaborative_document.py", "bank.py", "auction.py")
]


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Bid(BaseModel):
    bidder: str = Field(min_length=1)
    amount: int = Field(ge=1)
    at: datetime.datetime


class BidPlaced(Event, name="schema.BidPlaced"):
    amount: int


class Auction(DurableModel, name="schema.Auction"):
    """An auction: bids above a reserve."""

    title: Annotated[str, Field(max_length=80, pattern=r"^\S")] = "untitled"
    reserve_price: int = Field(default=0, ge=0, description="lowest accepted bid")
    step: float = Field(default=1.0, gt=0, multiple_of=0.5)
    bids: list[Bid] = Field(default_factory=list, max_length=1000)
    state: Literal["open", "closed"] = "open"
    color: Color | None = None
    id: uuid.UUID | None = None
    opens: datetime.date | None = None
    tags: dict[str, int] = {}

    @remote
    async def bid(self, bidder: str, amount: int, at: datetime.datetime | None = None) -> int:
        self.emit(BidPlaced(amount=amount))
        return amount


class Settings(DurableModel, name="schema.Settings"):
    theme: str = "dark"


def document() -> dict[str, Any]:
    return schema_document([Auction, Settings], [BidPlaced])


def test_a_model_is_described_with_its_defaults_constraints_methods_and_events() -> None:
    doc = document()
    assert list(doc) == ["protocol", "models", "events", "$defs"]
    assert list(doc["models"]) == ["schema.Auction", "schema.Settings"]
    auction = doc["models"]["schema.Auction"]
    assert auction["schema_version"] == 1
    state = auction["state"]
    assert state["title"] == "Auction"
    assert state["additionalProperties"] is False
    fields = state["properties"]
    assert list(fields) == [
        "title", "reserve_price", "step", "bids", "state", "color", "id", "opens", "tags",
    ]  # fmt: skip
    assert fields["title"] == {
        "default": "untitled",
        "maxLength": 80,
        "pattern": r"^\S",
        "type": "string",
    }
    assert fields["reserve_price"]["minimum"] == 0
    assert fields["reserve_price"]["description"] == "lowest accepted bid"
    assert fields["step"] == {
        "default": 1.0,
        "exclusiveMinimum": 0,
        "multipleOf": 0.5,
        "type": "number",
    }
    assert fields["bids"]["default"] == []  # a constant default_factory becomes a default
    assert fields["bids"]["maxItems"] == 1000
    assert fields["state"] == {"default": "open", "enum": ["open", "closed"], "type": "string"}
    bid = doc["$defs"]["Bid"]
    assert bid["additionalProperties"] is False  # unknown members are refused at every level
    assert bid["properties"]["at"] == {"format": "date-time", "type": "string"}
    assert doc["$defs"]["Color"]["enum"] == ["red", "green"]
    method = auction["methods"]["bid"]
    assert list(method["parameters"]["properties"]) == ["bidder", "amount", "at"]
    assert method["parameters"]["required"] == ["bidder", "amount"]
    assert method["result"] == {"type": "integer"}
    assert doc["events"]["schema.BidPlaced"]["properties"] == {"amount": {"type": "integer"}}
    assert doc["models"]["schema.Settings"]["methods"] == {}


def test_the_document_is_deterministic_across_processes() -> None:
    script = (
        "import json, sys\n"
        f"sys.path.insert(0, {str(ROOT / 'examples')!r})\n"
        "import counter, chat_room, collaborative_document as d\n"
        "from cloudflare_durable._schema import *\n"
        "from cloudflare_durable._models import events_in, models_in\n"
        "mods = [counter, chat_room, d]\n"
        "doc = schema_document([m for x in mods for m in models_in(x)],"
        " [e for x in mods for e in events_in(x)])\n"
        "print(schema_json(doc))\n"
    )
    runs = {
        subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, check=True
        ).stdout
        for _ in range(2)
    }
    assert len(runs) == 1
    assert json.loads(runs.pop())["models"]["Counter"]["methods"]["increment"] == {
        "parameters": {
            "additionalProperties": False,
            "properties": {"by": {"default": 1, "type": "integer"}},
            "type": "object",
        },
        "result": {"type": "integer"},
    }


def test_schema_json_is_compact_and_keeps_field_order() -> None:
    doc = document()
    text = schema_json(doc)
    assert text == json.dumps(doc, separators=(",", ":"), ensure_ascii=False)
    assert text.index('"reserve_price"') < text.index('"step"') < text.index('"bids"')


def test_models_and_events_of_a_module() -> None:
    examples_document()  # puts examples/ on the path
    import collaborative_document

    assert [m.__name__ for m in models_in(collaborative_document)] == ["Document"]
    assert sorted(e.__name__ for e in events_in(collaborative_document)) == [
        "Edited",
        "Joined",
        "Left",
    ]


def changed(edit: Any) -> list[str]:
    local = document()
    remote = copy.deepcopy(local)
    edit(remote)
    return compare_documents(local, remote)


def test_equal_documents_have_no_differences() -> None:
    assert compare_documents(document(), document()) == []


def test_differences_name_the_model_field_method_parameter_and_event() -> None:
    auction = "schema.Auction"

    def drop_field(doc: dict[str, Any]) -> None:
        del doc["models"][auction]["state"]["properties"]["tags"]

    assert changed(drop_field) == [f"model {auction}: field tags missing on the server"]

    def add_field(doc: dict[str, Any]) -> None:
        doc["models"][auction]["state"]["properties"]["bid_count"] = {
            "type": "integer",
            "default": 0,
        }

    assert changed(add_field) == [
        f"model {auction}: field bid_count served but not defined locally"
    ]

    def constraint(doc: dict[str, Any]) -> None:
        doc["models"][auction]["state"]["properties"]["reserve_price"].pop("minimum")

    [line] = changed(constraint)
    assert line.startswith(f"model {auction}: field reserve_price changed: server ")

    def nested(doc: dict[str, Any]) -> None:
        doc["$defs"]["Bid"]["properties"]["amount"]["minimum"] = 5

    [line] = changed(nested)
    assert line.startswith(f"model {auction}: field bids changed")

    def method(doc: dict[str, Any]) -> None:
        doc["models"][auction]["methods"]["extend"] = doc["models"][auction]["methods"]["bid"]

    assert changed(method) == [f"model {auction}: method extend served but not defined locally"]

    def parameter(doc: dict[str, Any]) -> None:
        doc["models"][auction]["methods"]["bid"]["parameters"]["properties"]["amount"] = {
            "type": "number"
        }

    [line] = changed(parameter)
    assert line.startswith(f"model {auction}: method bid: parameter amount changed")

    def result(doc: dict[str, Any]) -> None:
        doc["models"][auction]["methods"]["bid"]["result"] = {"type": "string"}

    [line] = changed(result)
    assert line.startswith(f"model {auction}: method bid: result type changed")

    def event(doc: dict[str, Any]) -> None:
        del doc["events"]["schema.BidPlaced"]

    assert changed(event) == ["event schema.BidPlaced: missing on the server"]

    def version(doc: dict[str, Any]) -> None:
        doc["models"][auction]["schema_version"] = 2

    assert changed(version) == [f"model {auction}: schema_version is 2 on the server, 1 locally"]

    def required(doc: dict[str, Any]) -> None:
        doc["models"]["schema.Settings"]["state"]["required"] = ["theme"]

    assert changed(required) == ["model schema.Settings: field theme is required on the server"]

    def missing_model(doc: dict[str, Any]) -> None:
        del doc["models"]["schema.Settings"]

    assert changed(missing_model) == ["model schema.Settings: missing on the server"]


def test_descriptions_and_titles_are_not_differences() -> None:
    def reword(doc: dict[str, Any]) -> None:
        doc["models"]["schema.Auction"]["state"]["properties"]["reserve_price"]["description"] = "x"

    assert changed(reword) == []


def test_check_schema_raises_naming_each_difference_and_ignores_other_models() -> None:
    local = schema_document([Settings])
    remote = document()
    check_schema(local, remote)  # the server serves more models: fine
    remote["models"]["schema.Settings"]["state"]["properties"]["theme"]["type"] = "integer"
    with pytest.raises(SchemaMismatchError) as caught:
        check_schema(local, remote)
    assert "field theme changed" in str(caught.value)
    assert caught.value.details["differences"] == [
        line for line in caught.value.details["differences"] if "schema.Settings" in line
    ]
    assert isinstance(caught.value, cloudflare_durable.ProtocolError)


def test_durable_schema_prints_the_document(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "cloudflare_durable._cli",
            "schema",
            *map(str, EXAMPLES),
            "--compact",
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    )
    assert result.stdout == schema_json(examples_document()) + "\n"


def test_check_models_is_what_a_client_runs_at_first_contact() -> None:
    served = document()
    check_models([Settings], served)
    check_models([Auction], served, [BidPlaced])

    class Other(DurableModel, name="schema.Other"):
        x: int = 0

    with pytest.raises(SchemaMismatchError, match=r"model schema\.Other: missing on the server"):
        check_models([Other], served)
    with pytest.raises(cloudflare_durable.ProtocolError, match="not a schema document"):
        check_models([Settings], {"oops": 1})

"""Both servers validate exactly as pydantic does: generated values, for every schema
feature, sent to a real Worker serving code generated from ``models.py`` (and to
``durable serve`` on the same module) and given to pydantic's
``model_validate_json(..., strict=True, extra="forbid")``. All accept the same
values (storing the same canonical state) and refuse the same ones, with the same
error locations and types."""

from __future__ import annotations

import datetime
import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pydantic
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloudflare_durable.testing import NetworkHost, WorkerHost

from .conftest import TOKEN
from .models import Everything, Game

pytestmark = [pytest.mark.worker]

SAFE = 2**53 - 1
SETTINGS = settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.fixture(scope="module", params=["project_worker", "contract_host"])
def http(request: pytest.FixtureRequest) -> Iterator[httpx.Client]:
    server: WorkerHost | NetworkHost = request.getfixturevalue(request.param)
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=15) as client:
        yield client


# -- values -----------------------------------------------------------------------

ints = st.integers(-SAFE, SAFE)
small_ints = st.integers(-3, 1100)
# Integral floats beyond 2**53 are left out: the Worker writes them as integers
# (docs/cloudflare.md says so).
floats = st.floats(-(2.0**53), 2.0**53)
texts = st.text(max_size=8)
scalars = st.none() | st.booleans() | ints | floats | texts
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=6,
)
numbers = (
    small_ints | floats | st.sampled_from([0.0, 2.0, -0.0, 0.25, 0.5, 0.75, 1.0, 1e-12, 1e300])
)


@st.composite
def datetime_texts(draw: st.DrawFn) -> str:
    value = draw(
        st.datetimes(
            min_value=datetime.datetime(1, 1, 1), max_value=datetime.datetime(9999, 12, 31)
        )
    )
    date = draw(
        st.sampled_from(
            [value.strftime("%Y-%m-%d"), value.strftime("%Y-%m-%d").replace("-", "/", 1)]
        )
    )
    separator = draw(st.sampled_from(["T", "t", " ", "_", "x"]))
    time = draw(st.sampled_from(["%H:%M", "%H:%M:%S", "%H:%M:%S.%f", "%H"]))
    clock = value.strftime(time)
    if time.endswith("%f"):
        clock = clock[: len(clock) - 6 + draw(st.integers(0, 6))] + draw(
            st.sampled_from(["", "123", "9999"])
        )
    zone = draw(
        st.sampled_from(
            [
                "",
                "Z",
                "z",
                "+01:00",
                "-05:30",
                "+0100",
                "+01",
                "+24:00",
                "+23:59",
                "UTC",
                "+00:00",
                "-00:00",
                "+01:60",
            ]
        )
    )
    return draw(mutated(date + separator + clock + zone))


@st.composite
def date_texts(draw: st.DrawFn) -> str:
    value = draw(st.dates(min_value=datetime.date(1, 1, 1)))
    text = draw(
        st.sampled_from(
            [value.isoformat(), value.strftime("%Y%m%d"), f"{value.year}-{value.month}-{value.day}"]
        )
    )
    return draw(mutated(text))


@st.composite
def uuid_texts(draw: st.DrawFn) -> str:
    value = draw(st.uuids())
    text = draw(
        st.sampled_from(
            [str(value), value.hex, str(value).upper(), f"{{{value}}}", f"urn:uuid:{value}"]
        )
    )
    return draw(mutated(text))


@st.composite
def mutated(draw: st.DrawFn, text: str) -> str:
    """``text``, or ``text`` with one character dropped, changed or added."""
    how = draw(st.sampled_from(["same", "same", "same", "drop", "change", "add"]))
    if how == "same" or not text:
        return text
    at = draw(st.integers(0, len(text) - 1))
    other = draw(st.sampled_from(list("0123456789-:.TZ+ gx")))
    if how == "drop":
        return text[:at] + text[at + 1 :]
    if how == "change":
        return text[:at] + other + text[at + 1 :]
    return text[:at] + other + text[at:]


timestamps = st.integers(-70_000_000_000, 300_000_000_000).map(str) | st.sampled_from(
    ["0", "86400", "-86400", "1700000000", "1700000000.5", "1e3", "12.", ".5", "-0"]
)
datetimes = datetime_texts() | timestamps | ints | st.none()
dates = date_texts() | timestamps | ints | st.none()
uuids = uuid_texts() | texts | ints | st.none()


def objects(members: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """Objects with any subset of ``members`` (and, now and then, an unknown one)."""
    return st.fixed_dictionaries({}, optional={**members, "unknown": scalars})


points = objects({"x": numbers | texts, "y": numbers | st.none()})
shapes = objects(
    {
        "kind": st.sampled_from(["circle", "square", "triangle", 1]),
        "radius": numbers,
        "side": numbers | texts,
    }
)

FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "count": numbers | json_values,
    "ratio": numbers | texts,
    "step": numbers | st.booleans(),
    "name": st.text(alphabet="abzAB1 é😀", max_size=10) | json_values,
    "flag": st.booleans() | st.sampled_from([0, 1, "true", None]),
    "tags": st.lists(texts | small_ints, max_size=5) | json_values,
    "scores": st.dictionaries(texts, small_ints | floats | texts, max_size=5) | json_values,
    "mode": st.sampled_from(["a", "b", "c", 1, 1.0, True, False, 0, 2, None]),
    "kind": st.sampled_from(["small", "large", "SMALL", 0, None, 1.5]),
    "level": st.sampled_from([1, 2, 3, 1.0, 2.0, True, False, "1", 0, 1.5]),
    "point": points | json_values,
    "points": st.lists(points, max_size=3) | json_values,
    "maybe": st.none() | numbers | texts,
    "either": numbers | texts | st.booleans() | st.none(),
    "shape": shapes | st.none() | json_values,
    "at": datetimes,
    "day": dates,
    "uid": uuids,
    "anything": json_values,
    "nested": st.lists(
        st.dictionaries(texts, st.lists(small_ints | floats, max_size=3) | json_values, max_size=2),
        max_size=2,
    )
    | json_values,
}
states = st.fixed_dictionaries({}, optional={**FIELDS, "unknown_field": scalars})

ARGUMENTS: dict[str, st.SearchStrategy[Any]] = {
    "count": numbers | texts,
    "when": datetimes,
    "point": points | json_values,
    "tags": st.lists(texts | small_ints, max_size=3) | json_values,
    "mode": st.sampled_from(["a", "b", "c", 1, None]),
    "extra": json_values,
}
arguments = st.fixed_dictionaries({}, optional={**ARGUMENTS, "unknown": scalars})


# -- the comparison ---------------------------------------------------------------


Errors = list[tuple[tuple[str | int, ...], str]]


def expected(model: type[pydantic.BaseModel], text: str) -> dict[str, Any] | Errors:
    """What pydantic makes of ``text``: the canonical state, or the (loc, type) of each error."""
    try:
        value = model.model_validate_json(text, strict=True, extra="forbid")
    except pydantic.ValidationError as error:
        return sorted(((tuple(e["loc"]), e["type"]) for e in error.errors()), key=repr)
    return value.model_dump(mode="json")


def answered(reply: httpx.Response, ok: int, member: str) -> dict[str, Any] | Errors:
    """What the Worker made of it, in the same shape."""
    body = reply.json()
    if reply.status_code == ok:
        result: dict[str, Any] = body[member]
        return result
    assert (reply.status_code, body["error"]["code"]) == (422, "validation_error"), body
    errors = body["error"]["details"]["errors"]
    return sorted(((tuple(e["loc"]), e["type"]) for e in errors), key=repr)


@SETTINGS
@given(state=states)
def test_states_are_accepted_refused_and_stored_as_pydantic_does(
    http: httpx.Client, state: dict[str, Any]
) -> None:
    reply = http.put(f"/v1/objects/contract.Everything/{uuid.uuid4().hex}", json={"state": state})
    assert answered(reply, 201, "state") == expected(Everything, json.dumps(state)), state


@SETTINGS
@given(fields=st.fixed_dictionaries({}, optional=FIELDS).filter(bool))
def test_updates_are_checked_as_pydantic_checks_each_field(
    http: httpx.Client, fields: dict[str, Any]
) -> None:
    reply = http.patch(
        f"/v1/objects/contract.Everything/{uuid.uuid4().hex}", json={"fields": fields}
    )
    assert answered(reply, 200, "state") == expected(Everything, json.dumps(fields)), fields


@SETTINGS
@given(args=arguments)
def test_arguments_are_checked_as_pydantic_checks_them(
    http: httpx.Client, args: dict[str, Any]
) -> None:
    reply = http.post(
        f"/v1/objects/contract.Game/{uuid.uuid4().hex}/call/probe", json={"args": args}
    )
    model = Game.__durable_methods__["probe"].signature.arguments
    outcome = expected(model, json.dumps(args))
    if isinstance(outcome, list):
        assert answered(reply, 200, "result") == outcome, args
    else:
        assert (reply.status_code, reply.json()["result"]) == (200, True), args


@pytest.mark.parametrize(
    ("field", "text"),
    [
        ("count", "2.0"),
        ("count", "1e1"),
        ("count", "4"),
        ("ratio", "1"),
        ("mode", "1.0"),
        ("mode", "true"),
        ("level", "2.0"),
        ("either", "2.0"),
        ("maybe", "3.0"),
    ],
)
def test_number_literals_are_told_apart_as_pydantic_tells_them(
    http: httpx.Client, field: str, text: str
) -> None:
    """``2.0`` is a float in JSON: refused for an int, accepted for a float (JSON
    texts written by hand, since Python's json module writes 2.0 as written)."""
    body = f'{{"state": {{"{field}": {text}}}}}'
    reply = http.put(f"/v1/objects/contract.Everything/{uuid.uuid4().hex}", content=body)
    assert answered(reply, 201, "state") == expected(Everything, f'{{"{field}": {text}}}')

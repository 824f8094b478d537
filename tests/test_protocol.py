"""The sans-I/O protocol module, fed data directly."""

from __future__ import annotations

import datetime
import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cloudflare_durable import _exceptions as exc
from cloudflare_durable import _protocol as proto


@given(
    st.text(min_size=1, max_size=60).filter(
        lambda s: not proto._CONTROL_RE.search(s) and s not in (".", "..")
    )
)
def test_object_ids_round_trip_through_paths(object_id: str) -> None:
    try:
        object_id.encode("utf-8")
    except UnicodeEncodeError:
        return
    route = proto.parse_path(proto.object_path("Counter", object_id, "call", "increment"))
    assert (route.kind, route.model, route.object_id, route.method) == (
        "call",
        "Counter",
        object_id,
        "increment",
    )


@pytest.mark.parametrize(
    ("path", "kind"),
    [("/v1/health", "health"), ("/v1/objects/M/a", "state"), ("/v1/objects/M/a/ws", "ws")],
)
def test_routes(path: str, kind: str) -> None:
    assert proto.parse_path(path).kind == kind


@pytest.mark.parametrize(
    ("path", "error"),
    [
        ("/v2/health", exc.NotFoundError),
        ("/v1/objects", exc.NotFoundError),
        ("/v1/objects/M/a/b", exc.NotFoundError),
        ("/v1/objects/M/a/call/x/y", exc.NotFoundError),
        ("/v1/objects/1M/a", exc.InvalidIdError),
        ("/v1/objects/M/%00", exc.InvalidIdError),
        ("/v1/objects/M/%FF", exc.InvalidIdError),
        ("/v1/objects/M/" + "x" * 257, exc.InvalidIdError),
        ("/v1/objects/M/a/call/bad-name", exc.InvalidIdError),
        ("/v1/objects/M/%G1", exc.InvalidIdError),
        ("/v1/objects/M/a%", exc.InvalidIdError),
        ("/v1/objects/M/%E0%A4", exc.InvalidIdError),
    ],
)
def test_bad_paths(path: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        proto.parse_path(path)


def test_object_id_limits_count_utf8_bytes() -> None:
    assert proto.check_object_id("é" * 128)
    with pytest.raises(exc.InvalidIdError, match="longer"):
        proto.check_object_id("é" * 129)
    with pytest.raises(exc.InvalidIdError, match="empty"):
        proto.check_object_id("")
    with pytest.raises(exc.InvalidIdError, match="control"):
        proto.check_object_id("a\x85b")


@pytest.mark.parametrize(
    "body",
    [b"", b"{", b"[]", b'"x"', b"1", b"\xff", b"[" * 10000, b'{"a": NaN}', b'{"a": Infinity}'],
)
def test_bodies_that_are_not_objects(body: bytes) -> None:
    with pytest.raises(exc.BadRequestError):
        proto.loads_object(body)


def nested(depth: int) -> str:
    """A JSON object nesting ``depth`` levels of objects and arrays (itself included)."""
    inner = "1"
    for level in range(depth - 1):
        inner = f"[{inner}]" if level % 2 else f'{{"a":{inner}}}'
    return f'{{"x":{inner}}}'


def test_nesting_is_limited() -> None:
    assert proto.loads_object(nested(proto.MAX_DEPTH))
    with pytest.raises(exc.BadRequestError, match="deeper"):
        proto.loads_object(nested(proto.MAX_DEPTH + 1))
    # brackets inside strings are text, not nesting
    assert proto.loads_object(json.dumps({"s": "[" * 500}))
    with pytest.raises(exc.BadRequestError):
        proto.loads_object("[" * 200_000 + "]" * 200_000)


@pytest.mark.parametrize("number", ["1e400", "-1e400", "1E999"])
def test_numbers_too_large_to_be_finite_are_refused(number: str) -> None:
    with pytest.raises(exc.BadRequestError, match="finite"):
        proto.loads_object(f'{{"args": {{"x": {number}}}}}')


def test_integers_travel_only_within_the_safe_range() -> None:
    top = proto.MAX_SAFE_INTEGER
    assert proto.loads_object(f'{{"a": [{top}, {-top}]}}') == {"a": [top, -top]}
    with pytest.raises(exc.ValidationError) as refused:
        proto.loads_object(f'{{"args": {{"by": {top + 1}, "ok": 1}}, "xs": [0, {-top - 1}]}}')
    errors = refused.value.details["errors"]
    assert [error["loc"] for error in errors] == [["args", "by"], ["xs", 1]]
    assert {error["type"] for error in errors} == {"int_out_of_range"}
    assert proto.loads_object('{"a": 1e20}') == {"a": 1e20}  # a float literal is not an integer


def test_unpaired_surrogates_are_refused() -> None:
    assert proto.loads_object('{"a": "\\ud83d\\ude00"}') == {"a": "\U0001f600"}
    with pytest.raises(exc.BadRequestError, match="surrogate"):
        proto.loads_object('{"a": "\\ud800"}')
    with pytest.raises(exc.BadRequestError, match="surrogate"):
        proto.loads_object('{"\\udfff": 1}')


OPERATIONS: list[proto.Operation] = [
    proto.Call("Counter", "a/b", "increment", {"by": 2}, "r-1"),
    proto.Call("Counter", "é", "reset"),
    proto.Read("Counter", "x"),
    proto.Create("Counter", "x", {"value": 1}, "r-2"),
    proto.Create("Counter", "x"),
    proto.Update("Counter", "x", {"value": 3}, 4, "r-3"),
    proto.Update("Counter", "x", {}),
    proto.Delete("Counter", "x", "r-4"),
    proto.Delete("Counter", "x"),
]


@pytest.mark.parametrize("op", OPERATIONS, ids=repr)
def test_operations_round_trip_through_http(op: proto.Operation) -> None:
    request = proto.http_request(op)
    route = proto.parse_path(request.path)
    body = proto.loads_object(request.body) if request.body else {}
    assert proto.http_operation(route, request.method, body) == op


@pytest.mark.parametrize("kind", ["call", "read", "create", "update", "delete"])
def test_replies_round_trip(kind: Any) -> None:
    reply = proto.Reply(200, 3, {"value": 1}, result=[1] if kind == "call" else None)
    if kind == "delete":
        reply = proto.Reply(200, 3, None, deleted=True)
    assert proto.read_reply(kind, json.loads(proto.dumps(reply.to_json(kind)))) == reply
    older = proto.Reply(201, 2, None, result=None, has_state=False)
    if kind not in ("call", "delete"):
        assert "state" not in older.to_json(kind)
        assert proto.read_reply(kind, older.to_json(kind), 201) == older


def test_request_bodies() -> None:
    call = proto.parse_path("/v1/objects/M/a/call/m")
    state = proto.parse_path("/v1/objects/M/a")
    assert proto.http_operation(call, "POST", {}) == proto.Call("M", "a", "m", {})
    with pytest.raises(exc.BadRequestError, match="unknown member"):
        proto.http_operation(call, "POST", {"args": {}, "extra": 1})
    with pytest.raises(exc.BadRequestError, match="object"):
        proto.http_operation(call, "POST", {"args": [1]})
    with pytest.raises(exc.InvalidIdError):
        proto.http_operation(call, "POST", {"request_id": "a b"})
    assert proto.http_operation(call, "POST", {"request_id": None}).request_id is None
    with pytest.raises(exc.BadRequestError):
        proto.http_operation(state, "PATCH", {"fields": {}, "if_version": True})
    with pytest.raises(exc.BadRequestError):
        proto.http_operation(state, "PATCH", {"fields": {}, "if_version": -1})
    with pytest.raises(exc.BadRequestError, match="fields"):
        proto.http_operation(state, "PATCH", {})
    update = proto.http_operation(state, "PATCH", {"fields": {"a": 1}, "if_version": 2})
    assert update == proto.Update("M", "a", {"a": 1}, 2)


def test_fingerprints_tell_operations_apart() -> None:
    call = proto.Call("M", "a", "m", {"x": 1, "y": [1, 2]}, "r")
    assert call.fingerprint() == proto.Call("M", "a", "m", {"y": [1, 2], "x": 1}).fingerprint()
    assert call.fingerprint() != proto.Call("M", "a", "m", {"x": 2, "y": [1, 2]}).fingerprint()
    assert call.fingerprint() != proto.Call("M", "a", "n", {"x": 1, "y": [1, 2]}).fingerprint()
    assert proto.Delete("M", "a").fingerprint() != proto.Create("M", "a").fingerprint()
    update = proto.Update("M", "a", {"v": 1}, 3)
    assert update.fingerprint() != proto.Update("M", "a", {"v": 1}, 4).fingerprint()


def test_content_type_and_protocol_header() -> None:
    proto.check_content_type("application/json; charset=utf-8")
    with pytest.raises(exc.UnsupportedMediaTypeError):
        proto.check_content_type("text/plain")
    with pytest.raises(exc.UnsupportedMediaTypeError):
        proto.check_content_type(None)
    proto.check_protocol_header(None)
    proto.check_protocol_header("1")
    with pytest.raises(exc.UnsupportedProtocolError):
        proto.check_protocol_header("2")


@pytest.mark.parametrize(
    "error",
    [
        exc.ConflictError("c", details={"expected": 1, "actual": 2}),
        exc.AlreadyExistsError("a"),
        exc.UnknownModelError("m"),
        exc.UnknownMethodError("m"),
        exc.ObjectNotFoundError("o"),
        exc.ValidationError("v", details={"errors": []}),
        exc.RemoteError("r", details={"type": "ValueError", "message": "x"}),
        exc.InvalidResultError("i"),
        exc.UnauthorizedError("u"),
        exc.OverloadedError("o"),
        exc.UnavailableError("u"),
        exc.ServerError("s"),
        exc.PayloadTooLargeError("p"),
        exc.UnsupportedProtocolError("p"),
        exc.InvalidIdError("i"),
        exc.ForbiddenError("f"),
        exc.RequestIdReusedError("r"),
        exc.StateTooLargeError("s"),
        exc.MethodNotAllowedError("m"),
        exc.UnsupportedMediaTypeError("u"),
        exc.BadRequestError("b"),
    ],
)
def test_errors_round_trip_through_envelopes(error: exc.DurableError) -> None:
    envelope = proto.error_envelope(error)
    back = proto.error_from_envelope(proto.error_status(error), envelope)
    assert type(back) is type(error)
    assert (back.message, back.details, back.retryable) == (
        error.message,
        error.details,
        error.retryable,
    )


def test_retry_flags() -> None:
    assert exc.ServerError("x").retryable
    assert exc.UnavailableError("x").retryable
    assert not exc.OverloadedError("x").retryable
    assert not exc.ConflictError("x").retryable


def test_unknown_codes_map_by_status() -> None:
    def envelope(code: str) -> dict[str, object]:
        return {"error": {"code": code, "message": "m", "retryable": False}}

    assert type(proto.error_from_envelope(409, envelope("new"))) is exc.ConflictError
    assert type(proto.error_from_envelope(418, envelope("new"))) is exc.BadRequestError
    assert type(proto.error_from_envelope(502, {"nope": 1})) is exc.ProtocolError


def test_client_frames() -> None:
    assert proto.parse_client_frame('{"type":"ping"}') == proto.PingFrame()
    frame = proto.parse_client_frame('{"type":"call","id":3,"method":"m","args":{"a":1}}')
    assert frame == proto.CallFrame(3, "m", {"a": 1}, None)
    assert proto.parse_client_frame('{"type":"subscribe","since":4}') == proto.SubscribeFrame(4)
    with pytest.raises(proto.FrameError) as bad_call:
        proto.parse_client_frame('{"type":"call","id":7,"method":"m","args":[]}')
    assert bad_call.value.call_id == 7
    assert isinstance(bad_call.value.error, exc.BadRequestError)
    with pytest.raises(proto.FrameError) as big:
        proto.parse_client_frame('{"type":"call","id":7,"method":"m","args":{"x":1e99999}}')
    assert big.value.call_id is None
    for text in [
        "nope",
        "[]",
        '{"type":"launch"}',
        '{"type":"call","id":"x"}',
        '{"type":"call","id":-1,"method":"m"}',
        '{"type":"call","id":9007199254740992,"method":"m"}',
        '{"type":"subscribe","since":-1}',
        '{"type":"ping","x":1}',
        '{"type":"subscribe","later":true}',
    ]:
        with pytest.raises(proto.FrameError):
            proto.parse_client_frame(text)


def test_server_frames() -> None:
    reply = proto.Reply(200, 3, {"value": 2}, result=2)
    assert proto.parse_server_frame(proto.dumps(proto.result_frame(9, reply))) == proto.Result(
        9, reply
    )
    assert proto.parse_server_frame(proto.dumps(proto.snapshot_frame(1, None))) == proto.Snapshot(
        1, None
    )
    event = proto.parse_server_frame(proto.dumps(proto.event_frame(1, "E", {"a": 1})))
    assert event == proto.EventMessage(1, "E", {"a": 1})
    error = proto.parse_server_frame(proto.dumps(proto.error_frame(4, exc.ConflictError("c"))))
    assert isinstance(error, proto.ErrorMessage)
    assert isinstance(error.error, exc.ConflictError)
    assert error.id == 4
    with pytest.raises(exc.ProtocolError):
        proto.parse_server_frame('{"type":"snapshot","version":-1,"state":null}')
    with pytest.raises(exc.ProtocolError):
        proto.parse_server_frame('{"type":"what"}')


@pytest.mark.parametrize("reserved", [".", ".."])
def test_dot_ids_are_reserved(reserved: str) -> None:
    with pytest.raises(exc.InvalidIdError, match="reserved"):
        proto.check_object_id(reserved)
    with pytest.raises(exc.InvalidIdError):
        proto.parse_path(f"/v1/objects/Counter/{reserved.replace('.', '%2E')}")
    assert proto.check_object_id("...") == "..."


def test_the_error_table_matches_the_exception_tree() -> None:
    """Each wire code maps to one class, whose status and retry flag are the code's."""
    for code, cls in exc.ERRORS.items():
        assert cls.code == code
        assert issubclass(cls, exc.DurableError)
        assert 400 <= cls.status <= 599
        assert cls.__name__ in exc.__doc__, f"{cls.__name__} is missing from the drawn tree"
    for name in exc.__all__:
        if name != "ERRORS":
            assert name in exc.__doc__, f"{name} is missing from the drawn tree"


ROOT = Path(__file__).resolve().parents[1]


def documented_codes() -> dict[str, tuple[int, bool]]:
    """The error table of docs/protocol.md: code -> (HTTP status, retryable)."""
    rows = re.findall(
        r"^\| `([a-z_]+)` \| (\d{3}) \| (yes|no) \|", (ROOT / "docs/protocol.md").read_text(), re.M
    )
    return {code: (int(status), flag == "yes") for code, status, flag in rows}


def worker_codes() -> dict[str, tuple[int, bool]]:
    """ERROR_CODES of the Worker: code -> (HTTP status, retryable)."""
    source = (ROOT / "worker/lib/src/errors.ts").read_text()
    rows = re.findall(
        r"^\s+([a-z_]+): \{ status: (\d{3}), retryable: (true|false) \}", source, re.M
    )
    return {code: (int(status), flag == "true") for code, status, flag in rows}


def test_the_error_table_is_the_documented_one_and_the_workers() -> None:
    ours = {code: (cls.status, cls.default_retryable) for code, cls in exc.ERRORS.items()}
    assert ours == documented_codes()
    assert ours == worker_codes()


# -- time and collections -------------------------------------------------------


def test_event_frames_say_their_place_and_gap_frames_parse() -> None:
    frame = proto.event_frame(4, "E", {"a": 1}, 1, 3)
    assert frame == {
        "type": "event",
        "version": 4,
        "index": 1,
        "count": 3,
        "name": "E",
        "data": {"a": 1},
    }
    event = proto.parse_server_frame(proto.dumps(frame))
    assert isinstance(event, proto.EventMessage)
    assert (event.index, event.count) == (1, 3)
    gap = proto.parse_server_frame(proto.dumps(proto.gap_frame(2, 9)))
    assert gap == proto.GapMessage(2, 9)
    for bad in [
        {**frame, "index": 3},
        {**frame, "index": -1},
        {**frame, "count": None},
        {"type": "gap", "since": 3, "until": 3},
        {"type": "gap", "since": -1, "until": 3},
    ]:
        with pytest.raises(exc.ProtocolError):
            proto.parse_server_frame(proto.dumps(bad))


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", proto.ListObjects("M")),
        ("prefix=a%2Fb&after=a%2Fb%2F1&limit=7", proto.ListObjects("M", "a/b", "a/b/1", 7)),
        ("limit=1000&limit=1&prefix=x+y", proto.ListObjects("M", "x+y", None, 1000)),
        ("after=&other=1&have=x", proto.ListObjects("M")),
        ("prefix=%C3%A9", proto.ListObjects("M", "é")),
        ("limit=0000000000001000", proto.ListObjects("M", limit=1000)),
    ],
)
def test_listing_queries(query: str, expected: proto.ListObjects) -> None:
    assert proto.list_query(proto.Route("list", "M"), query) == expected


@pytest.mark.parametrize(
    "query",
    [
        "limit=%31%30",
        "limit=0",
        "limit=1001",
        "limit=000010000",
        "limit=00000000000001000",
        "limit=+5",
        "limit=5.0",
        "limit=",
        "limit=\u0661",
    ],
)
def test_listing_limits_are_ascii_digits_as_written(query: str) -> None:
    with pytest.raises(exc.BadRequestError):
        proto.list_query(proto.Route("list", "M"), query)


def test_listing_query_paths_round_trip() -> None:
    query = proto.ListObjects("a.Model", "x/é&?", "x/é&?#", 3)
    path = proto.query_path(query)
    route = proto.parse_path(path)
    assert route == proto.Route("list", "a.Model")
    assert proto.list_query(route, path.partition("?")[2]) == query
    schedules = proto.query_path(proto.ListSchedules("M", "a/b"))
    assert proto.parse_path(schedules) == proto.Route("schedules", "M", "a/b")


def test_times_are_rfc3339_in_utc_to_the_millisecond() -> None:
    when = datetime.datetime(2026, 12, 1, 12, 0, 0, 1, tzinfo=datetime.UTC)
    assert proto.to_millis(when) == proto.to_millis(when.replace(microsecond=0)) + 1  # rounded up
    assert proto.format_time(proto.to_millis(when)) == "2026-12-01T12:00:00.001Z"
    assert proto.parse_time("2026-12-01T12:00:00.001Z") == when.replace(microsecond=1000)
    assert proto.parse_time("2026-12-01T13:00:00+01:00") == when.replace(microsecond=0)
    assert proto.from_millis(0) == datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
    for bad in ["2026-12-01T12:00:00", "tomorrow", 3]:
        with pytest.raises(exc.ProtocolError):
            proto.parse_time(bad)


def test_listing_and_schedule_replies_are_checked() -> None:
    assert proto.read_object_page({"ids": ["a"], "next": None}) == proto.ObjectPage(["a"], None)
    bad_pages: list[dict[str, Any]] = [{"ids": "a"}, {"ids": [1]}, {"ids": [], "next": 3}]
    for bad_page in bad_pages:
        with pytest.raises(exc.ProtocolError):
            proto.read_object_page(bad_page)
    entry = proto.Schedule(
        "0" * 32, datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC), "ring", {"n": 1}
    )
    assert proto.read_schedules({"schedules": [entry.to_json()]}) == [entry]
    for bad in [
        {},
        {"schedules": [{"id": 1}]},
        {"schedules": [{**entry.to_json(), "status": "x"}]},
    ]:
        with pytest.raises(exc.ProtocolError):
            proto.read_schedules(bad)

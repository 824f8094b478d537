"""The sans-I/O protocol module, fed data directly."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cloudflare_durable import _exceptions as exc
from cloudflare_durable import _protocol as proto


@given(st.text(min_size=1, max_size=60).filter(lambda s: not proto._CONTROL_RE.search(s)))
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
        ("/v1/objects/M", exc.NotFoundError),
        ("/v1/objects/M/a/b", exc.NotFoundError),
        ("/v1/objects/M/a/call/x/y", exc.NotFoundError),
        ("/v1/objects/1M/a", exc.InvalidIdError),
        ("/v1/objects/M/%00", exc.InvalidIdError),
        ("/v1/objects/M/%FF", exc.InvalidIdError),
        ("/v1/objects/M/" + "x" * 257, exc.InvalidIdError),
        ("/v1/objects/M/a/call/bad-name", exc.InvalidIdError),
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
    [b"", b"{", b"[]", b'"x"', b"1", b"\xff", b"[" * 10000, b'{"a": NaN}'],
)
def test_bodies_that_are_not_objects(body: bytes) -> None:
    with pytest.raises(exc.BadRequestError):
        proto.loads_object(body)


def test_call_and_update_bodies() -> None:
    assert proto.parse_call_body({}).args == {}
    with pytest.raises(exc.BadRequestError, match="unknown member"):
        proto.parse_call_body({"args": {}, "extra": 1})
    with pytest.raises(exc.BadRequestError, match="object"):
        proto.parse_call_body({"args": [1]})
    with pytest.raises(exc.InvalidIdError):
        proto.parse_call_body({"request_id": "a b"})
    with pytest.raises(exc.BadRequestError):
        proto.parse_update_body({"fields": {}, "if_version": True})
    with pytest.raises(exc.BadRequestError):
        proto.parse_update_body({"fields": {}, "if_version": -1})
    assert proto.parse_update_body({"fields": {"a": 1}, "if_version": 2}).if_version == 2


def test_content_type_and_protocol_header() -> None:
    proto.check_content_type("application/json; charset=utf-8")
    with pytest.raises(proto.UnsupportedMediaType):
        proto.check_content_type("text/plain")
    with pytest.raises(proto.UnsupportedMediaType):
        proto.check_content_type(None)
    proto.check_protocol_header(None)
    proto.check_protocol_header("1")
    with pytest.raises(proto.UnsupportedProtocol):
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
        proto.PayloadTooLarge("p"),
        proto.UnsupportedProtocol("p"),
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
    for text in [
        "nope",
        "[]",
        '{"type":"launch"}',
        '{"type":"call","id":"x"}',
        '{"type":"subscribe","since":-1}',
    ]:
        with pytest.raises(proto.FrameError):
            proto.parse_client_frame(text)


def test_server_frames() -> None:
    reply = proto.CallReply(2, 3, {"value": 2})
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

"""Client features: configuration from the environment, telemetry, mounting the
network host inside another ASGI app."""

from __future__ import annotations

import socket
from collections.abc import Iterator, Mapping
from typing import Any

import anyio
import pytest

from cloudflare_durable import (
    DurableClient,
    DurableModel,
    SchemaMismatchError,
    UnknownModelError,
    UsageError,
    attach,
    remote,
)
from cloudflare_durable._config import Settings
from cloudflare_durable.testing import NetworkHost

from .conftest import TOKEN
from .models import Counter

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def test_settings_from_the_environment() -> None:
    settings = Settings.from_env(
        {
            "CLOUDFLARE_WORKER_URL": "http://127.0.0.1:1",
            "CLOUDFLARE_API_TOKEN": "t",
            "CLOUDFLARE_DURABLE_TIMEOUT": "2500",
            "CLOUDFLARE_DURABLE_RETRY_COUNT": "7",
            "CLOUDFLARE_DURABLE_RETRY_DELAY": "250",
            "CLOUDFLARE_DURABLE_WEBSOCKET_RECONNECT_DELAY": "100",
            "CLOUDFLARE_DURABLE_POOL_SIZE": "3",
            "CLOUDFLARE_DURABLE_STORE": ":memory:",
        }
    )
    assert settings == Settings(
        url="http://127.0.0.1:1",
        token="t",
        store=":memory:",
        timeout=2.5,
        retries=7,
        retry_delay=0.25,
        reconnect_delay=0.1,
        pool_size=3,
    )
    assert Settings.from_env({}) == Settings()


def test_the_token_has_a_variable_of_its_own() -> None:
    both = {"CLOUDFLARE_DURABLE_TOKEN": "ours", "CLOUDFLARE_API_TOKEN": "wranglers"}
    assert Settings.from_env(both).token == "ours"
    assert Settings.from_env({"CLOUDFLARE_API_TOKEN": "old"}).token == "old"  # the fallback
    assert Settings.from_env({"CLOUDFLARE_DURABLE_TOKEN": ""}).token is None


@pytest.mark.parametrize(
    "url", ["http://example.com", "http://10.0.0.5:8787", "http://[2001:db8::1]:8787"]
)
def test_no_token_goes_over_plain_http_to_another_machine(url: str) -> None:
    with pytest.raises(UsageError, match="plain http"):
        DurableClient(url, token="secret")
    DurableClient(url)  # without a token there is nothing to leak


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8787",
        "http://localhost:8787",
        "http://[::1]:8787",
        "https://example.com",
    ],
)
def test_tokens_go_to_loopback_or_over_tls(url: str) -> None:
    assert DurableClient(url, token="secret").settings.token == "secret"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CLOUDFLARE_DURABLE_TIMEOUT", "soon"),
        ("CLOUDFLARE_DURABLE_TIMEOUT", "-5"),
        ("CLOUDFLARE_DURABLE_RETRY_COUNT", "1.5"),
        ("CLOUDFLARE_DURABLE_POOL_SIZE", "0"),
    ],
)
def test_bad_settings_say_which_variable(name: str, value: str) -> None:
    with pytest.raises(UsageError, match=name):
        Settings.from_env({name: value})


def test_bad_client_arguments() -> None:
    with pytest.raises(UsageError, match="http"):
        DurableClient("ftp://example")
    with pytest.raises(UsageError, match="timeout"):
        DurableClient(store=":memory:", timeout=0)


async def test_explicit_arguments_beat_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLOUDFLARE_WORKER_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("CLOUDFLARE_DURABLE_RETRY_COUNT", "9")
    async with DurableClient(store=":memory:", retries=1) as client:
        assert client.settings.url is None  # an explicit store means the embedded host
        assert client.settings.retries == 1
        assert await client.get(Counter, "c").increment() == 1


async def test_telemetry_hooks_see_requests_and_errors(network_host: Any, oid: str) -> None:
    seen: list[tuple[str, Mapping[str, float], Mapping[str, Any]]] = []

    def record(event: str, measurements: Mapping[str, float], metadata: Mapping[str, Any]) -> None:
        seen.append((event, measurements, metadata))

    detachers = [attach(event, record) for event in ("request.start", "request.stop", "error")]
    detachers.append(attach("websocket.connected", record))
    try:
        async with DurableClient(network_host.url, token=TOKEN) as client:
            counter = client.get(Counter, oid)
            await counter.increment(2)
            with pytest.raises(UsageError):
                await counter.update(value=1, if_version=-1)
            from cloudflare_durable import ConflictError

            with pytest.raises(ConflictError):
                await counter.update(value=1, if_version=99)
            async with counter.subscribe() as snapshots:
                async for _ in snapshots:
                    break
    finally:
        for detach in detachers:
            detach()
    events = [event for event, _, _ in seen]
    assert events[:2] == ["request.start", "request.stop"]
    start, stop = seen[0][2], seen[1][2]
    assert (start["model"], start["object_id"], start["method"]) == ("Counter", oid, "increment")
    assert seen[1][1]["duration"] > 0
    assert "error" not in stop
    assert "error" in events
    error_stop = [m for e, _, m in seen if e == "request.stop" and "error" in m]
    assert error_stop
    assert type(error_stop[0]["error"]).__name__ == "ConflictError"
    assert "websocket.connected" in events


def test_a_failing_handler_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    from cloudflare_durable import _telemetry

    def broken(event: str, measurements: Mapping[str, float], metadata: Mapping[str, Any]) -> None:
        raise RuntimeError("boom")

    detach = attach("error", broken)
    try:
        _telemetry.emit("error", {}, {})
    finally:
        detach()
    assert "boom" in caplog.text
    with pytest.raises(ValueError, match="unknown telemetry event"):
        attach("nope", broken)  # type: ignore[arg-type]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def mounted_server(tmp_path: Any) -> Iterator[str]:
    """The network host mounted at /durable inside a Starlette app, on uvicorn."""
    import threading

    import uvicorn
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Mount, Route

    from cloudflare_durable.host import Host
    from cloudflare_durable.host.asgi import create_app

    host = Host(str(tmp_path / "mounted.sqlite3"), models=[Counter])

    async def hello(request: Any) -> PlainTextResponse:
        return PlainTextResponse("the rest of the app")

    app = Starlette(
        routes=[Route("/", hello), Mount("/durable", app=create_app(host, token=TOKEN))]
    )
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    import time

    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        host.close()


async def test_mounted_inside_a_starlette_app(mounted_server: str) -> None:
    import httpx

    async with httpx.AsyncClient() as raw:
        assert (await raw.get(mounted_server + "/")).text == "the rest of the app"
    async with DurableClient(mounted_server + "/durable", token=TOKEN) as client:
        counter = client.get(Counter, "a/b")
        assert await counter.increment(3) == 3
        with anyio.fail_after(10):
            async with counter.subscribe() as snapshots:
                async for snapshot in snapshots:
                    assert snapshot.value == 3
                    break


async def test_requests_are_opentelemetry_spans(network_host: Any, oid: str) -> None:
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    async with DurableClient(network_host.url, token=TOKEN) as client:
        await client.get(Counter, oid).increment(1)
    spans = [
        s for s in exporter.get_finished_spans() if (s.attributes or {}).get("object_id") == oid
    ]
    assert [s.name for s in spans] == ["durable.call"]
    assert (spans[0].attributes or {}).get("method") == "increment"
    exporter.clear()


class Stranger(DurableModel, name="test.Stranger"):
    """A model this test defines and no server serves."""

    value: int = 0

    @remote
    async def poke(self) -> int:
        self.value += 1
        return self.value


async def test_the_schema_check_at_first_contact(
    network_host: NetworkHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with DurableClient(network_host.url, token=TOKEN, check_schema=True) as client:
        assert await client.get(Counter, "schema-check").increment(1) >= 1  # same model
        with pytest.raises(SchemaMismatchError, match=r"test\.Stranger") as refused:
            await client.get(Stranger, "s").poke()
        assert refused.value.details["differences"]
    monkeypatch.setenv("CLOUDFLARE_DURABLE_CHECK_SCHEMA", "1")
    async with DurableClient(network_host.url, token=TOKEN) as client:
        with pytest.raises(SchemaMismatchError):
            await client.get(Stranger, "s").load()
    async with DurableClient(network_host.url, token=TOKEN, check_schema=False) as client:
        with pytest.raises(UnknownModelError):  # unchecked, the first call finds out
            await client.get(Stranger, "s").poke()

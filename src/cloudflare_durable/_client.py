"""``DurableClient``: the policy layer between models and transports.

It owns the settings, picks the transport (the embedded host, or HTTP and
WebSocket to a server), gives every logical operation one request id and keeps
it across retries, retries what is retryable with jittered capped backoff,
enforces timeouts, and emits telemetry.
"""

from __future__ import annotations

import enum
import itertools
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Final, TypeVar

import anyio
import anyio.lowlevel
import pydantic

from . import _exceptions as exc
from . import _protocol as proto
from . import _telemetry as telemetry
from ._config import Settings, backoff
from ._models import Binding, DurableModel, Event, _binding
from ._pydantic import translate
from ._subscription import Subscription
from ._transports.base import CallChannel, ForwardingTransport, MessageStream, Transport

if TYPE_CHECKING:
    from .host import Host

__all__ = ["DurableClient", "default_client"]

M = TypeVar("M", bound=DurableModel)
T = TypeVar("T")
E = TypeVar("E", bound=Event)


class ClientState(enum.Enum):
    UNOPENED = 1
    OPENED = 2
    CLOSED = 3


class DurableClient:
    """A connection to a host: the embedded one in-process, or a server by URL.

    Arguments left as ``None`` come from the environment (``CLOUDFLARE_WORKER_URL``,
    ``CLOUDFLARE_API_TOKEN``, ``CLOUDFLARE_DURABLE_TIMEOUT``... see the README),
    then from the defaults. Without a URL the client runs the embedded host on
    the SQLite file ``store`` (``":memory:"`` for throwaway state). ``host=``
    shares an existing in-process ``Host``. Times are in seconds.

    Use it as an async context manager, or call ``aclose()``.
    """

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        store: str | None = None,
        host: Host | None = None,
        timeout: float | None = None,
        retries: int | None = None,
        retry_delay: float | None = None,
        reconnect_delay: float | None = None,
        pool_size: int | None = None,
        transport: Transport | None = None,
    ) -> None:
        env = Settings.from_env()
        embedded = store is not None or host is not None
        self.settings = Settings(
            url=None if embedded else (url if url is not None else env.url),
            token=token if token is not None else env.token,
            account_id=env.account_id,
            store=store if store is not None else env.store,
            timeout=timeout if timeout is not None else env.timeout,
            retries=retries if retries is not None else env.retries,
            retry_delay=retry_delay if retry_delay is not None else env.retry_delay,
            reconnect_delay=reconnect_delay if reconnect_delay is not None else env.reconnect_delay,
            pool_size=pool_size if pool_size is not None else env.pool_size,
        ).check()
        self._transport = transport or self._make_transport(host)
        self._state = ClientState.UNOPENED

    def _make_transport(self, host: Host | None) -> Transport:
        from ._transports.local import LocalTransport

        if host is not None:
            return LocalTransport(host, owns_host=False)
        if self.settings.url is None:
            from .host import Host

            return LocalTransport(Host(self.settings.store), owns_host=True)
        from ._transports.network import NetworkTransport

        return NetworkTransport(self.settings)

    def __repr__(self) -> str:
        where = self.settings.url or f"embedded:{self.settings.store}"
        return f"<DurableClient {where} {self._state.name.lower()}>"

    # -- lifecycle --------------------------------------------------------

    async def __aenter__(self) -> DurableClient:
        if self._state is ClientState.CLOSED:
            raise exc.UsageError("this DurableClient is closed; create a new one")
        self._state = ClientState.OPENED
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close connections (and the embedded host this client started)."""
        if self._state is not ClientState.CLOSED:
            self._state = ClientState.CLOSED
            await self._transport.aclose()

    def _check_open(self) -> None:
        if self._state is ClientState.CLOSED:
            raise exc.UsageError("this DurableClient is closed; create a new one")

    # -- public helpers ---------------------------------------------------

    def get(self, model: type[M], object_id: str) -> M:
        """A handle on ``object_id`` of ``model`` through this client (no I/O)."""
        return model.get(object_id, client=self)

    async def create(self, model: type[M], object_id: str, /, **fields: Any) -> M:
        """Initialise the object with ``fields``; ``AlreadyExistsError`` if it has state."""
        return await self.create_object(model, proto.check_object_id(object_id), fields)

    # -- operations used by models ----------------------------------------

    async def create_object(self, model: type[M], object_id: str, fields: dict[str, Any]) -> M:
        try:
            state = model.model_validate(fields).model_dump(mode="json")
        except pydantic.ValidationError as error:
            raise translate(error, f"invalid fields for {model.__qualname__}") from error
        name = model.__durable_name__
        reply = await self._request(
            "create",
            name,
            object_id,
            "",
            lambda rid: self._transport.create(name, object_id, state, rid),
        )
        handle = model.get(object_id, client=self)
        handle._durable_apply(reply.version, reply.state)
        return handle

    async def read(self, model: type[DurableModel], object_id: str) -> proto.StateReply:
        name = model.__durable_name__
        return await self._request(
            "read",
            name,
            object_id,
            "",
            lambda _: self._transport.read(name, object_id),
            idempotent=True,
        )

    async def update_object(
        self,
        model: type[DurableModel],
        object_id: str,
        fields: dict[str, Any],
        if_version: int | None,
    ) -> proto.StateReply:
        payload = _dump_fields(model, fields)
        if if_version is not None and (type(if_version) is not int or if_version < 0):
            raise exc.UsageError(f"if_version must be a non-negative int, not {if_version!r}")
        name = model.__durable_name__
        return await self._request(
            "update",
            name,
            object_id,
            "",
            lambda rid: self._transport.update(name, object_id, payload, if_version, rid),
        )

    async def delete_object(self, model: type[DurableModel], object_id: str) -> proto.DeleteReply:
        name = model.__durable_name__
        return await self._request(
            "delete", name, object_id, "", lambda rid: self._transport.delete(name, object_id, rid)
        )

    async def call_method(
        self, model: type[DurableModel], object_id: str, method: str, args: dict[str, Any]
    ) -> proto.CallReply:
        name = model.__durable_name__
        transport = self._transport
        open_ = self._state is not ClientState.CLOSED
        if transport.in_process and open_ and not telemetry.observed():
            return await transport.call(name, object_id, method, args, None)  # the hot path
        return await self._request(
            "call",
            name,
            object_id,
            method,
            lambda rid: transport.call(name, object_id, method, args, rid),
        )

    def subscribe_snapshots(self, handle: M) -> Subscription[M]:
        def convert(message: proto.Snapshot | proto.EventMessage) -> M | None:
            if not isinstance(message, proto.Snapshot):
                return None
            handle._durable_apply(message.version, message.state)
            return handle._snapshot(message.version, message.state)

        return self._subscription(handle, proto.SubscribeFrame(None, True, False), convert, None)

    def subscribe_events(self, handle: DurableModel, types: tuple[type[E], ...]) -> Subscription[E]:
        by_name = {event_type.__durable_event_name__: event_type for event_type in types}

        def convert(message: proto.Snapshot | proto.EventMessage) -> E | None:
            if not isinstance(message, proto.EventMessage):
                return None
            event_type = by_name.get(message.name)
            if event_type is None:
                return None
            try:
                return event_type.model_validate(message.data)
            except pydantic.ValidationError as error:
                raise translate(error, f"event {message.name} does not validate") from error

        return self._subscription(handle, proto.SubscribeFrame(None, False, True), convert, None)

    def _subscription(
        self,
        handle: DurableModel,
        frame: proto.SubscribeFrame,
        convert: Callable[[proto.Snapshot | proto.EventMessage], T | None],
        since: int | None,
    ) -> Subscription[T]:
        self._check_open()
        name, object_id = type(handle).__durable_name__, handle.durable_id

        async def open_stream(since: int | None) -> MessageStream:
            started = time.perf_counter()
            stream = await self._transport.stream(
                name, object_id, proto.SubscribeFrame(since, frame.snapshots, frame.events)
            )
            telemetry.emit(
                "websocket.connected",
                {"duration": time.perf_counter() - started},
                {"model": name, "object_id": object_id, "since": since},
            )
            return stream

        return Subscription(
            open_stream,
            convert,
            since=since,
            timeout=self.settings.timeout,
            reconnect_delay=self.settings.reconnect_delay,
            metadata={"model": name, "object_id": object_id},
        )

    @asynccontextmanager
    async def open_session(self, handle: M) -> AsyncIterator[M]:
        self._check_open()
        name = type(handle).__durable_name__
        async with self._transport.channel(name, handle.durable_id) as channel:
            session = DurableClient.__new__(DurableClient)
            session.settings = self.settings
            session._transport = _ChannelTransport(self._transport, channel)
            session._state = ClientState.OPENED
            binding = _binding(handle)
            view = type(handle)._unloaded(
                Binding(binding.object_id, session, binding.version, binding.loaded)
            )
            if binding.loaded:
                object.__setattr__(view, "__dict__", dict(handle.__dict__))
            yield view

    # -- the policy -------------------------------------------------------

    async def _request(
        self,
        kind: str,
        model: str,
        object_id: str,
        method: str,
        perform: Callable[[str | None], Awaitable[T]],
        *,
        idempotent: bool = False,
    ) -> T:
        self._check_open()
        if self._transport.in_process and not telemetry.observed():
            return await perform(None)  # nothing to retry, time or report
        request_id = None if idempotent or self._transport.in_process else uuid.uuid4().hex
        metadata = {"kind": kind, "model": model, "object_id": object_id, "method": method}
        started = time.perf_counter()
        if telemetry.active("request.start"):
            telemetry.emit("request.start", {"system_time": time.time()}, metadata)
        try:
            with telemetry.span(f"durable.{kind}", metadata):
                result = await self._attempts(perform, request_id, metadata)
        except exc.DurableError as error:
            duration = time.perf_counter() - started
            telemetry.emit("error", {"duration": duration}, {**metadata, "error": error})
            telemetry.emit("request.stop", {"duration": duration}, {**metadata, "error": error})
            raise
        if telemetry.active("request.stop"):
            telemetry.emit("request.stop", {"duration": time.perf_counter() - started}, metadata)
        return result

    async def _attempts(
        self,
        perform: Callable[[str | None], Awaitable[T]],
        request_id: str | None,
        metadata: dict[str, Any],
    ) -> T:
        if self._transport.in_process:
            return await perform(request_id)
        delays = backoff(self.settings.retry_delay)
        for attempt in itertools.count():
            try:
                try:
                    with anyio.fail_after(self.settings.timeout):
                        return await perform(request_id)
                except TimeoutError as error:
                    if isinstance(error, exc.DurableError):
                        raise
                    raise exc.TimeoutError(
                        f"no reply within {self.settings.timeout:g} s"
                    ) from error
            except exc.DurableError as error:
                if not error.retryable or attempt >= self.settings.retries:
                    raise
                delay = next(delays)
                telemetry.logger.info(
                    "retrying %s after %s (attempt %d, in %.3f s)",
                    metadata,
                    error,
                    attempt + 1,
                    delay,
                )
                await anyio.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover


class _ChannelTransport(ForwardingTransport):
    """Calls through an open channel (an RPC session); everything else as before."""

    def __init__(self, parent: Transport, channel: CallChannel) -> None:
        super().__init__(parent)
        self._channel = channel

    async def call(
        self, model: str, object_id: str, method: str, args: dict[str, Any], request_id: str | None
    ) -> proto.CallReply:
        return await self._channel.call(method, args, request_id)

    async def aclose(self) -> None:
        pass  # the session's connection closes with its block; the parent stays open


_field_adapters: dict[tuple[type[DurableModel], str], pydantic.TypeAdapter[Any]] = {}


def _dump_fields(model: type[DurableModel], fields: dict[str, Any]) -> dict[str, Any]:
    """Validate a partial update field by field and turn it into JSON."""
    unknown = sorted(set(fields) - set(model.model_fields))
    if unknown:
        raise exc.ValidationError(
            f"{model.__qualname__} has no field(s) {', '.join(unknown)}",
            details={
                "errors": [
                    {"loc": [n], "msg": "unknown field", "type": "extra_forbidden"} for n in unknown
                ]
            },
        )
    payload: dict[str, Any] = {}
    for name, value in fields.items():
        adapter = _field_adapters.get((model, name))
        if adapter is None:
            info = model.model_fields[name]
            adapter = pydantic.TypeAdapter(info.rebuild_annotation())
            _field_adapters[(model, name)] = adapter
        try:
            payload[name] = adapter.dump_python(adapter.validate_python(value), mode="json")
        except pydantic.ValidationError as error:
            raise translate(error, f"invalid value for {model.__qualname__}.{name}") from error
    return payload


_defaults: dict[Any, DurableClient] = {}
_MAX_DEFAULTS: Final = 8


def default_client() -> DurableClient:
    """The client handles use when none was given: built from the environment,
    one per event loop (the embedded host when ``CLOUDFLARE_WORKER_URL`` is unset)."""
    try:
        token = anyio.lowlevel.current_token()
    except RuntimeError:
        raise exc.UsageError("handles can only do I/O inside an async event loop") from None
    client = _defaults.get(token)
    if client is None or client._state is ClientState.CLOSED:
        if len(_defaults) >= _MAX_DEFAULTS:
            _defaults.clear()
        client = _defaults[token] = DurableClient()
    return client

"""``DurableClient``: the policy layer between models and transports.

It owns the settings, picks the transport (the embedded host, or HTTP and
WebSocket to a server), gives every change one request id and keeps it across
retries, retries what is retryable with jittered capped backoff, enforces
timeouts, and emits telemetry. It speaks in model names, object ids,
operations and replies (``_protocol``): what those mean for model classes and
handles is the models' business (``_handles``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import time
import uuid
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Final, Protocol, TypeVar

import anyio
import anyio.lowlevel

from . import _context
from . import _exceptions as exc
from . import _protocol as proto
from . import _telemetry as telemetry
from ._config import Settings
from ._retry import deadline, retrying
from ._subscription import Subscription
from ._transports.base import CallChannel, MessageStream, Transport
from ._transports.network import NetworkTransport

if TYPE_CHECKING:
    from ._models import DurableModel
    from .host import Host

__all__ = ["DurableClient", "close_default", "default_client", "install_default"]

M = TypeVar("M", bound="DurableModel")
T = TypeVar("T")


class EmbeddedTransports(Protocol):
    """Makes the transport of the embedded host (``_transports.local`` provides it)."""

    def __call__(
        self, settings: Settings, *, store: str | None = None, host: Host | None = None
    ) -> Transport: ...


_embedded: EmbeddedTransports | None = None


def provide_embedded(factory: EmbeddedTransports) -> None:
    """Install how clients reach the in-process host (done once, at import)."""
    global _embedded
    _embedded = factory


def _embedded_transport(
    settings: Settings, *, store: str | None = None, host: Host | None = None
) -> Transport:
    if _embedded is None:  # pragma: no cover - installed when the package is imported
        raise exc.UsageError("the embedded host is not available")
    return _embedded(settings, store=store, host=host)


class ClientState(enum.Enum):
    UNOPENED = 1
    OPENED = 2
    CLOSED = 3


class DurableClient:
    """A connection to a host: the embedded one in-process, or a server by URL.

    Arguments left as ``None`` come from the environment (``CLOUDFLARE_WORKER_URL``,
    ``CLOUDFLARE_DURABLE_TOKEN``, ``CLOUDFLARE_DURABLE_TIMEOUT``... see the README),
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
        check_schema: bool | None = None,
        transport: Transport | None = None,
    ) -> None:
        env = Settings.from_env()
        embedded = store is not None or host is not None
        self.settings = Settings(
            url=None if embedded else (url if url is not None else env.url),
            token=token if token is not None else env.token,
            store=store if store is not None else env.store,
            timeout=timeout if timeout is not None else env.timeout,
            retries=retries if retries is not None else env.retries,
            retry_delay=retry_delay if retry_delay is not None else env.retry_delay,
            reconnect_delay=reconnect_delay if reconnect_delay is not None else env.reconnect_delay,
            pool_size=pool_size if pool_size is not None else env.pool_size,
            check_schema=check_schema if check_schema is not None else env.check_schema,
        ).check()
        if transport is None:
            if host is not None:
                transport = _embedded_transport(self.settings, host=host)
            elif self.settings.url is None:
                transport = _embedded_transport(self.settings, store=self.settings.store)
            else:
                transport = NetworkTransport(self.settings)
        self._transport = transport
        self._state = ClientState.UNOPENED
        self._served: dict[str, Any] | None = None
        self._schema_checked: set[str] = set()
        self._running: contextlib.AsyncExitStack | None = None

    def __repr__(self) -> str:
        where = self.settings.url or f"embedded:{self.settings.store}"
        return f"<DurableClient {where} {self._state.name.lower()}>"

    # -- lifecycle --------------------------------------------------------

    async def __aenter__(self) -> DurableClient:
        """Open the client. On the embedded host it starts, this also runs the host's
        schedules until the block ends (a task of the block's task group)."""
        if self._state is ClientState.CLOSED:
            raise exc.UsageError("this DurableClient is closed; create a new one")
        self._state = ClientState.OPENED
        if self._running is None:
            running = contextlib.AsyncExitStack()
            await running.enter_async_context(self._transport.running())
            self._running = running
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close connections (and the embedded host this client started, after stopping
        its schedules: call it from the task that entered the client)."""
        if self._state is not ClientState.CLOSED:
            self._state = ClientState.CLOSED
            running, self._running = self._running, None
            try:
                if running is not None:
                    await running.aclose()
            finally:
                await self._transport.aclose()

    @property
    def closed(self) -> bool:
        return self._state is ClientState.CLOSED

    def _check_open(self) -> None:
        if self._state is ClientState.CLOSED:
            raise exc.UsageError("this DurableClient is closed; create a new one")

    # -- public helpers ---------------------------------------------------

    def get(self, model: type[M], object_id: str) -> M:
        """A handle on ``object_id`` of ``model`` through this client (no I/O)."""
        return model.get(object_id, client=self)

    async def create(self, model: type[M], object_id: str, /, **fields: Any) -> M:
        """Initialise the object with ``fields``; ``AlreadyExistsError`` if it has state."""
        return await model.get(object_id, client=self)._durable_create(fields)

    async def create_many(self, model: type[M], items: Mapping[str, Mapping[str, Any]]) -> list[M]:
        """Initialise many objects of ``model`` (fields by object id); see
        ``DurableModel.create_many``."""
        return await model.create_many(items, client=self)

    async def _create_many(
        self, model: str, states: dict[str, dict[str, Any]]
    ) -> dict[str, proto.Reply]:
        """Create every object of ``states``: in one transaction in-process, else one
        request each (with its own request id), ``pool_size`` at a time."""
        self._check_open()
        versions = await self._transport.create_many(model, states)
        if versions is not None:
            return {oid: proto.Reply(201, versions[oid], states[oid]) for oid in states}
        replies: dict[str, proto.Reply] = {}
        failed: dict[str, exc.DurableError] = {}
        limiter = anyio.CapacityLimiter(self.settings.pool_size)

        async def create(object_id: str) -> None:
            async with limiter:
                try:
                    replies[object_id] = await self._perform(
                        proto.Create(model, object_id, states[object_id])
                    )
                except exc.DurableError as error:
                    failed[object_id] = error

        async with anyio.create_task_group() as group:
            for object_id in states:
                group.start_soon(create, object_id)
        if failed:
            first = next(iter(failed.values()))
            names = sorted(failed)
            shown = ", ".join(f"{oid!r}: {failed[oid].message}" for oid in names[:5])
            raise type(first)(
                f"{len(failed)} of {len(states)} {model} objects were not created ({shown}); "
                "the others were",
                details={"object_ids": names[:100]},
            ) from first
        return replies

    # -- what handles use -------------------------------------------------

    @property
    def _patches(self) -> bool:
        """Whether the server answers with patches (``Durable-Features: patch``)."""
        return self._transport.patches

    @property
    def _checks_schema(self) -> bool:
        return self.settings.check_schema and not self._transport.in_process

    async def _served_schema(self) -> dict[str, Any]:
        """The server's schema document, asked for once (``check_schema``)."""
        self._check_open()
        if self._served is None:
            settings = self.settings
            self._served = await retrying(
                self._transport.schema,
                retries=settings.retries,
                delay=settings.retry_delay,
                within=settings.timeout,
                what="GET /v1/models",
            )
        return self._served

    async def _perform(self, op: proto.Operation) -> proto.Reply:
        """Perform ``op`` under this client's policy: request ids, retries, timeouts,
        telemetry. In-process, nothing can be lost in transit: no request ids, and no
        timeouts except for calls a method body makes (so two bodies waiting on each
        other give up instead of waiting forever)."""
        self._check_open()
        transport = self._transport
        if transport.in_process and not telemetry.observed():
            return await self._in_process(op)  # the hot path
        if not transport.in_process and isinstance(op, proto.MUTATIONS) and op.request_id is None:
            op = dataclasses.replace(op, request_id=uuid.uuid4().hex)
        return await self._observed(op)

    async def _observed(self, op: proto.Operation) -> proto.Reply:
        method = op.method if isinstance(op, proto.Call) else ""
        metadata = {"kind": op.kind, "model": op.model, "object_id": op.object_id, "method": method}
        started = time.perf_counter()
        if telemetry.active("request.start"):
            telemetry.emit("request.start", {"system_time": time.time()}, metadata)
        try:
            with telemetry.span(f"durable.{op.kind}", metadata):
                reply = await self._attempts(op, metadata)
        except exc.DurableError as error:
            duration = time.perf_counter() - started
            telemetry.emit("error", {"duration": duration}, {**metadata, "error": error})
            telemetry.emit("request.stop", {"duration": duration}, {**metadata, "error": error})
            raise
        if telemetry.active("request.stop"):
            telemetry.emit("request.stop", {"duration": time.perf_counter() - started}, metadata)
        return reply

    async def _query(self, query: proto.Query) -> dict[str, Any]:
        """Ask ``query`` (read-only: retried freely), under this client's timeouts."""
        self._check_open()
        transport = self._transport
        what = f"{query.kind} {query.model}"
        return await self._under_policy(lambda: transport.query(query), what)

    async def _in_process(self, op: proto.Operation) -> proto.Reply:
        """``_under_policy`` for an in-process transport, unrolled: the hot path."""
        if _context.current() is None:
            return await self._transport.perform(op)
        with deadline(self.settings.timeout, _Described(op)):
            return await self._transport.perform(op)

    async def _attempts(self, op: proto.Operation, metadata: dict[str, Any]) -> proto.Reply:
        transport = self._transport
        what = _Described(op) if transport.in_process else metadata
        return await self._under_policy(lambda: transport.perform(op), what)

    async def _under_policy(self, attempt: Callable[[], Awaitable[T]], what: object) -> T:
        """``attempt`` under this client's timeouts: in-process, once (within the timeout
        when a method body makes it, so that a cycle of calls cannot wait forever);
        over the network, retried with backoff while its failures are retryable."""
        if self._transport.in_process:
            if _context.current() is None:
                return await attempt()
            with deadline(self.settings.timeout, what):
                return await attempt()
        settings = self.settings
        return await retrying(
            attempt,
            retries=settings.retries,
            delay=settings.retry_delay,
            within=settings.timeout,
            what=what,
        )

    def _subscribe(
        self,
        model: str,
        object_id: str,
        frame: proto.SubscribeFrame,
        convert: Callable[[proto.Message], T | None],
        *,
        states_to_start: bool = False,
    ) -> Subscription[T]:
        """Items ``convert`` makes of the messages of a subscription that resumes by version.

        With ``states_to_start`` (a subscription to events, which asks for states only
        to learn the version it starts from), a connection that resumes from a version
        asks for events alone: what it missed, and nothing else, so that a connection
        too short to carry a state still moves on."""
        self._check_open()
        metadata = {"model": model, "object_id": object_id}

        async def open_stream(since: int | None) -> MessageStream:
            started = time.perf_counter()
            sent = dataclasses.replace(frame, since=since)
            if states_to_start and since is not None:
                sent = dataclasses.replace(sent, snapshots=False, patches=False)
            stream = await self._transport.stream(model, object_id, sent)
            telemetry.emit(
                "websocket.connected",
                {"duration": time.perf_counter() - started},
                {**metadata, "since": since},
            )
            return stream

        return Subscription(
            open_stream,
            convert,
            since=frame.since,
            timeout=self.settings.timeout,
            reconnect_delay=self.settings.reconnect_delay,
            metadata=metadata,
            events=frame.events,
        )

    @asynccontextmanager
    async def _session(self, model: str, object_id: str) -> AsyncIterator[DurableClient]:
        """A client whose calls to this object share one channel (an RPC session)."""
        self._check_open()
        async with self._transport.channel(model, object_id) as channel:
            session = DurableClient.__new__(DurableClient)
            session.settings = self.settings
            session._transport = _ChannelTransport(self._transport, channel)
            session._state = ClientState.OPENED
            session._served, session._schema_checked = self._served, self._schema_checked
            session._running = None
            try:
                yield session
            finally:
                session._state = ClientState.CLOSED


class _Described:
    """An operation as messages name it, formatted only when one is written."""

    __slots__ = ("_op",)

    def __init__(self, op: proto.Operation) -> None:
        self._op = op

    def __str__(self) -> str:
        op = self._op
        return f"{op.kind} {op.model}({op.object_id!r})"


class _ChannelTransport(Transport):
    """Calls go through an open channel (an RPC session); everything else as before."""

    def __init__(self, parent: Transport, channel: CallChannel) -> None:
        self._parent = parent
        self._channel = channel
        self.in_process = parent.in_process
        self.patches = parent.patches

    async def perform(self, op: proto.Operation) -> proto.Reply:
        if isinstance(op, proto.Call):
            return await self._channel.perform(op)
        return await self._parent.perform(op)

    async def stream(
        self, model: str, object_id: str, subscribe: proto.SubscribeFrame
    ) -> MessageStream:
        return await self._parent.stream(model, object_id, subscribe)

    def channel(
        self, model: str, object_id: str
    ) -> contextlib.AbstractAsyncContextManager[CallChannel]:
        return self._parent.channel(model, object_id)

    async def schema(self) -> dict[str, Any]:
        return await self._parent.schema()

    async def query(self, query: proto.Query) -> dict[str, Any]:
        return await self._parent.query(query)

    async def aclose(self) -> None:
        pass  # the session's connection closes with its block; the parent stays open


_defaults: dict[Any, DurableClient] = {}
_installed: dict[Any, DurableClient] = {}
_outside_loops: Callable[[], DurableClient] | None = None
_for_hosts: weakref.WeakKeyDictionary[Host, DurableClient] = weakref.WeakKeyDictionary()
_MAX_DEFAULTS: Final = 8


def default_client() -> DurableClient:
    """The client handles use when none was given.

    Inside a method body: a client of the host running it. Elsewhere: one built
    from the environment, one per event loop (the embedded host when
    ``CLOUDFLARE_WORKER_URL`` is unset). A client pushed out of the cache by
    newer event loops is closed.
    """
    body = _context.current()
    if body is not None:
        return _client_for(body.host)
    try:
        token = anyio.lowlevel.current_token()
    except RuntimeError:
        if _outside_loops is not None:  # cloudflare_durable.blocking's loop
            return _outside_loops()
        raise exc.UsageError("handles can only do I/O inside an async event loop") from None
    installed = _installed.get(token)
    if installed is not None:
        return installed
    client = _defaults.get(token)
    if client is None or client.closed:
        if len(_defaults) >= _MAX_DEFAULTS:
            _evict_defaults()
        client = _defaults[token] = DurableClient()
    return client


def provide_outside_loops(factory: Callable[[], DurableClient]) -> None:
    """Install the client handles use outside any event loop (``blocking`` does)."""
    global _outside_loops
    _outside_loops = factory


def install_default(client: DurableClient) -> Callable[[], None]:
    """Make ``default_client()`` return ``client`` in the running event loop (outside
    method bodies) until the returned function is called. For test fixtures; the
    caller keeps owning ``client`` and closes it."""
    token = anyio.lowlevel.current_token()
    previous = _installed.get(token)
    _installed[token] = client

    def undo() -> None:
        if previous is None:
            _installed.pop(token, None)
        else:
            _installed[token] = previous

    return undo


async def close_default() -> None:
    """Close the default client of the running event loop, if one was made."""
    client = _defaults.pop(anyio.lowlevel.current_token(), None)
    if client is not None:
        await client.aclose()


def _client_for(host: Host) -> DurableClient:
    client = _for_hosts.get(host)
    if client is None or client.closed:
        client = _for_hosts[host] = DurableClient(host=host, timeout=host.call_timeout)
    return client


def _evict_defaults() -> None:
    """Close the default clients of the oldest event loops (likely gone by now)."""
    for token in list(_defaults)[: _MAX_DEFAULTS // 2]:
        client = _defaults.pop(token)
        client._state = ClientState.CLOSED
        client._transport.close_now()

"""Telemetry: the five events of the Elixir client, as hooks.

``attach(event, handler)`` registers ``handler(event, measurements, metadata)``
for one of :data:`EVENTS` and returns a function that detaches it. Handlers run
inline and must be quick; an exception in a handler is logged, never raised
into the caller. Every event is also logged at DEBUG on the
``cloudflare_durable.telemetry`` logger, and, when ``opentelemetry-api`` is
installed, requests are wrapped in spans.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Mapping
from typing import Any, Final, Literal, TypeAlias

__all__ = ["EVENTS", "Handler", "TelemetryEvent", "attach"]

TelemetryEvent: TypeAlias = Literal[
    "request.start", "request.stop", "websocket.connected", "websocket.disconnected", "error"
]
EVENTS: Final[tuple[TelemetryEvent, ...]] = (
    "request.start",
    "request.stop",
    "websocket.connected",
    "websocket.disconnected",
    "error",
)
Handler: TypeAlias = Callable[[str, Mapping[str, float], Mapping[str, Any]], None]

logger = logging.getLogger("cloudflare_durable.telemetry")
_handlers: dict[str, list[Handler]] = {event: [] for event in EVENTS}

try:  # pragma: no cover - depends on the optional extra
    from opentelemetry import trace as _otel_trace
except ImportError:  # pragma: no cover
    _otel_trace = None  # type: ignore[assignment]


def attach(event: TelemetryEvent, handler: Handler) -> Callable[[], None]:
    """Call ``handler`` on every ``event``; returns a function that detaches it."""
    if event not in _handlers:
        raise ValueError(f"unknown telemetry event {event!r}; choose from {', '.join(EVENTS)}")
    _handlers[event].append(handler)

    def detach() -> None:
        with contextlib.suppress(ValueError):
            _handlers[event].remove(handler)

    return detach


def emit(
    event: TelemetryEvent, measurements: Mapping[str, float], metadata: Mapping[str, Any]
) -> None:
    if logger.isEnabledFor(logging.DEBUG):
        logger.debug("%s %s %s", event, dict(measurements), dict(metadata))
    for handler in tuple(_handlers[event]):
        try:
            handler(event, measurements, metadata)
        except Exception:
            logger.exception("telemetry handler %r failed on %s", handler, event)


def active(event: TelemetryEvent) -> bool:
    return bool(_handlers[event]) or logger.isEnabledFor(logging.DEBUG)


def observed() -> bool:
    """Whether anything would see a request's telemetry (handlers, debug log, traces)."""
    return (
        bool(_handlers["request.start"] or _handlers["request.stop"] or _handlers["error"])
        or logger.isEnabledFor(logging.DEBUG)
        or _tracing()
    )


_quiet_provider: object = None
"""The last tracer provider found to trace nothing (checked by identity: the check of
its class costs more than the rest of ``observed`` on an in-process call)."""


def _tracing() -> bool:
    global _quiet_provider
    if _otel_trace is None:
        return False
    provider = _otel_trace.get_tracer_provider()
    if provider is _quiet_provider:
        return False
    if isinstance(provider, (_otel_trace.ProxyTracerProvider, _otel_trace.NoOpTracerProvider)):
        _quiet_provider = provider
        return False
    return True


_NO_SPAN: Final = contextlib.nullcontext()


def span(name: str, attributes: Mapping[str, Any]) -> contextlib.AbstractContextManager[Any]:
    """An OpenTelemetry span when the API is installed and an SDK is configured."""
    if not _tracing():
        return _NO_SPAN
    tracer = _otel_trace.get_tracer_provider().get_tracer("cloudflare_durable")
    return tracer.start_as_current_span(name, attributes=dict(attributes))

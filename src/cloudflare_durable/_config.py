"""Client configuration: values from arguments, then the environment, then defaults.

The environment variables and their units are those of the Elixir client this
library succeeds (milliseconds for times), plus ``CLOUDFLARE_DURABLE_STORE`` and
``CLOUDFLARE_DURABLE_TOKEN`` (the bearer token; ``CLOUDFLARE_API_TOKEN``, which
wrangler also reads as Cloudflare's account token, is only a fallback).
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

from . import _exceptions as exc

DEFAULT_STORE: Final = "durable.sqlite3"
DEFAULT_TIMEOUT: Final = 30.0
DEFAULT_RETRIES: Final = 3
DEFAULT_RETRY_DELAY: Final = 0.5
DEFAULT_RECONNECT_DELAY: Final = 1.0
DEFAULT_POOL_SIZE: Final = 10

ENV_URL: Final = "CLOUDFLARE_WORKER_URL"
ENV_TOKEN: Final = "CLOUDFLARE_DURABLE_TOKEN"
ENV_TOKEN_FALLBACK: Final = "CLOUDFLARE_API_TOKEN"
ENV_TIMEOUT: Final = "CLOUDFLARE_DURABLE_TIMEOUT"
ENV_RETRIES: Final = "CLOUDFLARE_DURABLE_RETRY_COUNT"
ENV_RETRY_DELAY: Final = "CLOUDFLARE_DURABLE_RETRY_DELAY"
ENV_RECONNECT_DELAY: Final = "CLOUDFLARE_DURABLE_WEBSOCKET_RECONNECT_DELAY"
ENV_POOL_SIZE: Final = "CLOUDFLARE_DURABLE_POOL_SIZE"
ENV_STORE: Final = "CLOUDFLARE_DURABLE_STORE"
ENV_CHECK_SCHEMA: Final = "CLOUDFLARE_DURABLE_CHECK_SCHEMA"


@dataclass(frozen=True, slots=True)
class Settings:
    """Resolved client settings. Times are in seconds here (the environment uses ms)."""

    url: str | None = None
    token: str | None = None
    store: str = DEFAULT_STORE
    timeout: float = DEFAULT_TIMEOUT
    retries: int = DEFAULT_RETRIES
    retry_delay: float = DEFAULT_RETRY_DELAY
    reconnect_delay: float = DEFAULT_RECONNECT_DELAY
    pool_size: int = DEFAULT_POOL_SIZE
    check_schema: bool = False

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        return cls(
            url=env.get(ENV_URL) or None,
            token=token_from_env(env),
            store=env.get(ENV_STORE) or DEFAULT_STORE,
            timeout=_millis(env, ENV_TIMEOUT, DEFAULT_TIMEOUT),
            retries=_count(env, ENV_RETRIES, DEFAULT_RETRIES),
            retry_delay=_millis(env, ENV_RETRY_DELAY, DEFAULT_RETRY_DELAY),
            reconnect_delay=_millis(env, ENV_RECONNECT_DELAY, DEFAULT_RECONNECT_DELAY),
            pool_size=_count(env, ENV_POOL_SIZE, DEFAULT_POOL_SIZE, minimum=1),
            check_schema=_flag(env, ENV_CHECK_SCHEMA),
        )

    def check(self) -> Settings:
        if self.url is not None and not self.url.startswith(("http://", "https://")):
            raise exc.UsageError(f"url must start with http:// or https://, not {self.url!r}")
        if self.token and self.url is not None and self.url.startswith("http://"):
            host = urlsplit(self.url).hostname or ""
            if not is_loopback(host):
                raise exc.UsageError(
                    f"refusing to send the token over plain http:// to {host!r}: "
                    "use https://, or a loopback address for a local server"
                )
        for name in ("timeout", "retry_delay", "reconnect_delay"):
            if getattr(self, name) <= 0:
                raise exc.UsageError(f"{name} must be positive, not {getattr(self, name)!r}")
        if self.retries < 0 or self.pool_size < 1:
            raise exc.UsageError("retries must be >= 0 and pool_size >= 1")
        return self


def token_from_env(env: Mapping[str, str]) -> str | None:
    """The bearer token: ``CLOUDFLARE_DURABLE_TOKEN``, else ``CLOUDFLARE_API_TOKEN``."""
    return env.get(ENV_TOKEN) or env.get(ENV_TOKEN_FALLBACK) or None


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address, IPv6 with or without brackets) is this machine."""
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def store_path(store: str | os.PathLike[str]) -> str:
    """The SQLite location for ``store``: ``:memory:`` or an absolute file path."""
    text = os.fspath(store)
    return text if text == ":memory:" else str(Path(text).expanduser().resolve())


def _number(env: Mapping[str, str], name: str) -> float | None:
    raw = env.get(name)
    if raw is None or not raw.strip():
        return None
    try:
        return float(raw)
    except ValueError:
        raise exc.UsageError(f"{name} must be a number, not {raw!r}") from None


def _millis(env: Mapping[str, str], name: str, default: float) -> float:
    value = _number(env, name)
    if value is None:
        return default
    if value <= 0:
        raise exc.UsageError(f"{name} must be a positive number of milliseconds, not {value}")
    return value / 1000.0


def _count(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    value = _number(env, name)
    if value is None:
        return default
    if value != int(value) or value < minimum:
        raise exc.UsageError(f"{name} must be a whole number >= {minimum}, not {value}")
    return int(value)


def _flag(env: Mapping[str, str], name: str) -> bool:
    raw = (env.get(name) or "").strip().lower()
    if raw in ("", "0", "false", "no", "off"):
        return False
    if raw in ("1", "true", "yes", "on"):
        return True
    raise exc.UsageError(f"{name} must be 1 or 0 (true or false), not {raw!r}")

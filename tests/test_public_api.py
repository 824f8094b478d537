"""The public API is exactly ``cloudflare_durable.__all__`` (and the documented public
submodules); everything else is private, and nothing private leaks into it."""

from __future__ import annotations

import importlib
import pkgutil
import types

import cloudflare_durable
from cloudflare_durable import _exceptions as exc

PUBLIC_SUBMODULES = {"blocking", "host", "pytest_plugin", "testing"}


def test_all_is_unique_and_resolves() -> None:
    names = cloudflare_durable.__all__
    assert len(set(names)) == len(names)
    for name in names:
        assert hasattr(cloudflare_durable, name), name
        assert not name.startswith("_") or name == "__version__"


def test_every_public_name_of_the_package_is_in_all() -> None:
    public = {
        name
        for name, value in vars(cloudflare_durable).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert public == set(cloudflare_durable.__all__) - {"__version__"}


def test_only_documented_submodules_are_public() -> None:
    found = {
        info.name
        for info in pkgutil.iter_modules(cloudflare_durable.__path__)
        if not info.name.startswith("_")
    }
    assert found == PUBLIC_SUBMODULES
    for name in found:
        module = importlib.import_module(f"cloudflare_durable.{name}")
        for exported in module.__all__:
            assert not exported.startswith("_"), f"{name}.{exported}"


def test_every_exception_is_exported() -> None:
    exported = {name for name in exc.__all__ if name != "ERRORS"}
    assert exported <= set(cloudflare_durable.__all__)
    for name in exported:
        assert issubclass(getattr(cloudflare_durable, name), cloudflare_durable.DurableError)

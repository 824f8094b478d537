"""Ill-formed models are refused when the class is created, with a clear message."""

from __future__ import annotations

import re

import pytest

from cloudflare_durable import DurableModel, Event, InvalidIdError, ModelDefinitionError, remote
from cloudflare_durable._models import DurableModelMeta


class Opaque:
    """Not a type pydantic can validate or send as JSON."""


def _cause(error: BaseException) -> BaseException:
    # Python 3.11 wraps an error raised in __set_name__ in a RuntimeError; ours is its cause.
    return error if isinstance(error, ModelDefinitionError) else error.__cause__ or error


def test_remote_needs_async_def() -> None:
    with pytest.raises(ModelDefinitionError, match="async def"):

        class NotAsync(DurableModel, name="def.NotAsync"):
            @remote  # type: ignore[arg-type]
            def increment(self) -> int:
                return 1


def test_remote_on_a_plain_function_or_static_method() -> None:
    with pytest.raises(ModelDefinitionError, match="async def"):

        class Static(DurableModel, name="def.Static"):
            @remote  # type: ignore[arg-type]
            @staticmethod
            async def helper() -> int:
                return 1

    @remote
    async def orphan(self: DurableModel) -> int:
        return 1

    with pytest.raises(ModelDefinitionError, match="not a method"):
        orphan(None)  # type: ignore[operator]


def test_remote_outside_a_durable_model() -> None:
    with pytest.raises((ModelDefinitionError, RuntimeError)) as info:

        class Plain:
            @remote  # type: ignore[type-var]
            async def go(self) -> int:
                return 1

    error = _cause(info.value)
    assert isinstance(error, ModelDefinitionError)
    assert "not a DurableModel subclass" in str(error)


@pytest.mark.parametrize("field", ["durable_id", "durable_anything"])
def test_reserved_field_prefix(field: str) -> None:
    with pytest.raises(ModelDefinitionError, match=re.escape(field)):
        DurableModelMeta(
            "Reserved",
            (DurableModel,),
            {"__annotations__": {field: int}, field: 0, "__module__": __name__},
            name="def.Reserved",
        )


@pytest.mark.parametrize(
    "method", ["load", "update", "delete", "subscribe", "get", "emit", "model_dump"]
)
def test_remote_names_that_shadow_the_api(method: str) -> None:
    async def body(self: DurableModel) -> None:
        return None

    body.__name__ = body.__qualname__ = method
    namespace = {method: remote(body), "__module__": __name__}
    with pytest.raises((ModelDefinitionError, RuntimeError)) as info:
        DurableModelMeta("Shadow", (DurableModel,), namespace, name="def.Shadow")
    assert "taken by the DurableModel API" in str(_cause(info.value))


def test_private_remote_methods() -> None:
    with pytest.raises((ModelDefinitionError, RuntimeError)) as info:

        class Private(DurableModel, name="def.Private"):
            @remote
            async def _hidden(self) -> None:
                return None

    assert "private" in str(_cause(info.value))


def test_varargs_and_positional_only_are_refused() -> None:
    with pytest.raises(ModelDefinitionError, match=r"\*args"):

        class Var(DurableModel, name="def.Var"):
            @remote
            async def many(self, *args: int) -> None:
                return None

    with pytest.raises(ModelDefinitionError, match="positional-only"):

        class Pos(DurableModel, name="def.Pos"):
            @remote
            async def one(self, x: int, /) -> None:
                return None


def test_unsendable_parameter_types_are_refused() -> None:
    with pytest.raises(ModelDefinitionError, match="cannot be"):

        class Unsendable(DurableModel, name="def.Unsendable"):
            @remote
            async def take(self, thing: Opaque) -> None:
                return None


def test_two_models_cannot_share_a_name() -> None:
    class First(DurableModel, name="def.Same"):
        x: int = 0

    with pytest.raises(ModelDefinitionError, match="two models are named"):

        class Second(DurableModel, name="def.Same"):
            y: int = 0


def test_invalid_wire_names() -> None:
    with pytest.raises(InvalidIdError):

        class BadName(DurableModel, name="has space"):
            pass

    with pytest.raises(InvalidIdError):

        class BadEvent(Event, name="no/slash"):
            pass


def test_wire_name_defaults_and_overrides() -> None:
    class Plain(DurableModel):
        x: int = 0

        @remote(name="renamed")
        async def method(self) -> int:
            return self.x

    assert Plain.__durable_name__ == "Plain"
    assert set(Plain.__durable_methods__) == {"renamed"}


def test_subclasses_inherit_and_override_remote_methods() -> None:
    class Base(DurableModel, name="def.Base"):
        x: int = 0

        @remote
        async def one(self) -> int:
            return 1

        @remote
        async def two(self) -> int:
            return 2

    class Child(Base, name="def.Child"):
        @remote
        async def two(self) -> int:
            return 22

    assert set(Child.__durable_methods__) == {"one", "two"}
    assert Child.__durable_methods__["two"].fn.__qualname__.endswith("Child.two")


def test_emit_and_setters_outside_a_host() -> None:
    from cloudflare_durable import UsageError

    class Quiet(DurableModel, name="def.Quiet"):
        x: int = 0

    class Happened(Event, name="def.Happened"):
        pass

    with pytest.raises(UsageError, match="emit"):
        Quiet().emit(Happened())
    with pytest.raises(UsageError, match="not bound"):
        _ = Quiet().durable_id


class Helpers(DurableModel, name="def.Helpers"):
    value: int = 0

    async def double(self) -> int:
        """A plain async method: it runs where it is called."""
        self.value *= 2
        return self.value

    @remote
    async def bump_and_double(self) -> int:
        self.value += 1
        return await self.double()


@pytest.mark.anyio
async def test_a_plain_async_method_on_a_handle_is_refused() -> None:
    from cloudflare_durable import DurableClient, UsageError

    async with DurableClient(store=":memory:") as client:
        handle = client.get(Helpers, "h")
        assert await handle.bump_and_double() == 2  # inside a body it runs on the live object
        with pytest.raises(UsageError, match="not a @remote method"):
            await handle.double()
        snapshot = await handle.load()
        with pytest.raises(UsageError, match="not a @remote method"):
            await snapshot.double()
        assert (await handle.load()).value == 2
    assert await Helpers(value=3).double() == 6  # a plain instance is an ordinary object

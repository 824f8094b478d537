"""Model constructors that type checkers must reject (marked lines only): the model
class takes its fields by keyword, with their types."""

from __future__ import annotations

from cloudflare_durable import DurableModel, remote


class Counter(DurableModel, name="typing.fail.ConstructedCounter"):
    value: int = 0
    label: str

    @remote
    async def increment(self, by: int = 1) -> int:
        self.value += by
        return self.value

    async def helper(self) -> int:
        return self.value


def constructors() -> None:
    Counter(label="a", valu=1)  # E: call-arg
    Counter(label="a", value="x")  # E: arg-type
    Counter(value=1)  # E: call-arg
    Counter("a")  # E: call-arg, arg-type
    Counter(label="a", durable_id="x")  # E: call-arg
    print(Counter(label="a").helper)

"""A chat room: post messages, read recent history, and watch ``Posted`` events.

Run it with ``python examples/chat_room.py``.
"""

from __future__ import annotations

import anyio
from pydantic import BaseModel

from cloudflare_durable import DurableModel, Event, remote

HISTORY = 100


class Message(BaseModel):
    author: str
    text: str


class Posted(Event):
    author: str
    text: str


class ChatRoom(DurableModel):
    messages: list[Message] = []

    @remote
    async def post(self, author: str, text: str) -> int:
        """Append a message (keeping the last 100); returns how many are kept."""
        if not text.strip():
            raise ValueError("a message needs some text")
        self.messages = [*self.messages, Message(author=author, text=text)][-HISTORY:]
        self.emit(Posted(author=author, text=text))
        return len(self.messages)

    @remote
    async def recent(self, limit: int = 20) -> list[Message]:
        return self.messages[-limit:] if limit > 0 else []


async def listen(room: ChatRoom, count: int, ready: anyio.Event) -> None:
    async with room.events(Posted) as posts:
        ready.set()
        async for post in posts:
            print(f"  {post.author}: {post.text}")
            count -= 1
            if count == 0:
                return


async def main() -> None:
    room = ChatRoom.get("example-room")
    await room.delete()
    ready = anyio.Event()
    async with anyio.create_task_group() as tg:
        tg.start_soon(listen, room, 3, ready)
        await ready.wait()
        await room.post("ann", "hello")
        await room.post("bob", "hi ann")
        await room.post("ann", "bye")
    history = await room.recent(limit=2)
    print("last two:", [f"{m.author}: {m.text}" for m in history])


if __name__ == "__main__":
    anyio.run(main)

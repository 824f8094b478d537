"""A collaborative document: editors join, edit in turn, and leave, while a
subscriber watches every version and every event.

Run it with ``python examples/collaborative_document.py`` (embedded host by
default; set ``CLOUDFLARE_WORKER_URL`` to use a server).
"""

from __future__ import annotations

import anyio

from cloudflare_durable import DurableModel, Event, RemoteError, remote


class Joined(Event):
    editor_id: str
    name: str


class Edited(Event):
    editor_id: str
    version: int


class Left(Event):
    editor_id: str


class Document(DurableModel):
    content: str = ""
    version: int = 0
    editors: dict[str, str] = {}

    @remote
    async def join(self, editor_id: str, name: str) -> list[str]:
        """Add an editor; returns the editor ids in join order."""
        self.editors = {**self.editors, editor_id: name}
        self.emit(Joined(editor_id=editor_id, name=name))
        return list(self.editors)

    @remote
    async def edit(self, editor_id: str, content: str, version: int) -> int:
        """Replace the content; ``version`` must be the next one (no lost edits)."""
        if editor_id not in self.editors:
            raise PermissionError(f"{editor_id} has not joined this document")
        if version != self.version + 1:
            raise ValueError(f"stale edit: document is at version {self.version}, got {version}")
        self.content = content
        self.version = version
        self.emit(Edited(editor_id=editor_id, version=version))
        return version

    @remote
    async def leave(self, editor_id: str) -> bool:
        if editor_id not in self.editors:
            return False
        self.editors = {k: v for k, v in self.editors.items() if k != editor_id}
        self.emit(Left(editor_id=editor_id))
        return True


async def watch_events(doc: Document, count: int, ready: anyio.Event) -> None:
    async with doc.events(Joined, Edited, Left) as events:
        ready.set()
        async for event in events:
            match event:
                case Joined(name=name):
                    print(f"  event: {name} joined")
                case Edited(editor_id=editor, version=version):
                    print(f"  event: {editor} wrote version {version}")
                case Left(editor_id=editor):
                    print(f"  event: {editor} left")
            count -= 1
            if count == 0:
                return


async def editor(doc: Document, editor_id: str, name: str, lines: list[str]) -> None:
    await doc.join(editor_id, name)
    for line in lines:
        while True:  # optimistic editing: retry on a stale version
            current = await doc.load()
            try:
                await doc.edit(editor_id, current.content + line + "\n", current.version + 1)
                break
            except RemoteError as error:
                if error.type_name != "ValueError":
                    raise
    await doc.leave(editor_id)


async def main() -> None:
    doc = Document.get("example-document")
    await doc.delete()
    ready = anyio.Event()
    async with anyio.create_task_group() as tg:
        tg.start_soon(watch_events, doc, 2 + 4 + 2, ready)
        await ready.wait()
        async with anyio.create_task_group() as editors:
            editors.start_soon(editor, doc, "ann", "Ann", ["Hello,", "world."])
            editors.start_soon(editor, doc, "bob", "Bob", ["Hi Ann!", "Bye."])
    final = await doc.load()
    print(f"document at version {final.version} (object version {final.durable_version}):")
    print(final.content, end="")


if __name__ == "__main__":
    anyio.run(main)

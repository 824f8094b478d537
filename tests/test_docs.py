"""The docs do not drift from the code: the site builds with ``mkdocs build
--strict``, and every code block in the docs either runs here or says why not.

A fenced block names its language. Python blocks of one page run in order, in one
namespace (top-level ``await`` allowed), on a fresh in-memory embedded host, in a
process of their own, after the page's hidden ``<!-- setup: ... -->`` comment
(the context an excerpt assumes: a model from ``examples/``, a token). Blocks in
other programming languages, and Python blocks that cannot run here (they need a
server, a Cloudflare account, or never end), are preceded by
``<!-- not run: the reason -->``. JSON blocks must parse.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from .conftest import ROOT

PAGES = sorted([ROOT / "README.md", ROOT / "worker" / "README.md", *(ROOT / "docs").rglob("*.md")])
FENCE = re.compile(r"^(?P<indent> *)(?P<fence>```+)(?P<lang>[^\s`]*)[^`]*$")
NOT_RUN = re.compile(r"^\s*<!-- not run: (?P<why>\S.*?) -->\s*$")
SETUP = re.compile(r"^<!-- setup:\n(?P<code>.*?)\n-->$", re.MULTILINE | re.DOTALL)
DATA = {"text", "json", "jsonc", "ini", "toml", "yaml", "http"}
RUN = {"python"}

RUNNER = """
import ast, asyncio, inspect, json, sys

async def main(blocks):
    namespace = {"__name__": "__docs__"}
    for line, source in blocks:
        try:
            code = compile(source, f"block at line {line}", "exec",
                           flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
            result = eval(code, namespace)
            if inspect.iscoroutine(result):
                await result
        except BaseException:
            print(f"the block at line {line} failed:", file=sys.stderr)
            raise

asyncio.run(main(json.load(sys.stdin)))
"""


@dataclass(frozen=True)
class Block:
    page: Path
    line: int
    lang: str
    source: str
    not_run: str | None


def blocks_of(page: Path) -> list[Block]:
    lines = page.read_text().splitlines()
    found: list[Block] = []
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if opening is None:
            index += 1
            continue
        indent, fence = opening["indent"], opening["fence"]
        end = index + 1
        while end < len(lines) and lines[end].strip() != fence:
            end += 1
        body = [
            text[len(indent) :] if text.startswith(indent) else text
            for text in lines[index + 1 : end]
        ]
        previous = next((text for text in reversed(lines[:index]) if text.strip()), "")
        marker = NOT_RUN.match(previous)
        found.append(
            Block(page, index + 1, opening["lang"], "\n".join(body), marker and marker["why"])
        )
        index = end + 1
    return found


BLOCKS = [block for page in PAGES for block in blocks_of(page)]
PYTHON_PAGES = sorted({b.page for b in BLOCKS if b.lang in RUN and b.not_run is None})


def setup_of(page: Path) -> list[tuple[int, str]]:
    """The page's hidden setup code, with the line it starts on."""
    text = page.read_text()
    return [
        (text.count("\n", 0, found.start()) + 2, found["code"]) for found in SETUP.finditer(text)
    ]


SETUP_PAGES = sorted(page for page in PAGES if setup_of(page))


def where(block: Block) -> str:
    return f"{block.page.relative_to(ROOT)}:{block.line}"


def test_every_block_names_its_language_and_runs_or_says_why_not() -> None:
    problems = []
    for block in BLOCKS:
        if not block.lang:
            problems.append(f"{where(block)}: a block without a language")
        elif block.lang not in RUN | DATA and block.not_run is None:
            problems.append(f"{where(block)}: a {block.lang} block, not marked `not run`")
    assert not problems, "\n".join(problems)
    assert len(BLOCKS) > 50  # the parser found the docs' blocks


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.lang == "json"], ids=where)
def test_json_blocks_parse(block: Block) -> None:
    json.loads(block.source)


@pytest.mark.parametrize("page", PYTHON_PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_python_blocks_run(page: Path, tmp_path: Path) -> None:
    runs = [(b.line, b.source) for b in blocks_of(page) if b.lang in RUN and b.not_run is None]
    blocks = setup_of(page) + runs
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDFLARE_")}
    env["CLOUDFLARE_DURABLE_STORE"] = ":memory:"
    env["CLOUDFLARE_DURABLE_TOKEN"] = "docs-token"  # read by examples that serve
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "examples"), env.get("PYTHONPATH", "")])
    result = subprocess.run(
        [sys.executable, "-c", RUNNER],
        input=json.dumps(blocks),
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_setup_comments_belong_to_pages_that_run() -> None:
    assert set(SETUP_PAGES) <= set(PYTHON_PAGES)


def test_the_site_builds_strictly(tmp_path: Path) -> None:
    mkdocs = Path(sys.executable).with_name("mkdocs")
    result = subprocess.run(
        [str(mkdocs), "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    reference = (tmp_path / "site" / "reference" / "index.html").read_text()
    assert "DurableModel" in reference
    assert ":class:" not in reference

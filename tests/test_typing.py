"""The typing promise: what ``mypy --strict`` and pyright (strict), with no plugin,
make of users' code.

``tests/typing/pass_*.py`` must check cleanly under both. In
``tests/typing/fail_*.py``, each line that must be rejected ends with
``# E: <code>[, <code>...]`` (mypy's error codes): mypy must report exactly
those lines with exactly those codes, and pyright errors on exactly those lines
(its own rule names differ), so a line that stops being rejected fails the test.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest
from mypy import api

ROOT = Path(__file__).resolve().parents[1]
TYPING = ROOT / "tests" / "typing"
PASS_FILES = sorted(TYPING.glob("pass_*.py"))
FAIL_FILES = sorted(TYPING.glob("fail_*.py"))

MARK = re.compile(r"#\s*E:\s*(?P<codes>[a-z][a-z-]*(?:\s*,\s*[a-z][a-z-]*)*)\s*$")
ERROR = re.compile(r"^(?P<path>.+?):(?P<line>\d+): error: .*\[(?P<code>[a-z][a-z-]*)\]$")

Errors = set[tuple[int, str]]


def expected_errors(path: Path) -> Errors:
    """The ``(line, code)`` pairs marked with ``# E:`` in ``path``."""
    expected: Errors = set()
    for number, text in enumerate(path.read_text().splitlines(), start=1):
        match = MARK.search(text)
        if match:
            expected.update((number, code.strip()) for code in match["codes"].split(","))
    return expected


@pytest.fixture(scope="module")
def reported(tmp_path_factory: pytest.TempPathFactory) -> dict[Path, Errors]:
    """One mypy run over every typing file: the errors it reports, by file."""
    cache = tmp_path_factory.mktemp("mypy-cache")
    stdout, stderr, status = api.run(
        [
            "--config-file",
            str(ROOT / "pyproject.toml"),
            "--strict",
            "--cache-dir",
            str(cache),
            "--show-absolute-path",
            "--show-error-codes",
            "--no-error-summary",
            "--no-pretty",
            "--no-color-output",
            *(str(path) for path in PASS_FILES + FAIL_FILES),
        ]
    )
    assert status in (0, 1), f"mypy did not run (status {status}):\n{stderr}{stdout}"
    errors: dict[Path, Errors] = defaultdict(set)
    for line in stdout.splitlines():
        match = ERROR.match(line)
        if match:
            errors[Path(match["path"]).resolve()].add((int(match["line"]), match["code"]))
    return dict(errors)


def test_typing_files_are_present() -> None:
    assert PASS_FILES, "no tests/typing/pass_*.py"
    assert FAIL_FILES, "no tests/typing/fail_*.py"
    for path in FAIL_FILES:
        assert expected_errors(path), f"{path.name} marks no line with '# E: <code>'"


@pytest.mark.parametrize("path", PASS_FILES, ids=lambda path: path.name)
def test_passes_strict(path: Path, reported: dict[Path, Errors]) -> None:
    assert sorted(reported.get(path.resolve(), set())) == []


@pytest.mark.parametrize("path", FAIL_FILES, ids=lambda path: path.name)
def test_rejects_exactly_the_marked_lines(path: Path, reported: dict[Path, Errors]) -> None:
    expected = expected_errors(path)
    actual = reported.get(path.resolve(), set())
    assert {
        "marked but not reported": sorted(expected - actual),
        "reported but not marked": sorted(actual - expected),
    } == {"marked but not reported": [], "reported but not marked": []}


PYRIGHT_CONFIG = {
    "typeCheckingMode": "strict",
    "pythonVersion": "3.11",
    "reportUnusedExpression": False,
}


@pytest.fixture(scope="module")
def pyright_reported(tmp_path_factory: pytest.TempPathFactory) -> dict[Path, set[int]]:
    """One pyright run (basedpyright, from PyPI) over every typing file: lines with errors."""
    executable = shutil.which("basedpyright", path=str(Path(sys.executable).parent))
    assert executable is not None, "basedpyright is part of the dev extra"
    config = tmp_path_factory.mktemp("pyright") / "pyrightconfig.json"
    config.write_text(
        json.dumps(
            {
                **PYRIGHT_CONFIG,
                "venvPath": str(Path(sys.prefix).parent),
                "venv": Path(sys.prefix).name,
            }
        )
    )
    result = subprocess.run(
        [executable, "--outputjson", "-p", str(config), *map(str, PASS_FILES + FAIL_FILES)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    report = json.loads(result.stdout)
    lines: dict[Path, set[int]] = defaultdict(set)
    for diagnostic in report["generalDiagnostics"]:
        if diagnostic["severity"] == "error":
            lines[Path(diagnostic["file"]).resolve()].add(diagnostic["range"]["start"]["line"] + 1)
    return dict(lines)


@pytest.mark.parametrize("path", PASS_FILES, ids=lambda path: path.name)
def test_passes_pyright(path: Path, pyright_reported: dict[Path, set[int]]) -> None:
    assert sorted(pyright_reported.get(path.resolve(), set())) == []


@pytest.mark.parametrize("path", FAIL_FILES, ids=lambda path: path.name)
def test_pyright_rejects_exactly_the_marked_lines(
    path: Path, pyright_reported: dict[Path, set[int]]
) -> None:
    expected = {line for line, _ in expected_errors(path)}
    actual = pyright_reported.get(path.resolve(), set())
    assert {
        "marked but not reported": sorted(expected - actual),
        "reported but not marked": sorted(actual - expected),
    } == {"marked but not reported": [], "reported but not marked": []}

"""Every ```python block in docs/ runs: the documentation is tested like the code it explains.

Each Markdown file under docs/ (its `_build/` output aside) is one test. Its ```python blocks
run in order in one shared namespace, as a reader would paste them into one session; a block
that raises fails the test, with the traceback pointing at the line of the Markdown file.

Opting out: a block whose first line is `# docs-test: skip <reason>` is shown but not run.
The reason is required (a block with the marker and no reason fails the test); use it only
for code that cannot run in the test suite (it needs a network, a GPU, minutes of time).
Code that is not Python at all belongs in a ```text or ```sh block, which is never run.

Blocks may register primitives (the tutorial builds one) or change `fnbrrr.config`: both are
undone after each file, so the documentation never leaks into the rest of the test suite.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

import fnbrrr
from fnbrrr import core

DOCS = Path(__file__).resolve().parent.parent / "docs"
SKIP_MARKER = "# docs-test: skip"
_FENCE = re.compile(r"^\s*(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`\s]*)")


def markdown_files() -> list[Path]:
    """The documentation's Markdown sources, in a stable order."""
    return sorted(p for p in DOCS.rglob("*.md") if "_build" not in p.relative_to(DOCS).parts)


def python_blocks(path: Path) -> list[tuple[int, str]]:
    """`(line number of the block's first line, source)` for each ```python block of `path`.

    A fence is three or more backticks (or tildes) with an info string, possibly indented (a
    block inside a list item); a block ends at the next line that starts with the same fence.
    Only the info string `python` counts.
    """
    blocks, lines = [], path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        match = _FENCE.match(lines[i])
        if match is None:
            i += 1
            continue
        fence, info = match.group("fence"), match.group("info")
        start = i + 1
        i = start
        while i < len(lines) and not lines[i].lstrip().startswith(fence):
            i += 1
        if info == "python":
            blocks.append((start + 1, textwrap.dedent("\n".join(lines[start:i]) + "\n")))
        i += 1
    return blocks


def _skip_reason(source: str) -> str | None:
    first = source.lstrip("\n").split("\n", 1)[0].strip()
    if not first.startswith(SKIP_MARKER):
        return None
    return first[len(SKIP_MARKER) :].strip(" :-—")


@pytest.fixture
def isolated_registry():
    """Primitives and config flags a doc sets are removed / restored afterwards."""
    registered = set(core.primitives)
    flags = dict(fnbrrr.config._values)
    try:
        yield
    finally:
        for name in set(core.primitives) - registered:
            del core.primitives[name]
        for name, value in flags.items():
            if fnbrrr.config._values[name] != value:
                fnbrrr.config.update(name, value)


def test_docs_exist():
    names = {p.relative_to(DOCS).as_posix() for p in markdown_files()}
    assert {"index.md", "design.md"} <= names
    assert any(n.startswith("tutorial/") for n in names)
    assert any(n.startswith("guide/") for n in names)


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: p.relative_to(DOCS).as_posix())
def test_code_blocks_run(path: Path, isolated_registry):
    namespace: dict = {"__name__": f"docs.{path.stem}"}
    for line, source in python_blocks(path):
        reason = _skip_reason(source)
        if reason is not None:
            assert reason, f"{path}:{line}: '{SKIP_MARKER}' needs a reason after it"
            continue
        # Blank lines in front keep the Markdown file's line numbers in tracebacks.
        code = compile("\n" * (line - 1) + source, str(path), "exec")
        exec(code, namespace)  # noqa: S102  (running the documentation is the point)


def test_block_extraction_and_skip_marker(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "text\n```python\nx = 1\n```\n```text\nnot run\n```\n"
        "````python\n# docs-test: skip needs a GPU\ny = 2\n````\n"
        "* a list item:\n\n  ```python\n  z = 3\n  ```\n",
        encoding="utf-8",
    )
    blocks = python_blocks(page)
    assert [line for line, _ in blocks] == [3, 9, 15]
    assert blocks[2][1] == "z = 3\n"
    assert blocks[0][1] == "x = 1\n"
    assert _skip_reason(blocks[0][1]) is None
    assert _skip_reason(blocks[1][1]) == "needs a GPU"
    assert _skip_reason("# docs-test: skip\n") == ""

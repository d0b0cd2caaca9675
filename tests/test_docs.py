"""The user guide's code runs as shown, or says plainly that it is a fragment.

The convention for a ```python block in docs/*.md, checked here on the raw
markdown (before pymdownx.snippets includes the files):

- A whole tutorial, ``--8<-- "examples/NN_name.py"``, is titled with its path
  (```` ```python title="examples/NN_name.py" ````). It runs as shown:
  tests/test_examples.py runs it on both backends.
- Sections of a tutorial, ``--8<-- "examples/NN_name.py:section"``, are
  fragments. The block is titled ``A fragment of examples/NN_name.py`` and the
  page links the whole lesson (``examples.md#lesson-N``) before the block;
  docs/examples.md shows every lesson whole under that anchor. A section of
  another file of the repository (a test) is titled the same way.
- Any other python block is a complete program that ends with
  ``actors.run(main)``: it is run here on both backends. When the next block
  is a ``text`` block introduced by a line ending in "prints:", the program
  must print exactly that.

So a hand-written fragment has no place: put the code in a tutorial and
include its section, or make it a complete program.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
FENCE = re.compile(r"```(\w*)(.*)$")
TITLE = re.compile(r'title="([^"]*)"')
INCLUDE = re.compile(r'--8<-- "([\w/.-]+?)(?::([\w-]+))?"')
LESSON = re.compile(r"examples/(\d\d)_\w+\.py")
PRINTS = re.compile(r"prints:$")


@dataclass
class Block:
    page: str
    line: int  # 1-based, of the opening fence
    lang: str
    title: str | None
    code: str
    before: str  # the page's text above the block
    output: str | None  # the text block introduced by "...prints:" right after it

    @property
    def where(self) -> str:
        return f"docs/{self.page}:{self.line}"


def _blocks(path: Path) -> list[Block]:
    lines = path.read_text(encoding="utf-8").split("\n")
    fences: list[tuple[int, int, str, str | None]] = []  # open, close, lang, title
    i = 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if match:
            end = lines.index("```", i + 1)
            titled = TITLE.search(match[2])
            fences.append((i, end, match[1], titled[1] if titled else None))
            i = end
        i += 1
    blocks = []
    for n, (start, end, lang, title) in enumerate(fences):
        if lang != "python":
            continue
        output = None
        if n + 1 < len(fences):
            nxt_start, nxt_end, nxt_lang, _ = fences[n + 1]
            between = [line for line in lines[end + 1 : nxt_start] if line.strip()]
            if nxt_lang == "text" and len(between) == 1 and PRINTS.search(between[0]):
                output = "\n".join(lines[nxt_start + 1 : nxt_end]) + "\n"
        blocks.append(
            Block(
                page=path.name,
                line=start + 1,
                lang=lang,
                title=title,
                code="\n".join(lines[start + 1 : end]) + "\n",
                before="\n".join(lines[:start]),
                output=output,
            )
        )
    return blocks


BLOCKS = [block for page in sorted(DOCS.glob("*.md")) for block in _blocks(page)]
INCLUDES = [b for b in BLOCKS if INCLUDE.search(b.code)]
PROGRAMS = [b for b in BLOCKS if not INCLUDE.search(b.code)]


def test_the_guide_has_both_kinds_of_block() -> None:
    assert len(INCLUDES) > 40, "the tutorials' sections are no longer found"
    assert len(PROGRAMS) >= 2, "the complete programs are no longer found"


@pytest.mark.parametrize("block", INCLUDES, ids=lambda b: b.where)
def test_included_code_is_a_whole_lesson_or_titled_as_a_fragment(block: Block) -> None:
    includes = [INCLUDE.fullmatch(line) for line in block.code.splitlines()]
    if not all(includes):
        pytest.fail(f"{block.where}: a block that includes a file includes nothing else")
    files = {m[1] for m in includes if m}
    if len(files) != 1:
        pytest.fail(f"{block.where}: include one file per block, not {sorted(files)}")
    (file,) = files
    if not (ROOT / file).is_file():
        pytest.fail(f"{block.where}: {file} does not exist")
    lesson = LESSON.fullmatch(file)
    if not any(m[2] for m in includes if m):
        if not lesson or block.title != file:
            pytest.fail(f'{block.where}: only a whole tutorial is included whole, titled "{file}"')
        return
    if block.title != f"A fragment of {file}":
        pytest.fail(
            f"{block.where}: a section of {file} is a fragment; open the block with "
            f'```python title="A fragment of {file}"'
        )
    if lesson and block.page != "examples.md":
        anchor = f"examples.md#lesson-{int(lesson[1])}"
        if f"({anchor})" not in block.before:
            pytest.fail(f"{block.where}: link the whole lesson, ({anchor}), before the block")


def test_every_lesson_is_shown_whole_under_its_anchor() -> None:
    text = (DOCS / "examples.md").read_text(encoding="utf-8")
    for path in sorted((ROOT / "examples").glob("[0-9][0-9]_*.py")):
        lesson = int(path.name[:2])
        file = f"examples/{path.name}"
        shown = re.search(
            rf"\{{#lesson-{lesson}\}}\n\n```python title=\"{file}\"\n--8<-- \"{file}\"\n```",
            text,
        )
        assert shown, f"docs/examples.md: show {file} whole under a heading {{#lesson-{lesson}}}"


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@pytest.mark.parametrize("block", PROGRAMS, ids=lambda b: b.where)
def test_complete_programs_run_as_shown(block: Block, backend: str, tmp_path: Path) -> None:
    if not block.code.rstrip().endswith("actors.run(main)"):
        pytest.fail(
            f"{block.where}: a python block is a complete program ending with "
            f"actors.run(main), or includes a section of a tutorial as a fragment"
        )
    script = tmp_path / "snippet.py"
    script.write_text(block.code, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        env={**os.environ, "ACTORS_BACKEND": backend},
        timeout=50,
        cwd=tmp_path,
    )
    if done.returncode != 0:
        pytest.fail(f"{block.where} failed on {backend}:\n{done.stderr}")
    if block.output is not None:
        assert done.stdout == block.output, f"{block.where}: prints other than shown"


@pytest.mark.skipif(importlib.util.find_spec("mkdocs") is None, reason="needs the docs extra")
@pytest.mark.timeout(300)
def test_docs_build_strict_and_quiet(tmp_path: Path) -> None:
    # What a user sees after `pip install -e '.[docs]'` and `mkdocs build
    # --strict`: no warning, and no banner (the theme's own is switched off
    # only by an environment variable, so it is dropped from ours).
    env = {k: v for k, v in os.environ.items() if k != "NO_MKDOCS_2_WARNING"}
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=280,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    noise = [
        line for line in (done.stdout + done.stderr).splitlines() if not line.startswith("INFO")
    ]
    assert noise == [], "mkdocs build printed more than its INFO lines:\n" + "\n".join(noise)
    # The tutorials' sections are rendered into the pages, under their titles.
    page = (tmp_path / "actors" / "index.html").read_text(encoding="utf-8")
    assert "A fragment of examples/02_state_and_match.py" in page
    assert "Account" in page and "GetBalance" in page

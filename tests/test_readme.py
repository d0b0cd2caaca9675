"""The README's taste of the API runs and prints what the README says."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _blocks() -> tuple[str, str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    code = re.search(r"```python\n(.*?)```", text, re.S)
    shown = re.search(r"It prints `3`, then the live tree:\n\n```\n(.*?)```", text, re.S)
    assert code and shown, "README.md lost its example or its output"
    return code.group(1), shown.group(1)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_readme_example_prints_what_it_says(backend: str, tmp_path: Path) -> None:
    code, shown = _blocks()
    script = tmp_path / "taste.py"
    script.write_text(code, encoding="utf-8")
    env = {**os.environ, "ACTORS_BACKEND": backend}
    out = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        cwd=ROOT,
        check=True,
    ).stdout
    assert out == "3\n" + shown


def test_readme_set_up_starts_with_a_virtual_environment() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    setup = re.search(r"## Set up and test\n.*?```\n(.*?)```", text, re.S)
    assert setup, "README.md lost its set-up commands"
    commands = [line.split("#")[0].strip() for line in setup.group(1).splitlines()]
    assert commands == [
        "python3 -m venv .venv",
        ". .venv/bin/activate",
        "pip install -e '.[test]'",
        "pytest",
    ]
    assert r"Windows: .venv\Scripts\activate" in setup.group(1)
    assert "python examples/01_hello_actor.py" in text, "README.md lost the first tutorial"

"""Print pip constraints that pin each direct dependency to its floor.

Reads pyproject.toml's ``dependencies`` and the ``test`` extra (with the
project's own extras it names, such as ``[trio]``) and prints ``name==floor``
for every ``>=`` bound (an ``==`` pin is its own floor), so that CI can run the
suite on the lowest versions the pins allow (pip has no lowest-resolution mode
of its own; the dependencies of our dependencies stay at their newest). A direct
dependency without a floor is an error: it would have no lowest version.

Usage: python .ci/lowest.py > constraints.txt  (Python 3.11+, for tomllib)
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import tomllib

REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[([^\]]*)\])?\s*([^;]*)")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def floors(project: dict[str, Any], extra: str) -> list[str]:
    extras: dict[str, list[str]] = project["optional-dependencies"]
    todo = [*project["dependencies"], *extras[extra]]
    done = {extra}
    pins: list[str] = []
    while todo:
        requirement = todo.pop(0)
        match = REQUIREMENT.match(requirement)
        if match is None:
            sys.exit(f"lowest.py: cannot read the requirement {requirement!r}")
        name, wanted, specifiers = match.groups()
        if canonical(name) == canonical(project["name"]):  # our own extras
            for more in (e.strip() for e in (wanted or "").split(",") if e.strip()):
                if more not in done:
                    done.add(more)
                    todo.extend(extras[more])
            continue
        # An exact pin (`==`) is its own floor.
        lower = [
            s.strip()[2:].strip() for s in specifiers.split(",") if s.strip()[:2] in (">=", "==")
        ]
        if len(lower) != 1:
            sys.exit(f"lowest.py: {requirement!r} needs exactly one '>=' floor or '==' pin")
        pins.append(f"{name}=={lower[0]}")
    return pins


def main() -> None:
    pyproject = Path(__file__).parent.parent / "pyproject.toml"
    for pin in floors(tomllib.loads(pyproject.read_text())["project"], "test"):
        print(pin)


if __name__ == "__main__":
    main()

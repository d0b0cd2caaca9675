"""``ACTORS_TEST_SHARD=K/N`` (tests/conftest.py), with which CI runs half of the
suite on each of two Pythons: the parts are disjoint, together they are the
whole, and all the cases of a test function are in one part."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent
FILES = ["test_actor.py", "test_scope.py"]


def collect(shard: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "ACTORS_TEST_SHARD"}
    if shard is not None:
        env["ACTORS_TEST_SHARD"] = shard
    return subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:randomly", *FILES],
        cwd=TESTS,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def ids(shard: str | None) -> list[str]:
    result = collect(shard)
    assert result.returncode == 0, result.stdout + result.stderr
    return [line for line in result.stdout.splitlines() if "::" in line]


def test_the_halves_are_disjoint_cover_the_suite_and_keep_a_functions_cases() -> None:
    whole, first, second = ids(None), ids("1/2"), ids("2/2")
    assert first and second
    assert sorted(first + second) == sorted(whole)
    functions = [{i.split("[", 1)[0] for i in part} for part in (first, second)]
    assert not functions[0] & functions[1]


def test_a_bad_shard_is_refused_with_what_to_give() -> None:
    result = collect("3/2")
    assert result.returncode != 0
    assert "ACTORS_TEST_SHARD='3/2': give K/N with 1 <= K <= N" in result.stdout + result.stderr

"""The actors ``benchmarks.process`` places in child processes.

They live in a module of their own, importable by name, as an application's
process actors must: the child imports the class before it builds the actor,
and a class of ``python -m benchmarks.process`` would belong to ``__main__``.
"""

from __future__ import annotations

import os
from typing import Any

from actors import Actor

from ._messages import Order


class Echo(Actor):
    """Counts the ``Order`` messages it gets and answers each with itself;
    answers ``"count"`` with the count and ``"pid"`` with its process id."""

    def __init__(self) -> None:
        self.count = 0

    async def receive(self, message: Any) -> Any:
        if type(message) is Order:
            self.count += 1
            return message
        if message == "count":
            return self.count
        if message == "pid":
            return os.getpid()
        return self.unhandled(message)

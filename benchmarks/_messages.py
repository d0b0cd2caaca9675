"""Messages the benchmarks send between processes.

They live in a module of their own, importable by name on both sides as an
application's messages are: a class defined in a benchmark run as
``python -m benchmarks.X`` would belong to ``__main__`` and be pickled by value.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Order:
    """A small message: about 90 bytes pickled."""

    id: int
    sku: str
    quantity: int
    price: float

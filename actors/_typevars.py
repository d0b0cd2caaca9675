"""The type variables of typed actors and refs: ``Actor[M, R]`` handles
messages of type ``M`` and answers asks with ``R``; ``ActorRef[M, R]`` takes
and answers the same. Both default to ``Any``, so untyped code (``Actor``,
``ActorRef``) needs no parameters and pays nothing."""

from __future__ import annotations

import sys
from typing import Any

if sys.version_info >= (3, 13):
    from typing import TypeVar
else:  # PEP 696 defaults
    from typing_extensions import TypeVar

M = TypeVar("M", default=Any)
R = TypeVar("R", default=Any)

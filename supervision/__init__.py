"""Supervision trees for ``actors``: supervisors, child specs, restart strategies.

OTP's ``supervisor`` and Elixir's ``DynamicSupervisor``, rule for rule, plus
Akka's backoff; see docs/supervision.md.
"""

from ._backoff import Backoff as Backoff
from ._control import ChildCounts as ChildCounts
from ._control import ChildInfo as ChildInfo
from ._control import count_children as count_children
from ._control import delete_child as delete_child
from ._control import restart_child as restart_child
from ._control import start_child as start_child
from ._control import terminate_child as terminate_child
from ._control import which_children as which_children
from ._dynamic import DynamicSupervisor as DynamicSupervisor
from ._exceptions import ChildRunning as ChildRunning
from ._exceptions import ChildStartFailed as ChildStartFailed
from ._exceptions import NoSuchChild as NoSuchChild
from ._exceptions import TooManyChildren as TooManyChildren
from ._run import run as run
from ._spec import ChildSpec as ChildSpec
from ._supervisor import Supervisor as Supervisor

__all__ = [
    "Backoff",
    "ChildCounts",
    "ChildInfo",
    "ChildRunning",
    "ChildSpec",
    "ChildStartFailed",
    "DynamicSupervisor",
    "NoSuchChild",
    "Supervisor",
    "TooManyChildren",
    "count_children",
    "delete_child",
    "restart_child",
    "run",
    "start_child",
    "terminate_child",
    "which_children",
]


def _fix_modules() -> None:
    # Public objects report the package as their home, as trio and anyio do,
    # so tracebacks, docs and pickles name ``supervision.X``.
    for name in __all__:
        obj = globals()[name]
        if isinstance(obj, type) or callable(obj):
            obj.__module__ = __name__


_fix_modules()
del _fix_modules

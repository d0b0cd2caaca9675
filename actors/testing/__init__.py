"""Testing kit: probes, the ``actor_system`` pytest fixture, virtual time."""

from ._clock import VirtualClockEventLoop as VirtualClockEventLoop
from ._clock import virtual_time as virtual_time
from ._probe import TestProbe as TestProbe

__all__ = ["TestProbe", "VirtualClockEventLoop", "virtual_time"]

for _name in __all__:
    globals()[_name].__module__ = __name__
del _name

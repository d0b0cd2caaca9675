"""An actor framework on structured concurrency, for asyncio and trio alike."""

from ._channel import CLOSED as CLOSED
from ._channel import Channel as Channel
from ._channel import ChannelStatistics as ChannelStatistics
from ._channel import ReceiveCase as ReceiveCase
from ._channel import Selected as Selected
from ._channel import SendCase as SendCase
from ._channel import select as select
from ._exceptions import ActorFailed as ActorFailed
from ._exceptions import ActorsError as ActorsError
from ._exceptions import ActorStopped as ActorStopped
from ._exceptions import AskTimeout as AskTimeout
from ._exceptions import ChannelClosed as ChannelClosed
from ._exceptions import ChannelDrained as ChannelDrained
from ._exceptions import MailboxFull as MailboxFull
from ._exceptions import NameTaken as NameTaken
from ._exceptions import SendOnClosed as SendOnClosed
from ._exceptions import SupervisorGaveUp as SupervisorGaveUp
from ._exceptions import WouldBlock as WouldBlock
from ._go import go as go

__all__ = [
    "CLOSED",
    "ActorFailed",
    "ActorStopped",
    "ActorsError",
    "AskTimeout",
    "Channel",
    "ChannelClosed",
    "ChannelDrained",
    "ChannelStatistics",
    "MailboxFull",
    "NameTaken",
    "ReceiveCase",
    "Selected",
    "SendCase",
    "SendOnClosed",
    "SupervisorGaveUp",
    "WouldBlock",
    "go",
    "select",
]


def _fix_modules() -> None:
    # Public objects report the package as their home, as trio and anyio do,
    # so tracebacks, docs and pickles name ``actors.X``.
    for name in __all__:
        obj = globals()[name]
        if isinstance(obj, type) or callable(obj):
            obj.__module__ = __name__


_fix_modules()
del _fix_modules

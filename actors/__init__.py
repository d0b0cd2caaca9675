"""An actor framework on structured concurrency, for asyncio and trio alike."""

from ._actor import Actor as Actor
from ._actor import Context as Context
from ._actor import Timer as Timer
from ._broker import DEAD_LETTERS_TOPIC as DEAD_LETTERS_TOPIC
from ._broker import GroupInfo as GroupInfo
from ._broker import TopicInfo as TopicInfo
from ._channel import CLOSED as CLOSED
from ._channel import Channel as Channel
from ._channel import ChannelStatistics as ChannelStatistics
from ._channel import ReceiveCase as ReceiveCase
from ._channel import SendCase as SendCase
from ._exceptions import ActorFailed as ActorFailed
from ._exceptions import ActorsError as ActorsError
from ._exceptions import ActorStopped as ActorStopped
from ._exceptions import AskTimeout as AskTimeout
from ._exceptions import AuthenticationError as AuthenticationError
from ._exceptions import ChannelClosed as ChannelClosed
from ._exceptions import ChannelDrained as ChannelDrained
from ._exceptions import ConnectionLost as ConnectionLost
from ._exceptions import IncompatiblePeer as IncompatiblePeer
from ._exceptions import MailboxFull as MailboxFull
from ._exceptions import MessageTooLarge as MessageTooLarge
from ._exceptions import NameLost as NameLost
from ._exceptions import NameTaken as NameTaken
from ._exceptions import NodeDown as NodeDown
from ._exceptions import ProcessExited as ProcessExited
from ._exceptions import ProcessHung as ProcessHung
from ._exceptions import RemoteError as RemoteError
from ._exceptions import SendOnClosed as SendOnClosed
from ._exceptions import SupervisorGaveUp as SupervisorGaveUp
from ._exceptions import UnhandledMessage as UnhandledMessage
from ._exceptions import UnpicklableMessage as UnpicklableMessage
from ._exceptions import WouldBlock as WouldBlock
from ._go import go as go
from ._handshake import create_cookie as create_cookie
from ._mailbox import DEFAULT_CAPACITY as DEFAULT_MAILBOX_CAPACITY
from ._mailbox import Mailbox as Mailbox
from ._mailbox import OverflowPolicy as OverflowPolicy
from ._messages import DeadLetter as DeadLetter
from ._messages import Terminated as Terminated
from ._placement import Subprocess as Subprocess
from ._pool import ProcessPool as ProcessPool
from ._portal import ThreadPortal as ThreadPortal
from ._ref import ActorRef as ActorRef
from ._registry import Registry as Registry
from ._reply import Reply as Reply
from ._run import run as run
from ._select import Selected as Selected
from ._select import select as select
from ._subscription import Subscription as Subscription
from ._system import ActorSystem as ActorSystem
from ._system import SystemStatistics as SystemStatistics
from ._tcp import Listener as Listener
from ._tcp import RemoteSystem as RemoteSystem
from ._tree import ActorInfo as ActorInfo
from ._tree import ActorTree as ActorTree

__version__ = "0.2.0.dev0"

__all__ = [
    "CLOSED",
    "DEAD_LETTERS_TOPIC",
    "DEFAULT_MAILBOX_CAPACITY",
    "Actor",
    "ActorFailed",
    "ActorInfo",
    "ActorRef",
    "ActorStopped",
    "ActorSystem",
    "ActorTree",
    "ActorsError",
    "AskTimeout",
    "AuthenticationError",
    "Channel",
    "ChannelClosed",
    "ChannelDrained",
    "ChannelStatistics",
    "ConnectionLost",
    "Context",
    "DeadLetter",
    "GroupInfo",
    "IncompatiblePeer",
    "Listener",
    "Mailbox",
    "MailboxFull",
    "MessageTooLarge",
    "NameLost",
    "NameTaken",
    "NodeDown",
    "OverflowPolicy",
    "ProcessExited",
    "ProcessHung",
    "ProcessPool",
    "ReceiveCase",
    "Registry",
    "RemoteError",
    "RemoteSystem",
    "Reply",
    "Selected",
    "SendCase",
    "SendOnClosed",
    "Subprocess",
    "Subscription",
    "SupervisorGaveUp",
    "SystemStatistics",
    "Terminated",
    "ThreadPortal",
    "Timer",
    "TopicInfo",
    "UnhandledMessage",
    "UnpicklableMessage",
    "WouldBlock",
    "create_cookie",
    "go",
    "run",
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

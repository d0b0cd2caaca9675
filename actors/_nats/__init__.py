"""A private NATS client on anyio (asyncio and trio), for the cluster.

Not public API: the cluster (issue #14) is built on it. See docs/cluster.md for
what it supports.
"""

from ._client import Client as Client
from ._client import ClientStatistics as ClientStatistics
from ._client import connect as connect
from ._errors import AuthorizationError as AuthorizationError
from ._errors import ConnectionClosed as ConnectionClosed
from ._errors import NatsConnectionLost as NatsConnectionLost
from ._errors import NatsError as NatsError
from ._errors import NatsTimeout as NatsTimeout
from ._errors import NoResponders as NoResponders
from ._errors import NoServers as NoServers
from ._errors import NotSupported as NotSupported
from ._errors import OutboundBufferFull as OutboundBufferFull
from ._errors import PayloadTooLarge as PayloadTooLarge
from ._errors import ProtocolError as ProtocolError
from ._errors import ServerError as ServerError
from ._jetstream import JetStream as JetStream
from ._jetstream import JetStreamError as JetStreamError
from ._jetstream import JsMsg as JsMsg
from ._jetstream import MsgMetadata as MsgMetadata
from ._jetstream import PubAck as PubAck
from ._kv import KeyValue as KeyValue
from ._kv import bind_bucket as bind_bucket
from ._kv import create_bucket as create_bucket
from ._kv import delete_bucket as delete_bucket
from ._kv_entry import BucketNotFound as BucketNotFound
from ._kv_entry import KeyExists as KeyExists
from ._kv_entry import KeyValueError as KeyValueError
from ._kv_entry import KvEntry as KvEntry
from ._kv_entry import WrongRevision as WrongRevision
from ._kv_watch import KeyWatcher as KeyWatcher
from ._protocol import Msg as Msg
from ._subscription import Subscription as Subscription

__all__ = [
    "AuthorizationError",
    "BucketNotFound",
    "Client",
    "ClientStatistics",
    "ConnectionClosed",
    "JetStream",
    "JetStreamError",
    "JsMsg",
    "KeyExists",
    "KeyValue",
    "KeyValueError",
    "KeyWatcher",
    "KvEntry",
    "Msg",
    "MsgMetadata",
    "NatsConnectionLost",
    "NatsError",
    "NatsTimeout",
    "NoResponders",
    "NoServers",
    "NotSupported",
    "OutboundBufferFull",
    "PayloadTooLarge",
    "ProtocolError",
    "PubAck",
    "ServerError",
    "Subscription",
    "WrongRevision",
    "bind_bucket",
    "connect",
    "create_bucket",
    "delete_bucket",
]

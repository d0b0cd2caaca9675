"""Actor systems on many machines, as nodes of a cluster on NATS.

A system made with ``ActorSystem("api-1", cluster=NatsCluster(...))`` is a
node of the cluster: refs to actors of other nodes cross in messages and
work as local ones (``tell``, ``ask``, ``stop``, ``watch``); the link to a
node opens on first use, authenticated with the cluster's secret. See the
cluster page of the documentation for what works, the failure model and the
security.

Examples:
    >>> from actors.cluster import NatsCluster
    >>> NatsCluster("nats://127.0.0.1:4222", name="prod", secret=b"0123456789abcdef").name
    'prod'
"""

from ._cluster import ClusterStatistics as ClusterStatistics
from ._cluster import NatsCluster as NatsCluster
from ._cluster import Node as Node
from ._cluster_names import MemberDown as MemberDown
from ._cluster_names import MemberUp as MemberUp

__all__ = ["ClusterStatistics", "MemberDown", "MemberUp", "NatsCluster", "Node"]


def _fix_modules() -> None:
    # As in ``actors``: tracebacks and docs name ``actors.cluster.X``.
    for name in __all__:
        globals()[name].__module__ = __name__


_fix_modules()

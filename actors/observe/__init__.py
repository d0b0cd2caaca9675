"""Seeing a running system: snapshots, a live page, Prometheus metrics.

``snapshot(system)`` reads the tree and its counters without blocking the
system; ``serve_page(system)`` serves a live page of them (and ``/metrics``)
from a small HTTP server of the system's own, on both backends; ``python -m
actors`` reads that page's JSON from a terminal.

Examples:
    >>> import actors
    >>> from actors.observe import serve_page, snapshot
    >>> async def main():
    ...     async with actors.ActorSystem("shop") as system:
    ...         await system.spawn(actors.Actor, name="cart")
    ...         async with serve_page(system) as page:
    ...             return page.url.startswith("http://127.0.0.1:"), snapshot(system)["system"]
    >>> actors.run(main)
    (True, 'shop')
"""

from ._durable import durable_snapshot as durable_snapshot
from ._metrics import prometheus as prometheus
from ._page import Page as Page
from ._page import serve_page as serve_page
from ._snapshot import snapshot as snapshot

__all__ = ["Page", "durable_snapshot", "prometheus", "serve_page", "snapshot"]


def _fix_modules() -> None:
    for name in __all__:
        globals()[name].__module__ = __name__


_fix_modules()
del _fix_modules

"""The benchmark suite: our primitives beside the raw substrate and the peers.

``python -m benchmarks`` runs every workload on both backends, beside
``asyncio.Queue``, trio memory channels, anyio memory object streams, pykka
and thespian, and prints one table with the ratios and the targets met:
``benchmarks.workloads`` lists the rows, ``benchmarks.suite`` measures them,
``benchmarks.report`` prints and judges them, ``benchmarks.chart`` draws
them. The workloads themselves live in one module per topic, each also
runnable on its own with more detail: ``python -m benchmarks.channel``,
``.actors``, ``.supervision``, ``.topics``; ``benchmarks.baselines`` and
``benchmarks.peers`` hold the rest of the other side.
"""

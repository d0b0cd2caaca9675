"""The benchmark suite: our primitives beside the raw substrate they stand on.

Each benchmark is a module run with ``python -m benchmarks.<name>``; it measures
under asyncio and trio, prints medians with their spread and the ratios against
anyio, ``asyncio.Queue`` and trio measured in the same run, and can write the
results as JSON (``--json PATH``). ``benchmarks.channel`` is the first.
"""

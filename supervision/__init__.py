"""Supervision trees for ``actors``: supervisors, child specs, restart strategies."""

__all__: list[str] = []

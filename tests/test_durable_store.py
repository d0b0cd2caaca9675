"""The SQLite store itself: its settings, and the claim's query plan."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import pytest
from durable_kit import opened

from actors.durable import _sql

pytestmark = pytest.mark.anyio


def test_the_claim_walks_the_primary_key_in_order_and_never_sorts(tmp_path: Path) -> None:
    conn = _sql.open_connection(str(tmp_path / "s.db"), "NORMAL", 5.0)
    try:
        plan = " / ".join(
            row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + _sql.CLAIM_SELECT, (1, 0.0, 10))
        )
        assert "USING PRIMARY KEY (cid=?)" in plan, plan
        assert "TEMP B-TREE" not in plan, plan
        plan = " / ".join(
            row[3]
            for row in conn.execute(
                "EXPLAIN QUERY PLAN " + _sql.CLAIM, ("e", 0.0, "[]", 0.0, 0.0, 1, 1, 0.0, 10)
            )
        )
        assert "TEMP B-TREE" not in plan, plan
        assert plan.count("PRIMARY KEY") == 2, plan  # the UPDATE and its subquery
        assert _sql.CLAIM_SELECT in _sql.CLAIM.replace("\n    ", " ").replace("\n", " ")
    finally:
        conn.close()


@pytest.mark.parametrize("synchronous", ["FULL", "NORMAL"])
async def test_the_file_is_wal_with_the_synchronous_asked_for(
    tmp_path: Path, synchronous: str
) -> None:
    path = tmp_path / "s.db"
    async with opened(path, synchronous) as system:
        await system.streams.create("ORDERS", subjects=["orders.>"])
        async with system.streams.transaction() as tx:
            assert await tx.execute("PRAGMA journal_mode") == [("wal",)]
            level = {"FULL": 2, "NORMAL": 1}[synchronous]
            assert await tx.execute("PRAGMA synchronous") == [(level,)]
            assert (await tx.execute("PRAGMA busy_timeout"))[0][0] >= 1000
    with contextlib.closing(sqlite3.connect(path)) as conn:  # `with conn` would not close it
        assert conn.execute("SELECT name FROM durable_streams").fetchall() == [("ORDERS",)]

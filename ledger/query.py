"""Run a read query against the ledger and get a polars DataFrame (fully fetched)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import duckdb
import polars as pl


def read_sql(
    con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[object] | Mapping[str, object] | None = None
) -> pl.DataFrame:
    """``sql`` with ``?`` (or ``$name``) parameters, as a polars DataFrame."""
    return con.sql(sql, params=params or None).pl()

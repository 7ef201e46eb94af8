"""Copy the validated books into the ledger's price tables, only when their content changed."""

from __future__ import annotations

from typing import TYPE_CHECKING

import duckdb
from pydantic import BaseModel

from ledger.db import transaction
from ledger.pricebook.books import PriceBooks

if TYPE_CHECKING:
    import polars as pl

# ledger table <- PriceBooks attribute
_TABLES = {"official_rates": "official_rates", "provider_contracts": "contracts", "fx_rates": "fx_rates"}


def loaded_version(con: duckdb.DuckDBPyConnection) -> str | None:
    """Version (content hash) of the books the ledger holds, None if never loaded."""
    rows = con.execute("select version from price_book_loads order by loaded_at desc limit 1").fetchall()
    return rows[0][0] if rows else None


def sync_to_ledger(con: duckdb.DuckDBPyConnection, books: PriceBooks) -> bool:
    """Replace the three price tables in one transaction (the caller's, if one is open) if
    ``books.version`` is new; True if it was.

    Each load is recorded in ``price_book_loads`` (version + files), so which books priced a
    closed month can be told afterwards.
    """
    if loaded_version(con) == books.version:
        return False
    with transaction(con):
        for table, attribute in _TABLES.items():
            batch = _frame(con, table, getattr(books, attribute))  # noqa: F841  (read by the SQL below)
            con.execute(f"delete from {table}")
            con.execute(f"insert into {table} by name select * from batch")
        con.execute("insert into price_book_loads (version, files) values (?, ?)", [books.version, books.files])
    return True


def _frame(con: duckdb.DuckDBPyConnection, table: str, rows: list[BaseModel]) -> pl.DataFrame:
    """Rows as a DataFrame with the ledger table's schema (so an empty book still has columns)."""
    import polars as pl  # ~0.4 s to import: only when the books changed, not on every ingest

    schema = con.sql(f"select * from {table} limit 0").pl().schema
    return pl.DataFrame([row.model_dump() for row in rows], schema=schema)
